//! The public lock backend conformance suite against every backend: the
//! in-memory `MockLock` on a virtual clock, Redlock over three real
//! `redis-server`s and over three `valkey-server`s (where a complete is
//! `SET … IFEQ`), and `DynamoLock` on moto_server's DynamoDB. The real
//! backends run on wall time with 1 s locks; their timed checks run side by
//! side, so each suite waits a few seconds once.

mod common;

use std::time::{Duration, Instant};

use iniesta_dynamodb::{create_table, DynamoLock, DEFAULT_TABLE};
use iniesta_mock::conformance::{check_backend, Conformance, Timing, WallClock, CHECKS};
use iniesta_mock::{Clock, MockLock};
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tests::servers::redis::RedisCluster;

fn real_time() -> Conformance {
    Conformance::new(Timing::real_time(Duration::from_secs(1)))
}

#[test]
fn the_mock_lock_conforms_on_a_virtual_clock() {
    let clock = Clock::virtual_clock();
    let lock = MockLock::new(&clock);
    let report = futures::executor::block_on(check_backend(
        || lock.clone(),
        &clock,
        Timing::virtual_time(),
    ));
    report.assert_passed();
    assert_eq!(report.results().len(), CHECKS.len());
}

#[test]
fn the_mock_lock_conforms_on_real_time() {
    // The path real backends take (checks side by side, real sleeps),
    // without a server.
    let clock = Clock::real();
    let lock = MockLock::new(&clock);
    let started = Instant::now();
    let report = futures::executor::block_on(real_time().run(|| lock.clone(), &clock));
    report.assert_passed();
    eprintln!("MockLock on real time: {:?}", started.elapsed());
}

#[tokio::test]
async fn redlock_conforms_over_real_redis() {
    redlock_conforms(RedisCluster::start, "redis-servers").await;
}

/// The same contract where a complete is `SET … IFEQ` (Valkey 8.1).
#[tokio::test]
async fn redlock_conforms_over_valkey_with_compare_and_set() {
    redlock_conforms(RedisCluster::start_valkey, "valkey-servers").await;
}

async fn redlock_conforms(start: fn(usize) -> Option<RedisCluster>, servers: &str) {
    let Some(cluster) = start(3) else {
        return;
    };
    let started = Instant::now();
    let report = real_time()
        .run(|| common::redlock::redlock(&cluster, 1), &WallClock)
        .await;
    report.assert_passed();
    eprintln!("Redlock over 3 {servers}: {:?}", started.elapsed());
}

#[tokio::test]
async fn dynamo_lock_conforms_on_moto() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let client = common::dynamodb::client(&moto.endpoint());
    create_table(&client, DEFAULT_TABLE)
        .await
        .expect("create the lock table on moto");
    let started = Instant::now();
    let report = real_time()
        .run(
            || DynamoLock::new(client.clone(), DEFAULT_TABLE),
            &WallClock,
        )
        .await;
    report.assert_passed();
    eprintln!("DynamoLock on moto: {:?}", started.elapsed());
}
