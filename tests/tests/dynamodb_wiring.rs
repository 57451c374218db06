//! The `Iniesta` builder with `INIESTA_LOCK_BACKEND=dynamodb`: locks and
//! completion records in a DynamoDB table, events from SQS, all on a
//! `moto_server` of the test's own.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iniesta_aws::SnsTopic;
use iniesta_core::settings::{vars, LockBackend, Settings};
use iniesta_dynamodb::create_table;
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tokio::Iniesta;

const EVENT: &str = "Happened.svc";
const TABLE: &str = "iniesta-test-locks";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_locks_in_dynamodb_and_handles_each_event_once() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    // The builder's clients read the standard AWS environment; this test
    // executable has no other test to share it with.
    for (name, value) in MotoServer::CHILD_ENV {
        std::env::set_var(name, value);
    }
    let endpoint = moto.server.endpoint();
    let made = common::aws::setup(
        &moto,
        "global",
        "iniesta-test-dynamodb",
        &["Happened.*"],
        false,
    )
    .await;
    let dynamodb = common::dynamodb::client(&endpoint);
    create_table(&dynamodb, TABLE)
        .await
        .expect("create the table");

    let topic = SnsTopic::new(moto.clients.sns.clone(), &made.topic_arn);
    for i in 0..5 {
        topic
            .publish_event(EVENT, &format!(r#"{{"n":{i}}}"#), 1)
            .await
            .expect("publish");
    }

    let env = HashMap::from([
        (vars::INITIALIZATION_TYPE, "EVENT_POLLING".to_owned()),
        (vars::GLOBAL_TOPIC_ARN, made.topic_arn.clone()),
        (vars::CONSUMER_FILTERS, "Happened.*".to_owned()),
        (vars::QUEUE_NAME, "iniesta-test-dynamodb".to_owned()),
        (vars::SQS_ENDPOINT_URL, endpoint.clone()),
        (vars::SNS_ENDPOINT_URL, endpoint.clone()),
        (vars::LOCK_BACKEND, "dynamodb".to_owned()),
        (vars::DYNAMODB_TABLE, TABLE.to_owned()),
        (vars::DYNAMODB_ENDPOINT_URL, endpoint.clone()),
        (vars::RECEIVE_WAIT_TIME, "1".to_owned()),
        (vars::SHUTDOWN_GRACE, "5".to_owned()),
    ]);
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("settings");
    assert_eq!(settings.lock_backend, LockBackend::DynamoDb);

    let handled: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counts = handled.clone();
    let consumer = Iniesta::new()
        .settings(settings)
        .metrics(false)
        .tracing(false)
        .on(EVENT, move |d: iniesta_core::Delivery| {
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
        .start()
        .await
        .expect("the consumer starts");

    let deadline = Instant::now() + common::PATIENCE;
    while handled.lock().unwrap().len() < 5 {
        assert!(
            Instant::now() < deadline,
            "not all events were handled: {:?}",
            handled.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = consumer.shutdown_and_wait().await.expect("clean shutdown");
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 5, "{handled:?}");
    assert!(
        handled.values().all(|&n| n == 1),
        "an event was handled twice: {handled:?}"
    );
    assert_eq!(stats.succeeded, 5, "{stats}");

    // The completion records are in the table.
    let items = dynamodb
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .expect("scan the table");
    assert_eq!(items.count(), 5, "{:?}", items.items());
}
