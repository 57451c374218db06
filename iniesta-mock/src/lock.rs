//! An in-memory lock backend with completion records.

use std::collections::hash_map::Entry as MapEntry;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use iniesta_core::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken, Time};

use crate::clock::Clock;
use rustc_hash::FxHashMap;

/// The state of one key, after expiry is applied ([`MockLock::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds the key and no completion record exists.
    Free,
    /// Locked with `token` until `expires_at` (exclusive).
    Locked {
        /// The holder's token.
        token: LockToken,
        /// When the lock ends by itself.
        expires_at: Time,
    },
    /// A completion record exists until `expires_at` (exclusive).
    Done {
        /// The token of whoever wrote the record: a retried complete with
        /// it renews the record, any other token leaves it alone.
        token: LockToken,
        /// When the record ends by itself.
        expires_at: Time,
    },
}

/// Counters of lock operations ([`MockLock::stats`]). Operations answered by
/// an injected failure count only as `injected_faults`; ambiguous ones count
/// both as what was applied and as `injected_faults`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockStats {
    /// Acquires that locked the key.
    pub acquired: u64,
    /// Acquires answered `Busy`.
    pub busy: u64,
    /// Acquires answered `Done`.
    pub done: u64,
    /// Successful extends.
    pub extended: u64,
    /// Successful completes.
    pub completed: u64,
    /// Successful releases.
    pub released: u64,
    /// Extends, completes and releases answered `NotHeld`.
    pub not_held: u64,
    /// Operations answered `Unavailable` by an injected fault.
    pub injected_faults: u64,
    /// Calls of [`LockBackend::acquire`] and
    /// [`acquire_each`](LockBackend::acquire_each), whatever the number of
    /// keys: with `acquired`, `busy` and `done`, how well a consumer
    /// batches its acquires (a real backend pays a round trip per call).
    pub acquire_calls: u64,
    /// Calls of [`LockBackend::complete`], whatever the number of entries.
    pub complete_calls: u64,
}

#[derive(Debug, Clone)]
enum Entry {
    Locked { token: LockToken, expires_at: Time },
    Done { token: LockToken, expires_at: Time },
}

impl Entry {
    fn expires_at(&self) -> Time {
        match self {
            Entry::Locked { expires_at, .. } | Entry::Done { expires_at, .. } => *expires_at,
        }
    }
}

#[derive(Default)]
struct State {
    keys: FxHashMap<LockKey, Entry>,
    next_token: u64,
    fail_next: u32,
    ambiguous_next: u32,
    stats: LockStats,
    ops_since_sweep: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Answer `Unavailable`, change nothing.
    Fail,
    /// Apply, then answer `Unavailable`.
    Ambiguous,
}

impl State {
    /// The key's live entry. An expired entry counts as none: it stays in
    /// the map until a write of the key replaces it or a sweep removes it,
    /// so a lookup is one probe of the map.
    fn live(&mut self, key: &str, now: Time) -> Option<&mut Entry> {
        self.keys.get_mut(key).filter(|e| now < e.expires_at())
    }

    /// Removes the entry of `key` if it is live and `which` holds for it;
    /// returns whether it did.
    fn remove_live(&mut self, key: &str, now: Time, which: impl Fn(&Entry) -> bool) -> bool {
        let remove = self.live(key, now).is_some_and(|e| which(e));
        if remove {
            self.keys.remove(key);
        }
        remove
    }

    fn fault(&mut self) -> Fault {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            self.stats.injected_faults += 1;
            Fault::Fail
        } else if self.ambiguous_next > 0 {
            self.ambiguous_next -= 1;
            self.stats.injected_faults += 1;
            Fault::Ambiguous
        } else {
            Fault::None
        }
    }

    /// Drops expired entries now and then, so keys nobody asks about again
    /// do not pile up; amortised O(1) per operation.
    fn maybe_sweep(&mut self, now: Time) {
        self.ops_since_sweep += 1;
        if self.ops_since_sweep >= self.keys.len().max(1024) {
            self.keys.retain(|_, e| now < e.expires_at());
            self.ops_since_sweep = 0;
        }
    }
}

fn unavailable(why: &str) -> LockError {
    LockError::Unavailable(why.to_owned())
}

const INJECTED: &str = "injected fault";
const AMBIGUOUS: &str = "injected fault: the reply was lost (the operation may have been applied)";

struct Inner {
    clock: Clock,
    state: Mutex<State>,
}

