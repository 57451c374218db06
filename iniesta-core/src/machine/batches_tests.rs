//! Unit tests of [`batches`](super).

use super::*;

fn ids(ns: &[u64]) -> impl ExactSizeIterator<Item = MessageId> + '_ {
    ns.iter().map(|&n| MessageId(n))
}

#[test]
fn answers_find_their_message_once_in_any_order() {
    let mut t = Table::default();
    let a = t.insert(BatchKind::Acquire, ids(&[1, 2]));
    let d = t.insert(BatchKind::Delete, ids(&[3]));
    assert_ne!(a, d);
    assert_eq!(t.answer(d, 0, BatchKind::Acquire), None, "another kind");
    assert_eq!(t.answer(d, 0, BatchKind::Delete), Some(MessageId(3)));
    assert_eq!(t.answer(d, 0, BatchKind::Delete), None, "answered");
    assert_eq!(t.answer(a, 1, BatchKind::Acquire), Some(MessageId(2)));
    assert_eq!(t.answer(a, 2, BatchKind::Acquire), None, "no such entry");
    assert_eq!(t.answer(a, 0, BatchKind::Acquire), Some(MessageId(1)));
    assert!(t.calls.is_empty() && t.messages.is_empty(), "{t:?}");
    let next = t.insert(BatchKind::Delete, ids(&[4, 5]));
    assert!(next > d, "never reused");
    assert_eq!(t.answer(a, 0, BatchKind::Acquire), None);
    assert_eq!(t.answer(next, 1, BatchKind::Delete), Some(MessageId(5)));
    assert_eq!(t.answer(next, 0, BatchKind::Delete), Some(MessageId(4)));
    assert!(t.calls.is_empty() && t.messages.is_empty(), "{t:?}");
}

#[test]
fn a_call_that_stays_out_leaves_the_window_for_the_overflow() {
    let mut t = Table::default();
    let stuck = t.insert(BatchKind::Complete, ids(&[1, 2]));
    for n in 0..WINDOW as u64 + 10 {
        let b = t.insert(BatchKind::Delete, ids(&[n + 3]));
        assert_eq!(t.answer(b, 0, BatchKind::Delete), Some(MessageId(n + 3)));
    }
    assert!(
        t.calls.len() <= 1 && t.messages.len() <= 1,
        "{} calls",
        t.calls.len()
    );
    assert_eq!(t.overflow.len(), 1);
    assert_eq!(t.answer(stuck, 1, BatchKind::Complete), Some(MessageId(2)));
    assert_eq!(t.answer(stuck, 0, BatchKind::Delete), None, "another kind");
    assert_eq!(t.answer(stuck, 0, BatchKind::Complete), Some(MessageId(1)));
    assert!(t.overflow.is_empty());
}
