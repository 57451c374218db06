//! A conformance suite for [`LockBackend`] implementations, and (in
//! [`fifo`]) one for FIFO topics and queues.
//!
//! The consumer's guarantees (one dispatch of a key at a time, nothing
//! lost, effectively once within the dedupe window) rest on a handful of
//! lock backend rules, written as MUST rules on [`LockBackend`]. This
//! suite checks each of them against a running backend, as its own named
//! check with a message that says what was expected; [`CHECKS`] lists
//! them. The in-memory [`MockLock`](crate::MockLock), Redlock and the
//! DynamoDB backend all pass it, and a backend of your own should too.
//!
//! What a backend is asked for:
//! - `make`: a function returning a fresh *client* of one shared backend
//!   (a clone of a `MockLock`, a new `Redlock` over the same servers, a new
//!   `DynamoLock` on the same table). Each client acts as another owner:
//!   the checks use two or three of them to prove that one owner's token
//!   never works for another.
//! - a [`ConformanceClock`]: how to let time pass. A virtual
//!   [`Clock`] is moved at once; real time ([`WallClock`], or a real
//!   `Clock`) is slept through. On real time, use short TTLs ([`Timing::real_time`]
//!   with 1–2 s): the timed checks run side by side, so the whole suite
//!   waits about `keep_for` plus a little, once.
//!
//! Keys are `{prefix}{check}/{name}`; give each run a prefix of its own
//! ([`Conformance::key_prefix`]) when the backend keeps state between runs,
//! since records written by one run would answer `Done` to the next.
//!
//! ```
//! use iniesta_mock::conformance::{check_backend, Timing};
//! use iniesta_mock::{Clock, MockLock};
//!
//! let clock = Clock::virtual_clock();
//! let lock = MockLock::new(&clock);
//! let report = futures::executor::block_on(check_backend(
//!     || lock.clone(),
//!     &clock,
//!     Timing::virtual_time(),
//! ));
//! assert!(report.passed(), "{report}");
//! assert_eq!(report.results().len(), iniesta_mock::conformance::CHECKS.len());
//! ```
//!
//! On a real backend, in a test on any async runtime:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use iniesta_core::LockBackend;
//! use iniesta_mock::conformance::{Conformance, Timing, WallClock};
//!
//! # async fn run<L: LockBackend>(make_client: impl Fn() -> L + Sync) {
//! Conformance::new(Timing::real_time(Duration::from_secs(1)))
//!     .key_prefix("conformance-7f3a:")
//!     .run(make_client, &WallClock)
//!     .await
//!     .assert_passed();
//! # }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use futures::future::{self, BoxFuture, Either, FutureExt};
use iniesta_core::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};

use crate::clock::Clock;

/// How the suite lets time pass for the backend.
pub trait ConformanceClock: Send + Sync {
    /// Lets at least `d` pass as the backend sees time: move a virtual
    /// clock, or sleep.
    fn pass(&self, d: Duration) -> BoxFuture<'_, ()>;

    /// Whether time moves only through [`pass`](Self::pass). The checks
    /// then run one at a time (one check moving time must not age another
    /// check's keys); on real time they run side by side, so their waits
    /// overlap.
    fn is_virtual(&self) -> bool;
}

impl ConformanceClock for Clock {
    fn pass(&self, d: Duration) -> BoxFuture<'_, ()> {
        if Clock::is_virtual(self) {
            self.advance(d);
            future::ready(()).boxed()
        } else {
            // Wall time on a real clock; the source's own wait on a source
            // clock (whose time a timer thread would not move).
            self.sleep(d)
        }
    }

    fn is_virtual(&self) -> bool {
        Clock::is_virtual(self)
    }
}

/// Wall time, for backends on real servers. Waits on a timer thread of its
/// own, so it works under any async runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl ConformanceClock for WallClock {
    fn pass(&self, d: Duration) -> BoxFuture<'_, ()> {
        futures_timer::Delay::new(d).boxed()
    }

    fn is_virtual(&self) -> bool {
        false
    }
}

