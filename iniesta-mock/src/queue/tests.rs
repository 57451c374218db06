//! The queue's SQS semantics: its names and receiving (delivery order,
//! hiding and redelivery) here; receipt handles, visibility, faults, the
//! async port and inspection in the modules below.

mod faults;
mod fifo;
mod handles;
mod inspect;
mod port;
mod visibility;

use std::collections::BTreeMap;
use std::time::Duration;

use iniesta_core::{AttributeValue, BackendError};

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
    assert_eq!(first[0].sqs_message_id, a);
    // Back to visible now, then received again with the same timeout:
    // the queue now holds two entries for `a` at the same instant.
    q.change_visibility_now(&first[0].receipt_handle, Duration::ZERO)
        .unwrap();
    let again = q.receive_now(10, None);
    let ids: Vec<_> = again.iter().map(|m| m.sqs_message_id.clone()).collect();
    assert_eq!(ids, [a.clone(), b.clone()], "each once, oldest first");
    assert_eq!(q.visible_len(), 0);
    assert_eq!(q.in_flight_len(), 2);
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    let third = q.receive_now(10, None);
    let ids: Vec<_> = third.iter().map(|m| m.sqs_message_id.clone()).collect();
    assert_eq!(ids, [a.clone(), b.clone()], "each once, oldest first");
    // A deleted message is not returned, even with entries left behind.
    q.delete_now(&third[0].receipt_handle).unwrap();
    clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
    let last = q.receive_now(10, None);
    let ids: Vec<_> = last.iter().map(|m| m.sqs_message_id.clone()).collect();
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
    assert_eq!(m.sqs_message_id, id);
    assert_eq!(m.body, "body");
    assert_eq!(m.message_attributes, attrs(&[("iniesta_pass", "A.b")]));
    assert_eq!(m.attributes.receive_count, Some(1));
    // In ms since the Unix epoch, as SQS stamps them: the virtual clock
    // starts at 2026-01-01T00:00:00Z.
    assert_eq!(m.attributes.sent_timestamp, Some(1_767_225_601_234));
    assert_eq!(
        m.attributes.first_receive_timestamp,
        Some(1_767_225_602_234)
    );
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
    assert_eq!(second[0].sqs_message_id, first[0].sqs_message_id);
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
    assert_eq!(q.receive_now(1, Some(SECOND))[0].sqs_message_id, a);
    clock.advance(2 * SECOND);
    let c = q.send("c", BTreeMap::new());
    let ids: Vec<String> = q
        .receive_now(10, None)
        .into_iter()
        .map(|m| m.sqs_message_id)
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

/// Now on the wall clock, in ms since the Unix epoch.
fn wall_millis() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    u64::try_from(now.expect("a clock after 1970").as_millis()).expect("in range")
}

#[test]
fn timestamps_on_a_real_clock_are_wall_clock_epoch_millis() {
    let before = wall_millis();
    let clock = Clock::real();
    let q = MockQueue::new("q", &clock);
    q.send("x", BTreeMap::new());
    let got = q.receive_now(1, None);
    let after = wall_millis();
    let sent = got[0].attributes.sent_timestamp.expect("stamped");
    let first = got[0].attributes.first_receive_timestamp.expect("stamped");
    assert!(
        (before..=after).contains(&sent) && (sent..=after).contains(&first),
        "{before} <= {sent} <= {first} <= {after}"
    );
}

#[test]
fn timestamps_on_a_source_clock_count_from_the_wall_clock_at_its_creation() {
    // A source already 1 h past its own origin when the clock is built:
    // the stamps count from the wall clock at that moment, not an hour
    // before it, and move as the source does.
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(3_600_000));
    let read = reading.clone();
    let before = wall_millis();
    let clock = Clock::from_source(
        move || Duration::from_millis(read.load(std::sync::atomic::Ordering::SeqCst)),
        |_| Box::pin(futures::future::ready(())),
    );
    let after = wall_millis();
    reading.fetch_add(90_000, std::sync::atomic::Ordering::SeqCst);
    let q = MockQueue::new("q", &clock);
    q.send("x", BTreeMap::new());
    let sent = q.receive_now(1, None)[0].attributes.sent_timestamp;
    let sent = sent.expect("stamped");
    assert!(
        (before + 90_000..=after + 90_000).contains(&sent),
        "{sent} is 90 s after the clock was built ({before}..={after})"
    );
}
