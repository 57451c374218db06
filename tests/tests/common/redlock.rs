//! What the real-Redis tests share: building a backend over a test
//! cluster, reading and writing nodes directly, and a time bound so a bug
//! cannot hang the suite.
#![allow(dead_code)] // each test file uses its own part

use std::future::Future;
use std::time::Duration;

use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};
use iniesta_redlock::{Redlock, RedlockConfig};
use iniesta_tests::servers::redis::RedisCluster;

pub const TTL: Duration = Duration::from_secs(30);
pub const KEEP: Duration = Duration::from_secs(600);

/// Runs a test body with a generous upper bound, so it cannot hang.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(90), body)
        .await
        .expect("test did not finish within 90 s");
}

/// A backend over `cluster` with a node timeout generous enough for a
/// loaded test machine (timeouts are exercised on purpose elsewhere).
pub fn redlock(cluster: &RedisCluster, retry_count: u32) -> Redlock {
    redlock_with(cluster.urls(), retry_count, Duration::from_secs(2))
}

pub fn redlock_with(urls: Vec<String>, retry_count: u32, node_timeout: Duration) -> Redlock {
    let mut config = RedlockConfig::with_urls(urls);
    config.retry_count = retry_count;
    config.retry_delay_min = Duration::from_millis(5);
    config.retry_delay_max = Duration::from_millis(20);
    config.node_timeout = node_timeout;
    Redlock::new(config).expect("valid config")
}

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// The raw value of `key` on the node at `url`.
pub async fn raw_get(url: &str, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut connect(url).await)
        .await
        .unwrap()
}

/// The remaining lifetime of `key` on the node at `url`, in ms (negative:
/// no key, or no expiry).
pub async fn raw_pttl(url: &str, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut connect(url).await)
        .await
        .unwrap()
}

/// Runs a raw command on the node at `url`.
pub async fn raw(url: &str, cmd: &mut redis::Cmd) {
    let _: redis::Value = cmd.query_async(&mut connect(url).await).await.unwrap();
}

/// How many nodes hold `value` for `key`.
pub async fn holders(urls: &[String], key: &str, value: &str) -> usize {
    let mut n = 0;
    for url in urls {
        if raw_get(url, key).await.as_deref() == Some(value) {
            n += 1;
        }
    }
    n
}

pub async fn acquire_one(lock: &Redlock, key: &str, ttl: Duration) -> AcquireOutcome {
    let mut out = lock.acquire(vec![key.into()], ttl).await;
    assert_eq!(out.len(), 1);
    out.remove(0)
}

pub fn token_of(outcome: AcquireOutcome) -> LockToken {
    match outcome {
        AcquireOutcome::Acquired { token, validity } => {
            assert!(!validity.is_zero());
            token
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
}

/// One key's complete, through the batched call.
pub async fn complete_one<L: LockBackend + ?Sized>(
    lock: &L,
    key: impl AsRef<str>,
    token: LockToken,
    keep_for: Duration,
) -> Result<(), LockError> {
    let mut out = lock
        .complete(vec![(LockKey::new(key), token)], keep_for)
        .await;
    assert_eq!(out.len(), 1, "one answer per entry");
    out.remove(0)
}
