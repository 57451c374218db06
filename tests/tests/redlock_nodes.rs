//! The Redlock backend against real `redis-server` processes, started on
//! free loopback ports by the test kit and killed when each test ends.
//!
//! Outside CI these tests skip (with a printed reason) when `redis-server`
//! is not installed; under `CI=true` they fail instead. Every test is
//! bounded by a generous timeout so a bug cannot hang the suite; none
//! asserts on elapsed time.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::redlock::*;
use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockToken};
use iniesta_redlock::{Redlock, DONE_PREFIX};
use iniesta_tests::servers::redis::RedisCluster;

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
    done_after_complete(RedisCluster::start).await;
}

/// The same with `SET … IFEQ` completing.
#[tokio::test]
async fn done_after_a_compare_and_set_complete_even_when_a_minority_lost_the_record() {
    done_after_complete(RedisCluster::start_valkey).await;
}

async fn done_after_complete(start: fn(usize) -> Option<RedisCluster>) {
    let Some(cluster) = start(5) else {
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

#[tokio::test]
async fn complete_on_a_free_key_writes_a_record_that_acquire_answers_done() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        // Never locked (the lock was lost, say, to a server restart).
        let key = "sqs:event:free-record";
        let token = LockToken::new("0123456789abcdef0123456789abcdef");
        complete_one(&lock, key, token.clone(), KEEP)
            .await
            .expect("a free key takes the record");
        assert_eq!(
            holders(&urls, key, &format!("{DONE_PREFIX}{token}")).await,
            3
        );
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);

        // Locked, then the lock expired while the work ran: still recorded.
        let key = "sqs:event:late-record";
        let short = Duration::from_millis(300);
        let token = token_of(acquire_one(&lock, key, short).await);
        tokio::time::sleep(Duration::from_millis(900)).await;
        for url in &urls {
            assert_eq!(raw_get(url, key).await, None, "the lock expired");
        }
        complete_one(&lock, key, token.clone(), KEEP)
            .await
            .expect("work that outlived its lock is recorded");
        assert_eq!(
            holders(&urls, key, &format!("{DONE_PREFIX}{token}")).await,
            3
        );
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
    })
    .await;
}

#[tokio::test]
async fn complete_is_refused_while_another_token_holds_the_lock() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let key = "sqs:event:taken-over";
        // Our lock expired and someone else took the key.
        let ours = token_of(acquire_one(&lock, key, Duration::from_millis(300)).await);
        tokio::time::sleep(Duration::from_millis(900)).await;
        let theirs = token_of(acquire_one(&lock, key, TTL).await);
        let before: Vec<i64> =
            futures::future::join_all(urls.iter().map(|u| raw_pttl(u, key))).await;

        assert_eq!(
            complete_one(&lock, key, ours, KEEP).await,
            Err(LockError::NotHeld)
        );
        // Their lock is untouched: same value, no longer lifetime.
        assert_eq!(holders(&urls, key, theirs.as_str()).await, 3);
        for (url, was) in urls.iter().zip(before) {
            let now = raw_pttl(url, key).await;
            assert!(now > 0 && now <= was, "{url}: pttl {now} after {was}");
        }
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Busy);
        // And it is still theirs to complete.
        complete_one(&lock, key, theirs.clone(), KEEP)
            .await
            .expect("the holder completes");
        assert_eq!(
            holders(&urls, key, &format!("{DONE_PREFIX}{theirs}")).await,
            3
        );
    })
    .await;
}

#[tokio::test]
async fn a_retried_complete_is_ok_and_never_takes_another_record() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let key = "sqs:event:retried";
        let token = token_of(acquire_one(&lock, key, TTL).await);
        let record = format!("{DONE_PREFIX}{token}");
        let short = Duration::from_secs(60);
        complete_one(&lock, key, token.clone(), short)
            .await
            .expect("complete");
        // The reply was lost, say, and the caller tries again, keeping the
        // record longer this time: Ok, and renewed.
        complete_one(&lock, key, token.clone(), KEEP)
            .await
            .expect("a retried complete is Ok");
        assert_eq!(holders(&urls, key, &record).await, 3);
        for url in &urls {
            let left = raw_pttl(url, key).await;
            assert!(
                left > 60_000,
                "{url}: the record was not renewed ({left} ms)"
            );
        }

        // Another owner's complete on our record: Ok (the work is recorded),
        // and the record stays ours, with its lifetime.
        let other = LockToken::new("fedcba9876543210fedcba9876543210");
        complete_one(&lock, key, other, Duration::from_secs(7 * 86_400))
            .await
            .expect("a record already there answers Ok");
        assert_eq!(holders(&urls, key, &record).await, 3);
        for url in &urls {
            let left = raw_pttl(url, key).await;
            assert!(
                left <= KEEP.as_millis() as i64,
                "{url}: renewed by another owner"
            );
        }
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
    })
    .await;
}

#[tokio::test]
async fn complete_with_another_lock_on_a_minority_still_records() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let key = "sqs:event:stray";
        // A stray lock of someone else on one node (a partial acquire whose
        // undo was lost): two free nodes still make a majority.
        raw(
            &urls[0],
            redis::cmd("SET")
                .arg(key)
                .arg("stray-token")
                .arg("PX")
                .arg(30_000),
        )
        .await;
        let token = LockToken::new("00112233445566778899aabbccddeeff");
        complete_one(&lock, key, token.clone(), KEEP)
            .await
            .expect("a majority took the record");
        assert_eq!(raw_get(&urls[0], key).await.as_deref(), Some("stray-token"));
        assert_eq!(
            holders(&urls[1..], key, &format!("{DONE_PREFIX}{token}")).await,
            2
        );
        assert_eq!(acquire_one(&lock, key, TTL).await, AcquireOutcome::Done);
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
    minority_down_then_majority_restart(RedisCluster::start).await;
}

/// The same with `SET … IFEQ` completing: a node's support is probed on
/// each new connection, also after a restart.
#[tokio::test]
async fn compare_and_set_survives_a_minority_down_and_a_majority_restart() {
    minority_down_then_majority_restart(RedisCluster::start_valkey).await;
}

async fn minority_down_then_majority_restart(start: fn(usize) -> Option<RedisCluster>) {
    let Some(mut cluster) = start(3) else {
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
    stalled_node(RedisCluster::start).await;
}

/// The same where a complete is `SET … IFEQ`, whose second pipeline (for
/// keys found free) shares the node timeout with the first.
#[tokio::test]
async fn a_stalled_node_does_not_hold_up_a_compare_and_set_majority() {
    stalled_node(RedisCluster::start_valkey).await;
}

async fn stalled_node(start: fn(usize) -> Option<RedisCluster>) {
    let Some(mut cluster) = start(3) else {
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
            dead(iniesta_tests::servers::free_port()),
            dead(iniesta_tests::servers::free_port()),
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
