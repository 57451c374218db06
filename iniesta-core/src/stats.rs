//! Counts of what a consumer did, kept from its [`Event`]s.

use std::time::Duration;

use crate::machine::{AbortReason, DispatchOutcome, Event};

/// Counters over a consumer's life. [`Driver::run`](crate::Driver::run)
/// returns them; an [`Observer`](crate::driver::Observer) can keep its own
/// with [`Stats::record`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
#[non_exhaustive]
pub struct Stats {
    /// Messages received.
    pub received: u64,
    /// Failed receive calls.
    pub receive_errors: u64,
    /// Messages that could not be parsed (left in the queue).
    pub malformed: u64,
    /// Handlers started.
    pub dispatched: u64,
    /// Handlers that returned `Ok`.
    pub succeeded: u64,
    /// Handlers that returned `Err`.
    pub failed: u64,
    /// Handlers that panicked.
    pub panicked: u64,
    /// Handlers aborted (lock lost or expired, handler timeout, shutdown
    /// grace over).
    pub aborted: u64,
    /// Handlers the handler timeout aborted (counted when the abort is
    /// asked for; one that ends on its own just then is counted in
    /// `succeeded` or `failed` instead of `aborted`).
    pub timed_out: u64,
    /// Messages given up on after a permanent failure (left for the
    /// dead-letter queue, or deleted if so configured).
    pub given_up: u64,
    /// Receipts of messages given up on, handed back undispatched.
    pub handed_back: u64,
    /// Messages skipped because another consumer held the lock.
    pub skipped_busy: u64,
    /// Duplicates of completed work, deleted without dispatch.
    pub acked_duplicates: u64,
    /// Messages left because the lock backend was unavailable.
    pub lock_unavailable: u64,
    /// Messages without a handler (left in the queue).
    pub no_handler: u64,
    /// Messages whose event the consumer's own filters refuse (never
    /// dispatched; left for the dead-letter queue, or deleted if so
    /// configured).
    pub unmatched: u64,
    /// Messages deleted.
    pub deleted: u64,
    /// Failed delete attempts.
    pub delete_failures: u64,
    /// Completion records that could not be written.
    pub complete_failures: u64,
    /// Messages made visible again (backoff, shutdown, or sent back for
    /// order).
    pub returned: u64,
    /// Messages of a FIFO group sent back unprocessed because a message of
    /// their group ahead of them did not succeed (also counted in
    /// `returned` once the queue has taken them back).
    pub returned_for_order: u64,
    /// Total time spent in handlers that ended.
    pub handler_time: Duration,
}

impl Stats {
    /// Counts one event.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::Received { count } => self.received += *count as u64,
            Event::ReceiveFailed { .. } => self.receive_errors += 1,
            Event::Malformed { .. } => self.malformed += 1,
            Event::Skipped { .. } => self.skipped_busy += 1,
            Event::Duplicate { .. } => self.acked_duplicates += 1,
            Event::LockUnavailable { .. } => self.lock_unavailable += 1,
            Event::NoHandler { .. } => self.no_handler += 1,
            Event::Unmatched { .. } => self.unmatched += 1,
            Event::HandlerStarted { .. } => self.dispatched += 1,
            Event::Succeeded { elapsed, .. } => {
                self.succeeded += 1;
                self.handler_time += *elapsed;
            }
            Event::Failed {
                elapsed, outcome, ..
            } => {
                self.handler_time += *elapsed;
                match outcome {
                    DispatchOutcome::Panicked(_) => self.panicked += 1,
                    DispatchOutcome::Aborted => self.aborted += 1,
                    _ => self.failed += 1,
                }
            }
            Event::Aborting {
                reason: AbortReason::TimedOut,
                ..
            } => self.timed_out += 1,
            Event::GivenUp { .. } => self.given_up += 1,
            Event::HandedBack { .. } => self.handed_back += 1,
            Event::CompleteFailed { .. } => self.complete_failures += 1,
            Event::Deleted { .. } => self.deleted += 1,
            Event::DeleteFailed { .. } => self.delete_failures += 1,
            Event::Returned { .. } => self.returned += 1,
            Event::ReturnedForOrder { .. } => self.returned_for_order += 1,
            _ => {}
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {}, dispatched {}, succeeded {}, failed {}, panicked {}, aborted {} \
             (timed out {}), given up {} (handed back {}), skipped (busy) {}, duplicates acked {}, \
             lock unavailable {}, no handler {}, unmatched {}, malformed {}, deleted {}, \
             delete failures {}, returned {} (for order {})",
            self.received,
            self.dispatched,
            self.succeeded,
            self.failed,
            self.panicked,
            self.aborted,
            self.timed_out,
            self.given_up,
            self.handed_back,
            self.skipped_busy,
            self.acked_duplicates,
            self.lock_unavailable,
            self.no_handler,
            self.unmatched,
            self.malformed,
            self.deleted,
            self.delete_failures,
            self.returned,
            self.returned_for_order
        )
    }
}
