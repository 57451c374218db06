//! `iniesta verify --format json` against a `moto_server` of the test's own:
//! stdout is one JSON document a CI pipeline can read, for a good, a risky
//! and a broken setup, and the exit codes are those of the text report.

mod common;

use std::process::Command;
use std::time::Duration;

use iniesta_aws::{provision, ProvisionRequest, Provisioned, TopicRef};
use iniesta_tests::servers::moto::MotoServer;
use serde_json::Value;

use common::aws::Moto;
use common::{iniesta, run, Run};

const QUEUE: &str = "iniesta-test-json";
const FILTERS: &[&str] = &["UserCreated.users", "Order.*"];

/// `iniesta verify ARGS` for the service `users` on `moto`'s topic `global`.
fn verify_on(moto: &Moto, args: &[&str]) -> Command {
    let mut cmd = iniesta();
    cmd.arg("verify")
        .args(args)
        .args(["--endpoint-url", &moto.server.endpoint()])
        .envs(MotoServer::CHILD_ENV)
        .env(
            "INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN",
            MotoServer::topic_arn("global"),
        )
        .env("INIESTA_SQS_CONSUMER_FILTERS", FILTERS.join(","))
        .env("INIESTA_SQS_QUEUE_NAME", QUEUE)
        .env("SERVICE_NAME", "users")
        .env("INIESTA_CACHES", "redis://127.0.0.1:1/0");
    cmd
}

/// Provisions topic `global` and [`QUEUE`] with a dead-letter queue and this
/// visibility timeout. (Through `provision` rather than a bare
/// `SetQueueAttributes`: moto, unlike SQS, drops the queue's policy on a
/// call that does not name it, and `provision` writes it back.)
async fn provision_queue(moto: &Moto, visibility_secs: u64) -> Provisioned {
    let mut request = ProvisionRequest::new(
        TopicRef::Name("global".into()),
        QUEUE,
        common::aws::policy(FILTERS),
    );
    request.dead_letter_after = Some(5);
    request.visibility_timeout = Some(Duration::from_secs(visibility_secs));
    provision(&moto.clients, &request)
        .await
        .expect("provisioning against moto works")
}

/// The JSON on stdout, failing the test when it is anything else.
fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {r:?}"))
}

/// The checks of the only report, by name.
fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let reports = doc["reports"].as_array().expect("reports is a list");
    assert_eq!(reports.len(), 1, "one scope: {doc}");
    reports[0]["checks"]
        .as_array()
        .expect("checks is a list")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {doc}"))
}

