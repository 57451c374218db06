//! The [`Redlock`] backend: majority decisions over independent nodes.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::join_all;
use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};
use rand::Rng;
use redis::{Script, Value};

use crate::config::{redact_url, RedlockConfig, RedlockError};
use crate::node::{EntryReply, Invocation, Node};
use crate::scripts::{ACQUIRE, COMPLETE, EXTEND, RELEASE};
use crate::validity::validity;

/// The longest TTL or record lifetime sent to Redis, in ms (about 285 000
/// years): longer durations are clamped so `PX` never overflows on the
/// server.
const MAX_PX_MS: u64 = 1 << 53;

/// A [`LockBackend`] on the Redlock algorithm over N independent Redis
/// servers, with completion records for idempotency.
///
/// A lock is held only when a majority (`N/2 + 1`, the quorum) of nodes
/// granted it and time is left of its TTL after subtracting how long that
/// took and the allowed clock drift. Every write is a Lua script that checks
/// the caller's token on the node, so an expired holder cannot disturb the
/// next one. Calls go to all nodes in parallel, each bounded by
/// [`RedlockConfig::node_timeout`]; the keys of one `acquire` batch travel
/// to a node in one pipeline.
///
/// Nodes are connected lazily and reconnected after failures, so a node
/// that is down at start-up or restarted later rejoins by itself. Share one
/// `Redlock` (e.g. in an `Arc`) across tasks.
pub struct Redlock {
    nodes: Vec<Node>,
    quorum: usize,
    config: RedlockConfig,
}

impl fmt::Debug for Redlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redlock")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.label).collect::<Vec<_>>(),
            )
            .field("quorum", &self.quorum)
            .field("config", &self.config)
            .finish()
    }
}

impl Redlock {
    /// Checks `config` and prepares one client per URL, without connecting:
    /// a node that is down now does not fail this call (a majority may
    /// still be reachable, and the node may come back).
    ///
    /// Errors name the offending URL (password redacted) or setting.
    pub fn new(config: RedlockConfig) -> Result<Redlock, RedlockError> {
        config.validate_settings()?;
        let mut nodes = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            let label = redact_url(url);
            let client =
                redis::Client::open(url.as_str()).map_err(|e| RedlockError::InvalidUrl {
                    url: label.clone(),
                    reason: e.to_string(),
                })?;
            nodes.push(Node::new(label, client, config.node_timeout));
        }
        let quorum = nodes.len() / 2 + 1;
        Ok(Redlock {
            nodes,
            quorum,
            config,
        })
    }

    /// How many nodes must agree: `N/2 + 1`.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// How many nodes there are.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The configuration this backend runs with.
    pub fn config(&self) -> &RedlockConfig {
        &self.config
    }

    /// The validity left of a lock of `ttl` that took `elapsed` to take or
    /// extend, with this backend's drift settings.
    fn validity(&self, ttl: Duration, elapsed: Duration) -> Option<Duration> {
        validity(
            ttl,
            elapsed,
            self.config.drift_factor,
            self.config.drift_min,
        )
    }

    /// Runs `script` with `calls` on every node in parallel.
    async fn on_all(
        &self,
        script: &Script,
        calls: &[Invocation],
    ) -> Vec<Result<Vec<EntryReply>, String>> {
        join_all(self.nodes.iter().map(|n| n.eval(script, calls))).await
    }

    /// Runs one call on every node and sorts the answers.
    async fn single(&self, script: &Script, call: Invocation) -> (Tally, Duration) {
        let start = Instant::now();
        let replies = self.on_all(script, std::slice::from_ref(&call)).await;
        let elapsed = start.elapsed();
        let mut tally = Tally::default();
        for reply in &replies {
            tally.count(entry(reply, 0), |v| matches!(v, Value::Int(1)));
        }
        (tally, elapsed)
    }

    /// Undoes our acquisitions: releases each key with its token on every
    /// node (also those that failed to answer: they may have granted it).
    /// Best effort: what stays behind expires with its TTL.
    async fn undo(&self, calls: Vec<Invocation>) {
        if calls.is_empty() {
            return;
        }
        let replies = self.on_all(&RELEASE, &calls).await;
        for (node, reply) in self.nodes.iter().zip(&replies) {
            if let Err(e) = reply {
                tracing::warn!(node = %node.label, error = %e, keys = calls.len(), "could not undo a partial acquisition; it expires with its TTL");
            }
        }
    }

    fn retry_delay(&self) -> Duration {
        let min = self.config.retry_delay_min;
        let max = self.config.retry_delay_max;
        if max <= min {
            return min;
        }
        let span = max - min;
        let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        min + Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }

    fn unavailable(&self, key: &str, what: &str, tally: &Tally) -> LockError {
        LockError::Unavailable(format!(
            "{what} `{key}`: only {} of {} Redis nodes answered, {} needed; {}",
            tally.answered(),
            self.nodes.len(),
            self.quorum,
            tally.errors.join("; ")
        ))
    }

    /// Whether enough nodes refused that a quorum can no longer agree.
    fn quorum_impossible(&self, tally: &Tally) -> bool {
        tally.refused > self.nodes.len() - self.quorum
    }
}