/// The durations the checks use: [`Timing::virtual_time`] or
/// [`Timing::real_time`], with any field changed as the backend needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timing {
    /// The TTL of the locks whose expiry is checked.
    pub ttl: Duration,
    /// How long completion records are kept where that is checked; at
    /// least three times `ttl`, so a record visibly outlives a lock.
    pub keep_for: Duration,
    /// How long past an expiry to wait before expecting it (the backend's
    /// rounding, its clock, slow replies).
    pub slack: Duration,
    /// The TTL and record lifetime of every check that does not wait for
    /// expiry: long, so a slow reply never expires a lock mid-check.
    pub hold: Duration,
    /// On real time, a check still running after this fails.
    pub limit: Duration,
}

impl Timing {
    /// For a virtual clock: a 10 s TTL, records kept 60 s, 1 ms of slack.
    pub fn virtual_time() -> Timing {
        Timing {
            ttl: Duration::from_secs(10),
            keep_for: Duration::from_secs(60),
            slack: Duration::from_millis(1),
            hold: Duration::from_secs(600),
            limit: Duration::from_secs(600),
        }
    }

    /// For real time with locks of `ttl` (1–2 s keeps the suite short):
    /// records kept `3 × ttl`, slack `ttl / 5` (at least 100 ms), other
    /// checks holding their keys for 10 minutes, and a minute per check
    /// on top of its waits.
    pub fn real_time(ttl: Duration) -> Timing {
        let keep_for = ttl.saturating_mul(3);
        Timing {
            ttl,
            keep_for,
            slack: (ttl / 5).max(Duration::from_millis(100)),
            hold: Duration::from_secs(600),
            limit: keep_for.saturating_mul(2) + Duration::from_secs(60),
        }
    }
}

/// One check of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Its name, as reports show it.
    pub name: &'static str,
    /// The rule it checks.
    pub rule: &'static str,
    /// Whether it waits for expiry (on real time: sleeps).
    pub timed: bool,
}

const fn check(name: &'static str, rule: &'static str, timed: bool) -> Check {
    Check { name, rule, timed }
}

/// Every check, in the order they run.
pub const CHECKS: &[Check] = &[
    check(
        "empty_batches",
        "an empty acquire, acquire_each or complete answers nothing",
        false,
    ),
    check(
        "acquire_free_key",
        "a free key is Acquired, with 0 < validity <= ttl",
        false,
    ),
    check(
        "acquire_held_key_is_busy",
        "a key locked by another owner is Busy, and their lock is untouched",
        false,
    ),
    check(
        "tokens_are_unique",
        "every acquired lock gets a token no other lock has",
        false,
    ),
    check(
        "foreign_token_changes_nothing",
        "extend, release and complete with another owner's token are NotHeld and change nothing",
        false,
    ),
    check(
        "release_frees_key",
        "a released key can be acquired at once",
        false,
    ),
    check(
        "release_retried_is_harmless",
        "a release retried after a lost reply is NotHeld and never frees the next owner's lock",
        false,
    ),
    check(
        "complete_turns_lock_into_record",
        "complete makes our lock a record: acquire is Done, extend and release are NotHeld",
        false,
    ),
    check(
        "complete_retried_is_ok",
        "a complete retried after a lost reply is Ok, and completing another owner's record is Ok",
        false,
    ),
    check(
        "complete_on_free_key_writes_record",
        "complete on a free key (never locked, or released) writes the record",
        false,
    ),
    check(
        "complete_refused_by_other_live_lock",
        "complete against another owner's live lock is NotHeld and leaves their lock in place",
        false,
    ),
    check(
        "batch_acquire_in_request_order",
        "a multi-key acquire answers each key, in request order, with mixed outcomes",
        false,
    ),
    check(
        "batch_complete_in_request_order",
        "a multi-entry complete answers each entry, in request order, with mixed outcomes",
        false,
    ),
    check(
        "batch_with_same_key_twice_locks_once",
        "a key asked twice in one acquire is Acquired once and Busy once",
        false,
    ),
    check(
        "acquire_each_answers_every_key_once",
        "acquire_each answers every index exactly once, with the outcomes acquire gives",
        false,
    ),
    check(
        "acquire_each_never_retries_busy",
        "acquire_each answers a held key Busy, once, and leaves the holder's lock in place",
        false,
    ),
    check(
        "lock_expires_after_ttl",
        "a lock is free after its TTL; its old owner's token then works for nothing",
        true,
    ),
    check(
        "extend_keeps_lock",
        "extend moves a lock's expiry: held past the first TTL, free after the extended one",
        true,
    ),
    check(
        "complete_after_expiry_writes_record",
        "complete after our lock expired (nobody took the key) writes the record",
        true,
    ),
    check(
        "record_outlives_lock_for_keep_for",
        "a record outlives the lock's TTL and lasts keep_for, then the key is free",
        true,
    ),
    check(
        "complete_keeps_other_record",
        "completing another owner's record leaves it as it was: it ends when its own keep_for does",
        true,
    ),
];

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name (see [`CHECKS`]).
    pub name: &'static str,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

