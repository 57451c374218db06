//! FIFO queues under batch handlers, through the driver on the in-memory
//! FIFO queue: every group keeps its order and every message is handled;
//! and a batch route's wait for company never outlives a handler timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iniesta_core::handler::{BatchHandler, ItemFailure};
use iniesta_core::machine::{Consumer, ConsumerConfig, Event};
use iniesta_core::{
    AttributeValue, Backoff, Delivery, DeliveryMode, Driver, HandlerRegistry, OutgoingMessage,
    ParseConfig, Runtime,
};
use iniesta_mock::{Clock, MockLock, MockQueue, QueueOptions};

mod common;
use common::runtime::Tokio;

const EVENT: &str = "Order.svc";

fn fifo_queue(groups: u32, per_group: u32) -> (MockQueue, MockLock) {
    let clock = Clock::real();
    let queue = MockQueue::with_options(
        "q.fifo",
        &clock,
        QueueOptions::default()
            .with_fifo(true)
            .with_visibility_timeout(Duration::from_secs(2)),
    );
    for n in 0..per_group {
        for g in 0..groups {
            let attrs = BTreeMap::from([(
                "iniesta_pass".to_owned(),
                AttributeValue::String(EVENT.into()),
            )]);
            queue
                .send_message(
                    OutgoingMessage::new(format!(r#"{{"g": {g}, "n": {n}}}"#), attrs)
                        .with_group_id(format!("g{g}"))
                        .with_deduplication_id(format!("d{g}-{n}")),
                )
                .unwrap();
        }
    }
    (queue, MockLock::new(&clock))
}

fn config() -> ConsumerConfig {
    let mut c = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Raw,
            event_key: "iniesta_pass".into(),
            topic_arn: None,
        },
        "q.fifo",
    );
    c.fifo = true;
    c.max_in_flight = 4;
    c.wait_time = Duration::from_millis(100);
    c.empty_receive_pause = Duration::from_millis(10);
    c.failure_backoff = Some(Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
    });
    c.shutdown_grace = Duration::from_secs(5);
    c.lock_timeout = Duration::from_secs(2);
    c.heartbeat_interval = Duration::from_millis(500);
    c.visibility_extension = Some(Duration::from_secs(2));
    c
}

type Log = Arc<Mutex<Vec<(u32, u32, bool)>>>;

/// Fails (first receipt only) every item with n % 3 == 1.
struct Flaky {
    pub log: Log,
    pub hang_on: Option<u32>,
}

#[async_trait::async_trait]
impl BatchHandler for Flaky {
    async fn handle_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), ItemFailure>> {
        let mut out = Vec::new();
        let mut hang = false;
        for d in &deliveries {
            let v: serde_json::Value = serde_json::from_str(&d.message.body).unwrap();
            let g = v["g"].as_u64().unwrap() as u32;
            let n = v["n"].as_u64().unwrap() as u32;
            let fail = n % 3 == 1 && d.message.receive_count == 1;
            if self.hang_on == Some(n) && d.message.receive_count == 1 {
                hang = true;
            }
            self.log.lock().unwrap().push((g, n, !fail));
            out.push(if fail {
                Err(ItemFailure::retried("flaky"))
            } else {
                Ok(())
            });
        }
        if hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        out
    }
}

