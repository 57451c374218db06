//! Drain rate against the emulator: how fast `iniesta consume` (default
//! settings, a Redlock on three `redis-server`s) empties a queue on moto,
//! compared with the fastest things that can drain the same queue on the
//! same emulator: bare aws-sdk-sqs loops of ReceiveMessage (10 at most,
//! 20 s long poll, the attributes the consumer asks for) and
//! DeleteMessageBatch, with no parsing, no locking and no handler: four
//! such loops side by side, and one.
//!
//! Stock moto scans the whole queue per message it returns and per receipt
//! handle it deletes, so at a depth of thousands it drains at tens of
//! messages per second and only measures itself. By default the bench runs
//! moto through `benches/moto_fast.py` (the same answers, hot paths
//! indexed); `DRAIN_FAST_MOTO=0` runs the stock `moto_server`.
//!
//! Every side drains its own queue; all queues are subscribed to one topic,
//! so one publish fills all of them with copies of the same N events. The
//! sides run one after the other in rounds, the order rotated each round,
//! so that a noisy machine disturbs them alike; compare within a run.
//!
//! ```text
//! scripts/bench.sh drain           # builds the release binary, runs the bench
//! cargo build --release -p iniesta-tokio --features cli --bin iniesta
//! cargo bench -p iniesta-tests --bench drain
//! ```
//!
//! Environment (all optional):
//! - `DRAIN_N`: events per queue (default 2000);
//! - `DRAIN_ROUNDS`: rounds (default 3);
//! - `DRAIN_LOOPS`: the bare-loop baselines, as numbers of concurrent
//!   loops, comma separated (default `4,1`); the first is the reference of
//!   the ratios;
//! - `DRAIN_CONSUMERS`: consumer variants, `;`-separated lists of
//!   `INIESTA_*=value` (default `defaults`: no setting changed); see
//!   `benches/common/variants.rs`; `none` runs the baselines alone;
//! - `DRAIN_DELIVERY`: `raw` (default) or `envelope`, the subscriptions'
//!   delivery;
//! - `DRAIN_FAST_MOTO`: `1` (default) for the patched moto, `0` for stock;
//! - `DRAIN_PIN`: `1` (default with two CPUs or more) gives moto the last
//!   CPU and everything else (the bench, its loops, the consumers, Redis)
//!   the others, so that the client's own CPU does not slow the emulator it
//!   is measured against (SQS does not share the consumer's CPU); other
//!   processes of the machine still run anywhere; `0` pins nothing;
//! - `DRAIN_MAX_SECS`: a side is stopped after this long even if it has not
//!   seen all events (default 300);
//! - `INIESTA_BIN`: the `iniesta` binary (default: `target/release/iniesta`,
//!   else `target/debug/iniesta`).
//!
//! Needs moto (`moto_server`, or `python3` with moto 5.2 for the patched
//! one) and `redis-server` on `PATH`; without them it says so and exits.

use iniesta_tests::{env_list, env_u64};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use futures::StreamExt;
use iniesta_aws::{provision, ProvisionRequest, SnsTopic, TopicRef};
use iniesta_core::publish::event_message;
use iniesta_core::{DeliveryMode, FilterPolicy, Topic};
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tests::servers::redis::RedisCluster;

#[path = "drain/baseline.rs"]
mod baseline;
#[path = "drain/consumer.rs"]
mod consumer;
#[path = "common/cpu.rs"]
mod cpu;
#[path = "drain/procs.rs"]
mod procs;
#[path = "drain/report.rs"]
mod report;
#[path = "common/report.rs"]
mod stats;
#[path = "common/variants.rs"]
mod variants;

use variants::Variant;

const EVENT: &str = "BenchHappened.bench";
const SERVICE: &str = "bench";
const TOPIC: &str = "iniesta-bench-global";
/// The long-poll wait of both sides (the consumer's default).
const WAIT_SECONDS: i32 = 20;

// ----- settings ---------------------------------------------------------------

struct Settings {
    n: usize,
    rounds: usize,
    loops: Vec<usize>,
    consumers: Vec<Variant>,
    delivery: DeliveryMode,
    fast_moto: bool,
    /// The machine's CPUs.
    cores: usize,
    /// The CPUs of moto and of everything else, when pinned.
    pin: Option<(String, String)>,
    max_side: Duration,
    binary: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Settings {
        // `none`: the baselines alone (e.g. to compare stock and patched moto).
        let consumers = match std::env::var("DRAIN_CONSUMERS") {
            Ok(v) if v.trim() == "none" => Vec::new(),
            _ => variants::variants_from_env("DRAIN_CONSUMERS"),
        };
        if consumers.iter().any(|v| v.receives_cap.is_some()) {
            panic!("DRAIN_CONSUMERS: receives_cap applies to the latency bench only");
        }
        let delivery = match std::env::var("DRAIN_DELIVERY").as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("raw") => DeliveryMode::Raw,
            Ok("envelope") => DeliveryMode::Envelope,
            Ok(other) => panic!("DRAIN_DELIVERY={other:?}: expected raw or envelope"),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Settings {
            n: env_u64("DRAIN_N", 2000).max(1) as usize,
            rounds: env_u64("DRAIN_ROUNDS", 3).max(1) as usize,
            loops: env_list("DRAIN_LOOPS", &[4, 1], |n| (1..=100).contains(&n)),
            consumers,
            delivery,
            fast_moto: env_u64("DRAIN_FAST_MOTO", 1) == 1,
            cores,
            pin: {
                (env_u64("DRAIN_PIN", 1) == 1 && cores >= 2).then(|| {
                    let last = cores - 1;
                    let rest = if last == 1 {
                        "0".to_owned()
                    } else {
                        format!("0-{}", last - 1)
                    };
                    (last.to_string(), rest)
                })
            },
            max_side: Duration::from_secs(env_u64("DRAIN_MAX_SECS", 300).max(1)),
            binary: find_binary(),
        }
    }

