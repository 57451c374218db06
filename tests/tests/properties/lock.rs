//! The lock backend every service shares, behind one face ([`SimLock`]), so
//! the world runs the same schedules against either:
//!
//! - [`MockBackend`]: the in-memory `MockLock`, one node;
//! - [`QuorumBackend`]: N `MemoryNode`s (the Lua scripts' semantics) decided
//!   by Redlock's own quorum rules, with faults per node, so that partial
//!   acquires, completes and releases happen.
//!
//! A faulted call hits some nodes: `Fail` (the node never got it) or `Lose`
//! (the node applied it, the reply was lost); the other nodes answer. A
//! node a call could not reach is not reached by that call's undo either.

use std::time::Duration;

use iniesta_core::{AcquireOutcome, LockError, LockKey, LockToken};
use iniesta_mock::{Clock, LockState, MockLock};
use iniesta_redlock::memory::{MemoryNode, NodeState};
use iniesta_redlock::quorum::{drift, NodeAnswer, Quorum, Tally};

use crate::coverage::{saw, Seen};
use crate::schedule::{Backend, Fault};

/// The faults of one backend call: the kind, and which nodes it hits.
#[derive(Clone, Copy)]
pub struct Faults {
    pub fault: Fault,
    pub nodes: u8,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.fault {
            Fault::None => f.write_str("no fault"),
            fault => write!(f, "{fault:?} (nodes {:#b})", self.nodes),
        }
    }
}

impl Faults {
    pub const NONE: Faults = Faults {
        fault: Fault::None,
        nodes: 0,
    };

    fn hits(&self) -> bool {
        matches!(self.fault, Fault::Fail | Fault::Lose)
    }
}

/// The answer to one acquire, with what the world needs to account for it.
pub struct Acquired {
    pub outcome: AcquireOutcome,
    /// The token the attempt wrote, whatever the answer (a lost reply or a
    /// partial acquire may leave it on nodes).
    pub token: Option<LockToken>,
    /// Whether a fault hit the call (so something may linger).
    pub faulted: bool,
}

/// A lock backend as the world drives it: calls at the true time, with
/// faults, and a look inside for the oracles.
pub trait SimLock {
    fn nodes(&self) -> usize;
    /// How many nodes must agree.
    fn needed(&self) -> usize;
    /// `elapsed`: how long since the consumer sent the call, on its clock.
    fn acquire(&mut self, key: &LockKey, ttl: Duration, elapsed: Duration, f: Faults) -> Acquired;
    fn extend(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        ttl: Duration,
        elapsed: Duration,
        f: Faults,
    ) -> (Result<Duration, LockError>, bool);
    fn complete(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        keep_for: Duration,
        f: Faults,
    ) -> (Result<(), LockError>, bool);
    fn release(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        f: Faults,
    ) -> (Result<(), LockError>, bool);
    /// On how many nodes `key` is locked with `token` now.
    fn held_by(&self, key: &str, token: &LockToken) -> usize;
    /// The live locks on `key`: each token with its number of nodes.
    fn holders(&self, key: &str) -> Vec<(LockToken, usize)>;
    /// On how many nodes `key` has a completion record now.
    fn records(&self, key: &str) -> usize;
    /// Loses `key` (lock or record) on node `node` (modulo the nodes), or on
    /// all; whether anything was there.
    fn lose(&mut self, key: &str, node: usize, all: bool) -> bool;
    /// Live locks on all nodes.
    fn locked(&self) -> usize;
}

pub fn backend(kind: Backend, clock: &Clock) -> Box<dyn SimLock> {
    match kind {
        Backend::Mock => Box::new(MockBackend {
            lock: MockLock::new(clock),
        }),
        Backend::Quorum(n) => Box::new(QuorumBackend {
            clock: clock.clone(),
            rules: Quorum::new(n),
            nodes: vec![MemoryNode::new(); n],
            next_token: 0,
        }),
    }
}

fn injected() -> LockError {
    LockError::Unavailable("injected: backend unreachable".into())
}

fn reply_lost() -> LockError {
    LockError::Unavailable("injected: reply lost".into())
}

/// The validity drift a Redlock client subtracts (1 % + 2 ms).
fn drift_of(ttl: Duration) -> Duration {
    drift(ttl, 0.01, Duration::from_millis(2)).unwrap_or(ttl)
}

