//! End-to-end tests of the `iniesta` binary against a `moto_server` and three
//! `redis-server` processes that each test starts for itself.
//!
//! The binary is the one `cargo build -p iniesta-tokio --bin iniesta` makes
//! in this test's own target directory (found from the test executable's
//! path); the tests run that build once, so they never run a stale binary.
//! Set `INIESTA_BIN` to test another build instead.
//!
//! Children get dummy AWS credentials, region and endpoint in their own
//! environment only; every `INIESTA_*` and `AWS_*` variable of the test's
//! environment is removed from theirs, so the results do not depend on the
//! machine.
//!
//! "Handled exactly once" is judged by what the consumers print: the
//! built-in handler prints one JSON line per successful dispatch, and each
//! key must appear once over all consumers. Deletes are not assumed final
//! (moto, like SQS, may hand out a deleted message again; the completion
//! record in Redis makes that copy harmless).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use iniesta_aws::{SnsTopic, SqsQueue};
use iniesta_core::publish::event_message;
use iniesta_core::{Queue, ReceiveRequest, Topic};
use serde_json::Value;

const SERVICE: &str = "billing";
/// What `iniesta publish -e InvoicePaid` sends with `SERVICE_NAME=billing`.
const EVENT: &str = "InvoicePaid.billing";
const FILTERS: &str = "InvoicePaid.billing,Order.*";
mod common;
use common::world::{summary, Service, World};
use common::*;

// ---------------------------------------------------------------------------
// The service under test

/// The service of the test `name` on `world`: `billing`, with the queue
/// `iniesta-test-{name}` and [`FILTERS`].
fn billing<'a>(world: &'a World, name: &str) -> Service<'a> {
    world.service(&format!("iniesta-test-{name}"), SERVICE, FILTERS)
}

/// `iniesta provision` with a short visibility timeout, so that a message a
/// consumer dropped comes back quickly.
fn provision(service: &Service) {
    let out = service.provision(&["--visibility-timeout", "2"]);
    assert!(
        out.contains(&service.world.topic_arn()),
        "provision output: {out}"
    );
}