#[tokio::test]
async fn verify_prints_json_for_good_risky_and_broken_setups_with_the_usual_exit_codes() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = provision_queue(&moto, 30).await;

    // Good: every check passes, exit 0.
    let r = run(verify_on(&moto, &["--format", "json"]));
    assert_eq!(r.code(), Some(0), "{r:?}");
    let doc = json_of(&r);
    assert_eq!(doc["status"], "pass", "{doc}");
    assert_eq!(doc["failed"], 0, "{doc}");
    assert_eq!(doc["warnings"], 0, "{doc}");
    assert_eq!(doc["dry_run"], false, "{doc}");
    let report = &doc["reports"][0];
    assert_eq!(report["scope"], "EVENT_POLLING", "{doc}");
    assert_eq!(report["status"], "pass", "{doc}");
    assert_eq!(report["queue_url"], p.queue_url.as_str(), "{doc}");
    assert_eq!(report["queue_arn"], p.queue_arn.as_str(), "{doc}");
    assert_eq!(
        report["subscription_arn"],
        p.subscription_arn.as_str(),
        "{doc}"
    );
    assert_eq!(report["delivery_mode"], "envelope", "{doc}");
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 8, "{doc}");
    for c in checks {
        assert_eq!(c["status"], "pass", "{c}");
        assert!(c["message"].as_str().is_some_and(|m| !m.is_empty()), "{c}");
        assert!(c["fix"].is_null(), "{c}");
    }
    assert!(
        check(&doc, "topic_exists")["message"]
            .as_str()
            .is_some_and(|m| m.contains(&p.topic_arn)),
        "{doc}"
    );

    // Text stays the default, and `--format text` is the same.
    let text = run(verify_on(&moto, &[]));
    assert_eq!(text.code(), Some(0), "{text:?}");
    assert!(
        text.stdout.starts_with("iniesta verification: ok\n"),
        "{text:?}"
    );
    assert!(serde_json::from_str::<Value>(&text.stdout).is_err());
    let explicit = run(verify_on(&moto, &["--format", "text"]));
    assert_eq!(explicit.stdout, text.stdout);

    // Risky: a visibility timeout under the lock timeout (10 s) warns and
    // still exits 0.
    provision_queue(&moto, 5).await;
    let r = run(verify_on(&moto, &["--format", "json"]));
    assert_eq!(r.code(), Some(0), "{r:?}");
    let doc = json_of(&r);
    assert_eq!(doc["status"], "warn", "{doc}");
    assert_eq!(doc["warnings"], 1, "{doc}");
    let warned = check(&doc, "visibility_timeout");
    assert_eq!(warned["status"], "warn", "{doc}");
    assert!(
        warned["fix"]
            .as_str()
            .is_some_and(|f| f.contains("VisibilityTimeout")),
        "{doc}"
    );

    // Broken: no subscription. Exit 3, the failure with its fix, the checks
    // that need the subscription skipped; stdout is still only JSON and the
    // error goes to stderr.
    moto.clients
        .sns
        .unsubscribe()
        .subscription_arn(&p.subscription_arn)
        .send()
        .await
        .expect("unsubscribe");
    let r = run(verify_on(&moto, &["--format", "json"]));
    assert_eq!(r.code(), Some(3), "{r:?}");
    assert!(r.stderr.starts_with("error: verification failed"), "{r:?}");
    let doc = json_of(&r);
    assert_eq!(doc["status"], "fail", "{doc}");
    assert_eq!(doc["failed"], 1, "{doc}");
    assert_eq!(doc["warnings"], 1, "{doc}");
    assert_eq!(doc["reports"][0]["status"], "fail", "{doc}");
    assert!(doc["reports"][0]["subscription_arn"].is_null(), "{doc}");
    let subscribed = check(&doc, "subscribed");
    assert_eq!(subscribed["status"], "fail", "{doc}");
    assert_eq!(subscribed["title"], "3. queue is subscribed to the topic");
    assert!(
        subscribed["message"]
            .as_str()
            .is_some_and(|m| m.contains(&p.queue_arn)),
        "{doc}"
    );
    assert!(
        subscribed["fix"]
            .as_str()
            .is_some_and(|f| f.contains("subscribe the queue")),
        "{doc}"
    );
    for skipped in ["filter_policy", "delivery_mode"] {
        assert_eq!(check(&doc, skipped)["status"], "skip", "{doc}");
        assert!(check(&doc, skipped)["fix"].is_null(), "{doc}");
    }
}

#[tokio::test]
async fn the_lock_table_is_one_more_report_and_a_dry_run_is_skipped() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    provision_queue(&moto, 30).await;

    let mut cmd = verify_on(&moto, &["--format", "json"]);
    cmd.env("INIESTA_LOCK_BACKEND", "dynamodb")
        .env("INIESTA_DYNAMODB_TABLE", "no-such-table")
        .env("INIESTA_DYNAMODB_ENDPOINT_URL", moto.server.endpoint());
    let r = run(cmd);
    assert_eq!(r.code(), Some(3), "{r:?}");
    let doc = json_of(&r);
    assert_eq!(doc["status"], "fail", "{doc}");
    assert_eq!(doc["failed"], 1, "{doc}");
    let reports = doc["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 2, "{doc}");
    assert_eq!(reports[0]["status"], "pass", "{doc}");
    let lock = &reports[1];
    assert_eq!(lock["scope"], "LOCK_BACKEND", "{doc}");
    assert_eq!(lock["status"], "fail", "{doc}");
    let table = &lock["checks"][0];
    assert_eq!(table["name"], "lock_table", "{doc}");
    assert_eq!(table["status"], "fail", "{doc}");
    assert!(
        table["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-table")),
        "{doc}"
    );
    assert!(
        table["fix"]
            .as_str()
            .is_some_and(|f| f.contains("iniesta provision")),
        "{doc}"
    );

    // A dry run checks nothing on AWS: `skip`, exit 0.
    let r = run(verify_on(&moto, &["--format", "json", "--dry-run"]));
    assert_eq!(r.code(), Some(0), "{r:?}");
    let doc = json_of(&r);
    assert_eq!(doc["status"], "skip", "{doc}");
    assert_eq!(doc["dry_run"], true, "{doc}");
    assert_eq!(doc["reports"], serde_json::json!([]), "{doc}");

    // An unknown format is a usage error.
    let r = run(verify_on(&moto, &["--format", "yaml"]));
    assert_eq!(r.code(), Some(2), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
}
