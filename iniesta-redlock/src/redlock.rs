//! The [`Redlock`] backend: the IO half of Redlock (asking every Redis
//! node, in parallel, within a timeout), deciding through the
//! [`quorum`](crate::quorum) rules.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::join_all;
use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};
use rand::Rng;
use redis::{Script, Value};

use crate::commands::{self, Found};
use crate::config::{redact_url, RedlockConfig, RedlockError};
use crate::node::{EntryReply, Invocation, Node, Sent};
use crate::quorum::{node_ms, NodeAnswer, Quorum, Tally};
use crate::replies::{acquire_reply, answer, per_key, write_reply, NodeReply};
use crate::scripts::{COMPLETE, EXTEND, RELEASE};

/// A [`LockBackend`] on the Redlock algorithm over N independent Redis
/// servers, with completion records for idempotency.
///
/// A lock is held only when a majority (`N/2 + 1`, the quorum) of nodes
/// granted it and time is left of its TTL after subtracting how long that
/// took and the allowed clock drift. Every write checks the caller's token
/// on the node, atomically, so an expired holder cannot disturb the next
/// one. Calls go to all nodes in parallel, each bounded by
/// [`RedlockConfig::node_timeout`].
///
/// What a message costs Redis, counted as `INFO commandstats` counts it: an
/// acquire is one `SET … NX … GET` per key on each node (pipelined, one
/// round trip per batch). A complete is one `SET … IFEQ … GET` per key on a
/// node that takes it (Redis 8.4, Valkey 8.1; asked on each connection's
/// first complete),
/// which makes a message **2 commands per node**; on an older server it is
/// a script call per batch of up to [`MAX_KEYS_PER_CALL`] keys (`EVALSHA`,
/// one `MGET`, one `SET` per key), which makes a message acquired and
/// completed in batches of 10 cost 2.2 commands per node. The plain
/// commands and the scripts apply the same rules (`commands.rs`,
/// `scripts.rs`).
///
/// Each node is one standalone Redis server (or a primary with its
/// replicas), not a Redis Cluster: a batch names keys from any hash slot
/// in one call, which a cluster refuses (`CROSSSLOT`). Redlock wants
/// independent servers anyway; a cluster's shards would not fail
/// independently of each other's failover.
///
/// What the answers mean is decided by [`Quorum`] alone, so a model of
/// [`MemoryNode`](crate::memory::MemoryNode)s checks these very rules.
///
/// Acquire answers each key as soon as it is decided
/// ([`LockBackend::acquire_each`]): after each round, every key decided in
/// it is handed over, and only the keys left
/// [`Unavailable`](AcquireOutcome::Unavailable) (no majority either way
/// because nodes failed) are tried again, with a fresh token, after a
/// random pause. A `Busy` key is never retried: someone else works on it.
///
/// Nodes are connected lazily and reconnected after failures, so a node
/// that is down at start-up or restarted later rejoins by itself. Share one
/// `Redlock` (e.g. in an `Arc`) across tasks.
pub struct Redlock {
    nodes: Vec<Node>,
    rules: Quorum,
    config: RedlockConfig,
}

