//! The queue's SQS semantics: delivery order, visibility and its whole
//! seconds, receipt handles, faults, batches and inspection.

use super::*;
use crate::codes;

const SECOND: Duration = Duration::from_secs(1);

fn setup() -> (Clock, MockQueue) {
    let clock = Clock::virtual_clock();
    let queue = MockQueue::new("q", &clock);
    (clock, queue)
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), AttributeValue::String(v.to_string())))
        .collect()
}

fn code(e: BackendError) -> String {
    e.code.unwrap_or_default()
}

#[test]
fn names_and_addresses() {
    let (_, q) = setup();
    assert_eq!(q.name(), "q");
    assert_eq!(q.arn(), "arn:aws:sqs:us-east-1:000000000000:q");
    assert!(q.url().ends_with("/000000000000/q"), "{}", q.url());
}

#[test]
fn visibility_moved_back_and_forth_never_returns_a_message_twice() {
    let clock = Clock::virtual_clock();
    let q = MockQueue::new("q", &clock);
    let a = q.send("a", BTreeMap::new());
    let b = q.send("b", BTreeMap::new());
    let first = q.receive_now(1, None);
    assert_eq!(first[0].message_id, a);
    // Back to visible now, then received again with the same timeout:
    // the queue now holds two entries for `a` at the same instant.
    q.change_visibility_now(&first[0].receipt_handle, Duration::ZERO)
        .unwrap();
    let again = q.receive_now(10, None);
    let ids: Vec<_> = again.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids, [a.clone(), b.clone()], "each once, oldest first");
    assert_eq!(q.visible_len(), 0);
    assert_eq!(q.in_flight_len(), 2);
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    let third = q.receive_now(10, None);
    let ids: Vec<_> = third.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids, [a.clone(), b.clone()], "each once, oldest first");
    // A deleted message is not returned, even with entries left behind.
    q.delete_now(&third[0].receipt_handle).unwrap();
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    let last = q.receive_now(10, None);
    let ids: Vec<_> = last.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids, [b]);
    assert_eq!(last[0].receive_count(), 3);
}

#[test]
fn receive_sets_system_attributes_and_hides_the_message() {
    let (clock, q) = setup();
    clock.advance(Duration::from_millis(1234));
    let id = q.send("body", attrs(&[("iniesta_pass", "A.b")]));
    clock.advance(Duration::from_millis(1000));
    let got = q.receive_now(10, None);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.message_id, id);
    assert_eq!(m.body, "body");
    assert_eq!(m.message_attributes, attrs(&[("iniesta_pass", "A.b")]));
    assert_eq!(m.attributes.receive_count, Some(1));
    assert_eq!(m.attributes.sent_timestamp, Some(1234));
    assert_eq!(m.attributes.first_receive_timestamp, Some(2234));
    assert_eq!(q.len(), 1);
    assert_eq!(q.visible_len(), 0);
    assert_eq!(q.in_flight_len(), 1);
    assert!(q.receive_now(10, None).is_empty());
}

#[test]
fn visibility_expiry_redelivers_with_receive_count_two() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let first = q.receive_now(1, None);
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT - Duration::from_millis(1));
    assert!(q.receive_now(1, None).is_empty(), "still hidden");
    clock.advance(Duration::from_millis(1));
    let second = q.receive_now(1, None);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count(), 2);
    assert_ne!(second[0].receipt_handle, first[0].receipt_handle);
    assert_eq!(
        second[0].attributes.first_receive_timestamp, first[0].attributes.first_receive_timestamp,
        "first receive time is kept"
    );
}

#[test]
fn order_is_oldest_visible_first_then_send_order() {
    let (clock, q) = setup();
    let a = q.send("a", BTreeMap::new());
    let b = q.send("b", BTreeMap::new());
    // a is received with a short timeout: visible again at t=1s.
    assert_eq!(q.receive_now(1, Some(SECOND))[0].message_id, a);
    clock.advance(2 * SECOND);
    let c = q.send("c", BTreeMap::new());
    let ids: Vec<String> = q
        .receive_now(10, None)
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    // b visible since 0, a since 1 s, c since 2 s.
    assert_eq!(ids, vec![b, a, c]);
}

