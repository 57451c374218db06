//! The `iniesta` binary on a FIFO topic and queue (a `moto_server` and three
//! `redis-server`s of the test's own): `provision` makes them, `verify`
//! accepts them and refuses a standard queue on the FIFO topic, `publish`
//! needs a group (`--group-id` or `INIESTA_SNS_FIFO_GROUP`) and carries it
//! with the deduplication id, and `consume` detects the FIFO queue at start
//! and handles the events with their groups.

use std::collections::BTreeMap;

use iniesta_tests::servers::moto::MotoServer;
use serde_json::Value;

mod common;
use common::world::{Service, World, SETTLE};
use common::*;

const SERVICE: &str = "orders";
const FILTERS: &str = "OrderPlaced.orders";

/// A world whose topic is FIFO: `events-{name}.fifo`.
fn fifo_world(name: &str) -> Option<World> {
    let mut world = World::start(name)?;
    world.topic = format!("events-{name}.fifo");
    Some(world)
}

/// `iniesta publish -e OrderPlaced -m BODY ARGS` with `env` on top.
fn publish(service: &Service, body: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["publish", "-e", "OrderPlaced", "-m", body];
    all.extend_from_slice(args);
    let mut cmd = service.iniesta(&all);
    for (name, value) in env {
        cmd.env(name, value);
    }
    run(cmd)
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {r:?}"))
}

#[test]
fn provision_verify_publish_and_consume_on_a_fifo_topic_and_queue() {
    let Some(world) = fifo_world("cli") else {
        return;
    };
    let service = world.service("iniesta-test-cli.fifo", SERVICE, FILTERS);
    let out = service.provision(&["--dead-letter-after", "3"]);
    assert!(out.contains("kind:          FIFO"), "{out}");
    assert!(out.contains("iniesta-test-cli-dlq.fifo"), "{out}");

    let r = run(service.iniesta(&["verify", "--format", "json"]));
    assert_eq!(r.code(), Some(0), "{r:?}");
    let doc = json_of(&r);
    assert_eq!(doc["reports"][0]["queue_kind"], "fifo", "{doc}");

    // No group anywhere: a settings error (exit 4) before any call, naming
    // both ways to give one; the dry run checks it too.
    for extra in [&[][..], &["--dry-run"][..]] {
        let r = publish(&service, r#"{"user": "u-1"}"#, extra, &[]);
        assert_eq!(r.code(), Some(4), "{r:?}");
        assert!(r.stderr.contains("INIESTA_SNS_FIFO_GROUP"), "{r:?}");
        assert!(r.stderr.contains("--group-id"), "{r:?}");
        assert!(r.stderr.contains("is a FIFO topic"), "{r:?}");
    }
    // A rule that finds nothing in this payload says so, with the rule.
    let r = publish(
        &service,
        r#"{"id": 1}"#,
        &[],
        &[("INIESTA_SNS_FIFO_GROUP", "json:/user")],
    );
    assert_eq!(r.code(), Some(4), "{r:?}");
    assert!(
        r.stderr.contains(r#"INIESTA_SNS_FIFO_GROUP="json:/user""#),
        "{r:?}"
    );
    assert!(r.stderr.contains("the payload has no field /user"), "{r:?}");
    // An id SNS would refuse fails before the call.
    let r = publish(&service, "{}", &["--group-id", "two words"], &[]);
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(r.stderr.contains("contains ' '"), "{r:?}");

    let r = publish(
        &service,
        r#"{"n": 1}"#,
        &["--group-id", "g-1", "--deduplication-id", "d-1"],
        &[],
    );
    assert_eq!(r.code(), Some(0), "{r:?}");
    let r = publish(
        &service,
        r#"{"n": 2, "user": "u-2"}"#,
        &[],
        &[("INIESTA_SNS_FIFO_GROUP", "json:/user")],
    );
    assert_eq!(r.code(), Some(0), "{r:?}");

    let mut consumer = service.consume("fifo", &[], &[]);
    assert!(
        consumer.stderr_has("FIFO queue detected"),
        "{}",
        consumer.stderr_text()
    );
    wait_within("both events handled", SETTLE, || {
        consumer.assert_running();
        consumer.handled().len() >= 2
    });
    consumer.terminate();
    let groups: BTreeMap<String, String> = consumer
        .handled()
        .iter()
        .map(|line| {
            (
                line["group_id"].as_str().unwrap_or("none").to_owned(),
                line["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        BTreeMap::from([
            ("g-1".to_owned(), r#"{"n": 1}"#.to_owned()),
            ("u-2".to_owned(), r#"{"n": 2, "user": "u-2"}"#.to_owned()),
        ])
    );
}

#[test]
fn consume_detects_a_standard_queue_and_verify_refuses_it_on_a_fifo_topic() {
    let Some(mut world) = World::start("kinds") else {
        return;
    };
    // A standard topic and queue: consume says which kind it found.
    {
        let standard = world.service("iniesta-test-kinds", SERVICE, FILTERS);
        standard.provision(&[]);
        let mut consumer = standard.consume("standard", &[], &[]);
        assert!(
            consumer.stderr_has("standard queue detected"),
            "{}",
            consumer.stderr_text()
        );
        assert!(!consumer.stderr_has("FIFO queue detected"));
        consumer.terminate();
    }

    // The same standard queue subscribed to a FIFO topic.
    world.topic = "events-kinds.fifo".to_owned();
    world
        .service("iniesta-test-kinds-fifo.fifo", SERVICE, FILTERS)
        .provision(&[]);
    let queue_arn = format!(
        "arn:aws:sqs:{}:{}:iniesta-test-kinds",
        MotoServer::REGION,
        MotoServer::ACCOUNT
    );
    world
        .rt
        .block_on(
            world
                .clients
                .sns
                .subscribe()
                .topic_arn(world.topic_arn())
                .protocol("sqs")
                .endpoint(&queue_arn)
                .send(),
        )
        .expect("moto subscribes a standard queue to a FIFO topic");
    let standard = world.service("iniesta-test-kinds", SERVICE, FILTERS);
    let r = run(standard.iniesta(&["verify", "--format", "json"]));
    assert_eq!(r.code(), Some(3), "{r:?}");
    let doc = json_of(&r);
    assert_eq!(doc["status"], "fail", "{doc}");
    let report = &doc["reports"][0];
    assert_eq!(report["queue_kind"], "standard", "{doc}");
    let subscribed = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "subscribed")
        .expect("the subscription check");
    assert_eq!(subscribed["status"], "fail", "{doc}");
    let message = subscribed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is a FIFO topic but queue") && message.contains("is a standard queue"),
        "{doc}"
    );
    assert!(
        subscribed["fix"]
            .as_str()
            .is_some_and(|f| f.contains("FIFO queue")),
        "{doc}"
    );

    // And in text, for people.
    let r = run(standard.iniesta(&["verify"]));
    assert_eq!(r.code(), Some(3), "{r:?}");
    assert!(
        r.stdout
            .contains("FAIL 3. queue is subscribed to the topic: topic arn:aws:sns:"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("the order of each message group would be lost"),
        "{r:?}"
    );
}
