//! Support for the end-to-end tests of the `iniesta` binary: building and
//! running it with a clean environment, and watching a running `iniesta
//! consume` through what it prints.
//!
//! The binary is the one `cargo build -p iniesta-tokio --features cli --bin
//! iniesta` makes in the test's own target directory (found from the test
//! executable's path); it is built once per test executable, so a test never
//! runs a stale binary. Set `INIESTA_BIN` to test another build instead.
//!
//! Children get no `INIESTA_*`, `AWS_*`, `SERVICE_NAME`, `ENVIRONMENT` or
//! `RUST_LOG` from the test's environment, so the results do not depend on
//! the machine; each test sets what it needs.

// Each test executable compiles this module for itself and uses a part of it.
#![allow(dead_code)]

pub mod aws;
pub mod dynamodb;
pub mod redlock;
pub mod world;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Long enough that a healthy run never reaches it; only keeps a broken run
/// from hanging.
pub const PATIENCE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// The binary

/// The `iniesta` binary, built once per test executable.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("INIESTA_BIN") {
            return PathBuf::from(path);
        }
        // A test runs as target/<profile>/deps/<name>-<hash>.
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is a workspace member");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "iniesta-tokio",
                "--bin",
                "iniesta",
                "--features",
                "cli",
                "--profile",
            ])
            .arg(&profile)
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(workspace)
            .status()
            .expect("run cargo build for the iniesta binary");
        assert!(status.success(), "cargo build of the iniesta binary failed");
        let bin = profile_dir.join(format!("iniesta{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// A command for the binary with a clean environment: nothing from the
/// test's own `INIESTA_*`, `AWS_*` or logging variables.
pub fn iniesta() -> Command {
    iniesta_tests::clean_command(binary())
}

// ---------------------------------------------------------------------------
// One-shot commands and waiting

/// A finished run of a one-shot command.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `cmd` to its end (killing it after [`PATIENCE`]).
pub fn run(mut cmd: Command) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iniesta");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_exit(&mut child, PATIENCE).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("iniesta did not finish within {PATIENCE:?}");
    });
    Run {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for iniesta") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `condition` until it holds; panics with `what` after [`PATIENCE`].
pub fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    wait_within(what, PATIENCE, condition);
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
pub fn wait_within(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "gave up after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `condition` until it holds or `timeout` passes; tells which.
pub fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// A running consumer

/// A running `iniesta consume`, its output collected line by line; killed
/// when dropped.
pub struct Consumer {
    pub name: &'static str,
    pub child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    source: impl Read + Send + 'static,
    echo: Option<&'static str>,
) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let handle = std::thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            if let Some(name) = echo {
                // Shown by the test harness when the test fails.
                eprintln!("[{name}] {line}");
            }
            sink.lock().unwrap().push(line);
        }
    });
    (lines, handle)
}

impl Consumer {
    pub fn start(name: &'static str, mut cmd: Command) -> Consumer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iniesta consume");
        let (stdout, out_reader) = collect(child.stdout.take().expect("stdout"), None);
        let (stderr, err_reader) = collect(child.stderr.take().expect("stderr"), Some(name));
        Consumer {
            name,
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    pub fn stderr_has(&self, needle: &str) -> bool {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The stderr lines for which `pick` holds.
    pub fn stderr_lines(&self, mut pick: impl FnMut(&str) -> bool) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| pick(l))
            .cloned()
            .collect()
    }

    /// Panics, with what it printed, when the consumer has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited with {status}:\n{}",
                self.name,
                self.stderr_text()
            );
        }
    }

    /// Waits until the stderr has a line containing `needle`; fails early if
    /// the consumer exits.
    pub fn wait_stderr(&mut self, needle: &str) {
        let name = self.name;
        wait_for(&format!("{name} to log {needle:?}"), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{name} exited with {status} before logging {needle:?}:\n{}",
                    self.stderr_text()
                );
            }
            self.stderr_has(needle)
        });
    }

    /// The JSON lines printed so far, one per handled message.
    pub fn handled(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!("{}: stdout line {line:?} is not JSON: {e}", self.name)
                })
            })
            .collect()
    }

    /// Sends SIGTERM and waits for the exit; then all output is in.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -TERM {} failed", self.name);
        let exit = wait_exit(&mut self.child, PATIENCE)
            .unwrap_or_else(|| panic!("{} did not stop within {PATIENCE:?} of SIGTERM", self.name));
        for reader in self.readers.drain(..) {
            reader.join().expect("output reader");
        }
        exit
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `key` field of every handled line.
pub fn keys(handled: &[Value]) -> Vec<String> {
    handled
        .iter()
        .map(|v| {
            v["key"]
                .as_str()
                .unwrap_or_else(|| panic!("handled line without a key: {v}"))
                .to_owned()
        })
        .collect()
}
