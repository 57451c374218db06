//! Inspection: the snapshot of live and deleted messages, with and without
//! retention.

use iniesta_core::{ReceiptHandle, Time};

use super::*;

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
    assert_eq!(q.deleted_at(&m.sqs_message_id), None);
    assert_eq!(q.delete_now(&m.receipt_handle), Ok(()));
    let unissued = ReceiptHandle::new(format!("{}/2", m.sqs_message_id));
    assert_eq!(
        code(q.delete_now(&unissued).unwrap_err()),
        codes::RECEIPT_HANDLE_IS_INVALID
    );
    assert_eq!(q.deleted_count(), 1);
}
