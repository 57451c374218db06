//! Batches against real `redis-server` processes: one outcome per key, in
//! order, and each key answered as soon as its round decides it.
//!
//! Timing is only ever checked as a lower bound (a pause that must have
//! happened), never as an upper bound a loaded machine could miss.

mod common;

use std::time::{Duration, Instant};

use common::redlock::*;
use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockToken};
use iniesta_redlock::{Redlock, RedlockConfig, DONE_PREFIX};
use iniesta_tests::servers::redis::RedisCluster;

// ---------------------------------------------------------------------------
// Batches

#[tokio::test]
async fn a_batch_gets_one_outcome_per_key_in_order() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 1);
        let other = redlock(&cluster, 0);
        let busy = token_of(acquire_one(&other, "sqs:event:b-busy", TTL).await);
        let done = token_of(acquire_one(&other, "sqs:event:b-done", TTL).await);
        complete_one(&other, "sqs:event:b-done", done, KEEP)
            .await
            .unwrap();

        let keys = [
            "sqs:event:b-free1",
            "sqs:event:b-busy",
            "sqs:event:b-done",
            "sqs:event:b-free2",
        ];
        let out = lock
            .acquire(keys.iter().map(|k| (*k).into()).collect(), TTL)
            .await;
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(matches!(out[0], AcquireOutcome::Acquired { .. }), "{out:?}");
        assert_eq!(out[1], AcquireOutcome::Busy);
        assert_eq!(out[2], AcquireOutcome::Done);
        assert!(matches!(out[3], AcquireOutcome::Acquired { .. }), "{out:?}");
        // The busy lock is still the other holder's; the record untouched.
        assert_eq!(holders(&urls, "sqs:event:b-busy", busy.as_str()).await, 3);
        let t0 = token_of(out[0].clone());
        let t3 = token_of(out[3].clone());
        assert_ne!(t0, t3, "each key gets its own token");
        assert_eq!(holders(&urls, "sqs:event:b-free1", t0.as_str()).await, 3);
        assert_eq!(holders(&urls, "sqs:event:b-free2", t3.as_str()).await, 3);

        // An empty batch is an empty answer.
        assert!(lock.acquire(Vec::new(), TTL).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_complete_batch_decides_each_key_on_its_own() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let mine = token_of(acquire_one(&lock, "sqs:event:c-mine", TTL).await);
        let theirs = token_of(acquire_one(&lock, "sqs:event:c-theirs", TTL).await);
        let also = token_of(acquire_one(&lock, "sqs:event:c-also", TTL).await);
        let out = lock
            .complete(
                vec![
                    ("sqs:event:c-mine".into(), mine.clone()),
                    // Not our token: refused, and the holder keeps it.
                    ("sqs:event:c-theirs".into(), LockToken::new("not-the-token")),
                    // Never locked: nobody else works on it, so the
                    // record is written.
                    ("sqs:event:c-free".into(), LockToken::new("no-lock")),
                    ("sqs:event:c-also".into(), also.clone()),
                ],
                KEEP,
            )
            .await;
        assert_eq!(out, vec![Ok(()), Err(LockError::NotHeld), Ok(()), Ok(())]);
        let record = |t: &LockToken| format!("{DONE_PREFIX}{t}");
        assert_eq!(holders(&urls, "sqs:event:c-mine", &record(&mine)).await, 3);
        assert_eq!(holders(&urls, "sqs:event:c-also", &record(&also)).await, 3);
        assert_eq!(
            holders(&urls, "sqs:event:c-theirs", theirs.as_str()).await,
            3
        );
        assert_eq!(
            holders(&urls, "sqs:event:c-free", &format!("{DONE_PREFIX}no-lock")).await,
            3
        );
        assert!(lock.complete(Vec::new(), KEEP).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_batch_with_a_node_down_decides_every_key() {
    let Some(mut cluster) = RedisCluster::start(3) else {
        return;
    };
    let lock = redlock(&cluster, 0);
    bounded(async {
        cluster[0].stop();
        let keys: Vec<String> = (0..8).map(|i| format!("sqs:event:bd-{i}")).collect();
        let out = lock
            .acquire(keys.iter().map(|k| k.as_str().into()).collect(), TTL)
            .await;
        assert_eq!(out.len(), keys.len());
        for (key, o) in keys.iter().zip(&out) {
            assert!(matches!(o, AcquireOutcome::Acquired { .. }), "{key}: {o:?}");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Each key answered as soon as it is decided

/// A backend whose retries are slow and of a fixed length, so the time
/// they take has a known lower bound.
fn slow_retries(cluster: &RedisCluster, retry_count: u32, pause: Duration) -> Redlock {
    let mut config = RedlockConfig::with_urls(cluster.urls());
    config.retry_count = retry_count;
    config.retry_delay_min = pause;
    config.retry_delay_max = pause;
    config.node_timeout = Duration::from_secs(2);
    Redlock::new(config).expect("valid config")
}

/// Makes `key` a hash on every node: every script on it then fails with
/// WRONGTYPE, which no majority can decide, so it is tried again.
async fn poison(urls: &[String], key: &str) {
    for url in urls {
        raw(url, redis::cmd("HSET").arg(key).arg("f").arg("v")).await;
    }
}

/// How many SET commands the node at `url` has run so far: an acquire is
/// one per key and attempt.
async fn set_calls(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// Every group handed to the callback, with when it arrived.
type Groups = Vec<(Instant, Vec<(usize, AcquireOutcome)>)>;

async fn acquire_each(lock: &Redlock, keys: &[&str]) -> Groups {
    let mut groups = Groups::new();
    lock.acquire_each(
        keys.iter().map(|k| (*k).into()).collect(),
        TTL,
        &mut |group| groups.push((Instant::now(), group)),
    )
    .await;
    groups
}

#[tokio::test]
async fn a_key_decided_in_the_first_round_is_answered_before_the_retries() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let poisoned = "sqs:event:each-poisoned";
        poison(&urls, poisoned).await;
        let (retries, pause) = (3, Duration::from_millis(300));
        let lock = slow_retries(&cluster, retries, pause);

        let groups = acquire_each(&lock, &["sqs:event:each-free", poisoned]).await;
        assert_eq!(groups.len(), 2, "{groups:?}");
        let (first_at, first) = &groups[0];
        let (last_at, last) = &groups[1];
        // The free key came alone, in the first round...
        let [(0, AcquireOutcome::Acquired { token, .. })] = &first[..] else {
            panic!("first group: {first:?}");
        };
        assert_eq!(
            holders(&urls, "sqs:event:each-free", token.as_str()).await,
            3
        );
        // ...and the poisoned key only after all its retries.
        let [(1, AcquireOutcome::Unavailable(LockError::Unavailable(reason)))] = &last[..] else {
            panic!("last group: {last:?}");
        };
        assert!(reason.contains("WRONGTYPE"), "{reason}");
        let waited = last_at.duration_since(*first_at);
        assert!(
            waited >= pause * retries,
            "the first answer came only {waited:?} before the last"
        );

        // The collecting form gives the same answers, in order.
        let out = lock
            .acquire(vec!["sqs:event:each-free2".into(), poisoned.into()], TTL)
            .await;
        assert!(matches!(out[0], AcquireOutcome::Acquired { .. }), "{out:?}");
        assert!(matches!(out[1], AcquireOutcome::Unavailable(_)), "{out:?}");
    })
    .await;
}

#[tokio::test]
async fn a_busy_key_is_tried_exactly_once() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let other = redlock(&cluster, 0);
        let busy = "sqs:event:each-busy";
        let holder = token_of(acquire_one(&other, busy, TTL).await);
        // Generous retries: a retried busy key would show up in the counts.
        let lock = slow_retries(&cluster, 3, Duration::from_millis(50));
        // Connected before counting: a new connection probes the server
        // with a SET of its own.
        acquire_one(&lock, "sqs:event:each-warm-up", TTL).await;

        let before: Vec<u64> = futures::future::join_all(urls.iter().map(|u| set_calls(u))).await;
        assert_eq!(acquire_one(&lock, busy, TTL).await, AcquireOutcome::Busy);
        let after: Vec<u64> = futures::future::join_all(urls.iter().map(|u| set_calls(u))).await;
        for ((url, b), a) in urls.iter().zip(&before).zip(&after) {
            assert_eq!(a - b, 1, "{url}: {} acquire calls for a busy key", a - b);
        }
        assert_eq!(holders(&urls, busy, holder.as_str()).await, 3);

        // Next to a key that is retried, the busy one is still answered in
        // the first round, on its own.
        let poisoned = "sqs:event:each-poisoned-2";
        poison(&urls, poisoned).await;
        let groups = acquire_each(&lock, &[poisoned, busy]).await;
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0].1, vec![(1, AcquireOutcome::Busy)]);
        assert!(
            matches!(&groups[1].1[..], [(0, AcquireOutcome::Unavailable(_))]),
            "{groups:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn every_key_is_answered_once_whatever_its_fate() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let other = redlock(&cluster, 0);
        token_of(acquire_one(&other, "sqs:event:once-busy", TTL).await);
        let done = token_of(acquire_one(&other, "sqs:event:once-done", TTL).await);
        complete_one(&other, "sqs:event:once-done", done, KEEP)
            .await
            .unwrap();
        poison(&urls, "sqs:event:once-poisoned").await;
        let lock = slow_retries(&cluster, 2, Duration::from_millis(20));
        let keys = [
            "sqs:event:once-poisoned",
            "sqs:event:once-free",
            "sqs:event:once-busy",
            "sqs:event:once-done",
        ];
        let groups = acquire_each(&lock, &keys).await;
        let mut answered: Vec<usize> = groups
            .iter()
            .flat_map(|(_, g)| g.iter().map(|(i, _)| *i))
            .collect();
        answered.sort_unstable();
        assert_eq!(answered, [0, 1, 2, 3], "{groups:?}");
        // Empty batches are answered with nothing, and quickly.
        assert!(acquire_each(&lock, &[]).await.is_empty());
    })
    .await;
}
