use super::*;

use AcquireReply::{Acquired as A, Busy as B, Done as D};

const TTL: Duration = Duration::from_secs(10);
const FAST: Duration = Duration::from_millis(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A tally from a compact picture: `Some(reply)` answered, `None` failed.
fn acquires(answers: &[Option<AcquireReply>]) -> Tally {
    Tally::of_acquires(
        answers
            .iter()
            .enumerate()
            .map(|(i, a)| a.ok_or_else(|| format!("node {i}: down"))),
    )
}

fn writes(answers: &[Option<bool>]) -> Tally {
    Tally::of_writes(
        answers
            .iter()
            .enumerate()
            .map(|(i, a)| a.ok_or_else(|| format!("node {i}: down"))),
    )
}

fn decide(n: usize, answers: &[Option<AcquireReply>]) -> AcquireDecision {
    assert_eq!(answers.len(), n);
    let token = LockToken::new("t");
    Quorum::new(n).acquire("k", &token, TTL, FAST, &acquires(answers))
}

fn is_unavailable<T>(r: &Result<T, LockError>) -> bool {
    matches!(r, Err(LockError::Unavailable(_)))
}

#[test]
fn majority_sizes() {
    for (n, q) in [(0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)] {
        assert_eq!(Quorum::new(n).needed(), q, "n = {n}");
        assert_eq!(Quorum::new(n).nodes(), n);
    }
}

#[test]
fn a_majority_of_grants_holds_the_lock() {
    let d = decide(3, &[Some(A), Some(A), None]);
    assert_eq!(
        d.outcome,
        AcquireOutcome::Acquired {
            token: LockToken::new("t"),
            validity: ms(10_000 - 5 - 102)
        }
    );
    assert!(!d.undo && !d.retry());
    let d = decide(5, &[Some(A), Some(A), Some(A), Some(B), Some(B)]);
    assert!(matches!(d.outcome, AcquireOutcome::Acquired { .. }));
    assert!(!d.undo);
}

#[test]
fn one_record_anywhere_is_done_and_our_grants_are_undone() {
    let d = decide(3, &[Some(A), Some(A), Some(D)]);
    assert_eq!(d.outcome, AcquireOutcome::Done);
    assert!(d.undo && !d.retry());
    // Nothing of ours anywhere: nothing to undo.
    let d = decide(3, &[Some(B), Some(D), Some(B)]);
    assert_eq!((d.outcome, d.undo), (AcquireOutcome::Done, false));
    // A silent node may have granted: undo.
    let d = decide(3, &[Some(D), None, Some(B)]);
    assert_eq!((d.outcome, d.undo), (AcquireOutcome::Done, true));
}

#[test]
fn busy_only_when_no_majority_is_possible() {
    // Two of three refused: even a silent node could not make a majority.
    let d = decide(3, &[Some(B), Some(B), None]);
    assert_eq!(d.outcome, AcquireOutcome::Busy);
    assert!(d.undo, "the silent node may have granted");
    assert!(!d.retry(), "busy is never retried");
    let d = decide(3, &[Some(A), Some(B), Some(B)]);
    assert_eq!((d.outcome, d.undo), (AcquireOutcome::Busy, true));
    let d = decide(3, &[Some(B), Some(B), Some(B)]);
    assert_eq!((d.outcome, d.undo), (AcquireOutcome::Busy, false));
    // A split vote among five: three refused.
    let d = decide(5, &[Some(A), Some(A), Some(B), Some(B), Some(B)]);
    assert_eq!(d.outcome, AcquireOutcome::Busy);
}

#[test]
fn silent_nodes_that_could_tip_the_vote_make_it_unavailable() {
    // One granted, one refused, one silent: the silent node decides.
    let d = decide(3, &[Some(A), Some(B), None]);
    assert!(d.retry() && d.undo, "{d:?}");
    let d = decide(5, &[Some(A), Some(A), Some(B), Some(B), None]);
    assert!(d.retry() && d.undo, "{d:?}");
    let d = decide(3, &[None, None, None]);
    assert!(d.retry() && d.undo, "{d:?}");
    let AcquireOutcome::Unavailable(LockError::Unavailable(reason)) =
        decide(3, &[Some(A), None, None]).outcome
    else {
        panic!("expected Unavailable");
    };
    assert!(reason.contains("node 1: down") && reason.contains("node 2: down"));
    assert!(reason.contains("2 needed"), "{reason}");
}

#[test]
fn a_majority_too_slow_is_unavailable_and_undone() {
    let token = LockToken::new("t");
    let tally = acquires(&[Some(A), Some(A), Some(A)]);
    let rules = Quorum::new(3);
    let d = rules.acquire("k", &token, TTL, ms(9_898), &tally);
    assert!(d.retry() && d.undo, "{d:?}");
    let d = rules.acquire("k", &token, TTL, ms(9_897), &tally);
    assert_eq!(
        d.outcome,
        AcquireOutcome::Acquired {
            token,
            validity: ms(1)
        }
    );
}

#[test]
fn validity_uses_the_whole_milliseconds_a_node_stores() {
    let rules = Quorum::new(1).with_drift(0.0, Duration::ZERO);
    assert_eq!(
        rules.validity(Duration::from_micros(10_999), Duration::ZERO),
        Some(ms(10))
    );
    assert_eq!(node_ttl(Duration::MAX), ms(MAX_NODE_TTL_MS));
    assert!(rules.check_ttl(ms(1)).is_ok());
    let strict = Quorum::new(3);
    assert!(
        strict.check_ttl(ms(2)).is_err(),
        "not longer than the drift"
    );
    assert!(strict.check_ttl(ms(3)).is_ok());
}

#[test]
fn extend_decisions() {
    let rules = Quorum::new(3);
    let t = |a: &[Option<bool>]| writes(a);
    assert_eq!(
        rules.extend("k", TTL, FAST, &t(&[Some(true), Some(true), None])),
        Ok(ms(9_893))
    );
    assert_eq!(
        rules.extend("k", TTL, FAST, &t(&[Some(true), Some(false), Some(false)])),
        Err(LockError::NotHeld)
    );
    assert!(is_unavailable(&rules.extend(
        "k",
        TTL,
        FAST,
        &t(&[Some(true), Some(false), None])
    )));
    assert!(is_unavailable(&rules.extend(
        "k",
        TTL,
        TTL,
        &t(&[Some(true), Some(true), Some(true)])
    )));
}

#[test]
fn complete_decisions() {
    let rules = Quorum::new(3);
    assert_eq!(
        rules.complete("k", &writes(&[Some(true), None, Some(true)])),
        Ok(())
    );
    assert_eq!(
        rules.complete("k", &writes(&[Some(true), Some(false), Some(false)])),
        Err(LockError::NotHeld)
    );
    assert!(is_unavailable(
        &rules.complete("k", &writes(&[Some(true), Some(false), None]))
    ));
    assert!(is_unavailable(
        &rules.complete("k", &writes(&[Some(true), None, None]))
    ));
}

#[test]
fn release_decisions() {
    let rules = Quorum::new(3);
    assert_eq!(
        rules.release("k", &writes(&[Some(true), Some(false), None])),
        Ok(())
    );
    assert_eq!(
        rules.release("k", &writes(&[Some(false), Some(false), None])),
        Err(LockError::NotHeld)
    );
    assert!(is_unavailable(
        &rules.release("k", &writes(&[Some(true), None, None]))
    ));
}

#[test]
fn no_nodes_never_decide_and_never_panic() {
    let d = decide(0, &[]);
    assert!(d.retry() && !d.undo, "{d:?}");
    let rules = Quorum::new(0);
    assert!(is_unavailable(&rules.complete("k", &Tally::default())));
    assert!(is_unavailable(&rules.release("k", &Tally::default())));
    assert!(is_unavailable(&rules.extend(
        "k",
        TTL,
        FAST,
        &Tally::default()
    )));
}
