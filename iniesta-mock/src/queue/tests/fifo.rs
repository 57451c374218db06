//! FIFO queues: creation rules, sending (groups, deduplication, sequence
//! numbers), the order and blocking of receives, expired receipt handles.

use iniesta_core::{OutgoingMessage, ReceiptHandle, ReceivedMessage};

use super::*;

fn fifo(clock: &Clock) -> MockQueue {
    MockQueue::with_options("q.fifo", clock, QueueOptions::default().with_fifo(true))
}

fn msg(body: &str, group: &str, dedup: &str) -> OutgoingMessage {
    OutgoingMessage::new(body, BTreeMap::new())
        .with_group_id(group)
        .with_deduplication_id(dedup)
}

/// Sends `body` in `group`, with the body as its deduplication id.
fn put(q: &MockQueue, group: &str, body: &str) -> String {
    q.send_message(msg(body, group, body)).unwrap()
}

fn bodies(got: &[ReceivedMessage]) -> Vec<&str> {
    got.iter().map(|m| m.body.as_str()).collect()
}

fn other<'a>(m: &'a ReceivedMessage, name: &str) -> Option<&'a str> {
    m.attributes.other.get(name).map(String::as_str)
}

#[test]
fn a_fifo_queue_needs_a_fifo_name_and_a_standard_one_must_not_have_it() {
    let clock = Clock::virtual_clock();
    let fifo = QueueOptions::default().with_fifo(true);
    let e = MockQueue::try_with_options("orders", &clock, fifo.clone()).unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    let e =
        MockQueue::try_with_options("orders.fifo", &clock, QueueOptions::default()).unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    let q = MockQueue::try_with_options("orders.fifo", &clock, fifo).unwrap();
    assert!(q.options().fifo);
}

#[test]
fn content_based_deduplication_is_a_fifo_attribute() {
    let clock = Clock::virtual_clock();
    let options = QueueOptions::default().with_content_based_deduplication(true);
    let e = MockQueue::try_with_options("q", &clock, options).unwrap_err();
    assert_eq!(code(e), codes::INVALID_ATTRIBUTE_NAME);
}

#[test]
fn a_dead_letter_queue_has_its_source_queues_type() {
    let clock = Clock::virtual_clock();
    let standard_dlq = MockQueue::new("dlq", &clock);
    let fifo_dlq = fifo(&clock);
    let fifo_opts = QueueOptions::default().with_fifo(true);
    let e = MockQueue::try_with_options(
        "src.fifo",
        &clock,
        fifo_opts
            .clone()
            .with_redrive(Redrive::new(&standard_dlq, 3)),
    )
    .unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    let e = MockQueue::try_with_options(
        "src",
        &clock,
        QueueOptions::default().with_redrive(Redrive::new(&fifo_dlq, 3)),
    )
    .unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    MockQueue::try_with_options(
        "src.fifo",
        &clock,
        fifo_opts.with_redrive(Redrive::new(&fifo_dlq, 3)),
    )
    .unwrap();
}

#[test]
fn a_fifo_send_needs_a_group_and_a_deduplication_id() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    let no_group = OutgoingMessage::new("a", BTreeMap::new()).with_deduplication_id("d");
    assert_eq!(
        code(q.send_message(no_group).unwrap_err()),
        codes::MISSING_PARAMETER
    );
    let no_dedup = OutgoingMessage::new("a", BTreeMap::new()).with_group_id("g");
    assert_eq!(
        code(q.send_message(no_dedup).unwrap_err()),
        codes::INVALID_PARAMETER_VALUE
    );
    for (group, dedup) in [("", "d"), ("g", ""), ("has space", "d"), ("g", "é")] {
        let e = q.send_message(msg("a", group, dedup)).unwrap_err();
        assert_eq!(
            code(e),
            codes::INVALID_PARAMETER_VALUE,
            "{group:?} {dedup:?}"
        );
    }
    let long = "x".repeat(129);
    assert!(q.send_message(msg("a", &long, "d")).is_err());
    assert!(q.send_message(msg("a", &long[..128], "d")).is_ok());
    assert_eq!(q.len(), 1);
}

#[test]
#[should_panic(expected = "send_message")]
fn plain_send_on_a_fifo_queue_panics_with_the_way_out() {
    let clock = Clock::virtual_clock();
    fifo(&clock).send("a", BTreeMap::new());
}

#[test]
fn a_standard_queue_carries_a_group_id_and_refuses_a_deduplication_id() {
    let (_, q) = setup();
    let e = q.send_message(msg("a", "g", "d")).unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    let grouped = OutgoingMessage::new("a", BTreeMap::new()).with_group_id("tenant-1");
    q.send_message(grouped).unwrap();
    let got = q.receive_now(10, None);
    assert_eq!(got[0].attributes.message_group_id(), Some("tenant-1"));
    assert_eq!(got[0].attributes.sequence_number(), None);
    assert_eq!(other(&got[0], "MessageDeduplicationId"), None);
}

