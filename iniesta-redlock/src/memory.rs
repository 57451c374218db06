//! One Redlock node in memory: what acquire, extend, complete and release
//! do to a node (as commands or scripts), on a map, on a clock the caller
//! moves.
//!
//! A model test needs nodes it can fail, slow down, restart or make lose a
//! key at any step, and that cost nothing to run ten thousand times. A
//! [`MemoryNode`] is such a node: it does to its map exactly what the
//! commands and scripts of [`Redlock`](crate::Redlock) do to a Redis
//! database, stores
//! the same values (the token for a lock, `done:` + token for a completion
//! record), rounds lifetimes to whole milliseconds as Redis does
//! ([`node_ttl`]), and expires keys as Redis does. Combine several with the
//! [`quorum`](crate::quorum) rules (see its example) to run the real
//! Redlock decisions in memory.
//!
//! The acquire and complete scripts take a whole batch of keys in one call
//! and treat them one after the other, each exactly as a batch of one:
//! calling [`MemoryNode::acquire`] or [`MemoryNode::complete`] once per key,
//! in the batch's order, is the same (a key listed twice meets, the second
//! time, what the first left).
//!
//! Time is an argument: `now` is the time since an origin the caller
//! chooses, and MUST NOT go backwards between calls on one node (a model
//! that wants clock skew gives each node its own origin).

use std::collections::HashMap;
use std::time::Duration;

use iniesta_core::ports::LockToken;

use crate::quorum::{node_ttl, AcquireReply};
use crate::scripts::DONE_PREFIX;

/// What one key of a [`MemoryNode`] holds at some instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// Nothing: never written, expired, released or lost.
    Free,
    /// A lock with `token`.
    Locked {
        /// The holder's token.
        token: LockToken,
        /// The last instant the lock lives (inclusive, as Redis: a key is
        /// gone once the time is past its expiry).
        expires_at: Duration,
    },
    /// A completion record written with `token`.
    Done {
        /// The token of whoever wrote the record.
        token: LockToken,
        /// The last instant the record lives (inclusive).
        expires_at: Duration,
    },
}

/// One node's keys: for each, the stored value and its expiry.
///
/// Every method takes `now` and applies expiry first, as Redis does on
/// access. Replies are those of the scripts: [`AcquireReply`] for acquire,
/// `true`/`false` (`1`/`0`) for extend, complete and release.
///
/// ```
/// use std::time::Duration;
/// use iniesta_core::ports::LockToken;
/// use iniesta_redlock::memory::{MemoryNode, NodeState};
/// use iniesta_redlock::quorum::AcquireReply;
///
/// let mut node = MemoryNode::new();
/// let (ttl, t) = (Duration::from_secs(10), LockToken::new("t-1"));
/// let s = Duration::from_secs;
/// assert_eq!(node.acquire("k", &t, ttl, s(0)), AcquireReply::Acquired);
/// assert_eq!(node.acquire("k", &LockToken::new("t-2"), ttl, s(1)), AcquireReply::Busy);
/// assert!(node.complete("k", &t, s(60), s(2)));
/// assert_eq!(node.state("k", s(2)), NodeState::Done { token: t, expires_at: s(62) });
/// assert_eq!(node.state("k", s(63)), NodeState::Free);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryNode {
    keys: HashMap<String, Stored>,
}

#[derive(Debug, Clone)]
struct Stored {
    value: String,
    expires_at: Duration,
}

impl MemoryNode {
    /// A node with no keys.
    pub fn new() -> MemoryNode {
        MemoryNode::default()
    }

    /// Acquire: a free key takes `token` for `ttl` (`Acquired`); a key
    /// already holding `token` has its lifetime reset to `ttl` (`Acquired`);
    /// a completion record answers `Done`; any other lock answers `Busy`.
    /// (The `SET … NX … GET` a [`Redlock`](crate::Redlock) sends leaves
    /// the lifetime of a key already holding `token` as the first send set
    /// it; that happens only when a pipeline is sent again after a lost
    /// reply, a moment later, and the validity counts from before the first
    /// send, so the decisions are the same.)
    pub fn acquire(
        &mut self,
        key: &str,
        token: &LockToken,
        ttl: Duration,
        now: Duration,
    ) -> AcquireReply {
        match self.get(key, now) {
            None => {
                self.set(key, token.to_string(), ttl, now);
                AcquireReply::Acquired
            }
            Some(v) if v == token.as_str() => {
                self.expire_in(key, ttl, now);
                AcquireReply::Acquired
            }
            Some(v) if v.starts_with(DONE_PREFIX) => AcquireReply::Done,
            Some(_) => AcquireReply::Busy,
        }
    }

