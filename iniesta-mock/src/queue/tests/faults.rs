//! Injected faults: each fails or loses the given number of calls (per
//! entry in a batch) and changes nothing.

use iniesta_core::Queue;

use super::*;

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
    assert_eq!(again[0].sqs_message_id, m.sqs_message_id);
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
    assert_eq!(q.snapshot()[0].message_id, got[0].sqs_message_id);
}