/// The outcome of a run: one [`CheckResult`] per check run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a report does nothing unless it is checked (e.g. `assert_passed`)"]
pub struct Report {
    /// What was checked, as the report's first line names it.
    suite: &'static str,
    results: Vec<CheckResult>,
}

impl Report {
    /// One result per check run, in [`CHECKS`] order, after any problem
    /// with the run itself (bad timing, an unknown check name).
    pub fn results(&self) -> &[CheckResult] {
        &self.results
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.failure.is_none())
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.failure.is_some())
    }

    /// The result of the check called `name`.
    pub fn result(&self, name: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.name == name)
    }

    /// Panics with the whole report unless every check passed.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        writeln!(
            f,
            "{} conformance: {} of {} checks failed",
            self.suite,
            failed,
            self.results.len()
        )?;
        for r in &self.results {
            match &r.failure {
                None => writeln!(f, "  ok    {}", r.name)?,
                Some(why) => writeln!(f, "  FAIL  {}: {why}", r.name)?,
            }
        }
        Ok(())
    }
}

/// A configured run of the suite.
#[derive(Debug, Clone)]
pub struct Conformance {
    timing: Timing,
    prefix: String,
    only: Option<BTreeSet<String>>,
}

impl Conformance {
    /// The whole suite with `timing`, keys prefixed `conformance:`.
    pub fn new(timing: Timing) -> Conformance {
        Conformance {
            timing,
            prefix: "conformance:".to_owned(),
            only: None,
        }
    }

    /// Prefixes every key with `prefix`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Conformance {
        self.prefix = prefix.into();
        self
    }

    /// Runs only the checks named (a name that is no check fails the run).
    pub fn only<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Conformance {
        self.only = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Runs the checks against the backend whose clients `make` returns.
    pub async fn run<L, M>(&self, make: M, clock: &dyn ConformanceClock) -> Report
    where
        L: LockBackend,
        M: Fn() -> L + Sync,
    {
        let mut results = Vec::new();
        let t = self.timing;
        if t.keep_for <= t.ttl.saturating_mul(2) + t.slack {
            results.push(CheckResult {
                name: "timing",
                failure: Some(format!(
                    "keep_for {:?} must be longer than twice the TTL {:?} plus the slack {:?}",
                    t.keep_for, t.ttl, t.slack
                )),
            });
        }
        if let Some(only) = &self.only {
            for name in only {
                if !CHECKS.iter().any(|c| c.name == name) {
                    results.push(CheckResult {
                        name: "unknown_check",
                        failure: Some(format!("there is no check called {name:?}")),
                    });
                }
            }
        }
        let chosen: Vec<&Check> = CHECKS
            .iter()
            .filter(|c| self.only.as_ref().map_or(true, |o| o.contains(c.name)))
            .collect();
        let runs = chosen.iter().map(|c| {
            let ctx = Ctx {
                make: &make,
                clock,
                t: self.timing,
                prefix: &self.prefix,
                check: c.name,
            };
            async move {
                let failure = if clock.is_virtual() {
                    run_check(&ctx).await.err()
                } else {
                    let limit = clock.pass(self.timing.limit);
                    match future::select(Box::pin(run_check(&ctx)), limit).await {
                        Either::Left((result, _)) => result.err(),
                        Either::Right(_) => {
                            Some(format!("did not finish within {:?}", self.timing.limit))
                        }
                    }
                };
                CheckResult {
                    name: c.name,
                    failure,
                }
            }
        });
        if clock.is_virtual() {
            for run in runs {
                results.push(run.await);
            }
        } else {
            results.extend(future::join_all(runs).await);
        }
        Report {
            suite: "lock backend",
            results,
        }
    }
}