/// An in-memory [`LockBackend`]: per key, free, locked (token, expiry) or
/// done (a completion record with its writer's token, until the dedupe
/// window ends), with expiry on the [`Clock`], and fault injection.
///
/// Completing follows the Redis scripts of `iniesta-redlock`: a complete
/// is refused only when someone else holds a live lock on the key; a free
/// key takes the record, so work that outlived its lock is still recorded
/// (see [`complete_now`](Self::complete_now)).
///
/// Tokens are `tok-{n}` from a counter, so runs are repeatable. Validities
/// are the full TTL: there is no network and no drift to subtract.
///
/// Faults count per operation, and each key of a multi-key acquire is one
/// operation. [`fail_next`](Self::fail_next) takes precedence over
/// [`ambiguous_next`](Self::ambiguous_next).
///
/// `MockLock` is a cheap handle: clones share one backend.
///
/// ```
/// use std::time::Duration;
/// use iniesta_core::AcquireOutcome;
/// use iniesta_mock::{Clock, LockState, MockLock};
///
/// let clock = Clock::virtual_clock();
/// let lock = MockLock::new(&clock);
/// let ttl = Duration::from_secs(10);
///
/// let AcquireOutcome::Acquired { token, .. } = lock.acquire_now("sqs:event:1", ttl) else {
///     panic!("a free key is acquired");
/// };
/// assert_eq!(lock.acquire_now("sqs:event:1", ttl), AcquireOutcome::Busy);
///
/// lock.complete_now("sqs:event:1", &token, Duration::from_secs(60)).unwrap();
/// assert_eq!(lock.acquire_now("sqs:event:1", ttl), AcquireOutcome::Done);
///
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(lock.state("sqs:event:1"), LockState::Free);
/// ```
#[derive(Clone)]
pub struct MockLock {
    inner: Arc<Inner>,
}