impl fmt::Debug for Redlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redlock")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.label).collect::<Vec<_>>(),
            )
            .field("quorum", &self.rules.needed())
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
        let rules = Quorum::new(nodes.len()).with_drift(config.drift_factor, config.drift_min);
        Ok(Redlock {
            nodes,
            rules,
            config,
        })
    }

    /// How many nodes must agree: `N/2 + 1`.
    pub fn quorum(&self) -> usize {
        self.rules.needed()
    }

    /// How many nodes there are.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The configuration this backend runs with.
    pub fn config(&self) -> &RedlockConfig {
        &self.config
    }

    /// The decision rules this backend applies to its nodes' answers.
    pub fn rules(&self) -> &Quorum {
        &self.rules
    }

    /// Runs `script` with `calls` on every node in parallel.
    async fn on_all(&self, script: &Script, calls: &[Invocation]) -> Vec<NodeReply> {
        join_all(self.nodes.iter().map(|n| n.eval(script, calls))).await
    }

    /// The script calls for a batch of keys: one per [`MAX_KEYS_PER_CALL`]
    /// keys, each with `ARGV` = `shared` then the keys' own arguments; and
    /// how many keys each carries (see [`per_key`]).
    fn script_calls(shared: &str, entries: &[(String, String)]) -> (Vec<Invocation>, Vec<usize>) {
        let calls: Vec<Invocation> = entries
            .chunks(MAX_KEYS_PER_CALL)
            .map(|chunk| Invocation {
                keys: chunk.iter().map(|(key, _)| key.clone()).collect(),
                args: std::iter::once(shared.to_owned())
                    .chain(chunk.iter().map(|(_, arg)| arg.clone()))
                    .collect(),
            })
            .collect();
        let sizes = calls.iter().map(|c| c.keys.len()).collect();
        (calls, sizes)
    }

    /// Acquires `entries` (key, token) on `node`: one `SET … NX … GET` per
    /// key. Answers the acquire script's reply per key.
    async fn acquire_on(node: &Node, ttl_ms: &str, entries: &[(String, String)]) -> NodeReply {
        let cmds = commands::acquire(entries, ttl_ms);
        let replies = node.commands(&cmds, node.timeout()).await?;
        Ok(replies
            .into_iter()
            .zip(entries)
            .map(|(reply, (_, token))| labelled(node, commands::acquire_answer(reply, token)))
            .collect())
    }

    /// Records `entries` (key, token) as completed on `node`: with
    /// `SET … IFEQ` where the server takes it, else with the complete
    /// script. Answers the complete script's entry per key. A key found free
    /// gets its record, and a record of ours its renewal, in one more
    /// pipeline within what is left of the node timeout.
    async fn complete_on(node: &Node, keep_ms: &str, entries: &[(String, String)]) -> NodeReply {
        let Some((probe_key, _)) = entries.first() else {
            return Ok(Vec::new());
        };
        let began = Instant::now();
        let (calls, sizes) = Self::script_calls(keep_ms, entries);
        let cmds = commands::complete(entries, keep_ms);
        let (replies, sent) = node
            .commands_or_script(&cmds, &COMPLETE, &calls, probe_key)
            .await?;
        if sent == Sent::Script {
            return per_key(&node.label, Ok(replies), &sizes);
        }
        let mut answers: Vec<EntryReply> = Vec::with_capacity(entries.len());
        // The second pipeline; each command with the entry it answers (a
        // renewal answers none: the record is there either way).
        let mut more: Vec<redis::Cmd> = Vec::new();
        let mut answering: Vec<Option<usize>> = Vec::new();
        for (i, (reply, (key, token))) in replies.into_iter().zip(entries).enumerate() {
            match commands::complete_answer(reply, token) {
                Found::Answer(a) => answers.push(labelled(node, a)),
                Found::OurRecord => {
                    more.push(commands::renew_record(key, token, keep_ms));
                    answering.push(None);
                    answers.push(Ok(Value::Int(1)));
                }
                Found::Free => {
                    more.push(commands::complete_free(key, token, keep_ms));
                    answering.push(Some(i));
                    answers.push(Ok(Value::Nil));
                }
            }
        }
        if more.is_empty() {
            return Ok(answers);
        }
        let left = node.timeout().saturating_sub(began.elapsed());
        match node.commands(&more, left).await {
            Ok(replies) => {
                for (reply, i) in replies.into_iter().zip(&answering) {
                    if let Some(i) = *i {
                        answers[i] =
                            labelled(node, commands::complete_free_answer(reply, &entries[i].1));
                    }
                }
            }
            Err(e) => {
                for i in answering.iter().flatten() {
                    answers[*i] = Err(e.clone());
                }
            }
        }
        Ok(answers)
    }

    /// Every node's answer to call `pos`, read by `read`.
    fn answers<'a, R: 'a>(
        &'a self,
        replies: &'a [NodeReply],
        pos: usize,
        read: fn(&Value) -> Option<R>,
    ) -> impl Iterator<Item = NodeAnswer<R>> + 'a {
        self.nodes
            .iter()
            .zip(replies)
            .map(move |(node, reply)| answer(&node.label, reply, pos, read))
    }

    /// Runs one extend, complete or release on every node and counts the
    /// answers; also tells how long that took.
    async fn single(&self, script: &Script, call: Invocation) -> (Tally, Duration) {
        let start = Instant::now();
        let replies = self.on_all(script, std::slice::from_ref(&call)).await;
        let elapsed = start.elapsed();
        (
            Tally::of_writes(self.answers(&replies, 0, write_reply)),
            elapsed,
        )
    }

    /// Undoes our acquisitions: releases each key with its token on every
    /// node (also those that failed to answer: they may have granted it).
    /// Best effort: what stays behind expires with its TTL.
    async fn undo(&self, entries: Vec<(String, String)>) {
        if entries.is_empty() {
            return;
        }
        let calls: Vec<Invocation> = entries
            .into_iter()
            .map(|(key, token)| Invocation {
                keys: vec![key],
                args: vec![token],
            })
            .collect();
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

    /// One acquire round over `pending` (indices into `keys`): decides each
    /// key, hands the decided ones to `answer`, undoes what must be undone,
    /// and returns the keys to try again (none when `last`).
    async fn acquire_round(
        &self,
        keys: &[LockKey],
        pending: &[usize],
        ttl: Duration,
        last: bool,
        answer: &mut (dyn FnMut(Vec<(usize, AcquireOutcome)>) + Send),
    ) -> Vec<usize> {
        let tokens: Vec<LockToken> = pending.iter().map(|_| new_token()).collect();
        let entries: Vec<(String, String)> = pending
            .iter()
            .zip(&tokens)
            .map(|(&i, token)| (keys[i].to_string(), token.to_string()))
            .collect();
        let start = Instant::now();
        let ttl_ms = node_ms(ttl).to_string();
        let replies = join_all(
            self.nodes
                .iter()
                .map(|node| Self::acquire_on(node, &ttl_ms, &entries)),
        )
        .await;
        let elapsed = start.elapsed();

        let mut decided = Vec::new();
        let mut retry = Vec::new();
        let mut undo = Vec::new();
        for (pos, (&i, entry)) in pending.iter().zip(entries).enumerate() {
            let key = &keys[i];
            let tally = Tally::of_acquires(self.answers(&replies, pos, acquire_reply));
            for e in tally.errors() {
                tracing::warn!(%key, error = %e, "Redis node failed during acquire");
            }
            let decision = self.rules.acquire(key, &tokens[pos], ttl, elapsed, &tally);
            match &decision.outcome {
                AcquireOutcome::Acquired { validity, .. } => {
                    tracing::debug!(%key, nodes = tally.granted(), ?validity, "lock acquired")
                }
                AcquireOutcome::Done => {
                    tracing::debug!(%key, done_on = tally.done(), "completion record found")
                }
                AcquireOutcome::Busy => {
                    tracing::debug!(%key, granted = tally.granted(), busy = tally.refused(), "lock busy")
                }
                AcquireOutcome::Unavailable(e) => {
                    tracing::debug!(%key, error = %e, retry = !last, "lock undecided")
                }
            }
            if decision.undo {
                undo.push(entry);
            }
            if decision.retry() && !last {
                retry.push(i);
            } else {
                decided.push((i, decision.outcome));
            }
        }
        // Hand over first: a lock acquired in this round starts its work
        // while the undo of other keys is still on the wire.
        if !decided.is_empty() {
            answer(decided);
        }
        self.undo(undo).await;
        retry
    }
}