#[test]
fn max_limits_the_receive() {
    let (_, q) = setup();
    for i in 0..5 {
        q.send(format!("{i}"), BTreeMap::new());
    }
    assert_eq!(q.receive_now(2, None).len(), 2);
    assert_eq!(q.receive_now(0, None).len(), 0);
    assert_eq!(q.receive_now(10, None).len(), 3);
}

#[test]
fn zero_visibility_does_not_return_a_message_twice_in_one_receive() {
    let (_, q) = setup();
    q.send("x", BTreeMap::new());
    let got = q.receive_now(10, Some(Duration::ZERO));
    assert_eq!(got.len(), 1);
    let again = q.receive_now(10, Some(Duration::ZERO));
    assert_eq!(again.len(), 1, "visible again at once");
    assert_eq!(again[0].receive_count(), 2);
}

#[test]
fn queue_option_sets_the_default_visibility_timeout() {
    let clock = Clock::virtual_clock();
    let q = MockQueue::with_options(
        "q",
        &clock,
        QueueOptions {
            visibility_timeout: 5 * SECOND,
            ..QueueOptions::default()
        },
    );
    q.send("x", BTreeMap::new());
    q.receive_now(1, None);
    clock.advance(5 * SECOND);
    assert_eq!(q.receive_now(1, None).len(), 1);
}

#[test]
fn stale_handle_delete_is_a_no_op() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let first = q.receive_now(1, None).remove(0);
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    let second = q.receive_now(1, None).remove(0);
    assert_eq!(q.delete_now(&first.receipt_handle), Ok(()));
    assert_eq!(q.len(), 1, "stale handle must not delete");
    assert_eq!(q.stats().stale_deletes, 1);
    assert_eq!(q.delete_now(&second.receipt_handle), Ok(()));
    assert_eq!(q.len(), 0);
    assert_eq!(q.deleted_count(), 1);
    // Deleting again, with either handle, succeeds and changes nothing.
    assert_eq!(q.delete_now(&second.receipt_handle), Ok(()));
    assert_eq!(q.delete_now(&first.receipt_handle), Ok(()));
    assert_eq!(q.deleted_count(), 1);
}

#[test]
fn latest_handle_deletes_even_after_its_visibility_ended() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let m = q.receive_now(1, None).remove(0);
    clock.advance(2 * DEFAULT_VISIBILITY_TIMEOUT);
    assert_eq!(q.visible_len(), 1);
    q.delete_now(&m.receipt_handle).unwrap();
    assert!(q.is_empty());
    assert!(q.receive_now(10, None).is_empty());
}

#[test]
fn handles_never_issued_are_invalid() {
    let (_, q) = setup();
    q.send("x", BTreeMap::new());
    let m = q.receive_now(1, None).remove(0);
    let other = MockQueue::new("other", q.clock());
    let foreign_id = other.send("y", BTreeMap::new());
    let bad = [
        "garbage".to_string(),
        String::new(),
        format!("{}/2", m.message_id),
        format!("{}/0", m.message_id),
        format!("{}/01", m.message_id),
        "msg-999/1".to_string(),
        format!("{foreign_id}/1"),
    ];
    for h in bad {
        let e = q.delete_now(&ReceiptHandle::new(&h)).unwrap_err();
        assert_eq!(code(e), codes::RECEIPT_HANDLE_IS_INVALID, "{h}");
        let e = q
            .change_visibility_now(&ReceiptHandle::new(&h), SECOND)
            .unwrap_err();
        assert_eq!(code(e), codes::RECEIPT_HANDLE_IS_INVALID, "{h}");
    }
    assert_eq!(q.len(), 1);
}

