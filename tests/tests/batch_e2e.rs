//! A batch handler end to end: the `Iniesta` builder on a `moto_server`
//! (SNS topic, SQS queue in envelope delivery) and a Redlock over three
//! `redis-server`s, all started by this test.
//!
//! The handler fails every third item of its batches on its first
//! delivery, with a plain error (retried after the failure backoff) or a
//! `retry_after`; each failed item comes back on its own and is handled
//! again, every event succeeds exactly once, and the items that succeeded
//! the first time are never handled twice.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iniesta_aws::SnsTopic;
use iniesta_core::handler::{Batch, BatchOptions, BatchOutcome, HandlerError};
use iniesta_core::settings::{vars, Settings};
use iniesta_tests::servers::redis::RedisCluster;
use iniesta_tokio::Iniesta;

const EVENT: &str = "Order.placed";
const EVENTS: u64 = 12;

#[derive(Debug, serde::Deserialize)]
struct Order {
    n: u64,
}

/// Per idempotency key: how often it was in a batch, and how often it
/// succeeded there.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    attempts: u32,
    succeeded: u32,
}

#[derive(Default)]
struct Record {
    by_key: HashMap<String, (u64, Seen)>,
    batch_sizes: Vec<usize>,
}

/// Orders whose first delivery fails: every third one. The `retry_after`
/// and the plain error take turns.
fn fails_first(n: u64) -> bool {
    n % 3 == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_fails_some_items_and_each_is_retried_and_handled_once() {
    let Some(redis) = RedisCluster::start(3) else {
        return;
    };
    let Some(moto) = common::aws::start() else {
        return;
    };
    let queue = "iniesta-test-batch";
    let made = common::aws::setup(&moto, "global", queue, &["Order.*"], false).await;
    let env: HashMap<&str, String> = HashMap::from([
        (vars::INITIALIZATION_TYPE, "EVENT_POLLING".to_owned()),
        (vars::GLOBAL_TOPIC_ARN, made.topic_arn.clone()),
        (vars::CONSUMER_FILTERS, "Order.*".to_owned()),
        (vars::QUEUE_NAME, queue.to_owned()),
        (vars::RECEIVE_WAIT_TIME, "1".to_owned()),
        (vars::SHUTDOWN_GRACE, "5".to_owned()),
        (vars::CACHES, redis.urls().join(",")),
        // A failed item is hidden for a second, then handled again.
        (vars::FAILURE_BACKOFF_BASE, "1".to_owned()),
    ]);
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("valid settings");

    let record: Arc<Mutex<Record>> = Arc::default();
    let r = record.clone();
    let options = BatchOptions::new()
        .max_size(5)
        .max_wait(Duration::from_millis(300));
    let consumer = Iniesta::new()
        .settings(settings)
        .sqs_client(moto.clients.sqs.clone())
        .sns_client(moto.clients.sns.clone())
        .metrics(false)
        .on_batch_with(EVENT, options, move |batch: Batch<Order>| {
            let record = r.clone();
            async move {
                let mut outcome = BatchOutcome::all_ok();
                let mut record = record.lock().unwrap();
                record.batch_sizes.push(batch.len());
                for item in &batch {
                    let n = item.payload.n;
                    let fail = fails_first(n) && item.receive_count() == 1;
                    if fail && n % 2 == 0 {
                        outcome.fail(item, "the warehouse did not answer");
                    } else if fail {
                        let e = HandlerError::retry_after(Duration::from_secs(1), "rate limited");
                        outcome.fail(item.key(), e);
                    }
                    let seen = &mut record.by_key.entry(item.key().to_owned()).or_default();
                    seen.0 = n;
                    seen.1.attempts += 1;
                    seen.1.succeeded += u32::from(!fail);
                }
                outcome
            }
        })
        .start()
        .await
        .expect("the consumer starts on moto and redis");

    let topic = SnsTopic::new(moto.clients.sns.clone(), &made.topic_arn);
    for n in 0..EVENTS {
        topic
            .publish_event(EVENT, format!(r#"{{"n":{n}}}"#), 1)
            .await
            .expect("publish");
    }

    let mut stats = consumer.watch_stats();
    let waited =
        tokio::time::timeout(common::PATIENCE, stats.wait_for(|s| s.deleted >= EVENTS)).await;
    let begun = Instant::now();
    consumer.shutdown();
    let stats = tokio::time::timeout(common::PATIENCE, consumer)
        .await
        .expect("the consumer stops after shutdown")
        .expect("clean shutdown");
    let record = record.lock().unwrap();
    let by_n: BTreeMap<u64, Seen> = record.by_key.values().copied().collect();
    eprintln!(
        "{stats}; batches {:?}; shutdown took {:?}; by order {by_n:?}",
        record.batch_sizes,
        begun.elapsed()
    );
    assert!(
        waited.is_ok(),
        "not every event was deleted in time: {stats}"
    );

    assert_eq!(
        by_n.len(),
        EVENTS as usize,
        "every event reached the handler"
    );
    for (n, seen) in &by_n {
        let attempts = if fails_first(*n) { 2 } else { 1 };
        assert_eq!(
            *seen,
            Seen {
                attempts,
                succeeded: 1
            },
            "order {n}"
        );
    }
    let failed = (0..EVENTS).filter(|n| fails_first(*n)).count() as u64;
    assert_eq!(stats.succeeded, EVENTS, "{stats}");
    assert_eq!(stats.failed, failed, "{stats}");
    assert!(
        record.batch_sizes.iter().any(|&size| size > 1),
        "the deliveries were handled in batches: {:?}",
        record.batch_sizes
    );
    assert!(record.batch_sizes.iter().all(|&size| size <= 5));
}
