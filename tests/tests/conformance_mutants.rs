//! Every check of the lock backend conformance suite can fail: each mutant
//! below is the `MockLock` with one rule broken, and the suite must name
//! the check of that rule among its failures.

use std::time::Duration;

use async_trait::async_trait;
use iniesta_core::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};
use iniesta_mock::conformance::{check_backend, Conformance, Timing, CHECKS};
use iniesta_mock::{Clock, LockState, MockLock};

/// One broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// An empty acquire answers one made-up outcome.
    AnswersEmptyBatch,
    /// Validity longer than the TTL.
    OverstatesValidity,
    /// A held key is answered `Done`.
    BusyAsDone,
    /// Every token is the same text.
    SameTokenForAll,
    /// Release ignores the token.
    ReleasesAnyLock,
    /// Release leaves the key locked.
    ReleaseKeepsLock,
    /// Release deletes completion records too.
    ReleasesRecords,
    /// A retried complete (our record already there) is refused.
    RetriedCompleteRefused,
    /// Complete on a free key is refused.
    RefusesFreeComplete,
    /// Complete replaces another owner's live lock.
    CompleteTakesOtherLock,
    /// Acquire outcomes come back reversed.
    ReversedAcquire,
    /// Complete results come back reversed.
    ReversedComplete,
    /// A key asked twice in one batch is acquired twice.
    DoubleLocksSameKey,
    /// acquire_each answers the first key twice.
    AnswersTwice,
    /// acquire_each waits for a Busy key to free up.
    RetriesBusy,
    /// Locks live ten times their TTL.
    LocksOutliveTtl,
    /// Extend answers Ok without extending.
    ExtendDoesNothing,
    /// Records are kept only a tenth of keep_for.
    RecordsExpireEarly,
    /// Complete of another owner's record renews it to our keep_for.
    RenewsOtherRecord,
}

const FLAWS: &[(Flaw, &str)] = &[
    (Flaw::AnswersEmptyBatch, "empty_batches"),
    (Flaw::OverstatesValidity, "acquire_free_key"),
    (Flaw::BusyAsDone, "acquire_held_key_is_busy"),
    (Flaw::SameTokenForAll, "tokens_are_unique"),
    (Flaw::ReleasesAnyLock, "foreign_token_changes_nothing"),
    (Flaw::ReleaseKeepsLock, "release_frees_key"),
    (Flaw::ReleasesAnyLock, "release_retried_is_harmless"),
    (Flaw::ReleasesRecords, "complete_turns_lock_into_record"),
    (Flaw::RetriedCompleteRefused, "complete_retried_is_ok"),
    (
        Flaw::RefusesFreeComplete,
        "complete_on_free_key_writes_record",
    ),
    (
        Flaw::CompleteTakesOtherLock,
        "complete_refused_by_other_live_lock",
    ),
    (Flaw::ReversedAcquire, "batch_acquire_in_request_order"),
    (Flaw::ReversedComplete, "batch_complete_in_request_order"),
    (
        Flaw::DoubleLocksSameKey,
        "batch_with_same_key_twice_locks_once",
    ),
    (Flaw::AnswersTwice, "acquire_each_answers_every_key_once"),
    (Flaw::RetriesBusy, "acquire_each_never_retries_busy"),
    (Flaw::LocksOutliveTtl, "lock_expires_after_ttl"),
    (Flaw::ExtendDoesNothing, "extend_keeps_lock"),
    (
        Flaw::RefusesFreeComplete,
        "complete_after_expiry_writes_record",
    ),
    (
        Flaw::RecordsExpireEarly,
        "record_outlives_lock_for_keep_for",
    ),
    (Flaw::RenewsOtherRecord, "complete_keeps_other_record"),
];

#[derive(Clone)]
struct Mutant {
    lock: MockLock,
    flaw: Flaw,
}

impl Mutant {
    fn outcome(&self, key: &LockKey, asked: Duration) -> AcquireOutcome {
        // Stored for ten times the TTL, reported as asked.
        let ttl = match self.flaw {
            Flaw::LocksOutliveTtl => asked * 10,
            _ => asked,
        };
        let before = self.lock.state(key);
        let out = match (self.flaw, &before) {
            (Flaw::BusyAsDone, LockState::Locked { .. }) => AcquireOutcome::Done,
            (Flaw::DoubleLocksSameKey, LockState::Locked { token, .. }) => {
                AcquireOutcome::Acquired {
                    token: token.clone(),
                    validity: ttl,
                }
            }
            _ => self.lock.acquire_now(key, ttl),
        };
        match (self.flaw, out) {
            (Flaw::OverstatesValidity, AcquireOutcome::Acquired { token, validity }) => {
                AcquireOutcome::Acquired {
                    token,
                    validity: validity * 2,
                }
            }
            (Flaw::LocksOutliveTtl, AcquireOutcome::Acquired { token, .. }) => {
                AcquireOutcome::Acquired {
                    token,
                    validity: asked,
                }
            }
            (Flaw::SameTokenForAll, AcquireOutcome::Acquired { validity, .. }) => {
                // The lock is stored under its real token; the caller gets
                // one that all callers share.
                AcquireOutcome::Acquired {
                    token: LockToken::new("same"),
                    validity,
                }
            }
            (_, out) => out,
        }
    }

