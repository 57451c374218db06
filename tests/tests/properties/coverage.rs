//! How often the runs reached the situations the model exists for, printed
//! after the random schedules: a model that never reaches a partial quorum
//! or a dead-letter move checks nothing about them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy)]
pub enum Seen {
    Case,
    SubSecondLock,
    QuorumBackend,
    FanOut,
    Foreign,
    Unmatched,
    Dispatch,
    Handled,
    Aborted,
    SucceededAfterAbort,
    ToldCompleted,
    Deleted,
    NodeFault,
    LockLostOverlap,
    RecordLost,
    Covered,
    DeadLettered,
    Redriven,
    Crash,
    ShutdownDone,
    RetryAfter,
    RetryAfterHeld,
    PermanentEvent,
    GivenUpDeleted,
    GivenUpReturned,
    HandedBack,
    PermanentDeadLettered,
    Hung,
    TimedOut,
    FifoCase,
    FifoBehind,
    ReturnedForOrder,
}

const NAMES: [&str; 32] = [
    "cases",
    "sub-second lock",
    "quorum backend",
    "fan-out publishes",
    "foreign events",
    "unmatched (refused)",
    "dispatches",
    "handled",
    "aborts",
    "succeeded after abort",
    "told completed",
    "deletes",
    "lock calls with node faults",
    "overlaps after lost locks",
    "records lost",
    "dispatches with heartbeat cover",
    "dead-lettered",
    "redriven",
    "crashes",
    "shutdowns finished",
    "retry-after failures",
    "retry-after returns received after their delay",
    "events failing on every delivery",
    "given up (recorded and deleted)",
    "given up (handed back)",
    "later receipts handed back",
    "permanent failures dead-lettered",
    "hung handlers",
    "aborted as timed out",
    "FIFO cases",
    "FIFO dispatches behind an earlier message of their group",
    "sent back for their group's order",
];

static COUNTS: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];

pub fn saw(what: Seen) {
    COUNTS[what as usize].fetch_add(1, Ordering::Relaxed);
}

/// One line per counter.
pub fn summary() -> String {
    NAMES
        .iter()
        .zip(&COUNTS)
        .map(|(name, n)| format!("  {name}: {}", n.load(Ordering::Relaxed)))
        .collect::<Vec<_>>()
        .join("\n")
}
