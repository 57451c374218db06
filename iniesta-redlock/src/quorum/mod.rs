//! The Redlock decisions, without IO: from the nodes' answers to one
//! outcome.
//!
//! Redlock is two halves. One asks every node (connections, timeouts,
//! pipelines: [`Redlock`](crate::Redlock)); the other decides what the
//! answers mean (this module). The deciding half reads no clock, draws no
//! randomness and never waits: the nodes' answers and the time the asking
//! took come in as arguments. So the very rules [`Redlock`](crate::Redlock)
//! applies to Redis replies can be driven synchronously, on a virtual clock,
//! over [`MemoryNode`](crate::memory::MemoryNode)s with any mix of node
//! faults, and what a model test checks is the real rule.
//!
//! One call on one key goes like this:
//! 1. send it to every node (all `N`, in parallel) and time it;
//! 2. count the answers in a [`Tally`]; a node that failed or timed out is
//!    an `Err` answer (it may still have applied the call);
//! 3. ask the [`Quorum`] for the decision, and carry it out: an
//!    [`AcquireDecision`] whose `undo` is set MUST be followed by a release
//!    of its token on every node;
//! 4. for acquire only: when [`AcquireDecision::retry`] says so, and
//!    attempts are left, go back to 1 with a fresh token after a pause
//!    (after the undo: a stale token of ours would answer `Busy`).
//!
//! Node faults in a model are answers, not errors to simulate elsewhere:
//! - a node that is down: do not call it, count `Err(reason)`;
//! - a lost reply: call it (the call takes effect), discard the reply,
//!   count `Err(reason)`;
//! - a partial acquire or complete: some nodes answer, the others fail;
//! - a server that loses a lock or a record:
//!   [`MemoryNode::expire`](crate::memory::MemoryNode::expire) /
//!   [`forget`](crate::memory::MemoryNode::forget);
//! - clock skew: give each node its own `now`.
//!
//! ```
//! use std::time::Duration;
//! use iniesta_core::ports::{AcquireOutcome, LockToken};
//! use iniesta_redlock::memory::MemoryNode;
//! use iniesta_redlock::quorum::{Quorum, Tally};
//!
//! let rules = Quorum::new(3);
//! let mut nodes = vec![MemoryNode::new(); 3];
//! let (key, ttl) = ("sqs:event:1f2e", Duration::from_secs(10));
//! let now = Duration::from_secs(100); // the virtual clock
//! let elapsed = Duration::from_millis(5); // how long the round trip took
//!
//! // Node 2 is down; nodes 0 and 1 run the acquire script.
//! let token = LockToken::new("t-1");
//! let tally = Tally::of_acquires(nodes.iter_mut().enumerate().map(|(i, node)| {
//!     if i == 2 {
//!         Err("node 2: connection refused".to_string())
//!     } else {
//!         Ok(node.acquire(key, &token, ttl, now))
//!     }
//! }));
//! let decision = rules.acquire(key, &token, ttl, elapsed, &tally);
//! if decision.undo {
//!     for node in &mut nodes {
//!         node.release(key, &token, now);
//!     }
//! }
//! // Two of three is a majority: held for 10 s − 5 ms − (100 + 2) ms.
//! assert_eq!(
//!     decision.outcome,
//!     AcquireOutcome::Acquired { token: token.clone(), validity: Duration::from_millis(9_893) }
//! );
//!
//! // The work is done: record it on every node that answers.
//! let keep_for = Duration::from_secs(3600);
//! let tally = Tally::of_writes(nodes.iter_mut().map(|n| Ok(n.complete(key, &token, keep_for, now))));
//! assert_eq!(rules.complete(key, &tally), Ok(()));
//!
//! // Anyone acquiring later meets the record.
//! let late = LockToken::new("t-2");
//! let tally = Tally::of_acquires(nodes.iter_mut().map(|n| Ok(n.acquire(key, &late, ttl, now))));
//! assert_eq!(rules.acquire(key, &late, ttl, elapsed, &tally).outcome, AcquireOutcome::Done);
//! ```

mod tally;
mod validity;

use std::fmt::Write as _;
use std::time::Duration;

use iniesta_core::ports::{AcquireOutcome, LockError, LockToken};

pub use tally::{AcquireReply, NodeAnswer, Tally};
pub use validity::{drift, validity};