#[test]
fn ids_are_unique_across_queues_of_one_clock() {
    let (clock, q) = setup();
    let other = MockQueue::new("other", &clock);
    let a = q.send("x", BTreeMap::new());
    let b = other.send("x", BTreeMap::new());
    assert_ne!(a, b);
}

#[test]
fn change_visibility_rules() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let first = q.receive_now(1, None).remove(0);

    // Extends an in-flight message, counted from now.
    clock.advance(20 * SECOND);
    q.change_visibility_now(&first.receipt_handle, 60 * SECOND)
        .unwrap();
    clock.advance(59 * SECOND);
    assert!(q.receive_now(1, None).is_empty());
    clock.advance(SECOND);

    // Visible now: not in flight.
    let e = q
        .change_visibility_now(&first.receipt_handle, SECOND)
        .unwrap_err();
    assert_eq!(code(e), codes::MESSAGE_NOT_INFLIGHT);

    // Received again: the first handle is stale.
    let second = q.receive_now(1, None).remove(0);
    let e = q
        .change_visibility_now(&first.receipt_handle, SECOND)
        .unwrap_err();
    assert_eq!(code(e), codes::MESSAGE_NOT_INFLIGHT);

    // Over 12 hours.
    let e = q
        .change_visibility_now(
            &second.receipt_handle,
            MAX_VISIBILITY_TIMEOUT + Duration::from_millis(1),
        )
        .unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    q.change_visibility_now(&second.receipt_handle, MAX_VISIBILITY_TIMEOUT)
        .unwrap();

    // Zero: visible at once.
    q.change_visibility_now(&second.receipt_handle, Duration::ZERO)
        .unwrap();
    assert_eq!(q.visible_len(), 1);
    let third = q.receive_now(1, None).remove(0);
    assert_eq!(third.receive_count(), 3);

    // Deleted: not in flight.
    q.delete_now(&third.receipt_handle).unwrap();
    let e = q
        .change_visibility_now(&third.receipt_handle, SECOND)
        .unwrap_err();
    assert_eq!(code(e), codes::MESSAGE_NOT_INFLIGHT);
}

#[test]
fn fail_receives_fails_the_next_receives_only() {
    let (_, q) = setup();
    q.send("x", BTreeMap::new());
    q.fail_receives(2);
    let e = q.try_receive_now(10, None).unwrap_err();
    assert_eq!(code(e), codes::INTERNAL_ERROR);
    assert!(
        q.receive_now(10, None).is_empty(),
        "second failure: nothing"
    );
    assert_eq!(q.visible_len(), 1, "failed receives hide nothing");
    assert_eq!(q.try_receive_now(10, None).unwrap().len(), 1);
    let s = q.stats();
    assert_eq!(s.injected_faults, 2);
    assert_eq!(s.receive_calls, 3);
    assert_eq!(s.received, 1);
}

#[test]
fn fail_deletes_reports_an_error_and_deletes_nothing() {
    let (_, q) = setup();
    q.send("x", BTreeMap::new());
    let m = q.receive_now(1, None).remove(0);
    q.fail_deletes(1);
    let e = q.delete_now(&m.receipt_handle).unwrap_err();
    assert_eq!(code(e), codes::INTERNAL_ERROR);
    assert_eq!(q.len(), 1);
    q.delete_now(&m.receipt_handle).unwrap();
    assert_eq!(q.len(), 0);
}

#[test]
fn lost_delete_answers_ok_and_the_message_comes_back() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let m = q.receive_now(1, None).remove(0);
    q.lose_deletes(1);
    assert_eq!(q.delete_now(&m.receipt_handle), Ok(()));
    assert_eq!(q.len(), 1);
    assert_eq!(q.deleted_count(), 0);
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    let again = q.receive_now(1, None);
    assert_eq!(again[0].message_id, m.message_id);
    assert_eq!(again[0].receive_count(), 2);
}

