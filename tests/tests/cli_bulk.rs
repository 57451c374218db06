//! `iniesta publish --file` and `iniesta redrive` end to end: the built
//! binary against a `moto_server` of the test's own (no Redis: neither
//! command locks).
//!
//! Published events are read back from the service's queue, subscribed
//! with raw delivery so that the event name and version arrive as SQS
//! message attributes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, QueueAttributeName};
use common::*;
use iniesta_aws::AwsClients;
use iniesta_tests::servers::moto::MotoServer;
use serde_json::Value;

const SERVICE: &str = "billing";
const EVENT_KEY: &str = "iniesta_pass";

/// The test's emulator, its clients and a runtime to call them from.
struct Bulk {
    moto: MotoServer,
    clients: AwsClients,
    rt: tokio::runtime::Runtime,
    topic: String,
    queue: String,
}

impl Bulk {
    /// `None` when `moto_server` is not installed (outside CI).
    fn start(name: &str) -> Option<Bulk> {
        let moto = MotoServer::start()?;
        let clients = moto.clients();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Some(Bulk {
            moto,
            clients,
            rt,
            topic: format!("events-{name}"),
            queue: format!("iniesta-test-{name}"),
        })
    }

    /// `iniesta ARGS` for the service `billing` and its queue.
    fn iniesta(&self, args: &[&str]) -> Command {
        let mut cmd = iniesta();
        cmd.args(args)
            .args(["--endpoint-url", &self.moto.endpoint()])
            .envs(MotoServer::CHILD_ENV)
            .env(
                "INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN",
                MotoServer::topic_arn(&self.topic),
            )
            .env(
                "INIESTA_SQS_CONSUMER_FILTERS",
                "InvoicePaid.billing,Order.*",
            )
            .env("INIESTA_SQS_QUEUE_NAME", &self.queue)
            .env("SERVICE_NAME", SERVICE)
            // Nothing listens there: these commands must not need Redis.
            .env("INIESTA_CACHES", "redis://127.0.0.1:1/0");
        cmd
    }

    fn provision(&self, args: &[&str]) {
        let mut all = vec!["provision"];
        all.extend_from_slice(args);
        let r = run(self.iniesta(&all));
        assert_eq!(r.code(), Some(0), "provision: {r:?}");
    }

    fn url(&self, name: &str) -> String {
        self.rt
            .block_on(iniesta_aws::resolve_queue_url(&self.clients.sqs, name))
            .unwrap_or_else(|e| panic!("queue {name}: {e}"))
    }

    /// Visible plus in-flight messages of the queue at `url`.
    fn total(&self, url: &str) -> u64 {
        let out = self
            .rt
            .block_on(
                self.clients
                    .sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .expect("GetQueueAttributes");
        let attrs = out.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|name| attrs[name].parse::<u64>().expect("a count"))
        .sum()
    }

    /// Receives until `n` distinct messages arrived (each hidden for
    /// 5 minutes once seen), or panics after [`PATIENCE`].
    fn receive(&self, url: &str, n: usize) -> Vec<Message> {
        let mut got: BTreeMap<String, Message> = BTreeMap::new();
        let deadline = Instant::now() + PATIENCE;
        while got.len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages arrived in {url}",
                got.len()
            );
            let out = self
                .rt
                .block_on(
                    self.clients
                        .sqs
                        .receive_message()
                        .queue_url(url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .visibility_timeout(300)
                        .message_attribute_names("All")
                        .send(),
                )
                .expect("ReceiveMessage");
            for m in out.messages() {
                got.insert(m.message_id().expect("an id").to_owned(), m.clone());
            }
        }
        got.into_values().collect()
    }

    /// Sends `body` with `attributes` straight to the queue at `url`.
    fn send(&self, url: &str, body: &str, attributes: &BTreeMap<String, MessageAttributeValue>) {
        self.rt
            .block_on(
                self.clients
                    .sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(body)
                    .set_message_attributes(Some(attributes.clone().into_iter().collect()))
                    .send(),
            )
            .expect("SendMessage");
    }
}

/// A file of the test's own with `text` in it, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("iniesta-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write the test file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn string_attribute(m: &Message, name: &str) -> Option<String> {
    m.message_attributes()?
        .get(name)?
        .string_value()
        .map(str::to_owned)
}

/// Every stderr line is a reason, the summary or the error: no progress bar
/// when stderr is not a terminal.
fn assert_only_report_lines(r: &Run) {
    for line in r.stderr.lines() {
        assert!(
            line.starts_with("line ")
                || line.starts_with("iniesta: ")
                || line.starts_with("error: "),
            "unexpected stderr line {line:?}: {r:?}"
        );
    }
}

