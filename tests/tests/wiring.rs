//! The consumer wired to the real lock backend: Redlock on three
//! `redis-server` processes, first on the in-memory queue, then on SQS
//! (`moto_server`). The servers are started by the tests on free loopback
//! ports; without the binaries the tests skip outside CI and fail in CI.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use iniesta_aws::{provision, AwsClients, ProvisionRequest, SnsTopic, SqsQueue, TopicRef};
use iniesta_core::machine::{Consumer, ConsumerConfig, Event};
use iniesta_core::{
    AttributeValue, DeliveryMode, Driver, FilterPolicy, HandlerRegistry, LockBackend,
    OutgoingMessage, ParseConfig, Queue, Runtime, Stats,
};
use iniesta_mock::{Clock, MockQueue, MockTopic, QueueOptions, SubscribeOptions};
use iniesta_redlock::{Redlock, RedlockConfig};
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tests::servers::redis::RedisCluster;
use iniesta_tokio::TokioRuntime;

const EVENT: &str = "Happened.svc";

/// Keys handled successfully, with how often.
type Handled = Arc<Mutex<HashMap<String, u32>>>;

fn registry(handled: Handled) -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.on(EVENT, move |d: iniesta_core::Delivery| {
        let handled = handled.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            *handled
                .lock()
                .unwrap()
                .entry(d.message.key().to_owned())
                .or_default() += 1;
            Ok::<_, String>(())
        }
    })
    .unwrap();
    r
}

fn config(mode: DeliveryMode, topic_arn: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(
        ParseConfig {
            mode,
            event_key: "iniesta_pass".into(),
            topic_arn: Some(topic_arn.into()),
        },
        "q",
    );
    c.max_in_flight = 20;
    c.concurrent_receives = 2;
    c.wait_time = Duration::from_secs(1);
    c.lock_timeout = Duration::from_secs(5);
    c.heartbeat_interval = Duration::from_secs(3);
    c.visibility_extension = Some(Duration::from_secs(5));
    c.shutdown_grace = Duration::from_secs(5);
    c
}

fn redlock(cluster: &RedisCluster) -> Arc<Redlock> {
    Arc::new(Redlock::new(RedlockConfig::with_urls(cluster.urls())).expect("valid redlock config"))
}