/// A fresh random token: 128 bits from the thread's CSPRNG, as hex.
fn new_token() -> LockToken {
    LockToken::new(format!("{:032x}", rand::random::<u128>()))
}

/// A duration in whole milliseconds for `PX`, at least 1, at most
/// [`MAX_PX_MS`]. Rounds down, so the lock never lives longer than asked.
fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_PX_MS)
}

/// Entry `i` of one node's answer.
fn entry(reply: &Result<Vec<EntryReply>, String>, i: usize) -> Result<&Value, String> {
    match reply {
        Err(e) => Err(e.clone()),
        Ok(entries) => match entries.get(i) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(e.clone()),
            None => Err("missing reply".into()),
        },
    }
}

/// The nodes' answers to one call on one key.
#[derive(Debug, Default)]
struct Tally {
    /// Nodes that did it (acquired, extended, converted, deleted).
    granted: usize,
    /// Nodes that answered but did not (busy, not ours).
    refused: usize,
    /// Nodes that answered "done" (acquire only).
    done: usize,
    /// Why the other nodes did not answer.
    errors: Vec<String>,
}

impl Tally {
    fn answered(&self) -> usize {
        self.granted + self.refused + self.done
    }

    fn count(&mut self, answer: Result<&Value, String>, granted: impl Fn(&Value) -> bool) {
        match answer {
            Ok(v) if granted(v) => self.granted += 1,
            Ok(Value::Int(0)) => self.refused += 1,
            Ok(other) => self.errors.push(format!("unexpected reply {other:?}")),
            Err(e) => self.errors.push(e),
        }
    }

    fn count_acquire(&mut self, answer: Result<&Value, String>) {
        let text = match &answer {
            Ok(Value::BulkString(b)) => std::str::from_utf8(b).ok(),
            Ok(Value::SimpleString(s)) => Some(s.as_str()),
            _ => None,
        };
        match (text, answer) {
            (Some("acquired"), _) => self.granted += 1,
            (Some("busy"), _) => self.refused += 1,
            (Some("done"), _) => self.done += 1,
            (_, Ok(other)) => self.errors.push(format!("unexpected reply {other:?}")),
            (_, Err(e)) => self.errors.push(e),
        }
    }
}

