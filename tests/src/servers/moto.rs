//! `moto_server` processes for tests.
//!
//! [`MotoServer::start`] runs `moto_server -H 127.0.0.1 -p PORT` on a free
//! loopback port, waits until it accepts connections, and kills it when the
//! guard drops. Each test gets its own emulator, so tests never see each
//! other's queues and topics, and never depend on a server someone else
//! started.
//!
//! Nothing global is set: no environment variable, no AWS profile. A client
//! talking to the emulator needs
//! - the endpoint URL from [`MotoServer::endpoint`] (for both SQS and SNS);
//! - region [`MotoServer::REGION`] (`us-east-1`), the region moto's ARNs use;
//! - any static credentials, e.g. [`MotoServer::ACCESS_KEY_ID`] /
//!   [`MotoServer::SECRET_ACCESS_KEY`]: moto checks that a request is signed,
//!   not by whom.
//!
//! [`MotoServer::clients`] builds such clients; a child process gets the
//! credentials and region from [`MotoServer::CHILD_ENV`].
//!
//! [`MotoServer::start_fast`] runs moto with its SQS hot paths indexed
//! (`tests/benches/moto_fast.py`: the same answers without scanning the
//! whole queue per message), for benchmarks that would otherwise measure
//! moto's scans. With [`MotoServer::FAST_ENV`] set to `1`, [`MotoServer::start`]
//! starts that one too, so that the server-backed tests can check it
//! answers as stock moto does.
//!
//! ```no_run
//! use iniesta_tests::servers::moto::MotoServer;
//!
//! // `None`: moto_server is not installed and we are not in CI; skip.
//! let Some(moto) = MotoServer::start() else { return };
//! let endpoint = moto.endpoint(); // "http://127.0.0.1:PORT"
//! let clients = moto.clients(); // SQS and SNS, pointed at `endpoint`
//! // The server stops when `moto` drops.
//! # let _ = (endpoint, clients);
//! ```

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iniesta_aws::AwsClients;

use super::{free_port, require_binary, ProcessGuard};

/// How long a fresh `moto_server` may take to listen (Python start-up on a
/// busy machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often to try another port when the chosen one was taken between
/// picking it and the server binding it.
const START_ATTEMPTS: usize = 3;

/// A running `moto_server` (SQS and SNS emulator), killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    guard: ProcessGuard,
    port: u16,
}

impl MotoServer {
    /// The region to configure clients with.
    pub const REGION: &'static str = "us-east-1";
    /// A dummy access key id; moto accepts any.
    pub const ACCESS_KEY_ID: &'static str = "testing";
    /// A dummy secret key; moto accepts any.
    pub const SECRET_ACCESS_KEY: &'static str = "testing";
    /// The account in the ARNs moto makes.
    pub const ACCOUNT: &'static str = "123456789012";
    /// The environment of a child process that talks to the server: the
    /// dummy credentials and the region (the endpoint is passed on its own).
    pub const CHILD_ENV: [(&'static str, &'static str); 3] = [
        ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", Self::SECRET_ACCESS_KEY),
        ("AWS_REGION", Self::REGION),
    ];

    /// The ARN moto gives the topic named `name`.
    pub fn topic_arn(name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{name}", Self::REGION, Self::ACCOUNT)
    }

    /// Starts `moto_server` on a free loopback port and waits until it
    /// listens.
    ///
    /// Returns `None` when `moto_server` is not on `PATH` outside CI (the
    /// reason is printed and the test should return early). In CI a missing
    /// binary panics, and so does a server that never starts listening: a
    /// test must not pass without its emulator.
    pub fn start() -> Option<MotoServer> {
        if std::env::var(Self::FAST_ENV).is_ok_and(|v| v == "1") {
            return Self::start_fast();
        }
        let binary = require_binary("moto_server", "pip install 'moto[server]'")?;
        Some(Self::start_program(&binary, &[]))
    }

    /// Environment variable that makes [`start`](Self::start) run
    /// [`start_fast`](Self::start_fast)'s server when set to `1`.
    pub const FAST_ENV: &'static str = "INIESTA_TESTS_FAST_MOTO";

    /// Like [`start`](Self::start), but runs moto's server through
    /// `tests/benches/moto_fast.py` with `python3`: moto with its SQS
    /// receive, delete and visibility calls indexed instead of scanning the
    /// queue, so that a drain of thousands of messages measures the client,
    /// not moto. It also counts calls per queue (see the script). Needs
    /// `python3` on `PATH` with moto 5.2 installed.
    pub fn start_fast() -> Option<MotoServer> {
        let python = require_binary("python3", "install Python 3 with 'moto[server]'")?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/moto_fast.py");
        Some(Self::start_program(&python, &[script]))
    }

    /// Runs `binary` with `leading` arguments and moto_server's own
    /// (`-H 127.0.0.1 -p PORT`) on a free port, and waits until it listens.
    fn start_program(binary: &Path, leading: &[&str]) -> MotoServer {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut child = Command::new(binary)
                .args(leading)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    let guard = ProcessGuard::new(format!("moto_server on port {port}"), child);
                    return MotoServer { guard, port };
                }
                // Exited: most likely the port was taken between picking and
                // binding it; try another.
                if let Ok(Some(status)) = child.try_wait() {
                    last_error = format!("moto_server on port {port} exited with {status}");
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!("nothing listens on {addr} after {START_TIMEOUT:?}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("moto_server did not start after {START_ATTEMPTS} attempts: {last_error}");
    }

    /// The endpoint URL for both SQS and SNS clients:
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SQS and SNS clients pointed at the server, with the dummy
    /// credentials and region.
    pub fn clients(&self) -> AwsClients {
        AwsClients::with_static_credentials(
            Self::ACCESS_KEY_ID,
            Self::SECRET_ACCESS_KEY,
            Self::REGION,
            Some(&self.endpoint()),
        )
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process guard, e.g. to pause the server with
    /// [`ProcessGuard::signal`] and test how clients handle an unresponsive
    /// endpoint.
    pub fn process(&self) -> &ProcessGuard {
        &self.guard
    }

    /// Stops the server now (it is also stopped on drop).
    pub fn stop(&mut self) {
        self.guard.kill();
    }
}