    /// The extend script: when the key holds `token`, its lifetime becomes
    /// `ttl` from now (`true`); otherwise nothing changes (`false`).
    pub fn extend(&mut self, key: &str, token: &LockToken, ttl: Duration, now: Duration) -> bool {
        if self.get(key, now) == Some(token.as_str()) {
            self.expire_in(key, ttl, now);
            true
        } else {
            false
        }
    }

    /// The complete script: a free key, our lock or our record becomes our
    /// record kept for `keep_for` (`true`); another owner's record is left
    /// as it is (`true`: the work is recorded); another owner's lock is
    /// left as it is (`false`).
    pub fn complete(
        &mut self,
        key: &str,
        token: &LockToken,
        keep_for: Duration,
        now: Duration,
    ) -> bool {
        let record = format!("{DONE_PREFIX}{token}");
        match self.get(key, now) {
            None => {}
            Some(v) if v == token.as_str() || v == record => {}
            Some(v) => return v.starts_with(DONE_PREFIX),
        }
        self.set(key, record, keep_for, now);
        true
    }

    /// The release script: deletes the key when it holds `token` (`true`);
    /// otherwise nothing changes (`false`; a record is never deleted).
    pub fn release(&mut self, key: &str, token: &LockToken, now: Duration) -> bool {
        if self.get(key, now) == Some(token.as_str()) {
            self.keys.remove(key);
            true
        } else {
            false
        }
    }

    /// Loses the lock on `key`, as if its TTL ran out early (a server
    /// clock jump, an eviction). Returns whether a live lock was there.
    pub fn expire(&mut self, key: &str, now: Duration) -> bool {
        let lock = matches!(self.state(key, now), NodeState::Locked { .. });
        if lock {
            self.keys.remove(key);
        }
        lock
    }

    /// Loses the completion record of `key` (a restart without persistence,
    /// an eviction). Returns whether a live record was there.
    pub fn forget(&mut self, key: &str, now: Duration) -> bool {
        let record = matches!(self.state(key, now), NodeState::Done { .. });
        if record {
            self.keys.remove(key);
        }
        record
    }

    /// Loses every key, as a restart without persistence does.
    pub fn clear(&mut self) {
        self.keys.clear();
    }

    /// What `key` holds at `now`.
    pub fn state(&self, key: &str, now: Duration) -> NodeState {
        match self.keys.get(key) {
            Some(s) if now <= s.expires_at => match s.value.strip_prefix(DONE_PREFIX) {
                Some(token) => NodeState::Done {
                    token: LockToken::new(token),
                    expires_at: s.expires_at,
                },
                None => NodeState::Locked {
                    token: LockToken::new(&s.value),
                    expires_at: s.expires_at,
                },
            },
            _ => NodeState::Free,
        }
    }

    /// How many live locks the node holds at `now` (records not counted).
    pub fn locked_len(&self, now: Duration) -> usize {
        self.keys
            .values()
            .filter(|s| now <= s.expires_at && !s.value.starts_with(DONE_PREFIX))
            .count()
    }

    /// The live value of `key` (an expired one is dropped on the way).
    fn get(&mut self, key: &str, now: Duration) -> Option<&str> {
        if self.keys.get(key).is_some_and(|s| now > s.expires_at) {
            self.keys.remove(key);
        }
        self.keys.get(key).map(|s| s.value.as_str())
    }

    /// `SET key value PX ttl`.
    fn set(&mut self, key: &str, value: String, ttl: Duration, now: Duration) {
        let expires_at = now.saturating_add(node_ttl(ttl));
        self.keys
            .insert(key.to_owned(), Stored { value, expires_at });
    }

    /// `PEXPIRE key ttl` on a live key.
    fn expire_in(&mut self, key: &str, ttl: Duration, now: Duration) {
        if let Some(s) = self.keys.get_mut(key) {
            s.expires_at = now.saturating_add(node_ttl(ttl));
        }
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