    fn complete_one(
        &self,
        key: &LockKey,
        token: &LockToken,
        keep_for: Duration,
    ) -> Result<(), LockError> {
        let keep_for = match self.flaw {
            Flaw::RecordsExpireEarly => keep_for / 10,
            _ => keep_for,
        };
        match (self.flaw, self.lock.state(key)) {
            (Flaw::RefusesFreeComplete, LockState::Free) => Err(LockError::NotHeld),
            (Flaw::RetriedCompleteRefused, LockState::Done { token: t, .. }) if &t == token => {
                Err(LockError::NotHeld)
            }
            (Flaw::CompleteTakesOtherLock, LockState::Locked { token: t, .. }) if &t != token => {
                self.lock.expire(key);
                self.lock.complete_now(key, token, keep_for)
            }
            (Flaw::RenewsOtherRecord, LockState::Done { token: t, .. }) if &t != token => {
                self.lock.forget(key);
                self.lock.complete_now(key, token, keep_for)
            }
            _ => self.lock.complete_now(key, token, keep_for),
        }
    }
}

#[async_trait]
impl LockBackend for Mutant {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        if keys.is_empty() && self.flaw == Flaw::AnswersEmptyBatch {
            return vec![AcquireOutcome::Busy];
        }
        let mut out: Vec<AcquireOutcome> = keys.iter().map(|k| self.outcome(k, ttl)).collect();
        if self.flaw == Flaw::ReversedAcquire {
            out.reverse();
        }
        out
    }

    async fn acquire_each(
        &self,
        keys: Vec<LockKey>,
        ttl: Duration,
        answer: &mut (dyn FnMut(Vec<(usize, AcquireOutcome)>) + Send),
    ) {
        let mut out: Vec<(usize, AcquireOutcome)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let mut outcome = self.outcome(key, ttl);
            if self.flaw == Flaw::RetriesBusy {
                while outcome == AcquireOutcome::Busy {
                    self.lock.clock().advance(Duration::from_secs(1));
                    outcome = self.outcome(key, ttl);
                }
            }
            out.push((i, outcome));
        }
        if self.flaw == Flaw::AnswersTwice {
            if let Some(first) = out.first().cloned() {
                answer(vec![first]);
            }
        }
        answer(out);
    }

    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        if self.flaw == Flaw::ExtendDoesNothing {
            return match self.lock.state(&key) {
                LockState::Locked { token: t, .. } if t == token => Ok(ttl),
                _ => Err(LockError::NotHeld),
            };
        }
        self.lock.extend_now(&key, &token, ttl)
    }

    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        let mut out: Vec<_> = entries
            .iter()
            .map(|(k, t)| self.complete_one(k, t, keep_for))
            .collect();
        if self.flaw == Flaw::ReversedComplete {
            out.reverse();
        }
        out
    }

    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        match (self.flaw, self.lock.state(&key)) {
            (Flaw::ReleasesAnyLock, LockState::Locked { .. }) => {
                self.lock.expire(&key);
                Ok(())
            }
            (Flaw::ReleaseKeepsLock, LockState::Locked { token: t, .. }) if t == token => Ok(()),
            (Flaw::ReleasesRecords, LockState::Done { .. }) => {
                self.lock.forget(&key);
                Ok(())
            }
            _ => self.lock.release_now(&key, &token),
        }
    }
}

#[test]
fn every_check_catches_its_mutant() {
    let mut missed = Vec::new();
    for &(flaw, check) in FLAWS {
        let clock = Clock::virtual_clock();
        let mutant = Mutant {
            lock: MockLock::new(&clock),
            flaw,
        };
        let report = futures::executor::block_on(
            Conformance::new(Timing::virtual_time())
                .only([check])
                .run(|| mutant.clone(), &clock),
        );
        match report.result(check) {
            Some(r) if r.failure.is_some() => {
                eprintln!(
                    "{flaw:?} caught by {check}: {}",
                    r.failure.as_deref().unwrap_or("")
                )
            }
            _ => missed.push(format!("{flaw:?} was not caught by {check}:\n{report}")),
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

#[test]
fn every_check_has_a_mutant() {
    for check in CHECKS {
        assert!(
            FLAWS.iter().any(|(_, c)| *c == check.name),
            "no mutant for {}",
            check.name
        );
    }
}

#[test]
fn a_sound_backend_passes_and_failures_are_reported_whole() {
    let clock = Clock::virtual_clock();
    let lock = MockLock::new(&clock);
    let report = futures::executor::block_on(check_backend(
        || lock.clone(),
        &clock,
        Timing::virtual_time(),
    ));
    assert!(report.passed(), "{report}");

    let clock = Clock::virtual_clock();
    let mutant = Mutant {
        lock: MockLock::new(&clock),
        flaw: Flaw::RefusesFreeComplete,
    };
    let report = futures::executor::block_on(check_backend(
        || mutant.clone(),
        &clock,
        Timing::virtual_time(),
    ));
    assert!(!report.passed());
    let text = report.to_string();
    assert!(
        text.contains("FAIL  complete_on_free_key_writes_record"),
        "{text}"
    );
    assert!(text.contains("ok    acquire_free_key"), "{text}");
    assert_eq!(report.results().len(), CHECKS.len());
}

#[test]
fn unknown_check_names_fail_the_run() {
    let clock = Clock::virtual_clock();
    let lock = MockLock::new(&clock);
    let report = futures::executor::block_on(
        Conformance::new(Timing::virtual_time())
            .only(["no_such_check"])
            .run(|| lock.clone(), &clock),
    );
    assert!(!report.passed());
    assert!(report.to_string().contains("no_such_check"), "{report}");
}

#[test]
fn too_short_a_keep_for_fails_the_run() {
    let clock = Clock::virtual_clock();
    let lock = MockLock::new(&clock);
    let mut timing = Timing::virtual_time();
    timing.keep_for = timing.ttl;
    let report = futures::executor::block_on(check_backend(|| lock.clone(), &clock, timing));
    assert!(!report.passed());
    assert!(report.to_string().contains("FAIL  timing"), "{report}");
}
