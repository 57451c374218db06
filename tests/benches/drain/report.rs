//! The drain bench's tables, as markdown on stdout.

use std::collections::HashMap;
use std::time::Duration;

use iniesta_core::{ConsumerConfig, DeliveryMode};

use super::procs::QueueCalls;
use super::stats::{median, range, today_utc};
use super::variants::{describe, Variant};
use super::{Run, SideKind};

/// Everything the report needs.
pub struct Context<'a> {
    pub n: usize,
    /// moto's CPU and everything else's, when pinned.
    pub pin: Option<(String, String)>,
    /// The machine's CPUs (before pinning).
    pub cores: usize,
    pub delivery: DeliveryMode,
    pub fast_moto: bool,
    pub publish_time: Duration,
    pub queues: usize,
    pub consumers: &'a [Variant],
    pub configs: &'a [ConsumerConfig],
    pub runs: &'a [Run],
    pub calls: Option<&'a HashMap<String, QueueCalls>>,
}

pub fn side_name(kind: SideKind, consumers: &[Variant]) -> String {
    match kind {
        SideKind::Bare(1) => "1 bare loop".to_owned(),
        SideKind::Bare(l) => format!("{l} bare loops"),
        SideKind::Consumer(i) => format!("iniesta consume, {}", consumers[i].label()),
    }
}

/// What limits the side by construction (what the measured columns then
/// confirm or not).
fn bound(kind: SideKind, configs: &[ConsumerConfig]) -> String {
    match kind {
        SideKind::Bare(l) => format!(
            "{l} receive(s) outstanding at most; each loop waits for its receive, then its delete"
        ),
        SideKind::Consumer(i) => describe(&configs[i]),
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or("—".to_owned(), |x| format!("{:.0} %", 100.0 * x))
}

pub fn print(c: &Context<'_>) {
    let sides: Vec<SideKind> = {
        let mut v: Vec<SideKind> = Vec::new();
        for r in c.runs {
            if !v.contains(&r.kind) {
                v.push(r.kind);
            }
        }
        v
    };
    let reference = c
        .runs
        .iter()
        .map(|r| r.kind)
        .find(|k| matches!(k, SideKind::Bare(_)));
    let ref_name = reference.map_or("—".to_owned(), |k| side_name(k, c.consumers));
    let ref_rate = |round: usize| {
        c.runs
            .iter()
            .find(|r| r.round == round && Some(r.kind) == reference)
            .map(|r| r.side.rate())
    };
    println!();
    println!(
        "Drain of {} events per queue, {} delivery, {} moto ({}){}; {} core(s), shared with \
         other builds{}; measured {}. The publish filled {} queues in {:.1} s.",
        c.n,
        match c.delivery {
            DeliveryMode::Raw => "raw",
            DeliveryMode::Envelope => "envelope",
        },
        if c.fast_moto { "patched" } else { "stock" },
        if c.fast_moto {
            "tests/benches/moto_fast.py"
        } else {
            "moto_server"
        },
        if c.consumers.is_empty() {
            ""
        } else {
            ", `iniesta consume` with a Redlock on 3 redis-server"
        },
        c.cores,
        match &c.pin {
            Some((moto, rest)) => format!(", moto pinned to CPU {moto}, the rest to CPU {rest}"),
            None => String::new(),
        },
        today_utc(),
        c.queues,
        c.publish_time.as_secs_f64()
    );
    println!();
    println!("Summary (median over rounds; the ratio is taken within each round):");
    println!();
    println!(
        "| side | bounded by | msgs/s, median (min–max) | / {ref_name}, median (each round) | moto CPU, median |"
    );
    println!("|---|---|---:|---:|---:|");
    for &kind in &sides {
        let runs: Vec<&Run> = c.runs.iter().filter(|r| r.kind == kind).collect();
        let rates: Vec<f64> = runs.iter().map(|r| r.side.rate()).collect();
        let ratios: Vec<f64> = runs
            .iter()
            .filter_map(|r| ref_rate(r.round).map(|b| r.side.rate() / b))
            .collect();
        let (lo, hi) = range(&rates);
        let cpu: Vec<f64> = runs.iter().filter_map(|r| r.side.moto_cpu).collect();
        println!(
            "| {} | {} | {:.0} ({:.0}–{:.0}) | **{:.2}** ({}) | {} |",
            side_name(kind, c.consumers),
            bound(kind, c.configs),
            median(rates.clone()),
            lo,
            hi,
            median(ratios.clone()),
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            percent((!cpu.is_empty()).then(|| median(cpu))),
        );
    }
    println!();
    println!("Every run, in the order they ran:");
    println!();
    println!(
        "| round | side | depth | events | time, s | msgs/s | / {ref_name} | moto CPU | client CPU | \
         receives (empty) | msgs per non-empty receive | delete calls | msgs per delete | visibility calls |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in c.runs {
        let calls = c.calls.and_then(|m| m.get(&r.queue));
        let visibility = calls.map_or("—".to_owned(), |q| q.visibility_batches.to_string());
        let (receives, per_receive, deletes, per_delete) = match calls {
            Some(q) => (
                format!("{} ({})", q.receives, q.empty),
                format!(
                    "{:.1}",
                    q.received as f64 / (q.receives.saturating_sub(q.empty)).max(1) as f64
                ),
                q.delete_batches.to_string(),
                format!("{:.1}", q.deleted as f64 / q.delete_batches.max(1) as f64),
            ),
            None => ("—".into(), "—".into(), "—".into(), "—".into()),
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.round,
            side_name(r.kind, c.consumers),
            r.depth,
            r.side.seen,
            r.side.elapsed.as_secs_f64(),
            r.side.rate(),
            ref_rate(r.round).map_or("—".to_owned(), |b| format!("{:.2}", r.side.rate() / b)),
            percent(r.side.moto_cpu),
            percent(r.side.client_cpu),
            receives,
            per_receive,
            deletes,
            per_delete,
            visibility,
        );
    }
    println!();
    for r in c.runs {
        if let Some(startup) = r.side.startup {
            println!(
                "- round {}, {}: started polling {:.2} s after launch (not counted)",
                r.round,
                side_name(r.kind, c.consumers),
                startup.as_secs_f64()
            );
        }
        if !r.side.note.is_empty() {
            println!(
                "- round {}, {}: {}",
                r.round,
                side_name(r.kind, c.consumers),
                r.side.note
            );
        }
    }
    if c.calls.is_some() {
        println!(
            "- receives and deletes as moto counted them per queue, including the long polls \
             still waiting on the empty queue when a side ended (the empty ones)"
        );
    }
}
