//! The consumer side of the drain bench: `iniesta consume` as users run
//! it, with the settings of one variant and nothing else.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iniesta_tests::clean_command;
use iniesta_tests::servers::moto::MotoServer;
use iniesta_tests::servers::redis::RedisCluster;

use super::cpu::{cpu_share, cpu_time};
use super::{Side, EVENT, SERVICE};

/// Where and how one consumer runs.
pub struct ConsumerRun<'a> {
    pub binary: &'a Path,
    pub moto: &'a MotoServer,
    pub redis: &'a RedisCluster,
    pub topic_arn: &'a str,
    pub queue: &'a str,
    /// The variant's settings; everything else is the default.
    pub vars: &'a [(String, String)],
    /// A lock-key prefix of its own: the sides drain copies of the same
    /// SNS messages, and with envelope delivery one side's completion
    /// records would otherwise mark the next one's events as done.
    pub lock_prefix: &'a str,
    pub n: usize,
    pub max: Duration,
}

enum Line {
    Out(String, Instant),
    Err(String, Instant),
}

/// Runs `iniesta consume` until it has printed `n` distinct keys (or `max`
/// has passed), then SIGTERMs it. Timed from its `consuming; stop with
/// SIGINT or SIGTERM` log line (start-up with verification and the Redis
/// probe not counted) to the line that completes `n` keys.
pub fn run_consumer(run: &ConsumerRun<'_>) -> Side {
    let mut cmd = clean_command(run.binary);
    cmd.arg("consume")
        .envs(MotoServer::CHILD_ENV)
        .env("INIESTA_SQS_ENDPOINT_URL", run.moto.endpoint())
        .env("INIESTA_SNS_ENDPOINT_URL", run.moto.endpoint())
        .env("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN", run.topic_arn)
        .env("INIESTA_SQS_CONSUMER_FILTERS", EVENT)
        .env("INIESTA_SQS_QUEUE_NAME", run.queue)
        .env("SERVICE_NAME", SERVICE)
        .env("INIESTA_CACHES", run.redis.urls().join(","))
        .env("INIESTA_LOCK_KEY_PREFIX", run.lock_prefix)
        .envs(run.vars.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let moto_pid = run.moto.process().pid();
    let spawned = Instant::now();
    let mut child = cmd.spawn().expect("start iniesta consume");
    let pid = child.id();
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

    let deadline = spawned + run.max;
    let mut keys = HashSet::new();
    let mut started: Option<Instant> = None;
    // CPU time of moto and of the consumer when polling started and when
    // the last new key came.
    let mut cpu_start = (None, None);
    let mut cpu_end = (None, None);
    let mut last_new = spawned;
    let mut exited_early = None;
    while keys.len() < run.n {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(500))) {
            Ok(Line::Out(line, at)) => {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(key) = value["key"].as_str() {
                    if keys.insert(key.to_owned()) {
                        last_new = at;
                        if keys.len() == run.n {
                            cpu_end = (cpu_time(moto_pid), cpu_time(pid));
                        }
                    }
                }
            }
            Ok(Line::Err(line, at)) => {
                if started.is_none() && line.contains("consuming; stop") {
                    started = Some(at);
                    cpu_start = (cpu_time(moto_pid), cpu_time(pid));
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
    if keys.len() < run.n {
        cpu_end = (cpu_time(moto_pid), cpu_time(pid));
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
    } else if keys.len() < run.n {
        note = format!(
            "stopped by the time bound after {:.0} s with {} of {} events",
            stopped_at.duration_since(spawned).as_secs_f64(),
            keys.len(),
            run.n
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
    let elapsed = last_new.saturating_duration_since(start);
    Side {
        seen: keys.len(),
        elapsed,
        startup: Some(start.saturating_duration_since(spawned)),
        moto_cpu: cpu_share(cpu_start.0, cpu_end.0, elapsed),
        client_cpu: cpu_share(cpu_start.1, cpu_end.1, elapsed),
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