/// Runs a consumer until `stop` fires; returns its stats and counts events
/// into `seen`.
async fn consume<Q: Queue + ?Sized, L: LockBackend + ?Sized>(
    config: ConsumerConfig,
    handled: Handled,
    queue: Arc<Q>,
    lock: Arc<L>,
    stop: oneshot::Receiver<()>,
    seen: Arc<Mutex<Vec<String>>>,
) -> Stats {
    let runtime = TokioRuntime::new();
    let handlers = registry(handled);
    let consumer = Consumer::new(config, &handlers, runtime.now()).expect("valid consumer config");
    let observer = move |e: &Event| {
        let name = format!("{e:?}");
        let name = name
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_owned();
        seen.lock().unwrap().push(name);
    };
    let stop = async {
        let _ = stop.await;
    };
    Driver::new(consumer, handlers, queue, lock, runtime)
        .run(stop, observer)
        .await
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An in-memory topic and a queue subscribed to it (no filter), on a real
/// clock.
fn mock_world(visibility_timeout: Duration, raw_delivery: bool) -> (Arc<MockQueue>, MockTopic) {
    let clock = Clock::real();
    let queue = Arc::new(MockQueue::with_options(
        "q",
        &clock,
        QueueOptions::default().with_visibility_timeout(visibility_timeout),
    ));
    let topic = MockTopic::new("global", &clock);
    topic.subscribe(
        &queue,
        SubscribeOptions::default().with_raw_delivery(raw_delivery),
    );
    (queue, topic)
}

fn publish_mock(topic: &MockTopic, n: usize) {
    for i in 0..n {
        topic
            .publish_now(OutgoingMessage {
                body: format!(r#"{{"n":{i}}}"#),
                attributes: BTreeMap::from([(
                    "iniesta_pass".to_string(),
                    AttributeValue::String(EVENT.into()),
                )]),
                ..Default::default()
            })
            .expect("publish");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_with_redlock_on_the_mock_queue_handle_each_event_once() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let (queue, topic) = mock_world(Duration::from_secs(2), false);
    // Every event arrives twice (SNS's at-least-once delivery).
    topic.duplicate_next(40);
    publish_mock(&topic, 40);
    assert_eq!(queue.len(), 80);

    let handled: Handled = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (stop_a, rx_a) = oneshot::channel();
    let (stop_b, rx_b) = oneshot::channel();
    let a = tokio::spawn(consume(
        config(DeliveryMode::Envelope, topic.arn()),
        handled.clone(),
        queue.clone(),
        redlock(&cluster),
        rx_a,
        seen.clone(),
    ));
    let b = tokio::spawn(consume(
        config(DeliveryMode::Envelope, topic.arn()),
        handled.clone(),
        queue.clone(),
        redlock(&cluster),
        rx_b,
        seen.clone(),
    ));
    wait_until(
        "every event is handled and the queue is empty",
        Duration::from_secs(60),
        || handled.lock().unwrap().len() == 40 && queue.is_empty(),
    )
    .await;
    let _ = (stop_a.send(()), stop_b.send(()));
    let (sa, sb) = (a.await.unwrap(), b.await.unwrap());

    let handled = handled.lock().unwrap();
    assert!(
        handled.values().all(|&n| n == 1),
        "an event was handled twice: {handled:?}"
    );
    assert_eq!(sa.succeeded + sb.succeeded, 40);
    assert!(
        sa.acked_duplicates + sb.acked_duplicates >= 40,
        "every second copy is acked as a duplicate of finished work: {sa} / {sb}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_redis_majority_down_nothing_is_dispatched_or_deleted_until_it_returns() {
    let Some(mut cluster) = RedisCluster::start(3) else {
        return;
    };
    let (queue, topic) = mock_world(Duration::from_secs(1), true);
    let lock = redlock(&cluster);
    cluster.servers_mut()[0].stop();
    cluster.servers_mut()[1].stop();
    publish_mock(&topic, 3);

    let handled: Handled = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (stop, rx) = oneshot::channel();
    let consumer = tokio::spawn(consume(
        config(DeliveryMode::Raw, topic.arn()),
        handled.clone(),
        queue.clone(),
        lock,
        rx,
        seen.clone(),
    ));
    let unavailable = |seen: &Arc<Mutex<Vec<String>>>| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|e| *e == "LockUnavailable")
            .count()
    };
    wait_until(
        "the lock is reported unavailable several times",
        Duration::from_secs(30),
        || unavailable(&seen) >= 6,
    )
    .await;
    assert!(
        handled.lock().unwrap().is_empty(),
        "nothing may be dispatched without a lock majority"
    );
    assert_eq!(
        queue.len(),
        3,
        "nothing may be deleted without a lock majority"
    );

    // The nodes come back on the same ports: the same consumer recovers.
    cluster.servers_mut()[0].restart();
    cluster.servers_mut()[1].restart();
    wait_until(
        "every event is handled after the nodes return",
        Duration::from_secs(60),
        || handled.lock().unwrap().len() == 3 && queue.is_empty(),
    )
    .await;
    let _ = stop.send(());
    let stats = consumer.await.unwrap();
    assert_eq!(stats.succeeded, 3);
    assert!(handled.lock().unwrap().values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_with_redlock_on_sqs_handles_each_published_event_once() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let clients = AwsClients::with_static_credentials(
        MotoServer::ACCESS_KEY_ID,
        MotoServer::SECRET_ACCESS_KEY,
        MotoServer::REGION,
        Some(&moto.endpoint()),
    );
    for raw in [false, true] {
        let policy = FilterPolicy::from_filters("iniesta_pass", ["Happened.*"]).unwrap();
        let mut request = ProvisionRequest::new(
            TopicRef::Name("global".into()),
            format!("iniesta-test-wiring-{raw}"),
            policy,
        );
        request.raw_delivery = raw;
        request.visibility_timeout = Some(Duration::from_secs(5));
        let made = provision(&clients, &request).await.expect("provision");
        let topic = SnsTopic::new(clients.sns.clone(), &made.topic_arn);
        for i in 0..15 {
            topic
                .publish_event(EVENT, &format!(r#"{{"n":{i}}}"#), 1)
                .await
                .expect("publish");
        }
        // Outside the filter: never arrives.
        topic
            .publish_event("Other.svc", "{}", 1)
            .await
            .expect("publish");
        let queue = Arc::new(SqsQueue::new(clients.sqs.clone(), &made.queue_url));
        let mode = if raw {
            DeliveryMode::Raw
        } else {
            DeliveryMode::Envelope
        };
        let handled: Handled = Arc::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, rx) = oneshot::channel();
        let consumer = tokio::spawn(consume(
            config(mode, &made.topic_arn),
            handled.clone(),
            queue,
            redlock(&cluster),
            rx,
            seen.clone(),
        ));
        wait_until("all 15 events are handled", Duration::from_secs(90), || {
            handled.lock().unwrap().len() == 15
        })
        .await;
        let _ = stop.send(());
        let stats = consumer.await.unwrap();
        let handled = handled.lock().unwrap();
        assert!(
            handled.values().all(|&n| n == 1),
            "raw={raw}: an event was handled twice: {handled:?}"
        );
        assert_eq!(stats.malformed, 0, "raw={raw}");
        assert_eq!(
            stats.no_handler, 0,
            "raw={raw}: the event outside the filter arrived"
        );
    }
}