#[test]
fn fail_visibility_changes_changes_nothing() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let m = q.receive_now(1, None).remove(0);
    q.fail_visibility_changes(1);
    let e = q
        .change_visibility_now(&m.receipt_handle, 3600 * SECOND)
        .unwrap_err();
    assert_eq!(code(e), codes::INTERNAL_ERROR);
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    assert_eq!(q.visible_len(), 1, "the old timeout still applies");
}

#[test]
fn clear_faults_cancels_pending_faults() {
    let (_, q) = setup();
    q.send("x", BTreeMap::new());
    q.fail_receives(5);
    q.clear_faults();
    assert_eq!(q.try_receive_now(1, None).unwrap().len(), 1);
}

#[test]
fn batch_faults_count_per_entry() {
    let (_, q) = setup();
    q.send("a", BTreeMap::new());
    q.send("b", BTreeMap::new());
    let got = q.receive_now(10, None);
    q.fail_deletes(1);
    let handles = got.iter().map(|m| m.receipt_handle.clone()).collect();
    let results = futures::executor::block_on(q.delete_batch(handles));
    assert!(results[0].is_err());
    assert_eq!(results[1], Ok(()));
    assert_eq!(q.len(), 1);
    assert_eq!(q.snapshot()[0].message_id, got[0].message_id);
}

#[test]
fn oversized_batches_fail_every_entry_and_consume_no_faults() {
    let (_, q) = setup();
    for i in 0..11 {
        q.send(format!("{i}"), BTreeMap::new());
    }
    let mut got = q.receive_now(10, None);
    got.extend(q.receive_now(10, None));
    assert_eq!(got.len(), 11);
    q.fail_deletes(1);
    let handles: Vec<ReceiptHandle> = got.iter().map(|m| m.receipt_handle.clone()).collect();
    let results = futures::executor::block_on(q.delete_batch(handles.clone()));
    assert_eq!(results.len(), 11);
    for r in results {
        assert_eq!(
            code(r.unwrap_err()),
            codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST
        );
    }
    let entries = handles.iter().map(|h| (h.clone(), SECOND)).collect();
    let results = futures::executor::block_on(q.change_visibility_batch(entries));
    assert!(results.iter().all(|r| r.is_err()));
    assert_eq!(q.len(), 11);
    // The injected fault is still pending.
    assert!(q.delete_now(&handles[0]).is_err());
    assert_eq!(q.delete_now(&handles[0]), Ok(()));
}

#[test]
fn change_visibility_batch_applies_each_entry() {
    let (clock, q) = setup();
    q.send("a", BTreeMap::new());
    q.send("b", BTreeMap::new());
    let got = q.receive_now(10, None);
    let entries = vec![
        (got[0].receipt_handle.clone(), Duration::ZERO),
        (ReceiptHandle("nope".into()), SECOND),
        (got[1].receipt_handle.clone(), 100 * SECOND),
    ];
    let results = futures::executor::block_on(q.change_visibility_batch(entries));
    assert_eq!(results[0], Ok(()));
    assert_eq!(
        code(results[1].clone().unwrap_err()),
        codes::RECEIPT_HANDLE_IS_INVALID
    );
    assert_eq!(results[2], Ok(()));
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    let visible: Vec<String> = q
        .receive_now(10, None)
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(visible, vec![got[0].message_id.clone()]);
}

#[test]
fn snapshot_lists_live_and_deleted_messages() {
    let (clock, q) = setup();
    let a = q.send("a", attrs(&[("k", "v")]));
    let b = q.send("b", BTreeMap::new());
    let _c = q.send("c", BTreeMap::new());
    let got = q.receive_now(2, None);
    clock.advance(SECOND);
    q.delete_now(&got[0].receipt_handle).unwrap();
    let snap = q.snapshot();
    assert_eq!(snap.len(), 3);
    assert_eq!(snap[0].message_id, a);
    assert!(snap[0].deleted);
    assert!(!snap[0].visible);
    assert_eq!(snap[0].message_attributes, attrs(&[("k", "v")]));
    assert_eq!(q.deleted_at(&a), Some(Time::from_millis(1000)));
    assert_eq!(snap[1].message_id, b);
    assert!(!snap[1].deleted && !snap[1].visible);
    assert_eq!(snap[1].receive_count, 1);
    assert_eq!(snap[1].first_received_at, Some(Time::ZERO));
    assert!(snap[2].visible);
    assert_eq!(snap[2].receive_count, 0);
    assert_eq!(q.len(), 2);
}

