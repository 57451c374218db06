//! `redis-server` processes for tests.
//!
//! Each [`RedisServer`] is a real `redis-server` on a free loopback port, with
//! persistence off and a private temporary directory as its working directory
//! (so nothing is written into the repository). It is killed when dropped.
//! Tests can stop, restart (same port, empty data), pause and resume it to
//! exercise node failures; [`RedisCluster`] starts several independent ones,
//! as a Redlock deployment uses.
//!
//! ```no_run
//! use iniesta_tests::servers::redis::{RedisCluster, RedisServer};
//!
//! // `None`: redis-server is not installed and we are not in CI; skip.
//! let Some(mut server) = RedisServer::start() else { return };
//! let url = server.url(); // "redis://127.0.0.1:PORT/"
//! server.pause(); // SIGSTOP: the node stalls
//! server.resume(); // SIGCONT
//! server.restart(); // a fresh, empty process on the same port
//!
//! let Some(cluster) = RedisCluster::start(3) else { return };
//! assert_eq!(cluster.urls().len(), 3);
//! # let _ = url;
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{free_port, require_binary, ProcessGuard};

/// How long a server may take to start listening before we give up.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How many ports we try when the first one is taken by someone else.
const PORT_ATTEMPTS: usize = 5;

/// A `redis-server` process on a free loopback port, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    guard: Option<ProcessGuard>,
    paused: bool,
}

impl RedisServer {
    /// Starts a server on a free port.
    ///
    /// Returns `None` when `redis-server` is not installed and the tests do
    /// not run in CI (the reason is printed); in CI a missing binary panics,
    /// so a suite is never skipped silently. Panics when the server does not
    /// come up (a test cannot go on without it).
    pub fn start() -> Option<RedisServer> {
        Self::start_binary("redis-server", "apt-get install redis-server")
    }

    /// Starts a `valkey-server` (8.1 or later, which takes `SET … IFEQ`)
    /// on a free port, as [`start`](Self::start) starts `redis-server`.
    /// `scripts/valkey.sh` builds one from Debian's source archive and
    /// prints the directory to put on `PATH`.
    pub fn start_valkey() -> Option<RedisServer> {
        Self::start_binary(
            "valkey-server",
            "scripts/valkey.sh builds it; put the directory it prints on PATH",
        )
    }