/// Runs the whole suite with `timing` against the backend whose clients
/// `make` returns. See the [module docs](self).
pub async fn check_backend<L, M>(make: M, clock: &dyn ConformanceClock, timing: Timing) -> Report
where
    L: LockBackend,
    M: Fn() -> L + Sync,
{
    Conformance::new(timing).run(make, clock).await
}

// ---------------------------------------------------------------------------
// What the checks share

type Outcome = Result<(), String>;

struct Ctx<'a, L> {
    make: &'a (dyn Fn() -> L + Sync),
    clock: &'a dyn ConformanceClock,
    t: Timing,
    prefix: &'a str,
    check: &'static str,
}

impl<L: LockBackend> Ctx<'_, L> {
    fn owner(&self) -> L {
        (self.make)()
    }

    fn key(&self, name: &str) -> LockKey {
        LockKey::from(format!("{}{}/{name}", self.prefix, self.check))
    }

    async fn pass(&self, d: Duration) {
        self.clock.pass(d).await;
    }

    /// The single outcome of acquiring `key` for `ttl`.
    async fn try_acquire(
        &self,
        lock: &L,
        key: &LockKey,
        ttl: Duration,
    ) -> Result<AcquireOutcome, String> {
        let mut out = lock.acquire(vec![key.clone()], ttl).await;
        if out.len() != 1 {
            return Err(format!(
                "acquire of 1 key answered {} outcomes: {out:?}",
                out.len()
            ));
        }
        Ok(out.remove(0))
    }

    /// Acquires `key` for `ttl`, which must be free; returns the token.
    async fn take(&self, lock: &L, key: &LockKey, ttl: Duration) -> Result<LockToken, String> {
        let outcome = self.try_acquire(lock, key, ttl).await?;
        acquired(&format!("acquire of free key `{key}`"), outcome, ttl)
    }

    /// Expects acquiring `key` (as a new owner) to answer `want`.
    async fn expect_state(&self, key: &LockKey, want: &str, why: &str) -> Outcome {
        let probe = self.owner();
        let outcome = self.try_acquire(&probe, key, self.t.hold).await?;
        if kind(&outcome) == want {
            Ok(())
        } else {
            Err(format!(
                "acquire of `{key}` by a new owner answered {outcome:?}; expected {want} ({why})"
            ))
        }
    }

    async fn complete_one(
        &self,
        lock: &L,
        key: &LockKey,
        token: &LockToken,
        keep_for: Duration,
    ) -> Result<Result<(), LockError>, String> {
        let mut out = lock
            .complete(vec![(key.clone(), token.clone())], keep_for)
            .await;
        if out.len() != 1 {
            return Err(format!(
                "complete of 1 entry answered {} results: {out:?}",
                out.len()
            ));
        }
        Ok(out.remove(0))
    }
}

mod checks;
pub mod fifo;
use checks::{acquired, kind, run_check};
