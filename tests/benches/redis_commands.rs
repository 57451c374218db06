//! Redis commands per message: what acquiring and completing a message's
//! lock costs the three Redis servers of a Redlock, counted by Redis itself
//! (`INFO commandstats` before and after on every node; a script call
//! counts as one `evalsha` plus each command the script runs).
//!
//! Two ways in:
//! - **direct**: the `Redlock` alone, acquiring fresh keys in batches and
//!   completing each batch as a whole (the shape of a full receive);
//! - **consumer**: the real consumer (`Driver`) on an in-memory queue,
//!   with a no-op handler and the Redlock over the same three servers, so
//!   batches are as large as the consumer makes them.
//!
//! ```text
//! cargo bench -p iniesta-tests --bench redis_commands
//! ```
//!
//! Environment (all optional):
//! - `REDIS_COMMANDS_N`: messages per scenario (default 1000);
//! - `REDIS_COMMANDS_BATCHES`: batch sizes of the direct scenarios, comma
//!   separated (default `1,10,100`).
//!
//! Runs on three `redis-server`s (Redis 7: the complete script) and on
//! three `valkey-server`s (8.1: `SET … IFEQ`; `scripts/valkey.sh` builds
//! one), one table each; a server missing from `PATH` is said and skipped.

#[path = "redis_commands/count.rs"]
mod count;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use count::{count_batches, describe, summed, total, Calls, Counter};
use futures::FutureExt;
use iniesta_core::driver::Driver;
use iniesta_core::machine::{Consumer, ConsumerConfig, Event};
use iniesta_core::{AttributeValue, DeliveryMode, HandlerRegistry, ParseConfig, Stats};
use iniesta_mock::{Clock, MockQueue, QueueOptions};
use iniesta_redlock::{Redlock, RedlockConfig};
use iniesta_tests::servers::redis::RedisCluster;
use iniesta_tests::{env_list, env_u64};
use iniesta_tokio::TokioRuntime;

const EVENT: &str = "BenchHappened.bench";
const PAYLOAD: &str = r#"{"user_id":12345,"name":"bench"}"#;

fn redlock(cluster: &RedisCluster) -> Redlock {
    let mut config = RedlockConfig::with_urls(cluster.urls());
    // Generous for a loaded machine: a node that times out would be retried
    // and counted twice.
    config.node_timeout = Duration::from_secs(2);
    Redlock::new(config).expect("valid config")
}

fn row(server: &str, name: &str, n: usize, per_node: &[Calls]) {
    let per_message = total(per_node) as f64 / n as f64;
    let per_node_text: Vec<String> = per_node
        .iter()
        .map(|c| format!("{:.2}", c.values().sum::<u64>() as f64 / n as f64))
        .collect();
    println!(
        "| {server} | {name} | {n} | **{per_message:.2}** | {} | {} |",
        per_node_text.join(" / "),
        describe(&summed(per_node))
    );
}

/// The consumer's drain of `n` messages, raw delivery, no-op handler.
async fn through_consumer(
    lock: Arc<Redlock>,
    tag: &str,
    n: u64,
    max_in_flight: usize,
    concurrent_receives: usize,
) -> Stats {
    // The queue on a virtual clock that stays at zero: no visibility
    // timeout expires, so no message is received twice.
    let clock = Clock::virtual_clock();
    let queue = Arc::new(MockQueue::with_options(
        format!("iniesta-bench-commands-{max_in_flight}"),
        &clock,
        QueueOptions::default().with_retain_deleted(false),
    ));
    let attrs = BTreeMap::from([
        (
            "iniesta_pass".to_owned(),
            AttributeValue::String(EVENT.to_owned()),
        ),
        ("version".to_owned(), AttributeValue::Number("1".to_owned())),
    ]);
    for _ in 0..n {
        queue.send(PAYLOAD, attrs.clone());
    }
    let mut handlers = HandlerRegistry::new();
    handlers.on(EVENT, || async {}).expect("one handler");
    let mut config = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Raw,
            event_key: "iniesta_pass".to_owned(),
            topic_arn: None,
        },
        "bench",
    );
    config.max_in_flight = max_in_flight;
    config.concurrent_receives = concurrent_receives;
    config.wait_time = Duration::from_secs(20);
    // The in-memory queue numbers its messages from 1: a prefix of its
    // own per drain keeps earlier drains' records from answering `Done`.
    config.lock_key_prefix = format!("sqs:event:bench-{tag}:");

    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let mut stop_tx = Some(stop_tx);
    let mut deleted = 0u64;
    let observer = move |event: &Event| {
        if let Event::Deleted { .. } = event {
            deleted += 1;
            if deleted == n {
                if let Some(tx) = stop_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    };
    let runtime = TokioRuntime::new();
    let consumer = Consumer::new(config, &handlers, iniesta_core::Runtime::now(&runtime))
        .expect("valid consumer configuration");
    let driver = Driver::new(consumer, handlers, queue, lock, runtime);
    let stats = driver.run(stop_rx.map(|_| ()), observer).await;
    assert_eq!(stats.deleted, n, "every message is deleted");
    assert_eq!(stats.dispatched, n, "every message is dispatched once");
    stats
}

#[tokio::main]
async fn main() {
    let n = env_u64("REDIS_COMMANDS_N", 1000).max(1) as usize;
    let batches = env_list("REDIS_COMMANDS_BATCHES", &[1, 10, 100], |b| b > 0);
    println!("Redis commands per message over 3 nodes, {n} messages per scenario");
    println!();
    println!(
        "| server | scenario | messages | commands/msg | per node | calls by command (3 nodes) |"
    );
    println!("|---|---|---:|---:|---|---|");
    type Start = fn(usize) -> Option<RedisCluster>;
    let servers: [(&str, Start); 2] = [
        ("redis-server", RedisCluster::start),
        ("valkey-server", RedisCluster::start_valkey),
    ];
    for (server, start) in servers {
        let Some(cluster) = start(3) else {
            continue;
        };
        measure(server, &cluster, n, &batches).await;
    }
}

/// Every scenario on `cluster`, one row each.
async fn measure(server: &str, cluster: &RedisCluster, n: usize, batches: &[usize]) {
    let urls = cluster.urls();
    let mut counter = Counter::connect(&urls).await;
    let lock = Arc::new(redlock(cluster));
    for &batch in batches {
        let prefix = format!("sqs:event:bench-direct-{batch}");
        let per_node = count_batches(&lock, &mut counter, &prefix, n, batch).await;
        row(server, &format!("direct, batches of {batch}"), n, &per_node);
    }
    for (max_in_flight, receives) in [(10, 1), (100, 10)] {
        // A warm-up drain first: connections made, scripts loaded.
        let tag = format!("{max_in_flight}-{receives}");
        through_consumer(
            lock.clone(),
            &format!("{tag}-warm-up"),
            10,
            max_in_flight,
            receives,
        )
        .await;
        let before = counter.read().await;
        through_consumer(lock.clone(), &tag, n as u64, max_in_flight, receives).await;
        let after = counter.read().await;
        let per_node = count::diff(&before, &after);
        row(
            server,
            &format!("consumer, max_in_flight {max_in_flight}/{receives}"),
            n,
            &per_node,
        );
    }
}