#[test]
fn without_retention_deleted_messages_are_dropped_but_their_handles_known() {
    let clock = Clock::virtual_clock();
    let q = MockQueue::with_options(
        "q",
        &clock,
        QueueOptions {
            retain_deleted: false,
            ..QueueOptions::default()
        },
    );
    q.send("a", BTreeMap::new());
    let m = q.receive_now(1, None).remove(0);
    q.delete_now(&m.receipt_handle).unwrap();
    assert!(q.snapshot().is_empty());
    assert_eq!(q.deleted_at(&m.message_id), None);
    assert_eq!(q.delete_now(&m.receipt_handle), Ok(()));
    let unissued = ReceiptHandle::new(format!("{}/2", m.message_id));
    assert_eq!(
        code(q.delete_now(&unissued).unwrap_err()),
        codes::RECEIPT_HANDLE_IS_INVALID
    );
    assert_eq!(q.deleted_count(), 1);
}

#[test]
fn async_receive_checks_sqs_limits() {
    let (_, q) = setup();
    let request = |max, wait, vis| ReceiveRequest {
        max_messages: max,
        wait_time: wait,
        visibility_timeout: vis,
    };
    for r in [
        request(0, Duration::ZERO, None),
        request(11, Duration::ZERO, None),
        request(1, 21 * SECOND, None),
        request(1, Duration::ZERO, Some(MAX_VISIBILITY_TIMEOUT + SECOND)),
    ] {
        let e = futures::executor::block_on(q.receive(r)).unwrap_err();
        assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE, "{r:?}");
    }
    assert_eq!(q.stats().receive_calls, 0, "rejected before receiving");
}

// Visibility is whole seconds, rounded up, as SQS applies it.

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn receive_visibility_is_rounded_up_to_whole_seconds() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    assert_eq!(q.receive_now(1, Some(ms(800))).len(), 1);
    clock.advance(ms(999));
    assert!(
        q.receive_now(1, None).is_empty(),
        "hidden for 1 s, not 0.8 s"
    );
    clock.advance(ms(1));
    assert_eq!(q.receive_now(1, Some(ms(1001))).len(), 1);
    clock.advance(ms(1999));
    assert!(q.receive_now(1, None).is_empty(), "1.001 s applies as 2 s");
    clock.advance(ms(1));
    assert_eq!(q.receive_now(1, None)[0].receive_count(), 3);
}

#[test]
fn a_sub_second_extension_keeps_a_running_message_hidden() {
    // A heartbeat of a 0.8 s lock timeout extends by 0.8 s: SQS applies
    // 1 s, so the message must not be received again before then.
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let m = q.receive_now(1, Some(SECOND)).remove(0);
    clock.advance(ms(480));
    q.change_visibility_now(&m.receipt_handle, ms(800)).unwrap();
    assert_eq!(q.snapshot()[0].visible_at, Time::from_millis(480 + 1000));
    assert!(q.receive_now(1, None).is_empty(), "not visible at once");
    clock.advance(ms(999));
    assert!(q.receive_now(1, None).is_empty());
    clock.advance(ms(1));
    assert_eq!(q.receive_now(1, None).len(), 1);
}

#[test]
fn async_visibility_is_rounded_like_the_sync_one() {
    let (clock, q) = setup();
    q.send("a", BTreeMap::new());
    let request = ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::ZERO,
        visibility_timeout: Some(ms(300)),
    };
    let got = futures::executor::block_on(q.receive(request)).unwrap();
    assert_eq!(q.snapshot()[0].visible_at, Time::from_millis(1000));
    let entries = vec![(got[0].receipt_handle.clone(), ms(2500))];
    let results = futures::executor::block_on(q.change_visibility_batch(entries));
    assert_eq!(results, [Ok(())]);
    assert_eq!(q.snapshot()[0].visible_at, Time::from_millis(3000));
    clock.advance(ms(2999));
    assert_eq!(q.visible_len(), 0);
    clock.advance(ms(1));
    assert_eq!(q.visible_len(), 1);
}