/// The most keys one complete script call carries (servers without
/// `SET … IFEQ`); a larger batch goes to each node as several calls in one
/// pipeline. A script runs
/// alone on its node, so this bounds how long one call holds up the node's
/// other clients (a few hundred microseconds), while costing a batch one
/// command more per hundred keys.
pub const MAX_KEYS_PER_CALL: usize = 100;

/// `reply` with a failure's text naming `node`.
fn labelled(node: &Node, reply: EntryReply) -> EntryReply {
    reply.map_err(|e| {
        if e.starts_with(&node.label) {
            e
        } else {
            format!("{}: {e}", node.label)
        }
    })
}

/// A fresh random token: 128 bits from the thread's CSPRNG, as hex.
fn new_token() -> LockToken {
    LockToken::new(format!("{:032x}", rand::random::<u128>()))
}

#[async_trait]
impl LockBackend for Redlock {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        iniesta_core::ports::acquire_from_each(self, keys, ttl).await
    }

    async fn acquire_each(
        &self,
        keys: Vec<LockKey>,
        ttl: Duration,
        answer: &mut (dyn FnMut(Vec<(usize, AcquireOutcome)>) + Send),
    ) {
        if keys.is_empty() {
            return;
        }
        if let Err(e) = self.rules.check_ttl(ttl) {
            answer(
                (0..keys.len())
                    .map(|i| (i, AcquireOutcome::Unavailable(e.clone())))
                    .collect(),
            );
            return;
        }
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        let mut attempt: u32 = 0;
        loop {
            let last = attempt >= self.config.retry_count;
            pending = self.acquire_round(&keys, &pending, ttl, last, answer).await;
            if pending.is_empty() {
                return;
            }
            attempt += 1;
            tokio::time::sleep(self.retry_delay()).await;
        }
    }

    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        let call = Invocation {
            keys: vec![key.to_string()],
            args: vec![token.to_string(), node_ms(ttl).to_string()],
        };
        let (tally, elapsed) = self.single(&EXTEND, call).await;
        for e in tally.errors() {
            tracing::warn!(%key, error = %e, "Redis node failed during extend");
        }
        let result = self.rules.extend(&key, ttl, elapsed, &tally);
        match &result {
            Ok(validity) => tracing::debug!(%key, ?validity, "lock extended"),
            Err(LockError::NotHeld) => {
                tracing::debug!(%key, extended = tally.granted(), "lock not held; not extended")
            }
            Err(e) => tracing::debug!(%key, error = %e, "extend undecided"),
        }
        result
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
        let pairs: Vec<(String, String)> = entries
            .iter()
            .map(|(key, token)| (key.to_string(), token.to_string()))
            .collect();
        let keep_ms = node_ms(keep_for).to_string();
        let replies = join_all(
            self.nodes
                .iter()
                .map(|node| Self::complete_on(node, &keep_ms, &pairs)),
        )
        .await;
        entries
            .iter()
            .enumerate()
            .map(|(pos, (key, _))| {
                let tally = Tally::of_writes(self.answers(&replies, pos, write_reply));
                for e in tally.errors() {
                    tracing::warn!(%key, error = %e, "Redis node failed during complete");
                }
                let result = self.rules.complete(key, &tally);
                match &result {
                    Ok(()) => tracing::debug!(%key, nodes = tally.granted(), "completion recorded"),
                    Err(LockError::NotHeld) => {
                        tracing::debug!(%key, refused = tally.refused(), "another holder's lock; completion not recorded")
                    }
                    Err(e) => tracing::debug!(%key, error = %e, "complete undecided"),
                }
                result
            })
            .collect()
    }

    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        let call = Invocation {
            keys: vec![key.to_string()],
            args: vec![token.to_string()],
        };
        let (tally, _) = self.single(&RELEASE, call).await;
        for e in tally.errors() {
            tracing::warn!(%key, error = %e, "Redis node failed during release");
        }
        let result = self.rules.release(&key, &tally);
        match &result {
            Ok(()) => tracing::debug!(%key, nodes = tally.granted(), "lock released"),
            Err(LockError::NotHeld) => tracing::debug!(%key, "release: lock not held"),
            Err(e) => tracing::debug!(%key, error = %e, "release undecided"),
        }
        result
    }
}

#[cfg(test)]
#[path = "redlock_tests.rs"]
mod tests;