/// Publishes one event with the binary; returns its SNS message id.
fn publish(service: &Service, body: &str) -> String {
    let r = run(service.iniesta(&["publish", "-e", "InvoicePaid", "-m", body]));
    assert_eq!(r.code(), Some(0), "publish failed: {r:?}");
    let id = r.stdout.trim().to_owned();
    assert!(
        !id.is_empty() && !id.contains('\n'),
        "publish prints one id: {r:?}"
    );
    id
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn filter_policies_settings_errors_and_usage_need_no_aws() {
    let r = run({
        let mut c = iniesta();
        c.args(["filter-policies", "--filters", "UserCreated.users, Order.*"]);
        c
    });
    assert_eq!(r.code(), Some(0), "{r:?}");
    let policy: Value = serde_json::from_str(&r.stdout).expect("filter-policies prints JSON");
    assert_eq!(
        policy,
        serde_json::json!({"iniesta_pass": ["UserCreated.users", {"prefix": "Order."}]})
    );

    // The environment works as well as the flag, with another event key.
    let r = run({
        let mut c = iniesta();
        c.arg("filter-policies")
            .env("INIESTA_SQS_CONSUMER_FILTERS", "A.x")
            .env("INIESTA_SNS_EVENT_KEY", "kind");
        c
    });
    assert_eq!(r.code(), Some(0), "{r:?}");
    let policy: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(policy, serde_json::json!({"kind": ["A.x"]}));

    // Every bad setting is listed, one `error:` line each, exit 4.
    let r = run({
        let mut c = iniesta();
        c.args(["filter-policies", "--filters", "A.x"])
            .env("INIESTA_LOCK_TIMEOUT", "ten")
            .env("INIESTA_DRY_RUN", "maybe");
        c
    });
    assert_eq!(r.code(), Some(4), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per problem: {r:?}");
    assert!(lines.iter().all(|l| l.starts_with("error: ")), "{r:?}");
    assert!(lines[0].contains(r#"INIESTA_LOCK_TIMEOUT="ten""#), "{r:?}");
    assert!(lines[1].contains(r#"INIESTA_DRY_RUN="maybe""#), "{r:?}");

    // A flag's bad value names the flag.
    let r = run({
        let mut c = iniesta();
        c.args(["filter-policies", "--filters", "A*x"]);
        c
    });
    assert_eq!(r.code(), Some(4), "{r:?}");
    assert!(r.stderr.contains("--filters"), "{r:?}");

    // No filters at all: a settings error that says what to set.
    let r = run({
        let mut c = iniesta();
        c.arg("filter-policies");
        c
    });
    assert_eq!(r.code(), Some(4), "{r:?}");
    assert!(
        r.stderr.starts_with("error: INIESTA_SQS_CONSUMER_FILTERS"),
        "{r:?}"
    );

    // Usage errors are clap's: exit 2.
    let r = run({
        let mut c = iniesta();
        c.args(["publish", "--no-such-flag"]);
        c
    });
    assert_eq!(r.code(), Some(2), "{r:?}");

    // --help documents the exit codes.
    let r = run({
        let mut c = iniesta();
        c.arg("--help");
        c
    });
    assert_eq!(r.code(), Some(0), "{r:?}");
    for code in ["0", "1", "2", "3", "4"] {
        assert!(
            r.stdout.contains(&format!("\n  {code}  ")),
            "exit code {code}: {r:?}"
        );
    }
}

#[test]
fn verify_fails_without_subscription_then_two_consumers_handle_each_event_once() {
    let Some(world) = World::start("drain") else {
        return;
    };
    let service = billing(&world, "drain");

    // Topic and queue exist, but the queue is not subscribed.
    world.rt.block_on(async {
        world
            .clients
            .sns
            .create_topic()
            .name(&world.topic)
            .send()
            .await
            .expect("create topic");
        world
            .clients
            .sqs
            .create_queue()
            .queue_name(&service.queue)
            .send()
            .await
            .expect("create queue");
    });
    let r = run(service.iniesta(&["verify"]));
    assert_eq!(r.code(), Some(3), "verify without a subscription: {r:?}");
    assert!(r.stdout.contains("FAILED"), "the report is printed: {r:?}");
    assert!(
        r.stdout
            .contains("FAIL 3. queue is subscribed to the topic"),
        "the report names the missing subscription: {r:?}"
    );
    assert!(r.stderr.starts_with("error: verification failed"), "{r:?}");

    provision(&service);
    // Provisioning again changes nothing and still succeeds.
    provision(&service);
    let r = run(service.iniesta(&["verify"]));
    assert_eq!(r.code(), Some(0), "verify after provision: {r:?}");
    assert!(r.stdout.contains("iniesta verification: ok"), "{r:?}");

    // One event through the binary, the rest through the SDK in batches.
    let mut published = BTreeSet::from([publish(&service, r#"{"n":0}"#)]);
    let topic = SnsTopic::new(world.clients.sns.clone(), world.topic_arn());
    let messages: Vec<_> = (1..200)
        .map(|n| event_message("iniesta_pass", EVENT, format!(r#"{{"n":{n}}}"#), 1).unwrap())
        .collect();
    for result in world.rt.block_on(topic.publish_batch(messages)) {
        assert!(
            published.insert(result.expect("publish")),
            "SNS ids are unique"
        );
    }
    assert_eq!(published.len(), 200);

    let started = Instant::now();
    let mut a = service.consume("consumer-a", &[], &[]);
    // B also fails every 7th call: those messages come back after the
    // visibility timeout and are handled then, still once each.
    let mut b = service.consume(
        "consumer-b",
        &["--max-in-flight", "5", "--fail-every", "7"],
        &[],
    );
    wait_for("every event to be handled", || {
        let mut seen: BTreeSet<String> = keys(&a.handled()).into_iter().collect();
        seen.extend(keys(&b.handled()));
        seen.len() >= published.len()
    });
    eprintln!(
        "200 events handled by two consumers in {:?}",
        started.elapsed()
    );

    let a_exit = a.terminate();
    let b_exit = b.terminate();
    assert_eq!(a_exit.code(), Some(0), "consumer a: {}", a.stderr_text());
    assert_eq!(b_exit.code(), Some(0), "consumer b: {}", b.stderr_text());
    for c in [&a, &b] {
        assert!(
            c.stderr_has("stopped; received"),
            "{} prints its summary on stderr",
            c.name
        );
    }

    let (a_lines, b_lines) = (a.handled(), b.handled());
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for key in keys(&a_lines).into_iter().chain(keys(&b_lines)) {
        *count.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "keys handled more than once: {twice:?}");
    let handled: BTreeSet<String> = count.into_keys().collect();
    assert_eq!(
        handled, published,
        "every published event, and nothing else"
    );
    for line in a_lines.iter().chain(&b_lines) {
        assert_eq!(line["event"], EVENT, "{line}");
        assert!(line["message_id"].is_string(), "{line}");
        assert!(
            line["receive_count"].as_u64().is_some_and(|n| n >= 1),
            "{line}"
        );
        let body: Value =
            serde_json::from_str(line["body"].as_str().expect("body")).expect("JSON body");
        assert!(body["n"].is_u64(), "{line}");
    }
    eprintln!(
        "consumer a handled {}, consumer b handled {}",
        a_lines.len(),
        b_lines.len()
    );
}

#[test]
fn a_message_whose_consumer_is_killed_is_handled_once_by_another() {
    let Some(world) = World::start("killed") else {
        return;
    };
    let service = billing(&world, "killed");
    provision(&service);
    let key = publish(&service, r#"{"n":"killed"}"#);

    // A takes the message and sleeps in its handler, holding the lock.
    let mut a = service.consume("consumer-a", &["--sleep-ms", "600000"], &[]);
    a.wait_stderr("handler started");
    let mut b = service.consume("consumer-b", &[], &[]);
    // Killed in the middle: no release, no delete. The lock expires (2 s)
    // and the message becomes visible again (2 s), and B takes it.
    a.kill();
    wait_for("consumer b to handle the message", || {
        !b.handled().is_empty()
    });
    let exit = b.terminate();
    assert_eq!(exit.code(), Some(0), "{}", b.stderr_text());

    assert!(a.handled().is_empty(), "the killed consumer never finished");
    let lines = b.handled();
    assert_eq!(
        keys(&lines),
        vec![key.clone()],
        "handled exactly once, by b"
    );
    assert!(
        lines[0]["receive_count"].as_u64().is_some_and(|n| n >= 2),
        "b got a redelivery: {}",
        lines[0]
    );
}

#[test]
fn sigterm_finishes_running_work_and_malformed_messages_stay_without_stopping_the_consumer() {
    let Some(world) = World::start("graceful") else {
        return;
    };
    let service = billing(&world, "graceful");
    provision(&service);
    let queue = SqsQueue::new(world.clients.sqs.clone(), service.url());

    let mut c = service.consume("consumer-c", &["--sleep-ms", "1000"], &[]);

    // A message without the event attribute (not even an SNS envelope).
    let malformed_id = world.rt.block_on(async {
        world
            .clients
            .sqs
            .send_message()
            .queue_url(queue.queue_url())
            .message_body("not an iniesta event")
            .send()
            .await
            .expect("send a malformed message")
            .message_id()
            .expect("a message id")
            .to_owned()
    });
    wait_for("the consumer to see the malformed message", || {
        c.stderr_has(&malformed_id)
    });

    // The consumer still works: a valid event is handled. SIGTERM arrives
    // while its handler sleeps; shutdown lets it finish.
    let first = publish(&service, r#"{"n":"first"}"#);
    c.wait_stderr("handler started");
    let exit = c.terminate();
    assert_eq!(exit.code(), Some(0), "graceful exit: {}", c.stderr_text());
    assert_eq!(
        keys(&c.handled()),
        vec![first.clone()],
        "the running handler finished"
    );
    assert!(
        c.stderr_has("stopped; received"),
        "the summary is on stderr"
    );
    let line = summary(&c);
    assert!(line.contains("succeeded 1,"), "{line}");
    assert!(!line.contains("malformed 0,"), "{line}");

    // Nothing is lost across the stop: an event published now is handled by
    // the next consumer, and the first one is not handled again.
    let second = publish(&service, r#"{"n":"second"}"#);
    let mut d = service.consume("consumer-d", &[], &[]);
    wait_for("consumer d to handle the second event", || {
        keys(&d.handled()).contains(&second)
    });
    let exit = d.terminate();
    assert_eq!(exit.code(), Some(0), "{}", d.stderr_text());
    assert_eq!(keys(&d.handled()), vec![second], "only the new event");

    // The malformed message was never deleted: once its visibility timeout
    // ends it can be received again.
    let request = ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::from_secs(1),
        visibility_timeout: None,
    };
    let mut found = false;
    wait_for("the malformed message to be receivable again", || {
        let got = world.rt.block_on(queue.receive(request)).expect("receive");
        found = got.iter().any(|m| m.sqs_message_id == malformed_id);
        found
    });
    assert!(found);

    // Redis unreachable: a runtime error that says what to fix, exit 1.
    let nowhere = format!("redis://127.0.0.1:{}/", iniesta_tests::servers::free_port());
    let r = run(service.iniesta(&["consume", "--caches", &nowhere]));
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(
        r.stderr.contains("error: cannot lock on a majority")
            && r.stderr.contains("INIESTA_CACHES"),
        "{r:?}"
    );
    assert!(r.stdout.is_empty(), "{r:?}");
}
