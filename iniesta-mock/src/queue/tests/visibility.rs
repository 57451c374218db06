//! Visibility: the rules of a change, and whole seconds, rounded up as SQS
//! applies them, up to the 12-hour limit.

use iniesta_core::{Queue, ReceiveRequest, Time};

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
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
