//! Long polls through the async `Queue` trait, driven without any async
//! runtime (`futures::executor`). Each test first polls the receive once by
//! hand to prove that it is waiting, then lets it finish.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use futures::executor::block_on;
use futures::task::noop_waker;
use iniesta_core::{BackendError, Queue, ReceiveRequest, ReceivedMessage};
use iniesta_mock::{Clock, MockQueue, MockTopic, SubscribeOptions};

type Receive = Pin<Box<dyn Future<Output = Result<Vec<ReceivedMessage>, BackendError>> + Send>>;

fn request(wait_secs: u64) -> ReceiveRequest {
    ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::from_secs(wait_secs),
        visibility_timeout: None,
    }
}

fn start(queue: &MockQueue, request: ReceiveRequest) -> Receive {
    let queue = queue.clone();
    Box::pin(async move { queue.receive(request).await })
}

fn poll_once(receive: &mut Receive) -> Poll<Result<Vec<ReceivedMessage>, BackendError>> {
    let waker = noop_waker();
    receive.as_mut().poll(&mut Context::from_waker(&waker))
}

#[test]
fn long_poll_returns_when_a_message_is_sent_from_another_thread() {
    let clock = Clock::virtual_clock();
    let queue = MockQueue::new("q", &clock);
    let mut receive = start(&queue, request(20));
    assert!(poll_once(&mut receive).is_pending(), "empty queue: waits");

    let sender = queue.clone();
    let sent = thread::spawn(move || sender.send("hello", BTreeMap::new()));
    let got = block_on(receive).unwrap();
    let id = sent.join().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sqs_message_id, id);
    assert_eq!(got[0].body, "hello");
    assert_eq!(
        clock.now(),
        iniesta_core::Time::ZERO,
        "no virtual time passed"
    );
}

#[test]
fn long_poll_returns_empty_once_the_clock_passes_the_wait_time() {
    let clock = Clock::virtual_clock();
    let queue = MockQueue::new("q", &clock);
    let mut receive = start(&queue, request(20));
    assert!(poll_once(&mut receive).is_pending());
    clock.advance(Duration::from_secs(19));
    assert!(
        poll_once(&mut receive).is_pending(),
        "19 s of 20: still waiting"
    );

    let mover = clock.clone();
    let advanced = thread::spawn(move || mover.advance(Duration::from_secs(1)));
    let got = block_on(receive).unwrap();
    advanced.join().unwrap();
    assert!(got.is_empty());
    assert_eq!(
        queue.stats().receive_calls,
        1,
        "one call, however many wake-ups"
    );
}

#[test]
fn long_poll_sees_a_message_whose_visibility_timeout_ends() {
    let clock = Clock::virtual_clock();
    let queue = MockQueue::new("q", &clock);
    queue.send("x", BTreeMap::new());
    let first = queue.receive_now(1, Some(Duration::from_secs(5)));
    assert_eq!(first.len(), 1);

    let mut receive = start(&queue, request(20));
    assert!(poll_once(&mut receive).is_pending(), "in flight: waits");
    clock.advance(Duration::from_secs(5));
    let got = block_on(receive).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receive_count(), 2);
}

#[test]
fn long_poll_wakes_on_a_message_published_to_a_subscribed_topic() {
    let clock = Clock::virtual_clock();
    let queue = MockQueue::new("q", &clock);
    let topic = MockTopic::new("t", &clock);
    topic.subscribe(&queue, SubscribeOptions::default());
    let mut receive = start(&queue, request(20));
    assert!(poll_once(&mut receive).is_pending());
    let publisher = topic.clone();
    let published = thread::spawn(move || {
        publisher.publish_now(iniesta_core::OutgoingMessage {
            body: "hi".into(),
            attributes: BTreeMap::new(),
            ..Default::default()
        })
    });
    let got = block_on(receive).unwrap();
    published.join().unwrap().unwrap();
    assert_eq!(got.len(), 1);
}

#[test]
fn zero_wait_time_never_waits() {
    let clock = Clock::virtual_clock();
    let queue = MockQueue::new("q", &clock);
    let mut receive = start(&queue, request(0));
    match poll_once(&mut receive) {
        Poll::Ready(Ok(got)) => assert!(got.is_empty()),
        other => panic!("expected an empty answer at once, got {other:?}"),
    }
}

#[test]
fn injected_receive_failure_is_returned_without_waiting() {
    let clock = Clock::virtual_clock();
    let queue = MockQueue::new("q", &clock);
    queue.fail_receives(1);
    let mut receive = start(&queue, request(20));
    match poll_once(&mut receive) {
        Poll::Ready(Err(e)) => assert_eq!(e.code.as_deref(), Some("InternalError")),
        other => panic!("expected the injected error at once, got {other:?}"),
    }
}

#[test]
fn real_clock_long_poll_times_out_and_sees_visibility_expiry() {
    let clock = Clock::real();
    let queue = MockQueue::new("q", &clock);
    let short = ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::from_millis(30),
        visibility_timeout: None,
    };
    assert!(block_on(queue.receive(short)).unwrap().is_empty());

    queue.send("x", BTreeMap::new());
    // SQS's shortest visibility timeout above zero: one second.
    let first = queue.receive_now(1, Some(Duration::from_secs(1)));
    assert_eq!(first.len(), 1);
    let long = ReceiveRequest {
        wait_time: Duration::from_secs(20),
        ..short
    };
    // The poll wakes when the visibility timeout ends and returns the
    // message again.
    let got = block_on(queue.receive(long)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receive_count(), 2);
}
