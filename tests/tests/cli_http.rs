//! `iniesta consume --listen` against a `moto_server` and three
//! `redis-server`s: `/readyz`, `/healthz` and `/metrics` scraped over HTTP
//! while the binary consumes, and readiness lost when the lock servers go.
//!
//! The consumer listens on port 0 and the test reads the port from the line
//! it logs at start-up, so no port is guessed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

mod common;
use common::world::World;
use common::*;

const EVENT: &str = "InvoicePaid.billing";

/// Status code and body of `GET path`, over a fresh connection (HTTP/1.0:
/// the server closes it and sends no chunks).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers, then a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    (status, body.to_owned())
}

/// The value of the sample `series` (name and labels, as rendered); 0 when
/// it is not there yet.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// The address the consumer logged it serves on.
fn served_on(consumer: &mut Consumer) -> SocketAddr {
    consumer.wait_stderr("serving /metrics, /healthz and /readyz on http://");
    let line = consumer
        .stderr_lines(|l| l.contains("/readyz on http://"))
        .pop()
        .expect("the line just waited for");
    let (_, addr) = line.split_once("on http://").expect("an address");
    addr.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{addr:?} is not an address: {e}"))
}

#[test]
fn a_bad_listen_address_is_a_usage_error() {
    let r = run({
        let mut c = iniesta();
        c.args(["consume", "--listen", "port-9090"]);
        c
    });
    assert_eq!(r.code(), Some(2), "{r:?}");
    assert!(r.stderr.contains("--listen"), "{r:?}");
}

#[test]
fn consume_listen_serves_readiness_and_metrics_and_loses_readiness_with_the_lock() {
    let Some(mut world) = World::start("cli-http") else {
        return;
    };
    let mut consumer = {
        let service = world.service("iniesta-test-cli-http", "billing", EVENT);
        service.provision(&[]);
        service.consume("listening", &["--listen", "127.0.0.1:0"], &[])
    };
    let addr = served_on(&mut consumer);

    wait_for("/readyz to answer 200", || get(addr, "/readyz").0 == 200);
    assert_eq!(get(addr, "/readyz").1, "ready\n");
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_owned()));

    // The built-in handler is the default handler: its route is `default`.
    let succeeded = "iniesta_messages_succeeded_total{event=\"default\"}";
    let (status, before) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(sample(&before, succeeded), 0.0, "{before}");
    assert!(
        before.contains("iniesta_handlers_in_flight{event=\"default\"} 0"),
        "{before}"
    );

    world.publish(&[
        (EVENT, "{\"n\": 1}".to_owned()),
        (EVENT, "{\"n\": 2}".to_owned()),
    ]);
    wait_for("two events handled", || consumer.handled().len() == 2);
    wait_for("the counters to move", || {
        sample(&get(addr, "/metrics").1, succeeded) == 2.0
    });
    let after = get(addr, "/metrics").1;
    assert!(
        sample(&after, "iniesta_messages_received_total") >= 2.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "iniesta_handler_seconds_count{event=\"default\",outcome=\"ok\"}"
        ),
        2.0,
        "{after}"
    );

    // Every lock server gone: the next probe fails, readiness goes.
    for server in world.redis.servers_mut() {
        server.stop();
    }
    wait_for("/readyz to answer 503", || get(addr, "/readyz").0 == 503);
    let (_, reasons) = get(addr, "/readyz");
    assert!(
        reasons.lines().any(|l| l.starts_with("lock: ")),
        "the reason names the lock: {reasons:?}"
    );
    assert_eq!(get(addr, "/healthz").0, 200, "alive all the same");

    let status = consumer.terminate();
    assert!(status.success(), "{status}: {}", consumer.stderr_text());
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "still listening on {addr} after the exit"
    );
}