#[test]
fn publish_file_sends_every_good_line_and_names_the_bad_one_and_reads_stdin() {
    let Some(bulk) = Bulk::start("bulk-publish") else {
        return;
    };
    bulk.provision(&["--raw-delivery"]);
    let url = bulk.url(&bulk.queue);

    // 25 events, line 13 not JSON, a blank line 20; one line with the
    // suffix already, one with a version, one with a message group.
    let mut lines = Vec::new();
    let mut expected: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for n in 1..=26u64 {
        let line = match n {
            13 => r#"{"event": "InvoicePaid", "message": {"n": 13"#.to_owned(),
            20 => "   ".to_owned(),
            7 => r#"{"event":"InvoicePaid.billing","message":{"n":7}}"#.to_owned(),
            9 => r#"{"event":"Order.Shipped","message":{"n":9},"version":2}"#.to_owned(),
            11 => r#"{"event":"InvoicePaid","message":"{\"n\":11}","group_id":"g-1"}"#.to_owned(),
            n => format!(r#"{{"event":"InvoicePaid","message":{{"n":{n}}}}}"#),
        };
        if n != 13 && n != 20 {
            let event = if n == 9 {
                "Order.Shipped.billing"
            } else {
                "InvoicePaid.billing"
            };
            let version = if n == 9 { "2" } else { "1" };
            expected.insert(n, (event.to_owned(), version.to_owned()));
        }
        lines.push(line);
    }
    assert_eq!(expected.len(), 24);
    let file = TempFile::new("events.jsonl", &(lines.join("\n") + "\n"));

    let r = run(bulk.iniesta(&["publish", "--file", file.path()]));
    assert_eq!(r.code(), Some(5), "one line failed: {r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(r.stderr.contains("line 13: not JSON"), "{r:?}");
    assert!(
        r.stderr
            .contains("iniesta: published 24, failed 1 (line 13)"),
        "{r:?}"
    );
    assert!(r.stderr.contains("error: 1 line(s) not published"), "{r:?}");
    assert_only_report_lines(&r);

    let received = bulk.receive(&url, 24);
    let mut seen = BTreeMap::new();
    for m in &received {
        let body: Value = serde_json::from_str(m.body().expect("a body")).expect("JSON body");
        let n = body["n"].as_u64().unwrap_or_else(|| panic!("body {body}"));
        let event = string_attribute(m, EVENT_KEY).expect("the event attribute");
        let version = string_attribute(m, "version").expect("the version attribute");
        assert!(
            seen.insert(n, (event, version)).is_none(),
            "line {n} arrived twice"
        );
    }
    assert_eq!(
        seen, expected,
        "every good line, named and versioned as published"
    );

    // The same from stdin, every line good: exit 0.
    let input = TempFile::new(
        "stdin.jsonl",
        "{\"event\":\"InvoicePaid\",\"message\":{\"n\":101}}\n\
         {\"event\":\"InvoicePaid\",\"message\":{\"n\":102}}\n\
         {\"event\":\"Order.Created\",\"message\":{\"n\":103}}\n",
    );
    let mut cmd = bulk.iniesta(&["publish", "--file", "-"]);
    cmd.stdin(File::open(input.path()).expect("open the input"));
    let r = run(cmd);
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(r.stderr.trim(), "iniesta: published 3, failed 0", "{r:?}");
    let received = bulk.receive(&url, 3);
    let mut from_stdin: Vec<(u64, String)> = received
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            (
                body["n"].as_u64().unwrap(),
                string_attribute(m, EVENT_KEY).unwrap(),
            )
        })
        .collect();
    from_stdin.sort();
    assert_eq!(
        from_stdin,
        vec![
            (101, "InvoicePaid.billing".to_owned()),
            (102, "InvoicePaid.billing".to_owned()),
            (103, "Order.Created.billing".to_owned()),
        ]
    );

    // Without a service name nothing is published: a settings error.
    let mut cmd = bulk.iniesta(&["publish", "--file", "-"]);
    cmd.env_remove("SERVICE_NAME")
        .stdin(File::open(input.path()).expect("open the input"));
    let r = run(cmd);
    assert_eq!(r.code(), Some(4), "{r:?}");
    assert!(r.stderr.contains("SERVICE_NAME"), "{r:?}");

    // A file that is not there: a runtime error naming it.
    let r = run(bulk.iniesta(&["publish", "--file", "/nonexistent/events.jsonl"]));
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(
        r.stderr.contains("cannot read /nonexistent/events.jsonl"),
        "{r:?}"
    );
}