#[async_trait]
impl LockBackend for Redlock {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        let ttl_ms = px(ttl);
        let ttl = Duration::from_millis(ttl_ms);
        if self.validity(ttl, Duration::ZERO).is_none() {
            let reason = format!(
                "lock TTL {ttl:?} is not longer than the allowed clock drift; use a TTL of seconds"
            );
            return keys
                .iter()
                .map(|_| AcquireOutcome::Unavailable(LockError::Unavailable(reason.clone())))
                .collect();
        }
        let ttl_arg = ttl_ms.to_string();
        let mut outcomes: Vec<Option<AcquireOutcome>> = vec![None; keys.len()];
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        let mut attempt: u32 = 0;
        while !pending.is_empty() {
            let calls: Vec<Invocation> = pending
                .iter()
                .map(|&i| Invocation {
                    key: keys[i].to_string(),
                    args: vec![new_token().to_string(), ttl_arg.clone()],
                })
                .collect();
            let start = Instant::now();
            let replies = self.on_all(&ACQUIRE, &calls).await;
            let elapsed = start.elapsed();

            let mut undo = Vec::new();
            let mut retry = Vec::new();
            for (pos, (&i, call)) in pending.iter().zip(&calls).enumerate() {
                let key = &keys[i];
                let mut tally = Tally::default();
                for reply in &replies {
                    tally.count_acquire(entry(reply, pos));
                }
                let held = (tally.granted >= self.quorum)
                    .then(|| self.validity(ttl, elapsed))
                    .flatten();
                let outcome = if tally.done > 0 {
                    if tally.granted > 0 {
                        undo.push(call.clone());
                    }
                    tracing::debug!(%key, done_on = tally.done, "completion record found");
                    AcquireOutcome::Done
                } else if let Some(validity) = held {
                    tracing::debug!(%key, nodes = tally.granted, ?validity, "lock acquired");
                    AcquireOutcome::Acquired {
                        token: LockToken::new(&call.args[0]),
                        validity,
                    }
                } else {
                    undo.push(call.clone());
                    for e in &tally.errors {
                        tracing::warn!(%key, error = %e, "Redis node failed during acquire");
                    }
                    if tally.granted >= self.quorum {
                        tracing::warn!(%key, ?elapsed, ?ttl, "acquired on a majority but too slowly for the TTL; undone");
                    }
                    if tally.granted + tally.refused >= self.quorum {
                        tracing::debug!(%key, granted = tally.granted, busy = tally.refused, "lock busy");
                        retry.push(i);
                        AcquireOutcome::Busy
                    } else {
                        retry.push(i);
                        AcquireOutcome::Unavailable(self.unavailable(key, "cannot lock", &tally))
                    }
                };
                outcomes[i] = Some(outcome);
            }
            self.undo(undo).await;

            if retry.is_empty() || attempt >= self.config.retry_count {
                break;
            }
            attempt += 1;
            tokio::time::sleep(self.retry_delay()).await;
            pending = retry;
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    AcquireOutcome::Unavailable(LockError::Unavailable(
                        "no outcome was decided for this key".into(),
                    ))
                })
            })
            .collect()
    }

    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        let ttl_ms = px(ttl);
        let ttl = Duration::from_millis(ttl_ms);
        let call = Invocation {
            key: key.to_string(),
            args: vec![token.to_string(), ttl_ms.to_string()],
        };
        let (tally, elapsed) = self.single(&EXTEND, call).await;
        for e in &tally.errors {
            tracing::warn!(%key, error = %e, "Redis node failed during extend");
        }
        if tally.granted >= self.quorum {
            return match self.validity(ttl, elapsed) {
                Some(validity) => {
                    tracing::debug!(%key, ?validity, "lock extended");
                    Ok(validity)
                }
                None => Err(LockError::Unavailable(format!(
                    "extending `{key}` took {elapsed:?}, too long for a TTL of {ttl:?}; the lock may be lost"
                ))),
            };
        }
        if self.quorum_impossible(&tally) {
            tracing::debug!(%key, extended = tally.granted, "lock not held; not extended");
            return Err(LockError::NotHeld);
        }
        Err(self.unavailable(&key, "cannot extend", &tally))
    }

    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        if entries.is_empty() {
            return Vec::new();
        }
        // One pipeline per node for the whole batch, as for acquire.
        let keep_ms = px(keep_for).to_string();
        let calls: Vec<Invocation> = entries
            .iter()
            .map(|(key, token)| Invocation {
                key: key.to_string(),
                args: vec![token.to_string(), keep_ms.clone()],
            })
            .collect();
        let replies = self.on_all(&COMPLETE, &calls).await;
        entries
            .iter()
            .enumerate()
            .map(|(pos, (key, _))| {
                let mut tally = Tally::default();
                for reply in &replies {
                    tally.count(entry(reply, pos), |v| matches!(v, Value::Int(1)));
                }
                for e in &tally.errors {
                    tracing::warn!(%key, error = %e, "Redis node failed during complete");
                }
                if tally.granted >= self.quorum {
                    tracing::debug!(%key, nodes = tally.granted, "completion recorded");
                    return Ok(());
                }
                if self.quorum_impossible(&tally) {
                    tracing::debug!(%key, converted = tally.granted, "lock not held; completion not recorded on a majority");
                    return Err(LockError::NotHeld);
                }
                Err(self.unavailable(key, "cannot record completion of", &tally))
            })
            .collect()
    }

    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        let call = Invocation {
            key: key.to_string(),
            args: vec![token.to_string()],
        };
        let (tally, _) = self.single(&RELEASE, call).await;
        for e in &tally.errors {
            tracing::warn!(%key, error = %e, "Redis node failed during release");
        }
        if tally.answered() >= self.quorum {
            if tally.granted == 0 {
                tracing::debug!(%key, "release: lock not held");
                return Err(LockError::NotHeld);
            }
            tracing::debug!(%key, nodes = tally.granted, "lock released");
            return Ok(());
        }
        Err(self.unavailable(&key, "cannot release", &tally))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn px_is_clamped() {
        assert_eq!(px(Duration::ZERO), 1);
        assert_eq!(px(Duration::from_micros(1500)), 1);
        assert_eq!(px(Duration::from_secs(10)), 10_000);
        assert_eq!(px(Duration::MAX), MAX_PX_MS);
    }

    #[test]
    fn tokens_are_128_bit_hex_and_differ() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn acquire_answers_are_sorted() {
        let mut t = Tally::default();
        t.count_acquire(Ok(&Value::BulkString(b"acquired".to_vec())));
        t.count_acquire(Ok(&Value::SimpleString("busy".into())));
        t.count_acquire(Ok(&Value::BulkString(b"done".to_vec())));
        t.count_acquire(Ok(&Value::Int(7)));
        t.count_acquire(Err("node x: refused".into()));
        assert_eq!((t.granted, t.refused, t.done, t.errors.len()), (1, 1, 1, 2));
        assert_eq!(t.answered(), 3);
    }

    #[test]
    fn int_answers_are_sorted() {
        let mut t = Tally::default();
        let one = |v: &Value| matches!(v, Value::Int(1));
        t.count(Ok(&Value::Int(1)), one);
        t.count(Ok(&Value::Int(0)), one);
        t.count(Ok(&Value::Nil), one);
        t.count(Err("down".into()), one);
        assert_eq!((t.granted, t.refused, t.errors.len()), (1, 1, 2));
    }

    #[test]
    fn bad_urls_are_named_and_redacted() {
        let err = Redlock::new(RedlockConfig::with_urls(["http://user:hunter2@host/"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://user:***@host/"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = Redlock::new(RedlockConfig::with_urls(["redis://h/notadb"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis://h/notadb"), "{err}");
    }

    #[tokio::test]
    async fn down_nodes_do_not_fail_construction() {
        let r = Redlock::new(RedlockConfig::with_urls([
            "redis://127.0.0.1:1/",
            "redis://127.0.0.1:2/",
            "redis://127.0.0.1:3/",
        ]))
        .expect("lazy");
        assert_eq!((r.node_count(), r.quorum()), (3, 2));
        let out = r.acquire(vec!["k".into()], Duration::from_secs(1)).await;
        assert!(
            matches!(&out[..], [AcquireOutcome::Unavailable(LockError::Unavailable(m))] if m.contains("127.0.0.1:1")),
            "{out:?}"
        );
    }
}
