//! Drain rate against the emulator: how fast `iniesta consume` (with a
//! Redlock on three `redis-server`s) empties a queue on `moto_server`,
//! compared with the fastest thing that can drain the same queue on the same
//! emulator: a bare aws-sdk-sqs loop of ReceiveMessage (10 at most) and
//! DeleteMessageBatch, with no parsing, no locking and no handler.
//!
//! moto's ReceiveMessage gets slower as a queue grows, and the emulator (one
//! Python process) is the bottleneck of both sides, so the absolute numbers
//! say little about AWS; the ratio says how much the consumer's own work
//! (envelope parsing, three-node lock, completion record, printing) costs on
//! top of the queue calls.
//!
//! Both sides get the same events at the same depth: every queue is
//! subscribed to one topic, so one publish fills all of them with copies of
//! the same N events. Each side drains its own queue.
//!
//! ```text
//! scripts/bench.sh                 # builds the release binary, runs both benches
//! cargo build --release -p iniesta-tokio --bin iniesta
//! cargo bench -p iniesta-tests --bench drain
//! ```
//!
//! Environment (all optional):
//! - `DRAIN_N`: events per queue (default 2000);
//! - `DRAIN_LOOPS`: numbers of concurrent receive loops to compare, comma
//!   separated (default `1,4`); the consumer gets `INIESTA_MAX_IN_FLIGHT`
//!   = 10 × loops, which gives it that many concurrent receives;
//! - `DRAIN_MAX_SECS`: a side is stopped after this long even if it has not
//!   seen all events (default 300);
//! - `INIESTA_BIN`: the `iniesta` binary (default: `target/release/iniesta`,
//!   else `target/debug/iniesta`).
//!
//! Needs `moto_server` and `redis-server` on `PATH`; without them it says so
//! and exits.

use iniesta_tests::{clean_command, env_list, env_u64};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use futures::StreamExt;
use iniesta_aws::{provision, ProvisionRequest, SnsTopic, TopicRef};
use iniesta_core::publish::event_message;
use iniesta_core::{FilterPolicy, Topic};
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tests::servers::redis::RedisCluster;

const EVENT: &str = "BenchHappened.bench";
const SERVICE: &str = "bench";
const TOPIC: &str = "iniesta-bench-global";
/// The long-poll wait of both sides (the consumer's default).
const WAIT_SECONDS: i32 = 20;

// ----- settings ---------------------------------------------------------------