/// The `MockLock`, one node. Its validities are the full TTL; consumers
/// whose clocks run up to 1 % slow would outlive them, so the validities
/// handed on are shortened by the drift a Redlock client allows for.
pub struct MockBackend {
    lock: MockLock,
}

impl MockBackend {
    fn call<T>(
        &self,
        f: Faults,
        apply: impl FnOnce(&MockLock) -> Result<T, LockError>,
    ) -> (Result<T, LockError>, bool) {
        match f.fault {
            Fault::Fail => (Err(injected()), true),
            Fault::Lose => {
                let _ = apply(&self.lock);
                (Err(reply_lost()), true)
            }
            _ => (apply(&self.lock), false),
        }
    }
}

impl SimLock for MockBackend {
    fn nodes(&self) -> usize {
        1
    }

    fn needed(&self) -> usize {
        1
    }

    fn acquire(&mut self, key: &LockKey, ttl: Duration, _: Duration, f: Faults) -> Acquired {
        if f.fault == Fault::Fail {
            return Acquired {
                outcome: AcquireOutcome::Unavailable(injected()),
                token: None,
                faulted: true,
            };
        }
        let outcome = self.lock.acquire_now(key, ttl);
        let token = match &outcome {
            AcquireOutcome::Acquired { token, .. } => Some(token.clone()),
            _ => None,
        };
        let outcome = match outcome {
            _ if f.fault == Fault::Lose => AcquireOutcome::Unavailable(reply_lost()),
            AcquireOutcome::Acquired { token, validity } => AcquireOutcome::Acquired {
                token,
                validity: validity.saturating_sub(drift_of(ttl)),
            },
            other => other,
        };
        Acquired {
            outcome,
            token,
            faulted: f.hits(),
        }
    }

    fn extend(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        ttl: Duration,
        _: Duration,
        f: Faults,
    ) -> (Result<Duration, LockError>, bool) {
        let (r, faulted) = self.call(f, |l| l.extend_now(key, token, ttl));
        (r.map(|v| v.saturating_sub(drift_of(ttl))), faulted)
    }

    fn complete(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        keep_for: Duration,
        f: Faults,
    ) -> (Result<(), LockError>, bool) {
        self.call(f, |l| l.complete_now(key, token, keep_for))
    }

    fn release(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        f: Faults,
    ) -> (Result<(), LockError>, bool) {
        self.call(f, |l| l.release_now(key, token))
    }

    fn held_by(&self, key: &str, token: &LockToken) -> usize {
        usize::from(
            matches!(self.lock.state(key), LockState::Locked { token: t, .. } if &t == token),
        )
    }

    fn holders(&self, key: &str) -> Vec<(LockToken, usize)> {
        match self.lock.state(key) {
            LockState::Locked { token, .. } => vec![(token, 1)],
            _ => Vec::new(),
        }
    }

    fn records(&self, key: &str) -> usize {
        usize::from(matches!(self.lock.state(key), LockState::Done { .. }))
    }

    fn lose(&mut self, key: &str, _: usize, _: bool) -> bool {
        self.lock.expire(key) || self.lock.forget(key)
    }

    fn locked(&self) -> usize {
        self.lock.locked_len()
    }
}

/// N in-memory Redlock nodes on the true clock, decided by `Quorum`.
pub struct QuorumBackend {
    clock: Clock,
    rules: Quorum,
    nodes: Vec<MemoryNode>,
    next_token: u64,
}

impl QuorumBackend {
    fn now(&self) -> Duration {
        self.clock.now().since_origin()
    }

    /// The nodes a faulted call hits: the bits of `f.nodes`, or one node
    /// when none of its bits names a node.
    fn hit(&self, f: Faults) -> u32 {
        if !f.hits() {
            return 0;
        }
        let all = (1u32 << self.nodes.len()) - 1;
        match u32::from(f.nodes) & all {
            0 => 1 << (usize::from(f.nodes) % self.nodes.len()),
            m => m,
        }
    }