async fn run_until(
    queue: &MockQueue,
    lock: &MockLock,
    config: ConsumerConfig,
    handlers: HandlerRegistry,
    total: usize,
) -> (iniesta_core::Stats, bool) {
    let runtime = Tokio {
        origin: Instant::now(),
    };
    let consumer = Consumer::new(config, &handlers, runtime.now()).unwrap();
    let driver = Driver::new(
        consumer,
        handlers,
        Arc::new(queue.clone()),
        Arc::new(lock.clone()),
        runtime,
    );
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let mut tx = Some(tx);
    let deleted = Arc::new(Mutex::new(0usize));
    let d2 = deleted.clone();
    let observer = move |e: &Event| {
        if matches!(e, Event::Deleted { .. }) {
            let mut d = d2.lock().unwrap();
            *d += 1;
            if *d >= total {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    };
    let shutdown = async move {
        let _ = tokio::time::timeout(Duration::from_secs(15), rx).await;
    };
    let stats = tokio::time::timeout(Duration::from_secs(30), driver.run(shutdown, observer))
        .await
        .expect("the driver did not stop");
    let all = *deleted.lock().unwrap() >= total;
    (stats, all)
}

fn check_order(log: &Log, groups: u32, per_group: u32) {
    let log = log.lock().unwrap();
    for g in 0..groups {
        let ok: Vec<u32> = log
            .iter()
            .filter(|(lg, _, ok)| *lg == g && *ok)
            .map(|(_, n, _)| *n)
            .collect();
        assert_eq!(
            ok,
            (0..per_group).collect::<Vec<_>>(),
            "group {g}: {:?}",
            *log
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_on_a_fifo_queue_keeps_each_groups_order() {
    use iniesta_core::handler::BatchOptions;
    let (groups, per) = (3, 6);
    let (queue, lock) = fifo_queue(groups, per);
    let log = Log::default();
    let mut handlers = iniesta_core::HandlerRegistry::new();
    handlers
        .add_batch(
            EVENT,
            BatchOptions {
                max_size: 3,
                max_wait: Duration::from_millis(30),
            },
            Flaky {
                log: log.clone(),
                hang_on: None,
            },
        )
        .unwrap();
    let (stats, all) = run_until(&queue, &lock, config(), handlers, (groups * per) as usize).await;
    assert!(
        all,
        "not every message was deleted: {stats:?} {:?}",
        log.lock().unwrap()
    );
    check_order(&log, groups, per);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_on_a_fifo_queue_with_timeouts_keeps_order_and_finishes() {
    use iniesta_core::handler::BatchOptions;
    let (groups, per) = (3, 5);
    let (queue, lock) = fifo_queue(groups, per);
    let log = Log::default();
    let mut handlers = iniesta_core::HandlerRegistry::new();
    handlers
        .add_batch(
            EVENT,
            BatchOptions {
                max_size: 3,
                max_wait: Duration::from_millis(30),
            },
            Flaky {
                log: log.clone(),
                hang_on: Some(2),
            },
        )
        .unwrap();
    let mut cfg = config();
    cfg.handler_timeout = Some(Duration::from_millis(300));
    let (stats, all) = run_until(&queue, &lock, cfg, handlers, (groups * per) as usize).await;
    assert!(
        all,
        "not every message was deleted: {stats:?} {:?}",
        log.lock().unwrap()
    );
}

/// A lone delivery of a batch route waits `max_wait` for company; with a
/// handler timeout not above it, the timeout aborts it while it is still
/// gathered, every time it comes back: it is never handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_delivery_is_handled_when_the_wait_exceeds_its_handler_timeout() {
    use iniesta_core::handler::BatchOptions;
    let (queue, lock) = fifo_queue(1, 1);
    let log = Log::default();
    let mut handlers = iniesta_core::HandlerRegistry::new();
    handlers
        .add_batch(
            EVENT,
            BatchOptions {
                max_size: 10,
                max_wait: Duration::from_millis(300),
            },
            Flaky {
                log: log.clone(),
                hang_on: None,
            },
        )
        .unwrap();
    let mut cfg = config();
    cfg.handler_timeout = Some(Duration::from_millis(200));
    let runtime = Tokio {
        origin: std::time::Instant::now(),
    };
    let consumer = Consumer::new(cfg, &handlers, iniesta_core::Runtime::now(&runtime)).unwrap();
    let driver = iniesta_core::Driver::new(
        consumer,
        handlers,
        std::sync::Arc::new(queue.clone()),
        std::sync::Arc::new(lock.clone()),
        runtime,
    );
    let stats = driver
        .run(tokio::time::sleep(Duration::from_secs(2)), ())
        .await;
    // Before the wait was cut to the timeout: aborted while gathered every
    // time it came back, handled only by the shutdown's launch.
    assert_eq!(
        stats.aborted,
        0,
        "log {:?}, stats {stats:?}",
        log.lock().unwrap()
    );
    assert!(
        stats.succeeded >= 1,
        "log {:?}, stats {stats:?}",
        log.lock().unwrap()
    );
}
