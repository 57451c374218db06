//! The `Iniesta` builder embedded in a service that brings its own AWS
//! configuration or clients, on a `moto_server` of the test's own.
//!
//! Nothing here sets the process environment, and the settings name no
//! endpoint: only the given configuration or clients know where moto is.
//! A builder that fell back to the standard AWS environment would talk to
//! AWS itself and fail.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use futures::channel::oneshot;
use iniesta_aws::{Check, SnsTopic};
use iniesta_core::settings::{vars, Settings};
use iniesta_core::Delivery;
use iniesta_dynamodb::create_table;
use iniesta_mock::{Clock, MockLock};
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tokio::{Error, Iniesta};

const EVENT: &str = "Happened.svc";

/// Keys handled, with how often.
type Handled = Arc<Mutex<HashMap<String, u32>>>;

/// A service's own AWS configuration, pointed at `endpoint` with moto's
/// dummy credentials.
async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(MotoServer::REGION))
        .credentials_provider(Credentials::new(
            MotoServer::ACCESS_KEY_ID,
            MotoServer::SECRET_ACCESS_KEY,
            None,
            None,
            "service",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Event-polling settings for `queue` on `topic_arn`, with no endpoint
/// URL, plus `extra`.
fn settings(topic_arn: &str, queue: &str, extra: &[(&'static str, &str)]) -> Settings {
    let mut env: HashMap<&str, String> = HashMap::from([
        (vars::INITIALIZATION_TYPE, "EVENT_POLLING".to_owned()),
        (vars::GLOBAL_TOPIC_ARN, topic_arn.to_owned()),
        (vars::CONSUMER_FILTERS, "Happened.*".to_owned()),
        (vars::QUEUE_NAME, queue.to_owned()),
        (vars::RECEIVE_WAIT_TIME, "1".to_owned()),
        (vars::SHUTDOWN_GRACE, "5".to_owned()),
    ]);
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Settings::from_lookup(|name| env.get(name).cloned()).expect("valid settings")
}

/// A builder on `settings` whose handler counts keys into `handled`.
fn counting(settings: Settings, handled: &Handled) -> Iniesta {
    let counts = handled.clone();
    Iniesta::new()
        .settings(settings)
        .metrics(false)
        .tracing(false)
        .on(EVENT, move |d: Delivery| {
            let counts = counts.clone();
            async move {
                *counts
                    .lock()
                    .unwrap()
                    .entry(d.message.key().to_owned())
                    .or_default() += 1;
                Ok::<_, String>(())
            }
        })
}

async fn wait_handled(handled: &Handled, want: usize) {
    let deadline = Instant::now() + common::PATIENCE;
    while handled.lock().unwrap().len() < want {
        assert!(
            Instant::now() < deadline,
            "not all events were handled: {:?}",
            handled.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_config_serves_sqs_sns_and_the_dynamodb_lock() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let endpoint = moto.server.endpoint();
    let queue = "iniesta-test-embedding";
    let made = common::aws::setup(&moto, "global", queue, &["Happened.*"], false).await;
    let table = "iniesta-embedding-locks";
    let dynamodb = common::dynamodb::client(&endpoint);
    create_table(&dynamodb, table)
        .await
        .expect("create the table");
    let topic = SnsTopic::new(moto.clients.sns.clone(), &made.topic_arn);
    for i in 0..3 {
        topic
            .publish_event(EVENT, format!(r#"{{"n":{i}}}"#), 1)
            .await
            .expect("publish");
    }

    let settings = settings(
        &made.topic_arn,
        queue,
        &[
            (vars::LOCK_BACKEND, "dynamodb"),
            (vars::DYNAMODB_TABLE, table),
        ],
    );
    let handled = Handled::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let consumer = counting(settings, &handled)
        .aws_config(sdk_config(&endpoint).await)
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .start()
        .await
        .expect("the consumer starts on the given configuration");

    wait_handled(&handled, 3).await;
    stop.send(())
        .expect("the consumer still listens for its signal");
    let stats = tokio::time::timeout(common::PATIENCE, consumer)
        .await
        .expect("the consumer stops once the signal fires")
        .expect("clean shutdown");
    let handled = handled.lock().unwrap().clone();
    assert!(handled.values().all(|&n| n == 1), "{handled:?}");
    assert_eq!(stats.succeeded, 3, "{stats}");

    // The locks went to the table through a client of the same configuration.
    let items = common::dynamodb::items(&dynamodb, table).await;
    assert_eq!(items.len(), 3, "{items:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_runs_on_the_given_configuration() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let endpoint = moto.server.endpoint();
    let made = common::aws::setup(
        &moto,
        "global",
        "iniesta-test-present",
        &["Happened.*"],
        false,
    )
    .await;

    let handled = Handled::default();
    let err = counting(
        settings(&made.topic_arn, "iniesta-test-absent", &[]),
        &handled,
    )
    .aws_config(sdk_config(&endpoint).await)
    .lock(MockLock::new(&Clock::real()))
    .start()
    .await
    .expect_err("a missing queue stops the start");

    let Error::Verification(report) = err else {
        panic!("expected a failed verification, got: {err}");
    };
    // The topic was found: the checks reached moto through the configuration.
    let topic = report.result(Check::TopicExists).expect("the topic check");
    assert!(topic.is_passed(), "{report}");
    let queue = report
        .result(Check::QueueResolves)
        .expect("the queue check");
    assert!(queue.is_failed(), "{report}");
    assert!(
        report.to_string().contains("iniesta-test-absent"),
        "the report names the missing queue: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_clients_win_over_the_configuration() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let queue = "iniesta-test-clients";
    let made = common::aws::setup(&moto, "global", queue, &["Happened.*"], false).await;
    SnsTopic::new(moto.clients.sns.clone(), &made.topic_arn)
        .publish_event(EVENT, r#"{"n":1}"#, 1)
        .await
        .expect("publish");

    // Nothing listens on port 1: clients of this configuration would fail
    // the verification.
    let nowhere = sdk_config("http://127.0.0.1:1").await;
    let handled = Handled::default();
    let consumer = counting(settings(&made.topic_arn, queue, &[]), &handled)
        .aws_config(nowhere)
        .sqs_client(moto.clients.sqs.clone())
        .sns_client(moto.clients.sns.clone())
        .lock(MockLock::new(&Clock::real()))
        .start()
        .await
        .expect("the consumer starts on the given clients");

    wait_handled(&handled, 1).await;
    consumer.shutdown();
    let stats = tokio::time::timeout(common::PATIENCE, consumer)
        .await
        .expect("the consumer stops after shutdown")
        .expect("clean shutdown");
    assert_eq!(stats.succeeded, 1, "{stats}");
}