/// A dead letter as a test writes it: body `{"n":N}`, the event and
/// version attributes, and a binary one.
fn dead_letter(n: u32) -> (String, BTreeMap<String, MessageAttributeValue>) {
    let text = |kind: &str, value: &str| {
        MessageAttributeValue::builder()
            .data_type(kind)
            .string_value(value)
            .build()
            .unwrap()
    };
    let attributes = BTreeMap::from([
        (EVENT_KEY.to_owned(), text("String", "InvoicePaid.billing")),
        ("version".to_owned(), text("Number", &n.to_string())),
        (
            "trace".to_owned(),
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(Blob::new(n.to_be_bytes().to_vec()))
                .build()
                .unwrap(),
        ),
    ]);
    (format!(r#"{{"n":{n}}}"#), attributes)
}

fn moved(r: &Run) -> u64 {
    r.stdout
        .strip_prefix("moved ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {r:?}"))
}

#[test]
fn redrive_moves_dead_letters_back_intact_up_to_max_then_all() {
    let Some(bulk) = Bulk::start("bulk-redrive") else {
        return;
    };

    // No dead-letter queue yet: a clear error.
    bulk.provision(&[]);
    let r = run(bulk.iniesta(&["redrive"]));
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(r.stderr.contains("has no dead-letter queue"), "{r:?}");
    assert!(r.stderr.contains("--dead-letter-after"), "{r:?}");

    bulk.provision(&["--dead-letter-after", "3"]);
    let queue = bulk.url(&bulk.queue);
    let dlq = bulk.url(&format!("{}-dlq", bulk.queue));
    let letters: Vec<_> = (1..=7).map(dead_letter).collect();
    for (body, attributes) in &letters {
        bulk.send(&dlq, body, attributes);
    }
    assert_eq!(bulk.total(&dlq), 7);

    let r = run(bulk.iniesta(&["redrive", "--max", "3"]));
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(moved(&r), 3, "{r:?}");
    assert!(
        r.stdout.contains(&dlq) && r.stdout.contains(&queue),
        "{r:?}"
    );
    assert_eq!((bulk.total(&queue), bulk.total(&dlq)), (3, 4));

    let r = run(bulk.iniesta(&["redrive"]));
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(moved(&r), 4, "{r:?}");
    assert_eq!((bulk.total(&queue), bulk.total(&dlq)), (7, 0));

    // Bodies and attributes as they were, each message once.
    let mut back: BTreeMap<String, BTreeMap<String, MessageAttributeValue>> = BTreeMap::new();
    for m in bulk.receive(&queue, 7) {
        let attributes = m
            .message_attributes()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let body = m.body().unwrap_or_default().to_owned();
        assert!(
            back.insert(body.clone(), attributes).is_none(),
            "{body} twice"
        );
    }
    let sent: BTreeMap<_, _> = letters.into_iter().collect();
    assert_eq!(back, sent);

    // Nothing left: a redrive moves none, and that is no failure.
    let r = run(bulk.iniesta(&["redrive"]));
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(moved(&r), 0, "{r:?}");
}

#[test]
fn a_dead_letter_the_queue_refuses_stays_in_the_dead_letter_queue() {
    let Some(bulk) = Bulk::start("bulk-refused") else {
        return;
    };
    bulk.provision(&["--dead-letter-after", "3"]);
    let queue = bulk.url(&bulk.queue);
    let dlq = bulk.url(&format!("{}-dlq", bulk.queue));
    // The queue takes at most 1 KiB; the dead-letter queue took more.
    bulk.rt
        .block_on(
            bulk.clients
                .sqs
                .set_queue_attributes()
                .queue_url(&queue)
                .attributes(QueueAttributeName::MaximumMessageSize, "1024")
                .send(),
        )
        .expect("SetQueueAttributes");
    let (_, attributes) = dead_letter(0);
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000));
    bulk.send(&dlq, r#"{"n":1}"#, &attributes);
    bulk.send(&dlq, &big, &attributes);
    bulk.send(&dlq, r#"{"n":2}"#, &attributes);

    let r = run(bulk.iniesta(&["redrive"]));
    assert_eq!(r.code(), Some(5), "{r:?}");
    assert_eq!(moved(&r), 2, "the others still moved: {r:?}");
    assert!(r.stderr.contains("not moved: message"), "{r:?}");
    assert!(
        r.stderr
            .contains("iniesta: moved 2, not moved 1, copied but not deleted 0"),
        "{r:?}"
    );
    // Sent before deleted: the refused message was never deleted.
    assert_eq!(bulk.total(&dlq), 1, "the refused message is kept");
    let bodies: BTreeSet<String> = bulk
        .receive(&queue, 2)
        .iter()
        .map(|m| m.body().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        bodies,
        BTreeSet::from([r#"{"n":1}"#.to_owned(), r#"{"n":2}"#.to_owned()])
    );
}
