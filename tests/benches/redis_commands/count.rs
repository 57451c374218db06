//! Counting the Redis commands a [`Redlock`] costs, as Redis itself counts
//! them: `INFO commandstats` on every node before and after, the
//! difference per command. Shared by the `redis_commands` bench and the
//! `redlock_commands` test (included by path in both).
//!
//! Redis counts a script call as one `evalsha` plus every command the
//! script runs (`cmdstat_get`, `cmdstat_set`, …), so the totals here are
//! what a Redis operator sees. The `INFO` calls of the measurement itself
//! are left out; connection set-up and script loading are kept out of the
//! window by a warm-up round before the first reading.
#![allow(dead_code)] // each includer uses its own part

use std::collections::BTreeMap;
use std::time::Duration;

use iniesta_core::ports::{AcquireOutcome, LockBackend, LockKey};
use iniesta_redlock::Redlock;
use redis::aio::MultiplexedConnection;

/// Calls per command name on one node, e.g. `{"evalsha": 2, "set": 20}`.
pub type Calls = BTreeMap<String, u64>;

/// One connection per node, opened before the first reading, so that its
/// own set-up commands are not counted.
pub struct Counter {
    conns: Vec<MultiplexedConnection>,
}

impl Counter {
    /// Connects to every node at `urls`.
    pub async fn connect(urls: &[String]) -> Counter {
        let mut conns = Vec::with_capacity(urls.len());
        for url in urls {
            let client = redis::Client::open(url.as_str()).expect("a valid URL");
            conns.push(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}")),
            );
        }
        Counter { conns }
    }

    /// Every node's calls per command so far (`INFO` itself left out).
    pub async fn read(&mut self) -> Vec<Calls> {
        let mut all = Vec::with_capacity(self.conns.len());
        for conn in &mut self.conns {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(conn)
                .await
                .expect("INFO commandstats");
            all.push(parse(&info));
        }
        all
    }
}

/// The `calls=` of each `cmdstat_<name>:` line, without `info`.
pub fn parse(info: &str) -> Calls {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .filter(|(name, _)| name != "info")
        .collect()
}

/// What happened between two readings of the same nodes, per node.
pub fn diff(before: &[Calls], after: &[Calls]) -> Vec<Calls> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            a.iter()
                .filter_map(|(name, &n)| {
                    let d = n - b.get(name).copied().unwrap_or(0);
                    (d > 0).then(|| (name.clone(), d))
                })
                .collect()
        })
        .collect()
}

/// The sum of every command of every node.
pub fn total(per_node: &[Calls]) -> u64 {
    per_node.iter().flat_map(|c| c.values()).sum()
}

/// Every node's calls summed per command.
pub fn summed(per_node: &[Calls]) -> Calls {
    let mut sum = Calls::new();
    for calls in per_node {
        for (name, n) in calls {
            *sum.entry(name.clone()).or_default() += n;
        }
    }
    sum
}

/// `name=count` pairs, for printing.
pub fn describe(calls: &Calls) -> String {
    calls
        .iter()
        .map(|(name, n)| format!("{name}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub const TTL: Duration = Duration::from_secs(30);
pub const KEEP: Duration = Duration::from_secs(600);

/// Acquires `n` fresh keys (`{prefix}-{i}`) in batches of `batch` and
/// completes each batch as a whole, as a consumer does with a full
/// receive. Panics unless every key is acquired and recorded.
pub async fn acquire_and_complete(lock: &Redlock, prefix: &str, n: usize, batch: usize) {
    let keys: Vec<LockKey> = (0..n)
        .map(|i| LockKey::new(format!("{prefix}-{i}")))
        .collect();
    for chunk in keys.chunks(batch.max(1)) {
        let outcomes = lock.acquire(chunk.to_vec(), TTL).await;
        let entries = chunk
            .iter()
            .zip(outcomes)
            .map(|(key, outcome)| match outcome {
                AcquireOutcome::Acquired { token, .. } => (key.clone(), token),
                other => panic!("{key}: expected Acquired, got {other:?}"),
            })
            .collect();
        for (key, result) in chunk.iter().zip(lock.complete(entries, KEEP).await) {
            result.unwrap_or_else(|e| panic!("{key}: complete failed: {e}"));
        }
    }
}

/// The commands per node that `n` messages in batches of `batch` cost,
/// after a warm-up batch (connections made, scripts loaded) outside the
/// window.
pub async fn count_batches(
    lock: &Redlock,
    counter: &mut Counter,
    prefix: &str,
    n: usize,
    batch: usize,
) -> Vec<Calls> {
    acquire_and_complete(lock, &format!("{prefix}-warm-up"), batch, batch).await;
    let before = counter.read().await;
    acquire_and_complete(lock, prefix, n, batch).await;
    let after = counter.read().await;
    diff(&before, &after)
}
