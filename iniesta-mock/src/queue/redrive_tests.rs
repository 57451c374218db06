//! The redrive policy: when a message moves to the dead-letter queue, what
//! it keeps there, the source's handles after the move, and the policy's
//! limits.

use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use iniesta_core::{AttributeValue, BackendError, Queue, ReceiptHandle, ReceiveRequest};

use crate::codes;
use crate::{Clock, MockQueue, QueueOptions, Redrive};

fn world(max_receive_count: u32) -> (Clock, MockQueue, MockQueue) {
    let clock = Clock::virtual_clock();
    let dlq = MockQueue::new("q-dlq", &clock);
    let q = MockQueue::with_options(
        "q",
        &clock,
        QueueOptions {
            redrive: Some(Redrive::new(&dlq, max_receive_count)),
            ..QueueOptions::default()
        },
    );
    (clock, q, dlq)
}

fn code(e: BackendError) -> String {
    e.code.unwrap_or_default()
}

/// Receives `n` times, each delivery visible again at once.
fn receive_times(q: &MockQueue, n: u32) -> Vec<ReceiptHandle> {
    (0..n)
        .map(|_| {
            let got = q.receive_now(10, Some(Duration::ZERO));
            assert_eq!(got.len(), 1);
            got[0].receipt_handle.clone()
        })
        .collect()
}

#[test]
fn the_receive_after_max_receive_count_moves_the_message() {
    let (clock, q, dlq) = world(3);
    let attrs = BTreeMap::from([("k".to_owned(), AttributeValue::String("v".into()))]);
    let id = q.send("poison", attrs.clone());
    clock.advance(Duration::from_secs(1));
    receive_times(&q, 3);
    assert_eq!(q.len(), 1, "not moved while nobody receives");
    assert_eq!(dlq.len(), 0);

    clock.advance(Duration::from_secs(1));
    assert!(q.receive_now(10, None).is_empty(), "moved, not delivered");
    assert!(q.is_empty());
    assert!(
        q.snapshot().is_empty(),
        "listed in the dead-letter queue only"
    );
    let moved = dlq.snapshot();
    assert_eq!(moved.len(), 1);
    let m = &moved[0];
    assert_eq!(m.message_id, id);
    assert_eq!(m.body, "poison");
    assert_eq!(m.message_attributes, attrs);
    assert_eq!(m.receive_count, 3);
    assert_eq!(m.sent_at, iniesta_core::Time::ZERO);
    assert_eq!(
        m.first_received_at,
        Some(iniesta_core::Time::from_millis(1000))
    );
    assert!(m.visible);
    assert_eq!(m.dead_letter_source_arn.as_deref(), Some(q.arn()));

    let s = q.stats();
    assert_eq!((s.received, s.dead_lettered, s.receive_calls), (3, 1, 4));
    let d = dlq.stats();
    assert_eq!((d.sent, d.dead_letter_arrivals), (0, 1));
}

#[test]
fn the_dead_letter_queue_delivers_with_the_source_count_and_arn() {
    let (_, q, dlq) = world(1);
    let id = q.send("x", BTreeMap::new());
    let source_handle = receive_times(&q, 1).remove(0);
    assert!(q.receive_now(10, None).is_empty());

    let got = dlq.receive_now(10, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sqs_message_id, id);
    assert_eq!(got[0].receive_count(), 2, "SQS keeps counting");
    assert_eq!(
        got[0]
            .attributes
            .other
            .get("DeadLetterQueueSourceArn")
            .map(String::as_str),
        Some(q.arn())
    );
    // The source's handle is not the dead-letter queue's.
    let e = dlq.delete_now(&source_handle).unwrap_err();
    assert_eq!(code(e), codes::RECEIPT_HANDLE_IS_INVALID);
    dlq.delete_now(&got[0].receipt_handle).unwrap();
    assert!(dlq.is_empty());
}

#[test]
fn the_source_handle_of_a_moved_message_deletes_nothing() {
    let (_, q, dlq) = world(1);
    q.send("x", BTreeMap::new());
    let handle = receive_times(&q, 1).remove(0);
    assert!(q.receive_now(10, None).is_empty());

    assert_eq!(q.delete_now(&handle), Ok(()));
    assert_eq!(q.stats().stale_deletes, 1);
    assert_eq!(q.deleted_count(), 0);
    assert_eq!(dlq.len(), 1, "still in the dead-letter queue");
    let e = q
        .change_visibility_now(&handle, Duration::from_secs(5))
        .unwrap_err();
    assert!(e.message.contains("dead-letter"), "{}", e.message);
    assert_eq!(code(e), codes::MESSAGE_NOT_INFLIGHT);
    let never = ReceiptHandle::new(format!("{}/2", dlq.snapshot()[0].message_id));
    assert_eq!(
        code(q.delete_now(&never).unwrap_err()),
        codes::RECEIPT_HANDLE_IS_INVALID
    );
}

