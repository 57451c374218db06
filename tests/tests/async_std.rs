//! The consumer on async-std: the core's driver and the in-memory backends
//! need no tokio. A runtime binding is the three methods of
//! [`Runtime`]; this one is written here, in a few lines, on async-std.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::BoxFuture;
use iniesta_core::publish::event_message;
use iniesta_core::{
    Consumer, ConsumerConfig, Delivery, DeliveryMode, Driver, Event, HandlerRegistry, ParseConfig,
    Runtime, Time,
};
use iniesta_mock::{Clock, MockLock, MockQueue, MockTopic, QueueOptions, SubscribeOptions};

/// async-std as the driver's runtime: std's monotonic clock, async-std's
/// timers and tasks.
struct AsyncStdRuntime {
    origin: Instant,
}

impl Runtime for AsyncStdRuntime {
    fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<'static, ()> {
        // "Never" (Time::MAX) as a long but representable wait.
        let wait = deadline
            .saturating_duration_since(self.now())
            .min(Duration::from_secs(86_400));
        Box::pin(async_std::task::sleep(wait))
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(async_std::task::spawn(future));
    }
}

const EVENTS: usize = 20;

#[test]
fn consumes_every_event_once_on_async_std() {
    async_std::task::block_on(async {
        let clock = Clock::real();
        let topic = MockTopic::new("iniesta-global", &clock);
        // A short visibility timeout: a duplicate copy skipped while its twin
        // runs comes back quickly.
        let queue = MockQueue::with_options(
            "iniesta-test-async-std",
            &clock,
            QueueOptions::default().with_visibility_timeout(Duration::from_secs(1)),
        );
        topic.subscribe(&queue, SubscribeOptions::default());
        let lock = MockLock::new(&clock);

        let handled: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let h = handled.clone();
        let mut handlers = HandlerRegistry::new();
        handlers
            .on("Thing.svc", move |d: Delivery| {
                let handled = h.clone();
                async move {
                    // Yield to the executor, as real work would.
                    async_std::task::yield_now().await;
                    *handled
                        .lock()
                        .unwrap()
                        .entry(d.message.key().to_owned())
                        .or_default() += 1;
                    Ok::<_, String>(())
                }
            })
            .unwrap();

        let mut keys = Vec::new();
        for i in 0..EVENTS {
            if i == 3 {
                topic.duplicate_next(1); // SNS delivers this one twice
            }
            let m =
                event_message("iniesta_pass", "Thing.svc", format!("{{\"n\":{i}}}"), 1).unwrap();
            keys.push(topic.publish_now(m).unwrap());
        }
        let copies = topic.stats().delivered;
        assert_eq!(copies, EVENTS as u64 + 1);

        let runtime = AsyncStdRuntime {
            origin: Instant::now(),
        };
        let config = ConsumerConfig::new(
            ParseConfig {
                mode: DeliveryMode::Envelope,
                event_key: "iniesta_pass".into(),
                topic_arn: Some(topic.arn().to_owned()),
            },
            "queue",
        );
        let consumer = Consumer::new(config, &handlers, runtime.now()).unwrap();

        // Shut down once every copy has left the queue.
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let mut stop_tx = Some(stop_tx);
        let mut deleted = 0u64;
        let observer = move |e: &Event| {
            if let Event::Deleted { .. } = e {
                deleted += 1;
                if deleted == copies {
                    if let Some(tx) = stop_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        };
        let shutdown = async move {
            let _ = stop_rx.await;
        };

        let driver = Driver::new(
            consumer,
            handlers,
            Arc::new(queue.clone()),
            Arc::new(lock.clone()),
            runtime,
        );
        let run = driver.run(shutdown, observer);
        // A bound that only keeps a broken driver from hanging the test run.
        let stats = async_std::future::timeout(Duration::from_secs(60), run)
            .await
            .expect("the consumer did not finish");

        let handled = handled.lock().unwrap().clone();
        assert_eq!(handled.len(), EVENTS, "every event handled: {handled:?}");
        for key in &keys {
            assert_eq!(handled.get(key), Some(&1), "event {key} handled once");
        }
        assert_eq!(stats.succeeded, EVENTS as u64);
        assert_eq!(stats.acked_duplicates, 1);
        assert_eq!(stats.deleted, copies);
        assert!(queue.is_empty(), "nothing left in the queue");
        assert_eq!(lock.locked_len(), 0, "no lock left behind");
    });
}
