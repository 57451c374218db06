//! The Redlock backend against real `redis-server` processes, started on
//! free loopback ports by the test kit and killed when each test ends.
//!
//! Outside CI these tests skip (with a printed reason) when `redis-server`
//! is not installed; under `CI=true` they fail instead. Every test is
//! bounded by a generous timeout so a bug cannot hang the suite; none
//! asserts on elapsed time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};
use iniesta_redlock::{Redlock, RedlockConfig, DONE_PREFIX};
use iniesta_testkit::redis::RedisCluster;

const TTL: Duration = Duration::from_secs(30);
const KEEP: Duration = Duration::from_secs(600);

/// Runs a test body with a generous upper bound, so it cannot hang.
async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(90), body)
        .await
        .expect("test did not finish within 90 s");
}

/// A backend over `cluster` with a node timeout generous enough for a
/// loaded test machine (timeouts are exercised on purpose elsewhere).
fn redlock(cluster: &RedisCluster, retry_count: u32) -> Redlock {
    redlock_with(cluster.urls(), retry_count, Duration::from_secs(2))
}

fn redlock_with(urls: Vec<String>, retry_count: u32, node_timeout: Duration) -> Redlock {
    let mut config = RedlockConfig::with_urls(urls);
    config.retry_count = retry_count;
    config.retry_delay_min = Duration::from_millis(5);
    config.retry_delay_max = Duration::from_millis(20);
    config.node_timeout = node_timeout;
    Redlock::new(config).expect("valid config")
}

/// The raw value of `key` on the node at `url`.
async fn raw_get(url: &str, key: &str) -> Option<String> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Runs a raw command on the node at `url`.
async fn raw(url: &str, cmd: &mut redis::Cmd) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value = cmd.query_async(&mut conn).await.unwrap();
}

/// How many nodes hold `value` for `key`.
async fn holders(urls: &[String], key: &str, value: &str) -> usize {
    let mut n = 0;
    for url in urls {
        if raw_get(url, key).await.as_deref() == Some(value) {
            n += 1;
        }
    }
    n
}

