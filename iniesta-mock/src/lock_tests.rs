//! The mock lock's unit tests: states, expiry, completion records and
//! injected faults, on a virtual clock.

use super::*;

const TTL: Duration = Duration::from_secs(10);

fn setup() -> (Clock, MockLock) {
    let clock = Clock::virtual_clock();
    let lock = MockLock::new(&clock);
    (clock, lock)
}

fn acquired(outcome: AcquireOutcome) -> LockToken {
    match outcome {
        AcquireOutcome::Acquired { token, validity } => {
            assert_eq!(validity, TTL);
            token
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
}

fn is_unavailable<T: fmt::Debug>(r: &Result<T, LockError>) -> bool {
    matches!(r, Err(LockError::Unavailable(_)))
}

#[test]
fn a_held_lock_is_busy_until_it_expires() {
    let (clock, lock) = setup();
    let t1 = acquired(lock.acquire_now("k", TTL));
    assert_eq!(
        lock.state("k"),
        LockState::Locked {
            token: t1.clone(),
            expires_at: Time::ZERO + TTL
        }
    );
    clock.advance(TTL - Duration::from_millis(1));
    assert_eq!(lock.acquire_now("k", TTL), AcquireOutcome::Busy);
    clock.advance(Duration::from_millis(1));
    assert_eq!(lock.state("k"), LockState::Free);
    let t2 = acquired(lock.acquire_now("k", TTL));
    assert_ne!(t1, t2, "a fresh token per acquire");
    // The old holder can do nothing any more.
    assert_eq!(lock.extend_now("k", &t1, TTL), Err(LockError::NotHeld));
    assert_eq!(lock.release_now("k", &t1), Err(LockError::NotHeld));
    assert_eq!(lock.complete_now("k", &t1, TTL), Err(LockError::NotHeld));
    assert!(matches!(lock.state("k"), LockState::Locked { token, .. } if token == t2));
}

#[test]
fn complete_answers_done_until_the_window_ends() {
    let (clock, lock) = setup();
    let t = acquired(lock.acquire_now("k", TTL));
    let window = Duration::from_secs(3600);
    lock.complete_now("k", &t, window).unwrap();
    assert_eq!(
        lock.state("k"),
        LockState::Done {
            token: t.clone(),
            expires_at: Time::ZERO + window
        }
    );
    clock.advance(window - Duration::from_secs(1));
    assert_eq!(lock.acquire_now("k", TTL), AcquireOutcome::Done);
    // The record is not a lock: the token no longer works.
    assert_eq!(lock.release_now("k", &t), Err(LockError::NotHeld));
    clock.advance(Duration::from_secs(1));
    assert_eq!(lock.state("k"), LockState::Free);
    acquired(lock.acquire_now("k", TTL));
}

#[test]
fn complete_after_expiry_still_records_the_work() {
    let (clock, lock) = setup();
    let t = acquired(lock.acquire_now("k", TTL));
    clock.advance(TTL);
    let window = Duration::from_secs(60);
    assert_eq!(lock.complete_now("k", &t, window), Ok(()));
    assert_eq!(
        lock.state("k"),
        LockState::Done {
            token: t,
            expires_at: Time::ZERO + TTL + window
        }
    );
    assert_eq!(lock.acquire_now("k", TTL), AcquireOutcome::Done);
}

#[test]
fn complete_on_a_key_never_locked_writes_the_record() {
    let (_, lock) = setup();
    let t = LockToken::new("tok-77");
    assert_eq!(lock.complete_now("k", &t, TTL), Ok(()));
    assert!(matches!(lock.state("k"), LockState::Done { token, .. } if token == t));
    assert_eq!(lock.acquire_now("k", TTL), AcquireOutcome::Done);
    // And after a release, the key is free for a record too.
    let t2 = acquired(lock.acquire_now("k2", TTL));
    lock.release_now("k2", &t2).unwrap();
    assert_eq!(lock.complete_now("k2", &t2, TTL), Ok(()));
    assert_eq!(lock.acquire_now("k2", TTL), AcquireOutcome::Done);
    assert_eq!(lock.stats().completed, 2);
}

#[test]
fn complete_refuses_someone_elses_lock_and_leaves_it() {
    let (clock, lock) = setup();
    let mine = acquired(lock.acquire_now("k", TTL));
    clock.advance(TTL);
    let theirs = acquired(lock.acquire_now("k", TTL));
    let before = lock.state("k");
    assert_eq!(lock.complete_now("k", &mine, TTL), Err(LockError::NotHeld));
    assert_eq!(lock.state("k"), before);
    assert_eq!(lock.extend_now("k", &theirs, TTL), Ok(TTL));
    assert_eq!(lock.stats().not_held, 1);
}

#[test]
fn a_retried_complete_is_ok_and_renews_only_its_own_record() {
    let (clock, lock) = setup();
    let t = acquired(lock.acquire_now("k", TTL));
    // The first complete is applied but its reply is lost.
    lock.ambiguous_next(1);
    assert!(is_unavailable(&lock.complete_now("k", &t, TTL)));
    clock.advance(Duration::from_secs(1));
    // The retry finds our record: Ok, and the window starts again.
    assert_eq!(lock.complete_now("k", &t, TTL), Ok(()));
    let renewed = Time::ZERO + Duration::from_secs(1) + TTL;
    assert_eq!(
        lock.state("k"),
        LockState::Done {
            token: t.clone(),
            expires_at: renewed
        }
    );
    // Someone else's complete is answered Ok (the work is done) but
    // changes neither the owner nor the window.
    clock.advance(Duration::from_secs(1));
    let other = LockToken::new("tok-999");
    assert_eq!(lock.complete_now("k", &other, TTL * 10), Ok(()));
    assert_eq!(
        lock.state("k"),
        LockState::Done {
            token: t,
            expires_at: renewed
        }
    );
}

#[test]
fn release_with_the_wrong_token_changes_nothing() {
    let (_, lock) = setup();
    let t = acquired(lock.acquire_now("k", TTL));
    let before = lock.state("k");
    assert_eq!(
        lock.release_now("k", &LockToken::new("tok-999")),
        Err(LockError::NotHeld)
    );
    assert_eq!(lock.state("k"), before);
    assert_eq!(lock.release_now("other", &t), Err(LockError::NotHeld));
    lock.release_now("k", &t).unwrap();
    assert_eq!(lock.state("k"), LockState::Free);
    assert_eq!(lock.release_now("k", &t), Err(LockError::NotHeld));
}

#[test]
fn extend_moves_the_expiry_for_the_holder_only() {
    let (clock, lock) = setup();
    let t = acquired(lock.acquire_now("k", TTL));
    clock.advance(Duration::from_secs(8));
    assert_eq!(lock.extend_now("k", &t, TTL), Ok(TTL));
    assert_eq!(
        lock.extend_now("k", &LockToken::new("x"), TTL),
        Err(LockError::NotHeld)
    );
    clock.advance(Duration::from_secs(9));
    assert_eq!(lock.acquire_now("k", TTL), AcquireOutcome::Busy);
    assert_eq!(
        lock.state("k"),
        LockState::Locked {
            token: t,
            expires_at: Time::from_millis(18_000)
        }
    );
}

#[test]
fn fail_next_answers_unavailable_and_changes_nothing() {
    let (_, lock) = setup();
    lock.fail_next(1);
    assert!(matches!(
        lock.acquire_now("k", TTL),
        AcquireOutcome::Unavailable(LockError::Unavailable(_))
    ));
    assert_eq!(lock.state("k"), LockState::Free);
    let t = acquired(lock.acquire_now("k", TTL));
    lock.fail_next(3);
    assert!(is_unavailable(&lock.extend_now("k", &t, TTL * 2)));
    assert!(is_unavailable(&lock.complete_now("k", &t, TTL)));
    assert!(is_unavailable(&lock.release_now("k", &t)));
    assert_eq!(
        lock.state("k"),
        LockState::Locked {
            token: t,
            expires_at: Time::ZERO + TTL
        }
    );
    assert_eq!(lock.stats().injected_faults, 4);
}

#[test]
fn ambiguous_faults_apply_but_answer_unavailable() {
    let (_, lock) = setup();
    lock.ambiguous_next(1);
    assert!(matches!(
        lock.acquire_now("k", TTL),
        AcquireOutcome::Unavailable(_)
    ));
    // The acquire took effect: the key is locked by a token nobody got.
    assert!(matches!(lock.state("k"), LockState::Locked { .. }));
    assert_eq!(lock.acquire_now("k", TTL), AcquireOutcome::Busy);

    let t = acquired(lock.acquire_now("k2", TTL));
    lock.ambiguous_next(1);
    assert!(is_unavailable(&lock.complete_now("k2", &t, TTL)));
    assert_eq!(lock.acquire_now("k2", TTL), AcquireOutcome::Done);

    let t = acquired(lock.acquire_now("k3", TTL));
    lock.ambiguous_next(1);
    assert!(is_unavailable(&lock.release_now("k3", &t)));
    assert_eq!(lock.state("k3"), LockState::Free);
}

#[test]
fn fail_takes_precedence_over_ambiguous() {
    let (_, lock) = setup();
    lock.fail_next(1);
    lock.ambiguous_next(1);
    assert!(matches!(
        lock.acquire_now("k", TTL),
        AcquireOutcome::Unavailable(_)
    ));
    assert_eq!(
        lock.state("k"),
        LockState::Free,
        "first: failed, not applied"
    );
    assert!(matches!(
        lock.acquire_now("k", TTL),
        AcquireOutcome::Unavailable(_)
    ));
    assert!(
        matches!(lock.state("k"), LockState::Locked { .. }),
        "second: applied"
    );
    lock.fail_next(4);
    lock.clear_faults();
    assert_eq!(lock.acquire_now("k", TTL), AcquireOutcome::Busy);
}

#[test]
fn multi_key_acquire_counts_faults_per_key() {
    let (_, lock) = setup();
    let keys = ["a".to_string(), "b".to_string(), "c".to_string()];
    lock.fail_next(1);
    let out = lock.acquire_many_now(&keys, TTL);
    assert!(matches!(out[0], AcquireOutcome::Unavailable(_)));
    assert!(matches!(out[1], AcquireOutcome::Acquired { .. }));
    assert!(matches!(out[2], AcquireOutcome::Acquired { .. }));
    let out = futures::executor::block_on(
        lock.acquire(keys.iter().map(|k| k.as_str().into()).collect(), TTL),
    );
    assert!(matches!(out[0], AcquireOutcome::Acquired { .. }));
    assert_eq!(out[1], AcquireOutcome::Busy);
    assert_eq!(out[2], AcquireOutcome::Busy);
}

#[test]
fn expire_and_forget() {
    let (_, lock) = setup();
    let t = acquired(lock.acquire_now("k", TTL));
    assert!(!lock.forget("k"), "a lock is not a completion record");
    assert!(lock.expire("k"));
    assert_eq!(lock.state("k"), LockState::Free);
    assert_eq!(lock.release_now("k", &t), Err(LockError::NotHeld));
    assert!(!lock.expire("k"));

    let t = acquired(lock.acquire_now("k", TTL));
    lock.complete_now("k", &t, TTL).unwrap();
    assert!(!lock.expire("k"), "a record is not a lock");
    assert!(lock.forget("k"));
    acquired(lock.acquire_now("k", TTL));
}

#[test]
fn zero_ttl_is_refused() {
    let (_, lock) = setup();
    assert!(matches!(
        lock.acquire_now("k", Duration::ZERO),
        AcquireOutcome::Unavailable(_)
    ));
    assert_eq!(lock.state("k"), LockState::Free);
    let t = acquired(lock.acquire_now("k", TTL));
    assert!(is_unavailable(&lock.extend_now("k", &t, Duration::ZERO)));
}

#[test]
fn expired_entries_are_swept() {
    let (clock, lock) = setup();
    for i in 0..3000 {
        lock.acquire_now(&format!("k{i}"), TTL);
    }
    clock.advance(TTL);
    for _ in 0..3000 {
        lock.acquire_now("other", TTL);
    }
    let left = lock.guard().keys.len();
    assert!(left < 10, "{left} entries left after sweeping");
}

#[test]
fn async_face_calls_the_sync_versions() {
    let (_, lock) = setup();
    futures::executor::block_on(async {
        let out = lock.acquire(vec!["k".into()], TTL).await;
        let t = acquired(out.into_iter().next().unwrap());
        assert_eq!(lock.extend("k".into(), t.clone(), TTL).await, Ok(TTL));
        let done = lock.complete(vec![("k".into(), t.clone())], TTL).await;
        assert_eq!(done, vec![Ok(())]);
        assert_eq!(lock.release("k".into(), t).await, Err(LockError::NotHeld));
    });
    assert!(matches!(lock.state("k"), LockState::Done { .. }));
    let s = lock.stats();
    assert_eq!(
        (s.acquired, s.extended, s.completed, s.not_held),
        (1, 1, 1, 1)
    );
}

#[test]
fn port_calls_are_counted_once_whatever_their_size() {
    let (_, lock) = setup();
    let keys = |names: &[&str]| names.iter().map(|&k| k.into()).collect::<Vec<LockKey>>();
    futures::executor::block_on(async {
        let out = lock.acquire(keys(&["a", "b", "c"]), TTL).await;
        let tokens: Vec<_> = out.into_iter().map(acquired).collect();
        lock.acquire_each(keys(&["a", "d"]), TTL, &mut |_| {}).await;
        let entries = keys(&["a", "b", "c"]).into_iter().zip(tokens).collect();
        lock.complete(entries, TTL).await;
    });
    // The per-key forms are not port calls.
    lock.acquire_now("e", TTL);
    lock.acquire_many_now(&["f", "g"], TTL);
    let s = lock.stats();
    assert_eq!((s.acquire_calls, s.complete_calls), (2, 1), "{s:?}");
    assert_eq!((s.acquired, s.busy, s.completed), (7, 1, 3), "{s:?}");
}

#[test]
fn an_expired_lock_or_record_counts_as_none_for_every_operation() {
    let (clock, lock) = setup();
    let t = acquired(lock.acquire_now("k", TTL));
    clock.advance(TTL);
    // Our own lock, expired: not ours to extend or release any more.
    assert_eq!(lock.extend_now("k", &t, TTL), Err(LockError::NotHeld));
    assert_eq!(lock.release_now("k", &t), Err(LockError::NotHeld));
    assert!(!lock.expire("k"));
    assert_eq!(lock.state("k"), LockState::Free);

    // Someone's record, expired: another complete writes its own.
    let window = Duration::from_secs(60);
    let old = LockToken::new("tok-old");
    lock.complete_now("r", &old, window).unwrap();
    clock.advance(window);
    assert!(!lock.forget("r"));
    let new = LockToken::new("tok-new");
    assert_eq!(lock.complete_now("r", &new, window), Ok(()));
    assert!(matches!(lock.state("r"), LockState::Done { token, .. } if token == new));
    // And an expired lock is replaced by a fresh acquire.
    let again = acquired(lock.acquire_now("k", TTL));
    assert_ne!(again, t);
    assert_eq!(lock.extend_now("k", &again, TTL), Ok(TTL));
}
