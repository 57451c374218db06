//! DynamoDB clients for a test's own `moto_server`, reading the lock table
//! back, and counting the requests a consumer makes.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use iniesta_dynamodb::item::StoredItem;
use iniesta_tests::servers::moto::MotoServer;

/// The configuration of a DynamoDB client for the moto_server at
/// `endpoint`: its region and dummy credentials. Add to it before building.
pub fn config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(MotoServer::REGION))
        .credentials_provider(Credentials::new(
            MotoServer::ACCESS_KEY_ID,
            MotoServer::SECRET_ACCESS_KEY,
            None,
            None,
            "moto",
        ))
        .endpoint_url(endpoint)
}

/// A DynamoDB client for the moto_server at `endpoint`.
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(config(endpoint).build())
}

// ---------------------------------------------------------------------------
// Reading the lock table

/// The lock key of the event with SNS message id `sns_id` in the queue
/// `queue`: the consumer scopes keys to its queue, so services sharing a
/// table keep apart.
pub fn event_key(queue: &str, sns_id: &str) -> String {
    format!("sqs:event:{queue}:{sns_id}")
}

/// Every item of `table`, read with consistent scans, by lock key.
pub async fn items(client: &aws_sdk_dynamodb::Client, table: &str) -> BTreeMap<String, StoredItem> {
    let mut all = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("scan the lock table {table}: {e:?}"));
        for raw in page.items() {
            let item = StoredItem::from_item(raw)
                .unwrap_or_else(|e| panic!("an item of {table} is no lock item ({e}): {raw:?}"));
            all.insert(item.id.clone(), item);
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return all;
        }
    }
}

// ---------------------------------------------------------------------------
// Counting requests

/// A relay between DynamoDB clients and a `moto_server` that counts the
/// DynamoDB operations going through it by their `X-Amz-Target` header, as
/// moto keeps no request log. Point a consumer's
/// `INIESTA_DYNAMODB_ENDPOINT_URL` at [`endpoint`](Self::endpoint); SQS and
/// SNS go straight to moto. It stops accepting connections when dropped.
pub struct OperationCounter {
    port: u16,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl OperationCounter {
    /// Starts relaying from a free loopback port to `upstream_port` on the
    /// loopback.
    pub fn start(upstream_port: u16) -> OperationCounter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("the relay's address").port();
        let counts: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tally, stopped) = (counts.clone(), stop.clone());
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        std::thread::spawn(move || {
            // Polls so that a drop can end it.
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => relay(client, upstream, tally.clone()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("the relay cannot accept: {e}"),
                }
            }
        });
        OperationCounter { port, counts, stop }
    }

    /// The endpoint URL to give DynamoDB clients.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests of each operation (`PutItem`, `UpdateItem`, …)
    /// went through so far.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().unwrap().clone()
    }
}

impl Drop for OperationCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies bytes both ways between `client` and a new connection to
/// `upstream`, counting the operations the client sends. A failed connect
/// closes the client's connection, which its SDK reports as an error.
fn relay(client: TcpStream, upstream: SocketAddr, counts: Arc<Mutex<BTreeMap<String, usize>>>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = client.set_nonblocking(false);
    let (Ok(mut client_in), Ok(mut server_in)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut client_out, mut server_out) = (client, server);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_in, &mut client_out);
        let _ = client_out.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match client_in.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &byte in &buf[..n] {
                if byte == b'\n' {
                    if let Some(op) = operation(&line) {
                        *counts.lock().unwrap().entry(op).or_default() += 1;
                    }
                    line.clear();
                } else if line.len() < 256 {
                    // Header lines are short; a body line is cut short
                    // harmlessly (it never starts with the header's name).
                    line.push(byte);
                }
            }
            if server_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_out.shutdown(Shutdown::Write);
    });
}

/// The operation an HTTP header line names, when it is
/// `x-amz-target: DynamoDB_20120810.<operation>` (any case).
fn operation(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let (name, value) = text.split_once(':')?;
    if !name.trim().eq_ignore_ascii_case("x-amz-target") {
        return None;
    }
    value.trim().rsplit('.').next().map(str::to_owned)
}
