//! CPU time of a process from `/proc`, to tell whether a side of a bench
//! was bound by CPU or by waiting.

// Included by several benches, each of which uses a part.
#![allow(dead_code)]

use std::time::Duration;

/// CPU time (user + system, all threads, live and exited) of process
/// `pid` so far; `None` where `/proc` cannot tell (not Linux, gone).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are
    // plain: field 3 is the first after the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux target this bench runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// The share of one core that `pid` used between two samples.
pub fn cpu_share(before: Option<Duration>, after: Option<Duration>, wall: Duration) -> Option<f64> {
    Some((after?.saturating_sub(before?)).as_secs_f64() / wall.as_secs_f64().max(1e-9))
}