async fn acquire_one(lock: &Redlock, key: &str, ttl: Duration) -> AcquireOutcome {
    let mut out = lock.acquire(vec![key.into()], ttl).await;
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn token_of(outcome: AcquireOutcome) -> LockToken {
    match outcome {
        AcquireOutcome::Acquired { token, validity } => {
            assert!(!validity.is_zero());
            token
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Mutual exclusion

async fn mutual_exclusion(nodes: usize) {
    let Some(cluster) = RedisCluster::start(nodes) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        // Several independent clients, as several consumers would be.
        let clients: Vec<Arc<Redlock>> = (0..4).map(|_| Arc::new(redlock(&cluster, 1))).collect();
        let keys: Vec<String> = (0..5).map(|i| format!("sqs:event:mx-{i}")).collect();
        let mut winners: HashMap<String, Vec<LockToken>> = HashMap::new();
        // Redlock may end a round with no winner (a split vote undone by
        // everyone); such keys go another round. A later round can never
        // produce a second winner while the first one's TTL runs.
        for _round in 0..10 {
            let open: Vec<String> = keys
                .iter()
                .filter(|k| winners.get(*k).map_or(true, Vec::is_empty))
                .cloned()
                .collect();
            if open.is_empty() {
                break;
            }
            let tasks: Vec<_> = (0..20)
                .map(|t| {
                    let lock = clients[t % clients.len()].clone();
                    let open = open.clone();
                    tokio::spawn(async move {
                        let keys = open.iter().map(|k| k.as_str().into()).collect();
                        (open, lock.acquire(keys, TTL).await)
                    })
                })
                .collect();
            for task in tasks {
                let (asked, outcomes) = task.await.expect("acquirer task");
                assert_eq!(asked.len(), outcomes.len());
                for (key, outcome) in asked.into_iter().zip(outcomes) {
                    match outcome {
                        AcquireOutcome::Acquired { token, .. } => {
                            winners.entry(key).or_default().push(token)
                        }
                        AcquireOutcome::Busy => {}
                        other => panic!("unexpected outcome for {key}: {other:?}"),
                    }
                }
            }
        }
        for key in &keys {
            let tokens = winners.get(key).cloned().unwrap_or_default();
            assert_eq!(tokens.len(), 1, "{key}: winners {tokens:?}");
            // The winner's token, and nothing of the losers', is on a majority.
            let on = holders(&urls, key, tokens[0].as_str()).await;
            assert!(
                on > nodes / 2,
                "{key}: winner's token on only {on} of {nodes} nodes"
            );
        }
        // And a latecomer is turned away.
        let late = redlock(&cluster, 0);
        assert_eq!(
            acquire_one(&late, &keys[0], TTL).await,
            AcquireOutcome::Busy
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_exclusion_on_3_nodes() {
    mutual_exclusion(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_exclusion_on_5_nodes() {
    mutual_exclusion(5).await;
}

// ---------------------------------------------------------------------------
// Completion records

#[tokio::test]
async fn done_after_complete_even_when_a_minority_lost_the_record() {
    let Some(cluster) = RedisCluster::start(5) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 1);
        let key = "sqs:event:done";
        let token = token_of(acquire_one(&lock, key, TTL).await);
        complete_one(&lock, key, token.clone(), KEEP)
            .await
            .expect("complete");
        let record = format!("{DONE_PREFIX}{token}");
        assert_eq!(holders(&urls, key, &record).await, 5);

        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
        // Completing again with the same token is harmless.
        complete_one(&lock, key, token.clone(), KEEP)
            .await
            .expect("idempotent complete");

        // Two of five nodes lose the record (a restart without persistence):
        // any majority still meets a node that has it.
        for url in &urls[..2] {
            raw(url, redis::cmd("DEL").arg(key)).await;
        }
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
        // Our tentative locks on the nodes that lost it were undone.
        for url in &urls[..2] {
            assert_eq!(raw_get(url, key).await, None, "stray lock left on {url}");
        }
        // A lock that is now a record cannot be released or extended.
        assert_eq!(
            lock.release(key.into(), token.clone()).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(
            lock.extend(key.into(), token, TTL).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(holders(&urls, key, &record).await, 3);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Ownership and expiry

#[tokio::test]
async fn only_the_owner_extends_completes_or_releases() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let key = "sqs:event:owner";
        let token = token_of(acquire_one(&lock, key, TTL).await);
        let wrong = LockToken::new("0123456789abcdef0123456789abcdef");

        assert_eq!(
            lock.release(key.into(), wrong.clone()).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(
            lock.extend(key.into(), wrong.clone(), TTL).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(
            complete_one(&lock, key, wrong.clone(), KEEP).await,
            Err(LockError::NotHeld)
        );
        // The lock is unchanged.
        assert_eq!(holders(&urls, key, token.as_str()).await, 3);
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Busy);

        // The owner can.
        let validity = lock
            .extend(key.into(), token.clone(), TTL)
            .await
            .expect("extend");
        assert!(validity > Duration::ZERO && validity < TTL, "{validity:?}");
        lock.release(key.into(), token.clone())
            .await
            .expect("release");
        assert_eq!(holders(&urls, key, token.as_str()).await, 0);
        // Once released, it is not ours any more.
        assert_eq!(
            lock.release(key.into(), token.clone()).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(
            lock.extend(key.into(), token.clone(), TTL).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(
            complete_one(&lock, key, token, KEEP).await,
            Err(LockError::NotHeld)
        );
        let again = token_of(acquire_one(&lock, key, TTL).await);
        assert_eq!(holders(&urls, key, again.as_str()).await, 3);
    })
    .await;
}

#[tokio::test]
async fn expiry_frees_the_key() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    bounded(async {
        let lock = redlock(&cluster, 0);
        let key = "sqs:event:expiry";
        let short = Duration::from_millis(300);
        let first = token_of(acquire_one(&lock, key, short).await);
        // Wait well past the TTL (waiting is fine; nothing is timed).
        tokio::time::sleep(Duration::from_millis(900)).await;
        let second = token_of(acquire_one(&lock, key, TTL).await);
        assert_ne!(first, second);
        // The expired holder can no longer touch the new lock.
        assert_eq!(
            lock.extend(key.into(), first.clone(), TTL).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(
            complete_one(&lock, key, first.clone(), KEEP).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(
            lock.release(key.into(), first).await,
            Err(LockError::NotHeld)
        );
        assert_eq!(holders(&cluster.urls(), key, second.as_str()).await, 3);
    })
    .await;
}

#[tokio::test]
async fn scripts_are_reloaded_after_a_script_flush() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    bounded(async {
        let lock = redlock(&cluster, 0);
        let a = token_of(acquire_one(&lock, "sqs:event:flush-a", TTL).await);
        for url in cluster.urls() {
            raw(&url, redis::cmd("SCRIPT").arg("FLUSH")).await;
        }
        let b = token_of(acquire_one(&lock, "sqs:event:flush-b", TTL).await);
        lock.extend("sqs:event:flush-a".into(), a, TTL)
            .await
            .expect("extend");
        lock.release("sqs:event:flush-b".into(), b)
            .await
            .expect("release");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Node failures

#[tokio::test]
async fn survives_a_minority_down_and_recovers_after_a_majority_restart() {
    let Some(mut cluster) = RedisCluster::start(3) else {
        return;
    };
    // One node is down before the client exists: building it must not fail.
    cluster[2].stop();
    // No retries: recovery must not depend on them.
    let lock = redlock(&cluster, 0);
    bounded(async {
        let key = "sqs:event:minority";
        let token = token_of(acquire_one(&lock, key, TTL).await);
        lock.extend(key.into(), token.clone(), TTL)
            .await
            .expect("extend with 2 of 3");
        complete_one(&lock, key, token, KEEP)
            .await
            .expect("complete with 2 of 3");
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
        let other = token_of(acquire_one(&lock, "sqs:event:minority-2", TTL).await);
        lock.release("sqs:event:minority-2".into(), other)
            .await
            .expect("release with 2 of 3");

        // A majority down: no decision either way.
        let held = token_of(acquire_one(&lock, "sqs:event:held", TTL).await);
        cluster[1].stop();
        match acquire_one(&lock, "sqs:event:majority", TTL).await {
            AcquireOutcome::Unavailable(LockError::Unavailable(reason)) => {
                for down in [&cluster[1], &cluster[2]] {
                    let port = down.port().to_string();
                    assert!(
                        reason.contains(&port),
                        "reason does not name node {port}: {reason}"
                    );
                }
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(matches!(
            lock.extend("sqs:event:held".into(), held.clone(), TTL)
                .await,
            Err(LockError::Unavailable(_))
        ));
        assert!(matches!(
            complete_one(&lock, "sqs:event:held", held.clone(), KEEP).await,
            Err(LockError::Unavailable(_))
        ));
        assert!(matches!(
            lock.release("sqs:event:held".into(), held).await,
            Err(LockError::Unavailable(_))
        ));

        // Both come back, empty, on the same ports: the same client works.
        cluster[1].restart();
        cluster[2].restart();
        let key = "sqs:event:back";
        let token = token_of(acquire_one(&lock, key, TTL).await);
        assert_eq!(holders(&cluster.urls(), key, token.as_str()).await, 3);
        complete_one(&lock, key, token, KEEP)
            .await
            .expect("complete after restart");
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
    })
    .await;
}

#[tokio::test]
async fn a_restarted_node_is_reconnected_without_retries() {
    let Some(mut cluster) = RedisCluster::start(3) else {
        return;
    };
    let lock = redlock(&cluster, 0);
    bounded(async {
        // Connections to every node exist...
        token_of(acquire_one(&lock, "sqs:event:warm", TTL).await);
        // ...then every server is replaced. The old connections are dead;
        // each node must notice and reconnect within the call.
        for i in 0..3 {
            cluster[i].restart();
        }
        let token = token_of(acquire_one(&lock, "sqs:event:reborn", TTL).await);
        assert_eq!(
            holders(&cluster.urls(), "sqs:event:reborn", token.as_str()).await,
            3
        );
    })
    .await;
}

#[tokio::test]
async fn a_stalled_node_does_not_hold_up_the_majority() {
    let Some(mut cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    // A short per-node timeout: the stalled node must cost at most that.
    // Retries only absorb a healthy node being slow on a loaded machine;
    // the stalled node never answers, however often it is asked.
    let lock = redlock_with(urls.clone(), 2, Duration::from_millis(500));
    bounded(async {
        token_of(acquire_one(&lock, "sqs:event:before-stall", TTL).await);
        cluster[0].pause();

        let key = "sqs:event:stalled";
        let token = token_of(acquire_one(&lock, key, TTL).await);
        lock.extend(key.into(), token.clone(), TTL)
            .await
            .expect("extend despite a stalled node");
        complete_one(&lock, key, token.clone(), KEEP)
            .await
            .expect("complete despite a stalled node");
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
        assert_eq!(
            holders(&urls[1..], key, &format!("{DONE_PREFIX}{token}")).await,
            2
        );

        // Two stalled nodes: no majority, and the answer still comes.
        cluster[1].pause();
        match acquire_one(&lock, "sqs:event:two-stalled", TTL).await {
            AcquireOutcome::Unavailable(LockError::Unavailable(reason)) => {
                for stalled in [&cluster[0], &cluster[1]] {
                    let port = stalled.port().to_string();
                    assert!(
                        reason.contains(&port),
                        "reason does not name node {port}: {reason}"
                    );
                }
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }

        // Back to normal: the node answers again through the same client.
        cluster[0].resume();
        cluster[1].resume();
        let key = "sqs:event:resumed";
        let token = token_of(acquire_one(&lock, key, TTL).await);
        assert_eq!(holders(&urls, key, token.as_str()).await, 3);
    })
    .await;
}

#[tokio::test]
async fn node_errors_never_show_passwords() {
    let Some(cluster) = RedisCluster::start(1) else {
        return;
    };
    bounded(async {
        // Two unreachable nodes with credentials, one live node: no majority.
        let dead = |port: u16| format!("redis://user:hunter2@127.0.0.1:{port}/");
        let urls = vec![
            cluster.urls()[0].clone(),
            dead(iniesta_testkit::free_port()),
            dead(iniesta_testkit::free_port()),
        ];
        let lock = redlock_with(urls, 0, Duration::from_millis(500));
        match acquire_one(&lock, "sqs:event:secret", TTL).await {
            AcquireOutcome::Unavailable(LockError::Unavailable(reason)) => {
                assert!(!reason.contains("hunter2"), "{reason}");
                assert!(reason.contains("user:***@127.0.0.1"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        // And the live node was left clean.
        assert_eq!(raw_get(&cluster.urls()[0], "sqs:event:secret").await, None);
    })
    .await;
}

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
                    // Never locked: nothing to turn into a record.
                    ("sqs:event:c-free".into(), LockToken::new("no-lock")),
                    ("sqs:event:c-also".into(), also.clone()),
                ],
                KEEP,
            )
            .await;
        assert_eq!(
            out,
            vec![
                Ok(()),
                Err(LockError::NotHeld),
                Err(LockError::NotHeld),
                Ok(())
            ]
        );
        let record = |t: &LockToken| format!("{DONE_PREFIX}{t}");
        assert_eq!(holders(&urls, "sqs:event:c-mine", &record(&mine)).await, 3);
        assert_eq!(holders(&urls, "sqs:event:c-also", &record(&also)).await, 3);
        assert_eq!(
            holders(&urls, "sqs:event:c-theirs", theirs.as_str()).await,
            3
        );
        for url in &urls {
            assert_eq!(raw_get(url, "sqs:event:c-free").await, None);
        }
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

/// One key's complete, through the batched call.
async fn complete_one<L: LockBackend + ?Sized>(
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