#[test]
fn a_duplicate_within_five_minutes_answers_the_first_id_and_enqueues_nothing() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    let first = q.send_message(msg("a", "g", "d-1")).unwrap();
    clock.advance(DEDUPLICATION_INTERVAL - SECOND);
    assert_eq!(q.send_message(msg("b", "other", "d-1")).unwrap(), first);
    assert_eq!(q.len(), 1);
    assert_eq!(q.stats().deduplicated, 1);
    // The window counts from the first send, not from the duplicate.
    clock.advance(SECOND);
    let again = q.send_message(msg("c", "g", "d-1")).unwrap();
    assert_ne!(again, first);
    assert_eq!(q.len(), 2);
}

#[test]
fn deleting_a_message_keeps_its_deduplication_id_for_the_window() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    let first = q.send_message(msg("a", "g", "d-1")).unwrap();
    let got = q.receive_now(10, None);
    q.delete_now(&got[0].receipt_handle).unwrap();
    assert_eq!(q.send_message(msg("a", "g", "d-1")).unwrap(), first);
    assert!(q.receive_now(10, None).is_empty());
}

#[test]
fn content_based_deduplication_hashes_the_body_only() {
    let clock = Clock::virtual_clock();
    let q = MockQueue::with_options(
        "q.fifo",
        &clock,
        QueueOptions::default()
            .with_fifo(true)
            .with_content_based_deduplication(true),
    );
    let send = |body: &str, version: &str| {
        let attrs = attrs(&[("version", version)]);
        q.send_message(OutgoingMessage::new(body, attrs).with_group_id("g"))
            .unwrap()
    };
    let first = send("hello", "1");
    assert_eq!(send("hello", "2"), first, "attributes are not hashed");
    assert_ne!(send("other", "1"), first);
    // An explicit id wins over the hash.
    q.send_message(msg("hello", "g", "explicit")).unwrap();
    let got = q.receive_now(10, None);
    assert_eq!(bodies(&got), ["hello", "other", "hello"]);
    assert_eq!(
        other(&got[0], "MessageDeduplicationId"),
        // SHA-256("hello")
        Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
    assert_eq!(other(&got[2], "MessageDeduplicationId"), Some("explicit"));
}

#[test]
fn every_delivery_carries_group_deduplication_id_and_an_increasing_sequence_number() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    put(&q, "a", "a1");
    put(&q, "b", "b1");
    put(&q, "a", "a2");
    let got = q.receive_now(10, None);
    assert_eq!(bodies(&got), ["a1", "a2", "b1"]);
    for m in &got {
        assert_eq!(m.attributes.message_group_id(), Some(&m.body[..1]));
        assert_eq!(other(m, "MessageDeduplicationId"), Some(m.body.as_str()));
    }
    let seq = |m: &ReceivedMessage| -> u128 {
        let s = m.attributes.sequence_number().expect("a sequence number");
        assert_eq!(s.len(), 20, "20 digits as SQS gives them: {s}");
        s.parse().unwrap()
    };
    let (a1, a2, b1) = (seq(&got[0]), seq(&got[1]), seq(&got[2]));
    assert!(a1 < b1 && b1 < a2, "in send order across the queue");
    assert!(b1 - a1 > 1, "not consecutive, as in SQS");
    let snap = q.snapshot();
    assert_eq!(snap[0].group_id.as_deref(), Some("a"));
    assert_eq!(snap[0].sequence_number, Some(a1.to_string()));
}

#[test]
fn a_group_in_flight_is_blocked_until_its_message_is_deleted() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    for b in ["a1", "a2", "a3"] {
        put(&q, "a", b);
    }
    put(&q, "b", "b1");
    let first = q.receive_now(1, None);
    assert_eq!(bodies(&first), ["a1"]);
    // a2 is visible but waits behind a1; b is free.
    assert_eq!(bodies(&q.receive_now(10, None)), ["b1"]);
    assert!(q.receive_now(10, None).is_empty());
    assert_eq!(q.visible_len(), 2, "visible, yet blocked");
    q.delete_now(&first[0].receipt_handle).unwrap();
    assert_eq!(bodies(&q.receive_now(10, None)), ["a2", "a3"]);
}

#[test]
fn one_member_in_flight_blocks_the_whole_group() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    for b in ["a1", "a2", "a3"] {
        put(&q, "a", b);
    }
    let got = q.receive_now(2, None);
    assert_eq!(bodies(&got), ["a1", "a2"]);
    q.delete_now(&got[0].receipt_handle).unwrap();
    assert!(q.receive_now(10, None).is_empty(), "a2 is still in flight");
    q.delete_now(&got[1].receipt_handle).unwrap();
    assert_eq!(bodies(&q.receive_now(10, None)), ["a3"]);
}

#[test]
fn an_expired_visibility_timeout_delivers_the_same_message_first_again() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    put(&q, "a", "a1");
    put(&q, "a", "a2");
    assert_eq!(bodies(&q.receive_now(1, Some(5 * SECOND))), ["a1"]);
    clock.advance(5 * SECOND);
    let again = q.receive_now(1, None);
    assert_eq!(bodies(&again), ["a1"]);
    assert_eq!(again[0].receive_count(), 2);
    // Made visible at once by a zero visibility change: a1 first again.
    q.change_visibility_now(&again[0].receipt_handle, Duration::ZERO)
        .unwrap();
    let third = q.receive_now(10, None);
    assert_eq!(bodies(&third), ["a1", "a2"]);
}

