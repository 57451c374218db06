//! Unit tests of [`memory`](super).

use super::*;

const TTL: Duration = Duration::from_secs(10);

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn tok(t: &str) -> LockToken {
    LockToken::new(t)
}

#[test]
fn a_lock_lives_through_its_last_millisecond() {
    let mut n = MemoryNode::new();
    assert_eq!(n.acquire("k", &tok("a"), TTL, s(0)), AcquireReply::Acquired);
    assert_eq!(n.acquire("k", &tok("b"), TTL, s(10)), AcquireReply::Busy);
    let later = s(10) + Duration::from_millis(1);
    assert_eq!(
        n.acquire("k", &tok("b"), TTL, later),
        AcquireReply::Acquired
    );
    assert!(!n.extend("k", &tok("a"), TTL, later));
    assert_eq!(n.locked_len(later), 1);
}

#[test]
fn reacquiring_our_own_lock_renews_it() {
    let mut n = MemoryNode::new();
    n.acquire("k", &tok("a"), TTL, s(0));
    assert_eq!(n.acquire("k", &tok("a"), TTL, s(5)), AcquireReply::Acquired);
    assert_eq!(
        n.state("k", s(5)),
        NodeState::Locked {
            token: tok("a"),
            expires_at: s(15)
        }
    );
}

#[test]
fn only_the_owner_extends_or_releases() {
    let mut n = MemoryNode::new();
    n.acquire("k", &tok("a"), TTL, s(0));
    assert!(!n.extend("k", &tok("b"), TTL, s(1)));
    assert!(!n.release("k", &tok("b"), s(1)));
    assert!(n.extend("k", &tok("a"), s(20), s(1)));
    assert!(matches!(n.state("k", s(21)), NodeState::Locked { .. }));
    assert!(n.release("k", &tok("a"), s(2)));
    assert_eq!(n.state("k", s(2)), NodeState::Free);
    assert!(!n.release("k", &tok("a"), s(2)));
}

#[test]
fn complete_takes_a_free_key_and_our_own_but_never_another_lock() {
    let mut n = MemoryNode::new();
    // Free (never locked): the record is written.
    assert!(n.complete("free", &tok("a"), s(60), s(0)));
    assert_eq!(n.acquire("free", &tok("z"), TTL, s(1)), AcquireReply::Done);
    // Someone else's lock: refused and untouched.
    n.acquire("theirs", &tok("b"), TTL, s(0));
    assert!(!n.complete("theirs", &tok("a"), s(60), s(1)));
    assert_eq!(
        n.state("theirs", s(1)),
        NodeState::Locked {
            token: tok("b"),
            expires_at: s(10)
        }
    );
    // Our own lock, then a retry on our own record: renewed.
    n.acquire("mine", &tok("a"), TTL, s(0));
    assert!(n.complete("mine", &tok("a"), s(60), s(1)));
    assert!(n.complete("mine", &tok("a"), s(60), s(2)));
    assert_eq!(
        n.state("mine", s(2)),
        NodeState::Done {
            token: tok("a"),
            expires_at: s(62)
        }
    );
    // Another owner's record: answered yes, left alone.
    assert!(n.complete("mine", &tok("c"), s(600), s(3)));
    assert_eq!(
        n.state("mine", s(3)),
        NodeState::Done {
            token: tok("a"),
            expires_at: s(62)
        }
    );
    // A record is neither a lock to extend nor one to release.
    assert!(!n.extend("mine", &tok("a"), TTL, s(3)));
    assert!(!n.release("mine", &tok("a"), s(3)));
}

#[test]
fn lifetimes_are_whole_milliseconds() {
    let mut n = MemoryNode::new();
    n.acquire("k", &tok("a"), Duration::from_micros(1_999), s(0));
    assert_eq!(
        n.state("k", s(0)),
        NodeState::Locked {
            token: tok("a"),
            expires_at: Duration::from_millis(1)
        }
    );
    n.acquire("z", &tok("a"), Duration::ZERO, s(0));
    assert!(matches!(n.state("z", s(0)), NodeState::Locked { .. }));
}

#[test]
fn expire_forget_and_clear_lose_what_they_say() {
    let mut n = MemoryNode::new();
    n.acquire("lock", &tok("a"), TTL, s(0));
    n.complete("rec", &tok("a"), TTL, s(0));
    assert!(!n.expire("rec", s(1)), "a record is not a lock");
    assert!(!n.forget("lock", s(1)), "a lock is not a record");
    assert!(n.expire("lock", s(1)));
    assert!(n.forget("rec", s(1)));
    assert_eq!(n.state("lock", s(1)), NodeState::Free);
    assert_eq!(n.state("rec", s(1)), NodeState::Free);
    assert!(!n.expire("lock", s(1)));
    n.acquire("lock", &tok("a"), TTL, s(2));
    assert!(!n.expire("lock", s(20)), "already expired by itself");
    n.acquire("lock", &tok("a"), TTL, s(30));
    n.clear();
    assert_eq!(n.locked_len(s(30)), 0);
}