#[test]
fn moving_does_not_use_up_the_receive() {
    let (_, q, dlq) = world(1);
    let poison = q.send("poison", BTreeMap::new());
    receive_times(&q, 1);
    let fresh = q.send("fresh", BTreeMap::new());
    let got = q.receive_now(1, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sqs_message_id, fresh);
    assert_eq!(dlq.snapshot()[0].message_id, poison);
}

#[test]
fn a_message_deleted_in_time_is_never_moved() {
    let (_, q, dlq) = world(2);
    q.send("x", BTreeMap::new());
    let handles = receive_times(&q, 2);
    q.delete_now(&handles[1]).unwrap();
    assert!(q.receive_now(10, None).is_empty());
    assert!(dlq.is_empty());
    assert_eq!(q.stats().dead_lettered, 0);
}

#[test]
fn a_message_in_flight_is_not_moved() {
    let (clock, q, dlq) = world(1);
    q.send("x", BTreeMap::new());
    q.receive_now(10, None);
    assert!(q.receive_now(10, None).is_empty());
    assert!(
        dlq.is_empty(),
        "only a receive that would deliver it moves it"
    );
    clock.advance(Duration::from_secs(30));
    assert!(q.receive_now(10, None).is_empty());
    assert_eq!(dlq.len(), 1);
}

#[test]
fn an_async_receive_moves_and_wakes_a_long_poll_on_the_dead_letter_queue() {
    let (_, q, dlq) = world(1);
    q.send("x", BTreeMap::new());
    let request = |wait| ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::from_secs(wait),
        visibility_timeout: Some(Duration::ZERO),
    };
    let dlq2 = dlq.clone();
    let mut waiting = Box::pin(async move { dlq2.receive(request(20)).await });
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(waiting.as_mut().poll(&mut cx).is_pending());

    let first = futures::executor::block_on(q.receive(request(0))).unwrap();
    assert_eq!(first.len(), 1);
    let second = futures::executor::block_on(q.receive(request(0))).unwrap();
    assert!(second.is_empty());
    match waiting.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(got)) => assert_eq!(got[0].sqs_message_id, first[0].sqs_message_id),
        other => panic!("expected the moved message, got {other:?}"),
    }
}

#[test]
fn max_receive_count_is_from_1_to_1000() {
    let clock = Clock::virtual_clock();
    let dlq = MockQueue::new("dlq", &clock);
    for (count, ok) in [(0, false), (1, true), (1000, true), (1001, false)] {
        let options = QueueOptions {
            redrive: Some(Redrive::new(&dlq, count)),
            ..QueueOptions::default()
        };
        let made = MockQueue::try_with_options("q", &clock, options);
        assert_eq!(made.is_ok(), ok, "{count}");
        if let Err(e) = made {
            assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
        }
    }
}

#[test]
#[should_panic(expected = "MUST run on the same Clock")]
fn a_dead_letter_queue_on_another_clock_is_caught() {
    let dlq = MockQueue::new("dlq", &Clock::virtual_clock());
    dlq.send("unrelated", BTreeMap::new());
    let clock = Clock::virtual_clock();
    let q = MockQueue::with_options(
        "q",
        &clock,
        QueueOptions {
            redrive: Some(Redrive::new(&dlq, 1)),
            ..QueueOptions::default()
        },
    );
    q.send("x", BTreeMap::new());
    receive_times(&q, 1);
    q.receive_now(10, None);
}

#[test]
fn redrive_compares_queues_by_identity_and_debug_names_them() {
    let clock = Clock::virtual_clock();
    let a = MockQueue::new("dlq", &clock);
    let b = MockQueue::new("dlq", &clock);
    assert_eq!(Redrive::new(&a, 3), Redrive::new(&a.clone(), 3));
    assert_ne!(Redrive::new(&a, 3), Redrive::new(&b, 3));
    assert_ne!(Redrive::new(&a, 3), Redrive::new(&a, 4));
    let debug = format!("{:?}", Redrive::new(&a, 3));
    assert_eq!(
        debug,
        r#"Redrive { dead_letter_queue: "dlq", max_receive_count: 3 }"#
    );
    let q = MockQueue::with_options(
        "q",
        &clock,
        QueueOptions {
            redrive: Some(Redrive::new(&a, 3)),
            ..QueueOptions::default()
        },
    );
    assert!(q.dead_letter_queue().is_some_and(|d| d.same_queue(&a)));
    assert!(a.dead_letter_queue().is_none());
}
