//! What a message costs Redis: the commands each node runs for acquire and
//! complete, read from `INFO commandstats` (which counts a script call as
//! one `evalsha` plus every command the script runs), on Redis 7 (the
//! complete script) and on Valkey 8.1 (`SET … IFEQ`). Counts, not timings.
//!
//! Also checks a complete batch key by key on both: a batch whose keys are
//! in every state a key can be in answers and stores what
//! [`MemoryNode`](iniesta_redlock::memory::MemoryNode) does for each key
//! in turn.

mod common;

#[path = "../benches/redis_commands/count.rs"]
mod count;

use std::time::Duration;

use common::redlock::*;
use count::{acquire_and_complete, count_batches, describe, summed, total, Calls, Counter};
use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};
use iniesta_redlock::memory::{MemoryNode, NodeState};
use iniesta_redlock::quorum::AcquireReply;
use iniesta_redlock::{DONE_PREFIX, MAX_KEYS_PER_CALL};
use iniesta_tests::servers::redis::RedisCluster;

/// What a server runs per message: on Redis 7 (no `SET … IFEQ`) each node
/// runs one `SET … NX … GET` per key to acquire, and to complete one script
/// call per batch (an `EVALSHA` and an `MGET`) with a `SET` per key; on a
/// server that compares and sets (Valkey 8.1, Redis 8.4) a `SET … IFEQ`
/// per key instead of the script. Over three nodes in batches of 10 that is
/// 3 × (2 + 2/10) = 6.6 and 3 × 2 = 6.0 commands per message. The per-key
/// scripts this replaced ran a GET and a SET per key and per call: 18.
#[derive(Clone, Copy, Debug)]
enum Server {
    Redis,
    Valkey,
}

impl Server {
    fn start(self, n: usize) -> Option<RedisCluster> {
        match self {
            Server::Redis => RedisCluster::start(n),
            Server::Valkey => RedisCluster::start_valkey(n),
        }
    }

    /// The calls a node must have run for `messages` messages completed
    /// in `calls` batch calls.
    fn expected(self, messages: u64, calls: u64) -> Calls {
        match self {
            Server::Redis => Calls::from([
                ("evalsha".to_owned(), calls),
                ("mget".to_owned(), calls),
                ("set".to_owned(), 2 * messages),
            ]),
            Server::Valkey => Calls::from([("set".to_owned(), 2 * messages)]),
        }
    }

    /// Commands per message over three nodes, in batches of 10.
    fn per_message_in_tens(self) -> f64 {
        match self {
            Server::Redis => 6.6,
            Server::Valkey => 6.0,
        }
    }
}

async fn batches_of_ten(server: Server) {
    let Some(cluster) = server.start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let mut counter = Counter::connect(&urls).await;
        let n = 100;
        let per_node = count_batches(&lock, &mut counter, "sqs:event:cmd10", n, 10).await;
        for (url, calls) in urls.iter().zip(&per_node) {
            assert_eq!(
                calls,
                &server.expected(n as u64, 10),
                "{url}: {}",
                describe(calls)
            );
        }
        let per_message = total(&per_node) as f64 / n as f64;
        assert!(
            per_message <= server.per_message_in_tens() + 1e-9,
            "{per_message} commands per message ({})",
            describe(&summed(&per_node))
        );
    })
    .await;
}

#[tokio::test]
async fn a_message_costs_6_6_commands_over_3_redis_7_nodes_in_batches_of_10() {
    batches_of_ten(Server::Redis).await;
}

#[tokio::test]
async fn a_message_costs_6_commands_over_3_valkey_nodes_in_batches_of_10() {
    batches_of_ten(Server::Valkey).await;
}

async fn alone(server: Server, per_node_per_message: u64) {
    let Some(cluster) = server.start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let mut counter = Counter::connect(&urls).await;
        let per_node = count_batches(&lock, &mut counter, "sqs:event:cmd1", 4, 1).await;
        for (url, calls) in urls.iter().zip(&per_node) {
            assert_eq!(calls, &server.expected(4, 4), "{url}: {}", describe(calls));
        }
        assert_eq!(total(&per_node), 4 * 3 * per_node_per_message);
    })
    .await;
}

#[tokio::test]
async fn a_message_alone_costs_4_commands_per_redis_7_node() {
    alone(Server::Redis, 4).await;
}

#[tokio::test]
async fn a_message_alone_costs_2_commands_per_valkey_node() {
    alone(Server::Valkey, 2).await;
}

async fn big_batch(server: Server) {
    let Some(cluster) = server.start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let mut counter = Counter::connect(&urls).await;
        let n = 2 * MAX_KEYS_PER_CALL + 1;
        let per_node = count_batches(&lock, &mut counter, "sqs:event:cmd-big", n, n).await;
        for (url, calls) in urls.iter().zip(&per_node) {
            assert_eq!(
                calls,
                &server.expected(n as u64, 3),
                "{url}: {}",
                describe(calls)
            );
        }
        let last = format!("sqs:event:cmd-big-{}", n - 1);
        let records = raw_get(&urls[0], &last)
            .await
            .expect("the last key is kept");
        assert!(records.starts_with(DONE_PREFIX), "{last}: {records}");
    })
    .await;
}

#[tokio::test]
async fn a_batch_larger_than_one_script_call_is_split_and_answered_whole() {
    big_batch(Server::Redis).await;
}

#[tokio::test]
async fn a_large_batch_is_answered_whole_with_compare_and_set() {
    big_batch(Server::Valkey).await;
}