/// The longest lifetime given to a key on a node, in ms (about 285 000
/// years): longer durations are clamped so `PX` never overflows on Redis.
pub const MAX_NODE_TTL_MS: u64 = 1 << 53;

/// The lifetime a node gives a key asked to live `d`: whole milliseconds
/// (Redis's unit), rounded down so a lock never lives longer than asked,
/// at least 1 ms, at most [`MAX_NODE_TTL_MS`]. Every decision computes its
/// validity from this, not from `d`.
///
/// ```
/// use std::time::Duration;
/// use iniesta_redlock::quorum::node_ttl;
/// assert_eq!(node_ttl(Duration::from_micros(2_999)), Duration::from_millis(2));
/// assert_eq!(node_ttl(Duration::ZERO), Duration::from_millis(1));
/// ```
pub fn node_ttl(d: Duration) -> Duration {
    Duration::from_millis(node_ms(d))
}

/// [`node_ttl`] in whole milliseconds.
pub(crate) fn node_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_NODE_TTL_MS)
}

/// The decision rules of a Redlock over `N` nodes: a majority
/// (`N/2 + 1`) must agree, and a lock is held only for its TTL less the
/// time taken and the allowed clock drift.
///
/// Every method is a pure function of its arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quorum {
    nodes: usize,
    needed: usize,
    drift_factor: f64,
    drift_min: Duration,
}

/// What to do after one acquire of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the outcome is the caller's answer, and `undo` must be carried out"]
pub struct AcquireDecision {
    /// The answer for this key.
    pub outcome: AcquireOutcome,
    /// Whether the caller MUST release this attempt's token on every node
    /// (all `N`, also those that gave no answer: they may have granted it
    /// and lost the reply). Set whenever the lock is not held and some node
    /// granted it or failed to answer. Best effort: what a release misses
    /// expires with its TTL.
    pub undo: bool,
}

impl AcquireDecision {
    /// Whether another attempt may decide differently: only when no
    /// majority could be reached either way
    /// ([`Unavailable`](AcquireOutcome::Unavailable)). `Busy` is final: it
    /// means someone else works on the key, and a retry would only wait
    /// for them while holding up the rest of the batch.
    pub fn retry(&self) -> bool {
        matches!(self.outcome, AcquireOutcome::Unavailable(_))
    }
}

impl Quorum {
    /// The rules for `nodes` nodes, with the default drift (`ttl × 0.01 +
    /// 2 ms`, as [`RedlockConfig`](crate::RedlockConfig)'s defaults).
    pub fn new(nodes: usize) -> Quorum {
        Quorum {
            nodes,
            needed: nodes / 2 + 1,
            drift_factor: 0.01,
            drift_min: Duration::from_millis(2),
        }
    }

    /// These rules with another allowed clock drift (see [`drift`]).
    pub fn with_drift(self, drift_factor: f64, drift_min: Duration) -> Quorum {
        Quorum {
            drift_factor,
            drift_min,
            ..self
        }
    }

    /// How many nodes there are.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// How many nodes must agree: `N/2 + 1`.
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// How long a lock of `ttl` (as [`node_ttl`] stores it) that took
    /// `elapsed` to take or extend is safely held.
    pub fn validity(&self, ttl: Duration, elapsed: Duration) -> Option<Duration> {
        validity(node_ttl(ttl), elapsed, self.drift_factor, self.drift_min)
    }

    /// Refuses a TTL that no acquire could ever hold (not longer than the
    /// drift), so callers answer without asking the nodes.
    pub fn check_ttl(&self, ttl: Duration) -> Result<(), LockError> {
        match self.validity(ttl, Duration::ZERO) {
            Some(_) => Ok(()),
            None => Err(LockError::Unavailable(format!(
                "lock TTL {:?} is not longer than the allowed clock drift; use a TTL of seconds",
                node_ttl(ttl)
            ))),
        }
    }