    fn start_binary(name: &str, install_hint: &str) -> Option<RedisServer> {
        let binary = require_binary(name, install_hint)?;
        let dir = unique_dir();
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match spawn(&binary, port, &dir) {
                Ok(guard) => {
                    return Some(RedisServer {
                        binary,
                        port,
                        dir,
                        guard: Some(guard),
                        paused: false,
                    })
                }
                // Most likely the port was taken between choosing and
                // binding it; try another.
                Err(e) => last_error = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("{name} did not start after {PORT_ATTEMPTS} attempts: {last_error}");
    }

    /// The server's URL, `redis://127.0.0.1:PORT/` (database 0).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Whether the process runs (started and not stopped; a paused process
    /// counts as running).
    pub fn is_running(&self) -> bool {
        self.guard.is_some()
    }

    /// Kills the server: connections drop and new ones are refused until
    /// [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            guard.kill();
        }
        self.paused = false;
    }

    /// Replaces the server with a fresh, empty process on the same port (as
    /// after a crash without persistence). Panics when it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        match spawn(&self.binary, self.port, &self.dir) {
            Ok(guard) => self.guard = Some(guard),
            Err(e) => panic!(
                "{} did not restart on port {}: {e}",
                name_of(&self.binary),
                self.port
            ),
        }
    }

    /// Stalls the server with SIGSTOP: it keeps its connections and its
    /// port but answers nothing, like a node that hangs.
    pub fn pause(&mut self) {
        if let Some(guard) = &self.guard {
            if !self.paused {
                guard.signal("STOP");
                self.paused = true;
            }
        }
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&mut self) {
        if let Some(guard) = &self.guard {
            if self.paused {
                guard.signal("CONT");
                self.paused = false;
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL works on a stopped process too.
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Several independent `redis-server` processes (not a Redis Cluster: no
/// replication, no slots), as a Redlock deployment uses.
#[derive(Debug)]
pub struct RedisCluster {
    servers: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `n` servers, each on its own free port. `None` when
    /// `redis-server` is missing outside CI (see [`RedisServer::start`]).
    pub fn start(n: usize) -> Option<RedisCluster> {
        Self::start_with(n, RedisServer::start)
    }

    /// Starts `n` `valkey-server`s (see [`RedisServer::start_valkey`]).
    pub fn start_valkey(n: usize) -> Option<RedisCluster> {
        Self::start_with(n, RedisServer::start_valkey)
    }

    fn start_with(n: usize, start: fn() -> Option<RedisServer>) -> Option<RedisCluster> {
        let mut servers = Vec::with_capacity(n);
        for _ in 0..n {
            servers.push(start()?);
        }
        Some(RedisCluster { servers })
    }

    /// The servers' URLs, in order.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    /// How many servers there are.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether there are no servers.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The servers, to inspect them.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The servers, to stop, restart, pause or resume them.
    pub fn servers_mut(&mut self) -> &mut [RedisServer] {
        &mut self.servers
    }
}

impl std::ops::Index<usize> for RedisCluster {
    type Output = RedisServer;
    fn index(&self, i: usize) -> &RedisServer {
        &self.servers[i]
    }
}

impl std::ops::IndexMut<usize> for RedisCluster {
    fn index_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.servers[i]
    }
}

/// A fresh directory under the system's temporary directory.
fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "iniesta-testkit-redis-{}-{n}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Spawns `redis-server` on `port` and waits until *that* process answers
/// there (another process may own the port: we compare process ids).
/// The server's program name (`redis-server`, `valkey-server`), for logs
/// and messages.
fn name_of(binary: &Path) -> String {
    binary.file_name().map_or_else(
        || binary.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn spawn(binary: &Path, port: u16, dir: &Path) -> Result<ProcessGuard, String> {
    let name = name_of(binary);
    let log_path = dir.join(format!("{name}-{port}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot reopen {}: {e}", log_path.display()))?;
    let child = Command::new(binary)
        .current_dir(dir)
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let mut guard = ProcessGuard::new(format!("{name}:{port}"), child);
    let pid = guard.pid();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match server_pid(addr) {
            Some(p) if p == pid => return Ok(guard),
            Some(other) => {
                guard.kill();
                return Err(format!(
                    "port {port} is served by process {other}, not ours"
                ));
            }
            None if Instant::now() >= deadline => {
                guard.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "nothing answered on {addr} within {START_TIMEOUT:?}; log:\n{log}"
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The `process_id` a Redis server on `addr` reports in `INFO server`, or
/// `None` when nothing answers (yet).
fn server_pid(addr: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some(rest) = text.split("process_id:").nth(1) {
            if let Some(line) = rest.split("\r\n").next().filter(|_| rest.contains("\r\n")) {
                return line.trim().parse().ok();
            }
        }
        if text.starts_with('-') && text.contains("\r\n") {
            // An error reply (e.g. LOADING): not ready yet.
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_stop_restart_pause() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let addr = server.addr();
        assert_eq!(
            server.url(),
            format!("redis://127.0.0.1:{}/", server.port())
        );
        let first = server_pid(addr).expect("server answers");
        server.stop();
        assert!(!server.is_running());
        assert!(server_pid(addr).is_none(), "stopped server still answers");
        server.restart();
        let second = server_pid(addr).expect("restarted server answers");
        assert_ne!(first, second, "restart must start a new process");
        server.pause();
        assert!(server_pid(addr).is_none(), "paused server answered");
        server.resume();
        assert_eq!(server_pid(addr), Some(second));
        let dir = server.dir.clone();
        drop(server);
        assert!(!dir.exists(), "temporary directory left behind");
    }

    #[test]
    fn cluster_has_independent_servers() {
        let Some(cluster) = RedisCluster::start(3) else {
            return;
        };
        let urls = cluster.urls();
        assert_eq!(urls.len(), 3);
        let mut ports: Vec<u16> = cluster.servers().iter().map(RedisServer::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 3);
        for s in cluster.servers() {
            assert!(server_pid(s.addr()).is_some());
        }
    }
}