    /// The sides of a round: the first baseline, the consumers, the other
    /// baselines.
    fn sides(&self) -> Vec<SideKind> {
        let mut sides = vec![SideKind::Bare(self.loops[0])];
        sides.extend((0..self.consumers.len()).map(SideKind::Consumer));
        sides.extend(self.loops[1..].iter().map(|&l| SideKind::Bare(l)));
        sides
    }
}

/// `INIESTA_BIN`, else the workspace's release build, else its debug build.
fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("INIESTA_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["release", "debug"]
        .iter()
        .map(|profile| {
            target
                .join(profile)
                .join(format!("iniesta{}", std::env::consts::EXE_SUFFIX))
        })
        .find(|p| p.is_file())
}

// ----- results ------------------------------------------------------------------

/// One side of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideKind {
    /// This many bare receive/delete loops.
    Bare(usize),
    /// `iniesta consume` with the variant of this index.
    Consumer(usize),
}

#[derive(Debug, Clone)]
struct Side {
    /// Distinct events seen (handled by the consumer; deleted by the
    /// baseline).
    seen: usize,
    /// From the first receive (the consumer: from its "consuming" log line)
    /// to the last new event.
    elapsed: Duration,
    /// The consumer's start-up (verification, Redis probe) before that.
    startup: Option<Duration>,
    /// Share of a core moto used meanwhile.
    moto_cpu: Option<f64>,
    /// Share of a core the client used meanwhile (the consumer process; for
    /// the baseline, the bench process).
    client_cpu: Option<f64>,
    /// Anything worth a note (summary line, errors).
    note: String,
}