#[test]
fn groups_are_served_oldest_first() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    put(&q, "b", "b1");
    put(&q, "a", "a1");
    put(&q, "b", "b2");
    assert_eq!(bodies(&q.receive_now(10, None)), ["b1", "b2", "a1"]);
}

#[test]
fn an_expired_receipt_handle_neither_deletes_nor_changes_visibility() {
    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    put(&q, "a", "a1");
    let old = q.receive_now(1, Some(5 * SECOND)).remove(0).receipt_handle;
    clock.advance(5 * SECOND);
    // Visible again, not yet received again: the handle already expired.
    let e = q.delete_now(&old).unwrap_err();
    assert_eq!(code(e.clone()), codes::INVALID_PARAMETER_VALUE);
    assert!(e.message.contains("expired"), "{e}");
    let e = q.change_visibility_now(&old, SECOND).unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    // Received again: still expired, and the new handle works.
    let new = q.receive_now(1, None).remove(0).receipt_handle;
    assert_eq!(
        code(q.delete_now(&old).unwrap_err()),
        codes::INVALID_PARAMETER_VALUE
    );
    assert_eq!(q.len(), 1);
    q.delete_now(&new).unwrap();
    assert!(q.is_empty());
    q.delete_now(&new).unwrap(); // the deleting handle, again: Ok
    assert_eq!(
        code(q.delete_now(&old).unwrap_err()),
        codes::INVALID_PARAMETER_VALUE
    );
    let never = ReceiptHandle::new("msg-999/1");
    assert_eq!(
        code(q.delete_now(&never).unwrap_err()),
        codes::RECEIPT_HANDLE_IS_INVALID
    );
}

#[test]
fn redrive_moves_the_head_to_a_fifo_dead_letter_queue_and_frees_its_group() {
    let clock = Clock::virtual_clock();
    let dlq = MockQueue::with_options("dlq.fifo", &clock, QueueOptions::default().with_fifo(true));
    let q = MockQueue::with_options(
        "q.fifo",
        &clock,
        QueueOptions::default()
            .with_fifo(true)
            .with_redrive(Redrive::new(&dlq, 1)),
    );
    put(&q, "a", "a1");
    put(&q, "a", "a2");
    let old = q.receive_now(1, Some(SECOND)).remove(0);
    clock.advance(10 * SECOND);
    // a1 was received once: this receive moves it and goes on with a2.
    assert_eq!(bodies(&q.receive_now(10, None)), ["a2"]);
    assert_eq!(q.stats().dead_lettered, 1);
    assert_eq!(
        code(q.delete_now(&old.receipt_handle).unwrap_err()),
        codes::INVALID_PARAMETER_VALUE
    );
    let moved = dlq.receive_now(10, None);
    assert_eq!(bodies(&moved), ["a1"]);
    let m = &moved[0];
    assert_eq!(m.sqs_message_id, old.sqs_message_id);
    assert_eq!(m.attributes.message_group_id(), Some("a"));
    assert_eq!(other(m, "MessageDeduplicationId"), Some("a1"));
    assert_eq!(other(m, "DeadLetterQueueSourceArn"), Some(q.arn()));
    assert_eq!(m.attributes.sequence_number().map(str::len), Some(20));
    // A FIFO dead-letter queue resets the enqueue time to the move.
    assert_eq!(
        m.attributes.sent_timestamp,
        Some(clock.unix_millis(clock.now()))
    );
    assert_ne!(m.attributes.sent_timestamp, old.attributes.sent_timestamp);
}

#[test]
fn a_long_poll_wakes_when_a_delete_unblocks_a_group() {
    use std::future::Future;
    use std::task::{Context, Poll};

    use iniesta_core::{Queue, ReceiveRequest};

    let clock = Clock::virtual_clock();
    let q = fifo(&clock);
    put(&q, "a", "a1");
    put(&q, "a", "a2");
    let first = q.receive_now(1, None).remove(0);
    let poller = q.clone();
    let mut poll = Box::pin(async move {
        poller
            .receive(ReceiveRequest {
                max_messages: 10,
                wait_time: 20 * SECOND,
                visibility_timeout: None,
            })
            .await
    });
    let waker = futures::task::noop_waker();
    let pending = poll.as_mut().poll(&mut Context::from_waker(&waker));
    assert!(
        matches!(pending, Poll::Pending),
        "a2 is blocked: the poll waits"
    );
    q.delete_now(&first.receipt_handle).unwrap();
    let got = futures::executor::block_on(poll).unwrap();
    assert_eq!(bodies(&got), ["a2"]);
    assert_eq!(
        clock.now(),
        iniesta_core::Time::ZERO,
        "no virtual time passed"
    );
}
