//! The calls moto counted per queue during a drain (only the patched moto
//! counts; see `benches/moto_fast.py`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Calls moto counted for one queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueCalls {
    pub receives: u64,
    pub received: u64,
    pub empty: u64,
    pub delete_batches: u64,
    pub deleted: u64,
    pub visibility_batches: u64,
}

/// Asks the patched moto (`pid`) for its counters: SIGUSR1 makes it write
/// them to `path`, which is read once its sequence number moves past
/// `last_seq`. `None` after 5 s without an answer.
pub fn moto_calls(
    pid: u32,
    path: &Path,
    last_seq: &mut u64,
) -> Option<HashMap<String, QueueCalls>> {
    Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(v) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        {
            let seq = v["seq"].as_u64().unwrap_or(0);
            if seq > *last_seq {
                *last_seq = seq;
                let queues = v["queues"].as_object()?;
                let get = |q: &serde_json::Value, k: &str| q[k].as_u64().unwrap_or(0);
                return Some(
                    queues
                        .iter()
                        .map(|(name, q)| {
                            let calls = QueueCalls {
                                receives: get(q, "receives"),
                                received: get(q, "received"),
                                empty: get(q, "empty"),
                                delete_batches: get(q, "delete_batches"),
                                deleted: get(q, "deleted"),
                                visibility_batches: get(q, "visibility_batches"),
                            };
                            (name.clone(), calls)
                        })
                        .collect(),
                );
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Where the patched moto writes its counters: a fresh file per run.
pub fn stats_path() -> PathBuf {
    std::env::temp_dir().join(format!("iniesta-drain-moto-{}.json", std::process::id()))
}

/// Pins process `pid` (all its threads, and so the threads and children it
/// makes later) to the CPUs in `cpus` (`taskset` syntax, e.g. `0` or
/// `0-2`). Says why not when it cannot.
pub fn pin(pid: u32, cpus: &str) -> Result<(), String> {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset -a -p -c {cpus} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