/// What a key holds before the batch, and how to put it there.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Before {
    Free,
    OurLock,
    OurRecord,
    TheirLock,
    TheirRecord,
    /// A hash: every script on it fails with WRONGTYPE.
    Hash,
}

#[tokio::test]
async fn a_complete_batch_treats_each_key_as_memory_node_does() {
    key_by_key(Server::Redis).await;
}

#[tokio::test]
async fn a_compare_and_set_complete_treats_each_key_as_memory_node_does() {
    key_by_key(Server::Valkey).await;
}

async fn key_by_key(server: Server) {
    let Some(cluster) = server.start(3) else {
        return;
    };
    let urls = cluster.urls();
    bounded(async {
        let lock = redlock(&cluster, 0);
        let other = redlock(&cluster, 0);
        let now = Duration::ZERO;
        let mut model = MemoryNode::new();
        let states = [
            Before::OurLock,
            Before::TheirLock,
            Before::Free,
            Before::Hash,
            Before::TheirRecord,
            Before::OurRecord,
            Before::OurLock,
        ];
        let mut entries = Vec::new();
        for (i, state) in states.iter().enumerate() {
            let key = format!("sqs:event:cmd-mixed-{i}");
            let mine = match state {
                Before::OurLock | Before::OurRecord => {
                    let t = token_of(acquire_one(&lock, &key, TTL).await);
                    assert_eq!(model.acquire(&key, &t, TTL, now), AcquireReply::Acquired);
                    if *state == Before::OurRecord {
                        complete_one(&lock, &key, t.clone(), KEEP).await.unwrap();
                        assert!(model.complete(&key, &t, KEEP, now));
                    }
                    t
                }
                Before::TheirLock | Before::TheirRecord => {
                    let t = token_of(acquire_one(&other, &key, TTL).await);
                    model.acquire(&key, &t, TTL, now);
                    if *state == Before::TheirRecord {
                        complete_one(&other, &key, t.clone(), KEEP).await.unwrap();
                        model.complete(&key, &t, KEEP, now);
                    }
                    LockToken::new(format!("not-{t}"))
                }
                Before::Free => LockToken::new("never-locked"),
                Before::Hash => {
                    for url in &urls {
                        raw(url, redis::cmd("HSET").arg(&key).arg("f").arg("v")).await;
                    }
                    LockToken::new("hashed")
                }
            };
            entries.push((LockKey::new(&key), mine));
        }
        // The first key once more, at the end: a retried complete in the
        // same batch finds its own record. And the free key with another
        // token: it meets the record the first entry wrote.
        entries.push(entries[0].clone());
        entries.push((entries[2].0.clone(), LockToken::new("another-never-locked")));

        let out = lock.complete(entries.clone(), KEEP).await;
        assert_eq!(out.len(), entries.len());
        for (pos, ((key, token), result)) in entries.iter().zip(&out).enumerate() {
            let state = states.get(pos).copied().unwrap_or(Before::OurRecord);
            if state == Before::Hash {
                match result {
                    Err(LockError::Unavailable(reason)) => {
                        assert!(reason.contains("WRONGTYPE"), "{key}: {reason}")
                    }
                    other => panic!("{key}: expected WRONGTYPE, got {other:?}"),
                }
                continue;
            }
            let modelled = model.complete(key, token, KEEP, now);
            assert_eq!(result.is_ok(), modelled, "{key} ({state:?}): {result:?}");
            if !modelled {
                assert_eq!(result, &Err(LockError::NotHeld), "{key}");
            }
            let want = match model.state(key, now) {
                NodeState::Free => None,
                NodeState::Locked { token, .. } => Some(token.to_string()),
                NodeState::Done { token, .. } => Some(format!("{DONE_PREFIX}{token}")),
            };
            for url in &urls {
                assert_eq!(raw_get(url, key).await, want, "{url} {key} ({state:?})");
            }
        }
        // The hash is untouched and every other key still answers.
        let out = lock
            .acquire(entries.iter().map(|(key, _)| key.clone()).collect(), TTL)
            .await;
        assert_eq!(out[1], AcquireOutcome::Busy, "{out:?}");
        assert!(matches!(out[3], AcquireOutcome::Unavailable(_)), "{out:?}");
        for i in [0, 2, 4, 5, 6] {
            assert_eq!(out[i], AcquireOutcome::Done, "{i}: {out:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_restarted_valkey_node_still_completes_with_compare_and_set() {
    let Some(mut cluster) = Server::Valkey.start(3) else {
        return;
    };
    let lock = redlock(&cluster, 0);
    bounded(acquire_and_complete(&lock, "sqs:event:probe-a", 10, 10)).await;
    // A fresh, empty server on the same port: its counts start from zero,
    // and the client's connection to it is a new one.
    cluster[0].restart();
    bounded(acquire_and_complete(&lock, "sqs:event:probe-b", 10, 10)).await;
    let urls = cluster.urls();
    let mut counter = Counter::connect(&urls[..1]).await;
    let calls = counter.read().await;
    // The probe (a SET on a missing key, writing nothing), ten acquires and
    // ten records, and no script (connections' own `CLIENT SETINFO` aside).
    let ours: Calls = calls[0]
        .iter()
        .filter(|(name, _)| !name.starts_with("client"))
        .map(|(name, n)| (name.clone(), *n))
        .collect();
    assert_eq!(
        ours,
        Calls::from([("set".to_owned(), 21)]),
        "{}",
        describe(&calls[0])
    );
}