impl MockLock {
    /// A lock backend with every key free.
    pub fn new(clock: &Clock) -> MockLock {
        MockLock {
            inner: Arc::new(Inner {
                clock: clock.clone(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The clock the backend runs on.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn guard(&self) -> MutexGuard<'_, State> {
        // Every update completes before anything can panic, so a poisoned
        // lock still guards consistent state.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One operation on a lock or record of ours (extend, complete,
    /// release): sweeps now and then; answers `refuse` as `Unavailable`,
    /// changing nothing; takes the next injected fault, where a failure
    /// answers `Unavailable` and changes nothing; runs `op`; counts its
    /// result (`ok` on success, `not_held` otherwise); and after a lost
    /// reply answers `Unavailable` although `op` took effect.
    fn held_op<T>(
        &self,
        refuse: Option<&str>,
        ok: fn(&mut LockStats) -> &mut u64,
        op: impl FnOnce(&mut State, Time) -> Result<T, LockError>,
    ) -> Result<T, LockError> {
        let now = self.inner.clock.now();
        let mut st = self.guard();
        st.maybe_sweep(now);
        if let Some(why) = refuse {
            return Err(unavailable(why));
        }
        let fault = st.fault();
        if fault == Fault::Fail {
            return Err(unavailable(INJECTED));
        }
        let result = op(&mut st, now);
        match result {
            Ok(_) => *ok(&mut st.stats) += 1,
            Err(_) => st.stats.not_held += 1,
        }
        if fault == Fault::Ambiguous {
            Err(unavailable(AMBIGUOUS))
        } else {
            result
        }
    }

    /// Tries to lock `key` for `ttl`:
    /// a completion record → `Done`; a lock (not expired) → `Busy`;
    /// otherwise the key is locked with a fresh token →
    /// `Acquired { token, validity: ttl }`.
    ///
    /// A zero `ttl` is refused with `Unavailable` (as Redis refuses a zero
    /// expiry), changing nothing.
    pub fn acquire_now(&self, key: &str, ttl: Duration) -> AcquireOutcome {
        let now = self.inner.clock.now();
        let mut st = self.guard();
        let out = acquire_one(&mut st, now, LockKey::from(key), ttl);
        st.maybe_sweep(now);
        out
    }

    /// [`acquire_now`](Self::acquire_now) for each key, in order; one
    /// outcome per key.
    pub fn acquire_many_now<S: AsRef<str>>(
        &self,
        keys: &[S],
        ttl: Duration,
    ) -> Vec<AcquireOutcome> {
        let now = self.inner.clock.now();
        let mut st = self.guard();
        let out = keys
            .iter()
            .map(|k| acquire_one(&mut st, now, LockKey::from(k.as_ref()), ttl))
            .collect();
        st.maybe_sweep(now);
        out
    }

    /// Extends our lock on `key` to `ttl` from now; returns the new validity
    /// (`ttl`). Only a lock held with `token` and not expired can be
    /// extended; anything else is `Err(NotHeld)` and changes nothing.
    pub fn extend_now(
        &self,
        key: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        let refuse = ttl.is_zero().then_some("ttl must be positive");
        self.held_op(
            refuse,
            |s| &mut s.extended,
            |st, now| match st.live(key, now) {
                Some(Entry::Locked {
                    token: held,
                    expires_at,
                }) if held == token => {
                    *expires_at = now + ttl;
                    Ok(ttl)
                }
                _ => Err(LockError::NotHeld),
            },
        )
    }

    /// Records that the work on `key` is done, kept for `keep_for` from
    /// now, so that acquires answer `Done` until then. The record MUST NOT
    /// be refused merely because our lock is gone: a handler that finished
    /// after its lock expired still did the work, and without a record a
    /// later duplicate would run it again. So:
    /// - free (never locked, expired, released) → our record is written,
    ///   `Ok`;
    /// - our lock → it becomes our record, `Ok`;
    /// - a record already there → `Ok`; ours is renewed to `keep_for`
    ///   (a complete retried after a lost reply), another owner's is left
    ///   as it is;
    /// - someone else's lock → `Err(NotHeld)`, nothing changes (they may
    ///   still fail, and their message must then be redelivered).
    pub fn complete_now(
        &self,
        key: &str,
        token: &LockToken,
        keep_for: Duration,
    ) -> Result<(), LockError> {
        self.held_op(
            None,
            |s| &mut s.completed,
            |st, now| {
                let record = Entry::Done {
                    token: token.clone(),
                    expires_at: now + keep_for,
                };
                match st.live(key, now) {
                    None => {
                        st.keys.insert(LockKey::from(key), record);
                        Ok(())
                    }
                    Some(entry) => match &*entry {
                        Entry::Locked { token: held, .. } | Entry::Done { token: held, .. }
                            if held == token =>
                        {
                            *entry = record;
                            Ok(())
                        }
                        Entry::Done { .. } => Ok(()),
                        Entry::Locked { .. } => Err(LockError::NotHeld),
                    },
                }
            },
        )
    }

    /// Releases our lock on `key` (compare-and-delete on the token). A lock
    /// not held with `token` (expired, taken by another, completed, free) is
    /// `Err(NotHeld)` and nothing changes.
    pub fn release_now(&self, key: &str, token: &LockToken) -> Result<(), LockError> {
        self.held_op(
            None,
            |s| &mut s.released,
            |st, now| {
                let ours = st.remove_live(
                    key,
                    now,
                    |e| matches!(e, Entry::Locked { token: held, .. } if held == token),
                );
                if ours {
                    Ok(())
                } else {
                    Err(LockError::NotHeld)
                }
            },
        )
    }

    /// The state of `key` now, after expiry.
    pub fn state(&self, key: &str) -> LockState {
        let now = self.inner.clock.now();
        let st = self.guard();
        match st.keys.get(key) {
            Some(e) if now >= e.expires_at() => LockState::Free,
            Some(Entry::Locked { token, expires_at }) => LockState::Locked {
                token: token.clone(),
                expires_at: *expires_at,
            },
            Some(Entry::Done { token, expires_at }) => LockState::Done {
                token: token.clone(),
                expires_at: *expires_at,
            },
            None => LockState::Free,
        }
    }

    /// Keys currently locked (not expired).
    pub fn locked_len(&self) -> usize {
        let now = self.inner.clock.now();
        self.guard()
            .keys
            .values()
            .filter(|e| matches!(e, Entry::Locked { expires_at, .. } if now < *expires_at))
            .count()
    }

    /// Makes the next `n` operations answer `Unavailable` without changing
    /// anything, as when the backend cannot be reached. Replaces any count
    /// left from before.
    pub fn fail_next(&self, n: u32) {
        self.guard().fail_next = n;
    }

    /// Makes the next `n` operations take effect but answer `Unavailable`,
    /// as when the reply is lost: an acquire may have locked the key, a
    /// release may have freed it. Replaces any count left from before.
    pub fn ambiguous_next(&self, n: u32) {
        self.guard().ambiguous_next = n;
    }

    /// Cancels every pending injected fault.
    pub fn clear_faults(&self) {
        let mut st = self.guard();
        st.fail_next = 0;
        st.ambiguous_next = 0;
    }

    /// Makes a held lock on `key` expire now, as if its TTL ran out (a paused
    /// holder, a clock jump on the server). Returns whether a lock was held.
    pub fn expire(&self, key: &str) -> bool {
        let now = self.inner.clock.now();
        self.guard()
            .remove_live(key, now, |e| matches!(e, Entry::Locked { .. }))
    }

    /// Loses the completion record of `key` (a server restart without
    /// persistence, an eviction). Returns whether there was one.
    pub fn forget(&self, key: &str) -> bool {
        let now = self.inner.clock.now();
        self.guard()
            .remove_live(key, now, |e| matches!(e, Entry::Done { .. }))
    }

    /// Counters of outcomes and faults.
    pub fn stats(&self) -> LockStats {
        self.guard().stats
    }
}

fn acquire_one(st: &mut State, now: Time, key: LockKey, ttl: Duration) -> AcquireOutcome {
    if ttl.is_zero() {
        return AcquireOutcome::Unavailable(unavailable("ttl must be positive"));
    }
    let fault = st.fault();
    if fault == Fault::Fail {
        return AcquireOutcome::Unavailable(unavailable(INJECTED));
    }
    // One probe of the map: an expired entry is as good as none, and is
    // overwritten in place.
    let out = match st.keys.entry(key) {
        MapEntry::Occupied(o) if now < o.get().expires_at() => match o.get() {
            Entry::Done { .. } => {
                st.stats.done += 1;
                AcquireOutcome::Done
            }
            Entry::Locked { .. } => {
                st.stats.busy += 1;
                AcquireOutcome::Busy
            }
        },
        slot => {
            st.next_token += 1;
            let token = token_for(st.next_token);
            let locked = Entry::Locked {
                token: token.clone(),
                expires_at: now + ttl,
            };
            match slot {
                MapEntry::Occupied(mut o) => *o.get_mut() = locked,
                MapEntry::Vacant(v) => {
                    v.insert(locked);
                }
            }
            st.stats.acquired += 1;
            AcquireOutcome::Acquired {
                token,
                validity: ttl,
            }
        }
    };
    if fault == Fault::Ambiguous {
        AcquireOutcome::Unavailable(unavailable(AMBIGUOUS))
    } else {
        out
    }
}

impl MockLock {
    /// [`acquire_one`] for each key, in order, under one lock of the state;
    /// `each` makes the answer of a key from its index and outcome. The
    /// keys are shared: a newly locked key is stored without a copy.
    fn acquire_keys<T>(
        &self,
        keys: Vec<LockKey>,
        ttl: Duration,
        each: impl Fn(usize, AcquireOutcome) -> T,
    ) -> Vec<T> {
        let now = self.inner.clock.now();
        let mut st = self.guard();
        st.stats.acquire_calls += 1;
        let out = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| each(i, acquire_one(&mut st, now, k, ttl)))
            .collect();
        st.maybe_sweep(now);
        out
    }
}

/// `tok-{n}`, written on the stack and copied into the token's one
/// allocation.
fn token_for(n: u64) -> LockToken {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut buf = [0u8; 24];
    buf[..4].copy_from_slice(b"tok-");
    buf[4..4 + digits.len()].copy_from_slice(digits.as_bytes());
    LockToken::new(std::str::from_utf8(&buf[..4 + digits.len()]).expect("ASCII"))
}

impl fmt::Debug for MockLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockLock")
            .field("keys", &self.guard().keys.len())
            .finish()
    }
}

/// The async face of the backend: each method calls its `_now` version.
#[async_trait]
impl LockBackend for MockLock {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        self.acquire_keys(keys, ttl, |_, outcome| outcome)
    }

    /// Every key is decided at once, so the answer is one list, numbered
    /// as it is built (the default would build the outcomes, then a second
    /// list of them numbered).
    async fn acquire_each(
        &self,
        keys: Vec<LockKey>,
        ttl: Duration,
        answer: &mut (dyn FnMut(Vec<(usize, AcquireOutcome)>) + Send),
    ) {
        answer(self.acquire_keys(keys, ttl, |index, outcome| (index, outcome)));
    }

    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        self.extend_now(&key, &token, ttl)
    }

    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        self.guard().stats.complete_calls += 1;
        entries
            .iter()
            .map(|(key, token)| self.complete_now(key, token, keep_for))
            .collect()
    }

    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        self.release_now(&key, &token)
    }
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;
