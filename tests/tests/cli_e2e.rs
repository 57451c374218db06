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
use std::process::Command;
use std::time::{Duration, Instant};

use iniesta_aws::{AwsClients, SnsTopic, SqsQueue};
use iniesta_core::publish::event_message;
use iniesta_core::{Queue, ReceiveRequest, Topic};
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tests::servers::redis::RedisCluster;
use serde_json::Value;

const SERVICE: &str = "billing";
/// What `iniesta publish -e InvoicePaid` sends with `SERVICE_NAME=billing`.
const EVENT: &str = "InvoicePaid.billing";
const FILTERS: &str = "InvoicePaid.billing,Order.*";
/// moto's account.
const ACCOUNT: &str = "123456789012";
mod common;
use common::*;

// ---------------------------------------------------------------------------
// Servers and resources

/// A moto_server, three redis-servers, and the names of this test's topic
/// and queue.
struct Env {
    moto: MotoServer,
    redis: RedisCluster,
    clients: AwsClients,
    topic: String,
    queue: String,
    rt: tokio::runtime::Runtime,
}

impl Env {
    /// `None` when the servers are not installed (outside CI; the reason was
    /// printed).
    fn start(name: &str) -> Option<Env> {
        let redis = RedisCluster::start(3)?;
        let moto = MotoServer::start()?;
        let clients = AwsClients::with_static_credentials(
            MotoServer::ACCESS_KEY_ID,
            MotoServer::SECRET_ACCESS_KEY,
            MotoServer::REGION,
            Some(&moto.endpoint()),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Some(Env {
            moto,
            redis,
            clients,
            topic: format!("events-{name}"),
            queue: format!("iniesta-test-{name}"),
            rt,
        })
    }

    fn topic_arn(&self) -> String {
        format!(
            "arn:aws:sns:{}:{ACCOUNT}:{}",
            MotoServer::REGION,
            self.topic
        )
    }

    /// `iniesta ARGS` configured for this environment: the endpoint by flag,
    /// the rest by the environment.
    fn iniesta(&self, args: &[&str]) -> Command {
        let mut cmd = iniesta();
        cmd.args(args)
            .args(["--endpoint-url", &self.moto.endpoint()])
            .env("AWS_ACCESS_KEY_ID", MotoServer::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", MotoServer::SECRET_ACCESS_KEY)
            .env("AWS_REGION", MotoServer::REGION)
            .env("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN", self.topic_arn())
            .env("INIESTA_SQS_CONSUMER_FILTERS", FILTERS)
            .env("INIESTA_SQS_QUEUE_NAME", &self.queue)
            .env("SERVICE_NAME", SERVICE)
            .env("INIESTA_CACHES", self.redis.urls().join(","))
            .env("INIESTA_LOCK_TIMEOUT", "2")
            .env("INIESTA_SQS_RECEIVE_MESSAGE_WAIT_TIME_SECONDS", "1")
            .env("INIESTA_SHUTDOWN_GRACE", "30");
        cmd
    }

    fn consume(&self, name: &'static str, args: &[&str]) -> Consumer {
        let mut all = vec!["consume"];
        all.extend_from_slice(args);
        Consumer::start(name, self.iniesta(&all))
    }

    /// `iniesta provision` with a short visibility timeout, so that a
    /// message a consumer dropped comes back quickly.
    fn provision(&self) {
        let r = run(self.iniesta(&["provision", "--visibility-timeout", "2"]));
        assert_eq!(r.code(), Some(0), "provision failed: {r:?}");
        assert!(
            r.stdout.contains(&self.topic_arn()),
            "provision output: {r:?}"
        );
    }

    /// Publishes one event with the binary; returns its SNS message id.
    fn publish(&self, body: &str) -> String {
        let r = run(self.iniesta(&["publish", "-e", "InvoicePaid", "-m", body]));
        assert_eq!(r.code(), Some(0), "publish failed: {r:?}");
        let id = r.stdout.trim().to_owned();
        assert!(
            !id.is_empty() && !id.contains('\n'),
            "publish prints one id: {r:?}"
        );
        id
    }

    fn sqs_queue(&self) -> SqsQueue {
        let url = self
            .rt
            .block_on(iniesta_aws::resolve_queue_url(
                &self.clients.sqs,
                &self.queue,
            ))
            .expect("the queue exists");
        SqsQueue::new(self.clients.sqs.clone(), url)
    }
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
    let Some(env) = Env::start("drain") else {
        return;
    };

    // Topic and queue exist, but the queue is not subscribed.
    env.rt.block_on(async {
        env.clients
            .sns
            .create_topic()
            .name(&env.topic)
            .send()
            .await
            .expect("create topic");
        env.clients
            .sqs
            .create_queue()
            .queue_name(&env.queue)
            .send()
            .await
            .expect("create queue");
    });
    let r = run(env.iniesta(&["verify"]));
    assert_eq!(r.code(), Some(3), "verify without a subscription: {r:?}");
    assert!(r.stdout.contains("FAILED"), "the report is printed: {r:?}");
    assert!(
        r.stdout
            .contains("FAIL 3. queue is subscribed to the topic"),
        "the report names the missing subscription: {r:?}"
    );
    assert!(r.stderr.starts_with("error: verification failed"), "{r:?}");

    env.provision();
    // Provisioning again changes nothing and still succeeds.
    env.provision();
    let r = run(env.iniesta(&["verify"]));
    assert_eq!(r.code(), Some(0), "verify after provision: {r:?}");
    assert!(r.stdout.contains("iniesta verification: ok"), "{r:?}");

    // One event through the binary, the rest through the SDK in batches.
    let mut published = BTreeSet::from([env.publish(r#"{"n":0}"#)]);
    let topic = SnsTopic::new(env.clients.sns.clone(), env.topic_arn());
    let messages: Vec<_> = (1..200)
        .map(|n| event_message("iniesta_pass", EVENT, format!(r#"{{"n":{n}}}"#), 1).unwrap())
        .collect();
    for result in env.rt.block_on(topic.publish_batch(messages)) {
        assert!(
            published.insert(result.expect("publish")),
            "SNS ids are unique"
        );
    }
    assert_eq!(published.len(), 200);

    let started = Instant::now();
    let mut a = env.consume("consumer-a", &[]);
    // B also fails every 7th call: those messages come back after the
    // visibility timeout and are handled then, still once each.
    let mut b = env.consume("consumer-b", &["--max-in-flight", "5", "--fail-every", "7"]);
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
    let Some(env) = Env::start("killed") else {
        return;
    };
    env.provision();
    let key = env.publish(r#"{"n":"killed"}"#);

    // A takes the message and sleeps in its handler, holding the lock.
    let mut a = env.consume("consumer-a", &["--sleep-ms", "600000"]);
    a.wait_stderr("handler started");
    let mut b = env.consume("consumer-b", &[]);
    b.wait_stderr("consuming");
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
    let Some(env) = Env::start("graceful") else {
        return;
    };
    env.provision();
    let queue = env.sqs_queue();

    let mut c = env.consume("consumer-c", &["--sleep-ms", "1000"]);
    c.wait_stderr("consuming");

    // A message without the event attribute (not even an SNS envelope).
    let malformed_id = env.rt.block_on(async {
        env.clients
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
    let first = env.publish(r#"{"n":"first"}"#);
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
    let summary = c
        .stderr
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("stopped; received"))
        .cloned()
        .unwrap();
    assert!(summary.contains("succeeded 1,"), "{summary}");
    assert!(!summary.contains("malformed 0,"), "{summary}");

    // Nothing is lost across the stop: an event published now is handled by
    // the next consumer, and the first one is not handled again.
    let second = env.publish(r#"{"n":"second"}"#);
    let mut d = env.consume("consumer-d", &[]);
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
        let got = env.rt.block_on(queue.receive(request)).expect("receive");
        found = got.iter().any(|m| m.message_id == malformed_id);
        found
    });
    assert!(found);

    // Redis unreachable: a runtime error that says what to fix, exit 1.
    let nowhere = format!("redis://127.0.0.1:{}/", iniesta_tests::servers::free_port());
    let r = run(env.iniesta(&["consume", "--caches", &nowhere]));
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(
        r.stderr.contains("error: cannot lock on a majority")
            && r.stderr.contains("INIESTA_CACHES"),
        "{r:?}"
    );
    assert!(r.stdout.is_empty(), "{r:?}");
}