impl Side {
    fn rate(&self) -> f64 {
        self.seen as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A side's run with where it ran.
struct Run {
    round: usize,
    kind: SideKind,
    queue: String,
    depth: usize,
    side: Side,
}

// ----- set-up ---------------------------------------------------------------------

async fn queue_depth(client: &aws_sdk_sqs::Client, url: &str) -> (usize, usize) {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("sqs:GetQueueAttributes");
    let get = |name: QueueAttributeName| {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Publishes `n` events to the topic with PublishBatch, a few batches at a
/// time.
async fn publish(topic: &SnsTopic, n: usize) {
    let messages: Vec<_> = (0..n)
        .map(|i| {
            event_message(
                "iniesta_pass",
                EVENT,
                format!(r#"{{"n":{i},"name":"drain bench"}}"#),
                1,
            )
            .expect("a valid event")
        })
        .collect();
    let chunks: Vec<Vec<_>> = messages.chunks(50).map(<[_]>::to_vec).collect();
    let failed: usize = futures::stream::iter(chunks)
        .map(|chunk| topic.publish_batch(chunk))
        .buffer_unordered(4)
        .map(|results| results.iter().filter(|r| r.is_err()).count())
        .fold(0, |a, b| async move { a + b })
        .await;
    assert_eq!(failed, 0, "{failed} of {n} publishes failed");
}

fn queue_name(round: usize, kind: SideKind) -> String {
    match kind {
        SideKind::Bare(loops) => format!("iniesta-bench-drain-r{round}-bare{loops}"),
        SideKind::Consumer(i) => format!("iniesta-bench-drain-r{round}-consume{i}"),
    }
}

// ----- main ----------------------------------------------------------------------

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench binaries without `--bench`; this
        // one needs servers and minutes, so it only runs under `cargo bench`.
        println!("drain bench: run it with `cargo bench -p iniesta-tests --bench drain`");
        return;
    }
    let s = Settings::from_env();
    let Some(binary) = s.binary.clone() else {
        eprintln!(
            "drain bench: no iniesta binary; build it with \
             `cargo build --release -p iniesta-tokio --features cli --bin iniesta` \
             or set INIESTA_BIN"
        );
        std::process::exit(1);
    };
    // What each consumer variant means, as the binary will read it.
    let configs: Vec<_> = s
        .consumers
        .iter()
        .map(|v| {
            v.config(None, s.delivery, "bench")
                .unwrap_or_else(|e| panic!("DRAIN_CONSUMERS: {e}"))
        })
        .collect();
    // Before anything starts: the Redis servers, the consumers and the
    // runtime's threads inherit the pinning.
    if let Some((_, rest)) = &s.pin {
        if let Err(e) = procs::pin(std::process::id(), rest) {
            panic!("DRAIN_PIN: {e} (DRAIN_PIN=0 runs unpinned)");
        }
    }
    let Some(redis) = RedisCluster::start(3) else {
        return;
    };
    let stats_file = procs::stats_path();
    let moto = if s.fast_moto {
        // Read by moto_fast.py: where SIGUSR1 makes it write its counters.
        std::env::set_var("MOTO_FAST_STATS", &stats_file);
        MotoServer::start_fast()
    } else {
        MotoServer::start()
    };
    let Some(moto) = moto else {
        return;
    };
    if let Some((own, _)) = &s.pin {
        if let Err(e) = procs::pin(moto.process().pid(), own) {
            panic!("DRAIN_PIN: {e} (DRAIN_PIN=0 runs unpinned)");
        }
    }
    let clients = moto.clients();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let topic_arn = MotoServer::topic_arn(TOPIC);
    let sides = s.sides();
    eprintln!(
        "drain bench: {} events per queue, {} round(s) of {:?}, {:?} delivery, {} moto, binary {}",
        s.n,
        s.rounds,
        sides,
        s.delivery,
        if s.fast_moto { "patched" } else { "stock" },
        binary.display()
    );

    // One queue per side and round, all subscribed to the topic with the
    // same filter policy.
    let policy = FilterPolicy::from_filters("iniesta_pass", [EVENT]).expect("a filter policy");
    let mut plan = Vec::new();
    for round in 1..=s.rounds {
        // Rotated each round, so that no side always runs first.
        let mut order = sides.clone();
        order.rotate_left((round - 1) % sides.len());
        for kind in order {
            let name = queue_name(round, kind);
            let mut request = ProvisionRequest::new(
                TopicRef::Arn(topic_arn.clone()),
                name.clone(),
                policy.clone(),
            );
            request.raw_delivery = s.delivery == DeliveryMode::Raw;
            let p = rt
                .block_on(provision(&clients, &request))
                .unwrap_or_else(|e| panic!("provision {name}: {e}"));
            plan.push((round, kind, name, p.queue_url));
        }
    }
    let t = Instant::now();
    let topic = SnsTopic::new(clients.sns.clone(), topic_arn.clone());
    rt.block_on(publish(&topic, s.n));
    let publish_time = t.elapsed();
    eprintln!(
        "published {} events to {} queues in {:.1} s",
        s.n,
        plan.len(),
        publish_time.as_secs_f64()
    );

    let mut runs = Vec::new();
    for (round, kind, name, url) in plan {
        let depth = rt.block_on(queue_depth(&clients.sqs, &url)).0;
        let side = match kind {
            SideKind::Bare(loops) => rt.block_on(baseline::run_baseline(
                &clients.sqs,
                &url,
                loops,
                s.n,
                s.max_side,
                moto.process().pid(),
            )),
            SideKind::Consumer(i) => consumer::run_consumer(&consumer::ConsumerRun {
                binary: &binary,
                moto: &moto,
                redis: &redis,
                topic_arn: &topic_arn,
                queue: &name,
                vars: &s.consumers[i].vars,
                lock_prefix: &format!("bench:drain:r{round}:{i}:"),
                n: s.n,
                max: s.max_side,
            }),
        };
        eprintln!(
            "  round {round}, {}: {} events in {:.2} s, {:.1} msgs/s",
            report::side_name(kind, &s.consumers),
            side.seen,
            side.elapsed.as_secs_f64(),
            side.rate()
        );
        let mut side = side;
        let left = rt.block_on(queue_depth(&clients.sqs, &url));
        if matches!(kind, SideKind::Consumer(_)) && left.0 + left.1 > 0 {
            side.note.push_str(&format!(
                "{}the queue still lists {} visible and {} in-flight message(s) after the run",
                if side.note.is_empty() { "" } else { "; " },
                left.0,
                left.1
            ));
        }
        runs.push(Run {
            round,
            kind,
            queue: name,
            depth,
            side,
        });
    }
    let calls = if s.fast_moto {
        let mut seq = 0;
        procs::moto_calls(moto.process().pid(), &stats_file, &mut seq)
    } else {
        None
    };
    let _ = std::fs::remove_file(&stats_file);
    report::print(&report::Context {
        n: s.n,
        pin: s.pin.clone(),
        cores: s.cores,
        delivery: s.delivery,
        fast_moto: s.fast_moto,
        publish_time,
        queues: runs.len(),
        consumers: &s.consumers,
        configs: &configs,
        runs: &runs,
        calls: calls.as_ref(),
    });
    drop(moto);
    drop(redis);
}
