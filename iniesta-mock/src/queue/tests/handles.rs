//! Receipt handles and deletes: only the latest handle deletes, a stale
//! one is a no-op, one never issued is invalid; ids are unique per clock.

use iniesta_core::ReceiptHandle;

use super::*;

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
        format!("{}/2", m.sqs_message_id),
        format!("{}/0", m.sqs_message_id),
        format!("{}/01", m.sqs_message_id),
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
