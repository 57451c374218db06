//! Test support: start real servers (`redis-server`, `moto_server`) on free
//! loopback ports and stop them when the guard drops.
//!
//! A test that cannot find its server binary **fails** when the `CI`
//! environment variable is set (so a suite is never skipped silently in CI);
//! elsewhere it prints why and skips.

pub mod moto;
pub mod redis;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound once, then released for the server).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Whether tests run in CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Finds `binary` on `PATH`. Missing: in CI this panics (the suite must not be
/// skipped silently); elsewhere it prints the reason and returns `None`, and
/// the caller returns early.
pub fn require_binary(binary: &str, install_hint: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(binary))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if in_ci() => panic!("`{binary}` is not on PATH; CI must install it ({install_hint})"),
        None => {
            eprintln!("SKIPPED: `{binary}` is not on PATH ({install_hint}); set CI=1 to make this a failure");
            None
        }
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("nothing listens on {addr} after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A child process that is killed (and reaped) when dropped.
#[derive(Debug)]
pub struct ProcessGuard {
    child: Option<Child>,
    /// What it is, for messages.
    pub name: String,
}

impl ProcessGuard {
    /// Guards `child`.
    pub fn new(name: impl Into<String>, child: Child) -> Self {
        ProcessGuard {
            child: Some(child),
            name: name.into(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Kills the process now and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal (`"STOP"`, `"CONT"`, `"TERM"`, …) with `kill(1)`.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
