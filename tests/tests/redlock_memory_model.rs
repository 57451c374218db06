//! [`MemoryNode`] against the real scripts: the same operations, on one
//! `redis-server` (through a one-node [`Redlock`], where every decision is
//! that node's reply) and on a `MemoryNode`, MUST get the same replies and
//! leave the same values behind. This is what lets model tests trust the
//! in-memory node.

mod common;

use std::time::{Duration, Instant};

use common::redlock::*;
use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockToken};
use iniesta_redlock::memory::{MemoryNode, NodeState};
use iniesta_redlock::quorum::AcquireReply;
use iniesta_redlock::{Redlock, DONE_PREFIX};
use iniesta_tests::servers::redis::RedisCluster;

const KEYS: [&str; 3] = ["sqs:event:m-a", "sqs:event:m-b", "sqs:event:m-c"];
/// Long enough that nothing expires during the run: expiry is exercised
/// by explicit losses instead, so wall time never decides a reply.
const LONG: Duration = Duration::from_secs(300);

/// A small deterministic generator (no seed file, no dependency).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn write_reply<T>(r: Result<T, LockError>, what: &str) -> bool {
    match r {
        Ok(_) => true,
        Err(LockError::NotHeld) => false,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// The value a node stores for `state`, as GET returns it.
fn stored(state: NodeState) -> Option<String> {
    match state {
        NodeState::Free => None,
        NodeState::Locked { token, .. } => Some(token.to_string()),
        NodeState::Done { token, .. } => Some(format!("{DONE_PREFIX}{token}")),
    }
}

async fn step(
    lock: &Redlock,
    url: &str,
    node: &mut MemoryNode,
    tokens: &mut Vec<LockToken>,
    rng: &mut Lcg,
    now: Duration,
) -> (&'static str, String) {
    let key = KEYS[rng.below(KEYS.len())];
    // Half the time the newest token (most likely to hold something), else
    // any token seen so far (mostly stale ones).
    let token = if rng.below(2) == 0 {
        tokens[tokens.len() - 1].clone()
    } else {
        tokens[rng.below(tokens.len())].clone()
    };
    match rng.below(6) {
        0 | 1 => {
            let (reply, mine) = match acquire_one(lock, key, LONG).await {
                AcquireOutcome::Acquired { token, .. } => (AcquireReply::Acquired, token),
                AcquireOutcome::Busy => (AcquireReply::Busy, LockToken::new("fresh")),
                AcquireOutcome::Done => (AcquireReply::Done, LockToken::new("fresh")),
                AcquireOutcome::Unavailable(e) => panic!("acquire {key}: {e}"),
            };
            assert_eq!(node.acquire(key, &mine, LONG, now), reply, "acquire {key}");
            if reply == AcquireReply::Acquired {
                tokens.push(mine);
            }
            ("acquire", format!("{reply:?}"))
        }
        2 => {
            let redis = write_reply(lock.extend(key.into(), token.clone(), LONG).await, "extend");
            assert_eq!(
                node.extend(key, &token, LONG, now),
                redis,
                "extend {key} {token}"
            );
            ("extend", redis.to_string())
        }
        3 => {
            let keep = LONG * 2;
            let before = match node.state(key, now) {
                NodeState::Free => "free",
                NodeState::Locked { token: t, .. } if t == token => "our lock",
                NodeState::Locked { .. } => "their lock",
                NodeState::Done { token: t, .. } if t == token => "our record",
                NodeState::Done { .. } => "their record",
            };
            let redis = write_reply(
                complete_one(lock, key, token.clone(), keep).await,
                "complete",
            );
            assert_eq!(
                node.complete(key, &token, keep, now),
                redis,
                "complete {key} {token}"
            );
            ("complete", format!("{before}: {redis}"))
        }
        4 => {
            let redis = write_reply(lock.release(key.into(), token.clone()).await, "release");
            assert_eq!(
                node.release(key, &token, now),
                redis,
                "release {key} {token}"
            );
            ("release", redis.to_string())
        }
        _ => {
            // The server loses the key, whatever it held.
            raw(url, redis::cmd("DEL").arg(key)).await;
            let lost = node.expire(key, now) || node.forget(key, now);
            ("lose", lost.to_string())
        }
    }
}

#[tokio::test]
async fn memory_node_replies_and_stores_as_the_scripts_do() {
    let Some(cluster) = RedisCluster::start(1) else {
        return;
    };
    let url = cluster.urls().remove(0);
    bounded(async {
        let lock = redlock(&cluster, 0);
        let mut node = MemoryNode::new();
        let mut tokens = vec![LockToken::new("0000000000000000000000000000ffff")];
        let mut rng = Lcg(0x001e_57a1_1ce5);
        let start = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for i in 0..300 {
            let now = start.elapsed();
            let did = step(&lock, &url, &mut node, &mut tokens, &mut rng, now).await;
            for key in KEYS {
                assert_eq!(
                    raw_get(&url, key).await,
                    stored(node.state(key, start.elapsed())),
                    "after step {i} ({did:?}): {key} differs"
                );
            }
            seen.insert(did);
        }
        // The run went through every reply of every script, not a few.
        let want = [
            ("acquire", "Acquired"),
            ("acquire", "Busy"),
            ("acquire", "Done"),
            ("extend", "true"),
            ("extend", "false"),
            ("complete", "free: true"),
            ("complete", "our lock: true"),
            ("complete", "our record: true"),
            ("complete", "their record: true"),
            ("complete", "their lock: false"),
            ("release", "true"),
            ("release", "false"),
        ];
        for (op, reply) in want {
            assert!(
                seen.contains(&(op, reply.to_owned())),
                "{op} never answered {reply}: {seen:?}"
            );
        }
    })
    .await;
}