#[test]
fn queue_default_visibility_is_rounded_up() {
    let clock = Clock::virtual_clock();
    let q = MockQueue::with_options(
        "q",
        &clock,
        QueueOptions {
            visibility_timeout: ms(1500),
            ..QueueOptions::default()
        },
    );
    assert_eq!(q.options().visibility_timeout, 2 * SECOND);
    q.send("x", BTreeMap::new());
    q.receive_now(1, None);
    clock.advance(ms(1999));
    assert!(q.receive_now(1, None).is_empty());
    clock.advance(ms(1));
    assert_eq!(q.receive_now(1, None).len(), 1);
}

#[test]
fn whole_seconds_are_kept_and_twelve_hours_is_the_limit() {
    let (clock, q) = setup();
    q.send("x", BTreeMap::new());
    let m = q.receive_now(1, Some(Duration::ZERO)).remove(0);
    let m2 = q
        .receive_now(1, Some(MAX_VISIBILITY_TIMEOUT - ms(1)))
        .remove(0);
    assert_eq!(m2.receive_count(), 2, "zero stays zero: visible at once");
    assert_eq!(
        q.snapshot()[0].visible_at,
        Time::ZERO + MAX_VISIBILITY_TIMEOUT,
        "just under 12 h rounds up to 12 h, which is allowed"
    );
    clock.advance(SECOND);
    let e = q
        .change_visibility_now(&m2.receipt_handle, MAX_VISIBILITY_TIMEOUT + ms(1))
        .unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    let e = q
        .change_visibility_now(&m.receipt_handle, MAX_VISIBILITY_TIMEOUT + ms(1))
        .unwrap_err();
    assert_eq!(
        code(e),
        codes::INVALID_PARAMETER_VALUE,
        "the limit is checked before the handle, as SQS validates parameters first"
    );
}

#[test]
fn sync_receive_rejects_visibility_over_twelve_hours_before_receiving() {
    let (_, q) = setup();
    q.send("x", BTreeMap::new());
    q.fail_receives(1);
    let e = q
        .try_receive_now(10, Some(MAX_VISIBILITY_TIMEOUT + ms(1)))
        .unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    assert!(q
        .receive_now(10, Some(MAX_VISIBILITY_TIMEOUT + SECOND))
        .is_empty());
    assert_eq!(q.stats().receive_calls, 0);
    assert_eq!(q.stats().injected_faults, 0, "the fault is still pending");
    assert!(q.try_receive_now(10, None).is_err());
    assert_eq!(q.receive_now(10, Some(MAX_VISIBILITY_TIMEOUT)).len(), 1);
}

#[test]
fn queue_options_over_sqs_limits_are_refused() {
    let clock = Clock::virtual_clock();
    let too_long = QueueOptions {
        visibility_timeout: MAX_VISIBILITY_TIMEOUT + ms(1),
        ..QueueOptions::default()
    };
    let e = MockQueue::try_with_options("q", &clock, too_long).unwrap_err();
    assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
    let longest = QueueOptions {
        visibility_timeout: MAX_VISIBILITY_TIMEOUT,
        ..QueueOptions::default()
    };
    assert!(MockQueue::try_with_options("q", &clock, longest).is_ok());
}

#[test]
#[should_panic(expected = "SQS would refuse these queue options")]
fn with_options_panics_on_options_sqs_refuses() {
    let clock = Clock::virtual_clock();
    MockQueue::with_options(
        "q",
        &clock,
        QueueOptions {
            visibility_timeout: Duration::from_secs(13 * 3600),
            ..QueueOptions::default()
        },
    );
}