    /// Runs `op` on every node, as the fault allows: one answer per node.
    fn each<R>(
        &mut self,
        f: Faults,
        mut op: impl FnMut(&mut MemoryNode, Duration) -> R,
    ) -> (Vec<NodeAnswer<R>>, u32) {
        let hit = self.hit(f);
        if hit != 0 {
            saw(Seen::NodeFault);
        }
        let now = self.now();
        let answers = self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, node)| {
                if hit & (1 << i) == 0 {
                    return Ok(op(node, now));
                }
                if f.fault == Fault::Lose {
                    let _ = op(node, now);
                    Err(format!("node {i}: reply lost"))
                } else {
                    Err(format!("node {i}: unreachable"))
                }
            })
            .collect();
        (answers, hit)
    }
}

impl SimLock for QuorumBackend {
    fn nodes(&self) -> usize {
        self.nodes.len()
    }

    fn needed(&self) -> usize {
        self.rules.needed()
    }

    fn acquire(&mut self, key: &LockKey, ttl: Duration, elapsed: Duration, f: Faults) -> Acquired {
        if let Err(e) = self.rules.check_ttl(ttl) {
            return Acquired {
                outcome: AcquireOutcome::Unavailable(e),
                token: None,
                faulted: false,
            };
        }
        self.next_token += 1;
        let token = LockToken::new(format!("tok-{}", self.next_token));
        let (answers, hit) = self.each(f, |n, now| n.acquire(key, &token, ttl, now));
        let tally = Tally::of_acquires(answers);
        let decision = self.rules.acquire(key, &token, ttl, elapsed, &tally);
        if decision.undo {
            let now = self.now();
            for (i, node) in self.nodes.iter_mut().enumerate() {
                if hit & (1 << i) == 0 {
                    node.release(key, &token, now);
                }
            }
        }
        Acquired {
            outcome: decision.outcome,
            token: Some(token),
            faulted: hit != 0,
        }
    }

    fn extend(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        ttl: Duration,
        elapsed: Duration,
        f: Faults,
    ) -> (Result<Duration, LockError>, bool) {
        let (answers, hit) = self.each(f, |n, now| n.extend(key, token, ttl, now));
        let tally = Tally::of_writes(answers);
        (self.rules.extend(key, ttl, elapsed, &tally), hit != 0)
    }

    fn complete(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        keep_for: Duration,
        f: Faults,
    ) -> (Result<(), LockError>, bool) {
        let (answers, hit) = self.each(f, |n, now| n.complete(key, token, keep_for, now));
        let tally = Tally::of_writes(answers);
        (self.rules.complete(key, &tally), hit != 0)
    }

    fn release(
        &mut self,
        key: &LockKey,
        token: &LockToken,
        f: Faults,
    ) -> (Result<(), LockError>, bool) {
        let (answers, hit) = self.each(f, |n, now| n.release(key, token, now));
        let tally = Tally::of_writes(answers);
        (self.rules.release(key, &tally), hit != 0)
    }

    fn held_by(&self, key: &str, token: &LockToken) -> usize {
        let now = self.now();
        self.nodes
            .iter()
            .filter(
                |n| matches!(n.state(key, now), NodeState::Locked { token: t, .. } if &t == token),
            )
            .count()
    }

    fn holders(&self, key: &str) -> Vec<(LockToken, usize)> {
        let now = self.now();
        let mut out: Vec<(LockToken, usize)> = Vec::new();
        for n in &self.nodes {
            if let NodeState::Locked { token, .. } = n.state(key, now) {
                match out.iter_mut().find(|(t, _)| *t == token) {
                    Some((_, c)) => *c += 1,
                    None => out.push((token, 1)),
                }
            }
        }
        out
    }

    fn records(&self, key: &str) -> usize {
        let now = self.now();
        self.nodes
            .iter()
            .filter(|n| matches!(n.state(key, now), NodeState::Done { .. }))
            .count()
    }

    fn lose(&mut self, key: &str, node: usize, all: bool) -> bool {
        let now = self.now();
        let n = self.nodes.len();
        let mut lost = false;
        for (i, node_i) in self.nodes.iter_mut().enumerate() {
            if all || i == node % n {
                lost |= node_i.expire(key, now) || node_i.forget(key, now);
            }
        }
        lost
    }

    fn locked(&self) -> usize {
        let now = self.now();
        self.nodes.iter().map(|n| n.locked_len(now)).sum()
    }
}
