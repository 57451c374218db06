//! `iniesta verify`, `provision` and `consume` with
//! `INIESTA_LOCK_BACKEND=dynamodb`, against a `moto_server` of the test's
//! own and no Redis at all.

mod common;

use std::process::Command;

use common::*;
use iniesta_tests::servers::moto::MotoServer;

const TABLE: &str = "iniesta-test-cli-locks";

/// `iniesta ARGS` for the service `billing` on `moto`, locking in DynamoDB.
fn iniesta_on(moto: &MotoServer, args: &[&str]) -> Command {
    let mut cmd = iniesta();
    cmd.args(args)
        .args(["--endpoint-url", &moto.endpoint()])
        .envs(MotoServer::CHILD_ENV)
        .env(
            "INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN",
            MotoServer::topic_arn("events-cli-dynamodb"),
        )
        .env("INIESTA_SQS_CONSUMER_FILTERS", "InvoicePaid.billing")
        .env("INIESTA_SQS_QUEUE_NAME", "iniesta-test-cli-dynamodb")
        .env("SERVICE_NAME", "billing")
        .env("INIESTA_LOCK_BACKEND", "dynamodb")
        .env("INIESTA_DYNAMODB_TABLE", TABLE)
        .env("INIESTA_DYNAMODB_ENDPOINT_URL", moto.endpoint())
        // Nothing listens there: the lock must not need Redis.
        .env("INIESTA_CACHES", "redis://127.0.0.1:1/0")
        .env("INIESTA_LOCK_TIMEOUT", "2")
        .env("INIESTA_SQS_RECEIVE_MESSAGE_WAIT_TIME_SECONDS", "1");
    cmd
}

#[test]
fn provision_creates_the_lock_table_verify_checks_it_and_consume_uses_it() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let r = run(iniesta_on(&moto, &["provision"]));
    assert_eq!(r.code(), Some(0), "provision: {r:?}");
    assert!(
        r.stdout.contains(&format!("lock table:    {TABLE}")),
        "{r:?}"
    );

    let r = run(iniesta_on(&moto, &["verify"]));
    assert_eq!(r.code(), Some(0), "verify: {r:?}");
    assert!(r.stdout.contains("PASS lock table exists"), "{r:?}");

    let mut published = Vec::new();
    for n in 0..3 {
        let body = format!(r#"{{"n":{n}}}"#);
        let r = run(iniesta_on(
            &moto,
            &["publish", "-e", "InvoicePaid", "-m", &body],
        ));
        assert_eq!(r.code(), Some(0), "publish: {r:?}");
        published.push(r.stdout.trim().to_owned());
    }
    let mut consumer = Consumer::start("dynamodb", iniesta_on(&moto, &["consume"]));
    consumer.wait_stderr("consuming");
    wait_for("the 3 events are handled", || consumer.handled().len() >= 3);
    consumer.terminate();
    let handled = consumer.handled();
    assert_eq!(handled.len(), 3, "each event once: {handled:?}");
}

#[test]
fn verify_fails_when_the_lock_table_is_missing() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let r = run(iniesta_on(&moto, &["provision"]));
    assert_eq!(r.code(), Some(0), "provision: {r:?}");
    let mut cmd = iniesta_on(&moto, &["verify"]);
    cmd.env("INIESTA_DYNAMODB_TABLE", "no-such-table");
    let r = run(cmd);
    assert_eq!(r.code(), Some(3), "verify: {r:?}");
    assert!(r.stdout.contains("FAIL lock table exists"), "{r:?}");
}