struct Settings {
    n: usize,
    loops: Vec<usize>,
    max_side: Duration,
    binary: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Settings {
        let loops = env_list("DRAIN_LOOPS", &[1, 4], |n| (1..=100).contains(&n));
        Settings {
            n: env_u64("DRAIN_N", 2000).max(1) as usize,
            loops,
            max_side: Duration::from_secs(env_u64("DRAIN_MAX_SECS", 300).max(1)),
            binary: find_binary(),
        }
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
    /// Anything worth a note (summary line, errors).
    note: String,
}

impl Side {
    fn rate(&self) -> f64 {
        self.seen as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

// ----- the consumer side -----------------------------------------------------------

/// Runs `iniesta consume` on `queue` until it has printed `n` distinct keys
/// (or `max` has passed), then SIGTERMs it.
#[allow(clippy::too_many_arguments)]
fn run_consumer(
    binary: &Path,
    moto: &MotoServer,
    redis: &RedisCluster,
    topic_arn: &str,
    queue: &str,
    max_in_flight: usize,
    lock_prefix: &str,
    n: usize,
    max: Duration,
) -> Side {
    let mut cmd = clean_command(binary);
    cmd.arg("consume")
        .envs(MotoServer::CHILD_ENV)
        .env("INIESTA_SQS_ENDPOINT_URL", moto.endpoint())
        .env("INIESTA_SNS_ENDPOINT_URL", moto.endpoint())
        .env("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN", topic_arn)
        .env("INIESTA_SQS_CONSUMER_FILTERS", EVENT)
        .env("INIESTA_SQS_QUEUE_NAME", queue)
        .env("SERVICE_NAME", SERVICE)
        .env("INIESTA_CACHES", redis.urls().join(","))
        .env("INIESTA_MAX_IN_FLIGHT", max_in_flight.to_string())
        // Each scenario drains copies of the same SNS messages: a prefix of
        // its own keeps one scenario's completion records from marking the
        // next one's events as done.
        .env("INIESTA_LOCK_KEY_PREFIX", lock_prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    enum Line {
        Out(String, Instant),
        Err(String, Instant),
    }
    let spawned = Instant::now();
    let mut child = cmd.spawn().expect("start iniesta consume");
    let (tx, rx) = mpsc::channel::<Line>();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let tx_out = tx.clone();
    let out_reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx_out.send(Line::Out(line, Instant::now())).is_err() {
                break;
            }
        }
    });
    let err_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let err_sink = err_lines.clone();
    let err_reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            err_sink.lock().unwrap().push(line.clone());
            let _ = tx.send(Line::Err(line, Instant::now()));
        }
    });

    let deadline = spawned + max;
    let mut keys = HashSet::new();
    let mut started: Option<Instant> = None;
    let mut last_new = spawned;
    let mut exited_early = None;
    while keys.len() < n {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(500))) {
            Ok(Line::Out(line, at)) => {
                let value: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if let Some(key) = value["key"].as_str() {
                    if keys.insert(key.to_owned()) {
                        last_new = at;
                    }
                }
            }
            Ok(Line::Err(line, at)) => {
                if started.is_none() && line.contains("consuming; stop") {
                    started = Some(at);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    exited_early = Some(status);
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let stopped_at = Instant::now();
    let status = terminate(&mut child, Duration::from_secs(60));
    drop(rx);
    let _ = out_reader.join();
    let _ = err_reader.join();
    let err_text = err_lines.lock().unwrap().clone();
    let summary = err_text
        .iter()
        .rev()
        .find(|l| l.contains("stopped;"))
        .cloned()
        .unwrap_or_default();
    let mut note = String::new();
    if let Some(status) = exited_early {
        note = format!(
            "iniesta exited early ({status}); its stderr:\n{}",
            err_text.join("\n")
        );
    } else if keys.len() < n {
        note = format!(
            "stopped by the time bound after {:.0} s with {} of {n} events",
            stopped_at.duration_since(spawned).as_secs_f64(),
            keys.len()
        );
    }
    if !summary.is_empty() {
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(summary.trim());
    }
    if !matches!(status, Some(s) if s.success()) {
        note.push_str(&format!("; exit: {status:?}"));
    }
    let start = started.unwrap_or(spawned);
    Side {
        seen: keys.len(),
        elapsed: last_new.saturating_duration_since(start),
        startup: Some(start.saturating_duration_since(spawned)),
        note,
    }
}

/// SIGTERM, then wait for the exit (SIGKILL after `patience`).
fn terminate(child: &mut Child, patience: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + patience;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ----- the baseline side ---------------------------------------------------------

/// `loops` concurrent loops of ReceiveMessage (10 at most, 20 s long poll,
/// the same attributes the consumer asks for) and DeleteMessageBatch, until
/// `n` distinct messages were deleted (or `max` has passed).
async fn run_baseline(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    loops: usize,
    n: usize,
    max: Duration,
) -> Side {
    let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let (done_tx, done_rx) = tokio::sync::watch::channel(None::<Instant>);
    let start = Instant::now();
    let deadline = start + max;
    let mut tasks = Vec::new();
    for _ in 0..loops {
        let client = client.clone();
        let url = queue_url.to_owned();
        let seen = seen.clone();
        let errors = errors.clone();
        let done_tx = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline && seen.lock().unwrap().len() < n {
                let out = match client
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(WAIT_SECONDS)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) => {
                        errors.lock().unwrap().push(format!("receive: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let messages = out.messages();
                if messages.is_empty() {
                    continue;
                }
                let entries: Vec<_> = messages
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                            .build()
                            .ok()
                    })
                    .collect();
                match client
                    .delete_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let ok: HashSet<&str> = out.successful().iter().map(|s| s.id()).collect();
                        let mut seen = seen.lock().unwrap();
                        for (i, m) in messages.iter().enumerate() {
                            if ok.contains(i.to_string().as_str()) {
                                if let Some(id) = m.message_id() {
                                    seen.insert(id.to_owned());
                                }
                            }
                        }
                        if seen.len() >= n {
                            let _ = done_tx.send(Some(Instant::now()));
                        }
                    }
                    Err(e) => errors.lock().unwrap().push(format!("delete: {e}")),
                }
            }
        }));
    }
    drop(done_tx);
    let mut done_rx = done_rx;
    let waited = tokio::time::timeout(max + Duration::from_secs(1), async {
        loop {
            if let Some(at) = *done_rx.borrow() {
                return Some(at);
            }
            if done_rx.changed().await.is_err() {
                return *done_rx.borrow();
            }
        }
    })
    .await
    .ok()
    .flatten();
    // Loops still in a long poll on the now empty queue are not part of the
    // measurement.
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let end = waited.unwrap_or_else(Instant::now);
    let seen = seen.lock().unwrap().len();
    let errors = errors.lock().unwrap();
    let mut note = String::new();
    if seen < n {
        note = format!("stopped by the time bound with {seen} of {n} messages");
    }
    if !errors.is_empty() {
        note.push_str(&format!(
            "{}{} failed call(s), first: {}",
            if note.is_empty() { "" } else { "; " },
            errors.len(),
            errors[0]
        ));
    }
    Side {
        seen,
        elapsed: end.saturating_duration_since(start),
        startup: None,
        note,
    }
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
             `cargo build --release -p iniesta-tokio --bin iniesta` or set INIESTA_BIN"
        );
        std::process::exit(1);
    };
    let Some(redis) = RedisCluster::start(3) else {
        return;
    };
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let clients = moto.clients();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let topic_arn = MotoServer::topic_arn(TOPIC);
    eprintln!(
        "drain bench: {} events per queue, receive loops {:?}, binary {}",
        s.n,
        s.loops,
        binary.display()
    );

    // One consumer queue and one baseline queue per scenario, all subscribed
    // to the topic with the same filter policy (envelope delivery).
    let policy = FilterPolicy::from_filters("iniesta_pass", [EVENT]).expect("a filter policy");
    let mut queues = Vec::new();
    for &loops in &s.loops {
        let mut pair = Vec::new();
        for side in ["consumer", "baseline"] {
            let name = format!("iniesta-bench-drain-{loops}-{side}");
            let request = ProvisionRequest::new(
                TopicRef::Arn(topic_arn.clone()),
                name.clone(),
                policy.clone(),
            );
            let p = rt
                .block_on(provision(&clients, &request))
                .unwrap_or_else(|e| panic!("provision {name}: {e}"));
            pair.push((name, p.queue_url));
        }
        queues.push((loops, pair));
    }
    eprintln!(
        "publishing {} events to {} queues (moto slows down as the queues grow: \
         minutes for thousands)",
        s.n,
        queues.len() * 2
    );
    let t = Instant::now();
    let topic = SnsTopic::new(clients.sns.clone(), topic_arn.clone());
    rt.block_on(publish(&topic, s.n));
    eprintln!(
        "published {} events to {} queues in {:.1} s",
        s.n,
        queues.len() * 2,
        t.elapsed().as_secs_f64()
    );

    println!();
    println!(
        "Drain of {} events per queue on moto_server; `iniesta consume` with a Redlock on 3 \
         redis-server; {} core(s), shared with other builds.",
        s.n,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!("| receive loops | side | depth at start | events | time, s | msgs/s | a/b |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    for (loops, pair) in &queues {
        let (consumer_queue, consumer_url) = &pair[0];
        let (_, baseline_url) = &pair[1];
        let depth_a = rt.block_on(queue_depth(&clients.sqs, consumer_url));
        let a = run_consumer(
            &binary,
            &moto,
            &redis,
            &topic_arn,
            consumer_queue,
            loops * 10,
            &format!("bench:drain:{loops}:"),
            s.n,
            s.max_side,
        );
        eprintln!(
            "  {loops} loop(s), consumer: {} events in {:.2} s",
            a.seen,
            a.elapsed.as_secs_f64()
        );
        let depth_b = rt.block_on(queue_depth(&clients.sqs, baseline_url));
        let b = rt.block_on(run_baseline(
            &clients.sqs,
            baseline_url,
            *loops,
            s.n,
            s.max_side,
        ));
        eprintln!(
            "  {loops} loop(s), baseline: {} messages in {:.2} s",
            b.seen,
            b.elapsed.as_secs_f64()
        );
        let ratio = a.rate() / b.rate();
        println!(
            "| {loops} | (a) iniesta consume, max_in_flight {} | {} | {} | {:.2} | {:.1} | |",
            loops * 10,
            depth_a.0,
            a.seen,
            a.elapsed.as_secs_f64(),
            a.rate(),
        );
        println!(
            "| {loops} | (b) receive + delete batch, no lock | {} | {} | {:.2} | {:.1} | **{:.2}** |",
            depth_b.0,
            b.seen,
            b.elapsed.as_secs_f64(),
            b.rate(),
            ratio,
        );
        if let Some(startup) = a.startup {
            notes.push(format!(
                "{loops} loop(s): the consumer started polling {:.2} s after launch (verification, \
                 Redis probe; not counted)",
                startup.as_secs_f64()
            ));
        }
        for (side, x) in [("consumer", &a), ("baseline", &b)] {
            if !x.note.is_empty() {
                notes.push(format!("{loops} loop(s), {side}: {}", x.note));
            }
        }
        let left = rt.block_on(queue_depth(&clients.sqs, consumer_url));
        if left.0 + left.1 > 0 {
            notes.push(format!(
                "{loops} loop(s): the consumer's queue still lists {} visible and {} in-flight \
                 message(s) after the run (moto can undo concurrent deletes; the completion \
                 records make such copies harmless)",
                left.0, left.1
            ));
        }
    }
    println!();
    for note in notes {
        println!("- {note}");
    }
    drop(moto);
    drop(redis);
}
