//! The async port: SQS's limits on a receive, and batches, where one too
//! large fails on every entry.

use iniesta_core::{Queue, ReceiptHandle, ReceiveRequest};

use super::*;

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
        (ReceiptHandle::new("nope"), SECOND),
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
        .map(|m| m.sqs_message_id)
        .collect();
    assert_eq!(visible, vec![got[0].sqs_message_id.clone()]);
}