    /// The decision on one acquire of `key` with `token` for `ttl`, which
    /// took `elapsed` from sending to the last answer:
    /// - a completion record on any node → `Done` (any two majorities
    ///   intersect, so a record written on a majority is always seen);
    /// - granted by a majority with validity left → `Acquired`;
    /// - granted by a majority, too slowly → `Unavailable`;
    /// - refused by so many nodes that no majority is possible even if
    ///   every silent node had granted → `Busy`;
    /// - otherwise (silent nodes kept the answer open) → `Unavailable`.
    pub fn acquire(
        &self,
        key: &str,
        token: &LockToken,
        ttl: Duration,
        elapsed: Duration,
        tally: &Tally,
    ) -> AcquireDecision {
        let partial = tally.granted() > 0 || tally.failed() > 0;
        let (outcome, undo) = if tally.done() > 0 {
            (AcquireOutcome::Done, partial)
        } else if tally.granted() >= self.needed {
            match self.validity(ttl, elapsed) {
                Some(validity) => (
                    AcquireOutcome::Acquired {
                        token: token.clone(),
                        validity,
                    },
                    false,
                ),
                None => (
                    unavailable_outcome(format!(
                        "lock `{key}` was granted by {} of {} nodes but took {elapsed:?}, too long for a TTL of {:?}",
                        tally.granted(),
                        self.nodes,
                        node_ttl(ttl)
                    )),
                    true,
                ),
            }
        } else if self.impossible(tally) {
            (AcquireOutcome::Busy, partial)
        } else {
            (
                unavailable_outcome(self.no_majority("cannot lock", key, tally)),
                partial,
            )
        };
        AcquireDecision { outcome, undo }
    }

    /// The decision on one extend of `key` to `ttl`, which took `elapsed`:
    /// the new validity when a majority extended it in time; `NotHeld` when
    /// no majority can hold our token any more; `Unavailable` otherwise.
    pub fn extend(
        &self,
        key: &str,
        ttl: Duration,
        elapsed: Duration,
        tally: &Tally,
    ) -> Result<Duration, LockError> {
        self.majority_write("cannot extend", key, tally, || {
            self.validity(ttl, elapsed).ok_or_else(|| {
                LockError::Unavailable(format!(
                    "extending `{key}` took {elapsed:?}, too long for a TTL of {:?}; the lock may be lost",
                    node_ttl(ttl)
                ))
            })
        })
    }

    /// The decision on one complete of `key`: `Ok` when a majority holds a
    /// completion record (written now, or found); `NotHeld` when so many
    /// nodes refused (someone else's live lock) that no majority can hold
    /// it; `Unavailable` otherwise.
    pub fn complete(&self, key: &str, tally: &Tally) -> Result<(), LockError> {
        self.majority_write("cannot record completion of", key, tally, || Ok(()))
    }

    /// The decision on one release of `key`: with a majority answering,
    /// `Ok` when any node deleted our lock and `NotHeld` when none did;
    /// `Unavailable` when fewer than a majority answered.
    pub fn release(&self, key: &str, tally: &Tally) -> Result<(), LockError> {
        if tally.answered() < self.needed {
            return Err(LockError::Unavailable(self.no_majority(
                "cannot release",
                key,
                tally,
            )));
        }
        if tally.granted() == 0 {
            return Err(LockError::NotHeld);
        }
        Ok(())
    }

    /// The decision on a write that a majority must grant (extend,
    /// complete): `granted()` when a majority did; `NotHeld` when so many
    /// nodes refused that no majority can; `Unavailable` (saying what
    /// could not be done) otherwise.
    fn majority_write<T>(
        &self,
        what: &str,
        key: &str,
        tally: &Tally,
        granted: impl FnOnce() -> Result<T, LockError>,
    ) -> Result<T, LockError> {
        if tally.granted() >= self.needed {
            return granted();
        }
        if self.impossible(tally) {
            return Err(LockError::NotHeld);
        }
        Err(LockError::Unavailable(self.no_majority(what, key, tally)))
    }

    /// Whether enough nodes said no that a majority can no longer say yes.
    fn impossible(&self, tally: &Tally) -> bool {
        tally.refused() + tally.done() > self.nodes.saturating_sub(self.needed)
    }

    fn no_majority(&self, what: &str, key: &str, tally: &Tally) -> String {
        let mut text = format!(
            "{what} `{key}`: no majority either way ({} granted, {} refused, {} did not answer, of {} nodes; {} needed)",
            tally.granted(),
            tally.refused() + tally.done(),
            tally.failed(),
            self.nodes,
            self.needed
        );
        for (i, e) in tally.errors().iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            let _ = write!(text, "{sep}{e}");
        }
        text
    }
}

fn unavailable_outcome(reason: String) -> AcquireOutcome {
    AcquireOutcome::Unavailable(LockError::Unavailable(reason))
}

#[cfg(test)]
mod tests;
