//! Unit tests of [`tally`](super).

use super::*;

#[test]
fn acquire_answers_are_sorted() {
    let t = Tally::of_acquires([
        Ok(AcquireReply::Acquired),
        Ok(AcquireReply::Busy),
        Ok(AcquireReply::Done),
        Err("node x: refused".into()),
        Ok(AcquireReply::Acquired),
    ]);
    assert_eq!(
        (t.granted(), t.refused(), t.done(), t.failed()),
        (2, 1, 1, 1)
    );
    assert_eq!(t.answered(), 4);
    assert_eq!(t.errors(), ["node x: refused"]);
}

#[test]
fn write_answers_are_sorted() {
    let t = Tally::of_writes([Ok(true), Ok(false), Err("down".into()), Ok(false)]);
    assert_eq!(
        (t.granted(), t.refused(), t.done(), t.failed()),
        (1, 2, 0, 1)
    );
    assert_eq!(t.answered(), 3);
}
