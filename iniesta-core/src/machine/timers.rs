//! Deadlines: the machine's one timer table, and what happens when a
//! message's deadline comes (heartbeats, lock validity, the handler
//! timeout, retries, shutdown's grace).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::time::Time;

use super::*;

/// Every deadline the machine keeps; [`next_timeout`](Self::next_timeout)
/// is the earliest, which [`Consumer::poll_timeout`] reports.
///
/// - Per message: the next heartbeat or the end of the lock's validity
///   while its handler runs (and, during a shutdown, the end of the grace:
///   so the grace wakes the machine only while a handler still runs), or
///   the next retry of a complete or delete. Each message's deadline is
///   kept in its entry ([`Entry::timer`]) and in [`Queue`], earliest first.
///   Rescheduling or forgetting a message leaves its old item behind,
///   stale, instead of searching for it; stale items are dropped when they
///   come first, after every input and timeout
///   ([`drop_stale`](Self::drop_stale)), so the first is always live when
///   the table is read.
/// - The end of the pause before the next receive (after a failed receive,
///   or one that came back empty early).
/// - When the oldest delete waiting for company must go out.
/// - The end of shutdown's grace: kept here, and read through the
///   deadlines of the messages whose handlers run.
#[derive(Debug, Default)]
pub(super) struct Timers {
    /// (deadline, message), earliest first.
    messages: Queue,
    /// Whether an item of `messages` went stale since the last clean-up.
    stale: bool,
    /// Receiving pauses until then.
    pub(super) receive_resume: Option<Time>,
    /// The oldest pending delete goes out then, full batch or not.
    pub(super) delete_due: Option<Time>,
    /// Running handlers are aborted then; set when a shutdown begins.
    pub(super) shutdown_grace: Option<Time>,
}

impl Timers {
    /// The earliest deadline, if any.
    pub(super) fn next_timeout(&self) -> Option<Time> {
        let message = self.messages.first().map(|(t, _)| t);
        [message, self.receive_resume, self.delete_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Moves message `id`'s deadline from `old` to `new`.
    fn reschedule(&mut self, id: MessageId, old: Option<Time>, new: Option<Time>) {
        // The old item (if any) goes stale: the entry no longer names it.
        self.stale |= old.is_some();
        if let Some(t) = new {
            self.messages.push((t, id));
        }
    }

    /// Puts message `id`'s deadline in the table, as `entry`'s state now
    /// says.
    pub(super) fn update(&mut self, id: MessageId, entry: &mut Entry) {
        let new = entry.deadline(self.shutdown_grace);
        if new != entry.timer {
            self.reschedule(id, entry.timer, new);
            entry.timer = new;
        }
    }

    /// A message whose deadline was `old` is gone.
    pub(super) fn forget(&mut self, old: Option<Time>) {
        self.stale |= old.is_some();
    }

    /// Takes the earliest message deadline off the table if it is at or
    /// before `now`. It may be stale: the caller checks it against the
    /// entry.
    fn pop_due(&mut self, now: Time) -> Option<(Time, MessageId)> {
        match self.messages.first() {
            Some((t, _)) if t <= now => self.messages.pop(),
            _ => None,
        }
    }

    /// Drops stale items that come first, and all of them when they
    /// outnumber the `tracked` messages, so that the queue stays in
    /// proportion to the messages in progress. `live` tells whether an item
    /// is still its message's deadline.
    fn drop_stale(&mut self, tracked: usize, live: impl Fn(Time, MessageId) -> bool) {
        if !std::mem::take(&mut self.stale) {
            return;
        }
        if self.messages.len() > 2 * tracked + 64 {
            self.messages.retain(&live);
        }
        while let Some((t, id)) = self.messages.first() {
            if live(t, id) {
                break;
            }
            self.messages.pop();
        }
    }
}

/// A priority queue of `(deadline, message)`, earliest first, ties by
/// message: a heap, and beside it a run of items pushed in order. Most
/// deadlines arrive in order (a handler's first heartbeat is due a fixed
/// interval after it starts, and time only grows), so most items go to the
/// run, where pushing and taking the first cost nothing; the heap takes the
/// others. Items come out in the same order as from the heap alone.
#[derive(Debug, Default)]
struct Queue {
    run: VecDeque<(Time, MessageId)>,
    heap: BinaryHeap<Reverse<(Time, MessageId)>>,
}

impl Queue {
    fn len(&self) -> usize {
        self.run.len() + self.heap.len()
    }

    fn push(&mut self, item: (Time, MessageId)) {
        match self.run.back() {
            Some(last) if *last > item => self.heap.push(Reverse(item)),
            _ => self.run.push_back(item),
        }
    }

    /// The first item, and whether it is the run's.
    fn first_of(&self) -> Option<((Time, MessageId), bool)> {
        match (self.run.front(), self.heap.peek()) {
            (Some(&r), Some(&Reverse(h))) => Some(if r <= h { (r, true) } else { (h, false) }),
            (Some(&r), None) => Some((r, true)),
            (None, Some(&Reverse(h))) => Some((h, false)),
            (None, None) => None,
        }
    }

    fn first(&self) -> Option<(Time, MessageId)> {
        self.first_of().map(|(item, _)| item)
    }

    fn pop(&mut self) -> Option<(Time, MessageId)> {
        let (item, in_run) = self.first_of()?;
        if in_run {
            self.run.pop_front();
        } else {
            self.heap.pop();
        }
        Some(item)
    }

    fn retain(&mut self, keep: impl Fn(Time, MessageId) -> bool) {
        self.run.retain(|&(t, id)| keep(t, id));
        self.heap.retain(|&Reverse((t, id))| keep(t, id));
    }
}

impl Entry {
    /// The entry's deadline in its state; `grace` is the end of shutdown's
    /// grace, if a shutdown began.
    fn deadline(&self, grace: Option<Time>) -> Option<Time> {
        match &self.state {
            State::Running(r) if !r.aborting => {
                let mut t = r.valid_until;
                if self.extend_sent_at.is_none() {
                    t = t.min(r.next_heartbeat);
                }
                if let Some(timeout) = r.timeout_at {
                    t = t.min(timeout);
                }
                if let Some(grace) = grace {
                    t = t.min(grace);
                }
                Some(t)
            }
            State::Completing { retry_at, .. } | State::Deleting { retry_at, .. } => *retry_at,
            State::Waiting { next_upkeep } if self.extend_sent_at.is_none() => Some(*next_upkeep),
            _ => None,
        }
    }
}

impl Consumer {
    /// Puts message `id`'s deadline in the table, as its state now says.
    pub(super) fn reschedule(&mut self, id: MessageId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            self.timers.update(id, entry);
        }
    }

    /// Runs every message deadline at or before `now`.
    pub(super) fn run_due_timers(&mut self) {
        while let Some((t, id)) = self.timers.pop_due(self.now) {
            match self.entries.get_mut(&id) {
                Some(e) if e.timer == Some(t) => e.timer = None,
                _ => continue, // stale, and now gone
            }
            self.on_deadline(id);
        }
    }

    /// See [`Timers::drop_stale`].
    pub(super) fn drop_stale_timers(&mut self) {
        let entries = &self.entries;
        self.timers.drop_stale(entries.len(), |t, id| {
            entries.get(&id).is_some_and(|e| e.timer == Some(t))
        });
    }

    pub(super) fn on_deadline(&mut self, id: MessageId) {
        let now = self.now;
        let hb = self.config.heartbeat_interval;
        let ttl = self.config.lock_timeout;
        let vis = self.config.visibility_extension;
        let grace_over = self.timers.shutdown_grace.is_some_and(|t| t <= now);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        match &mut entry.state {
            State::Running(run) if !run.aborting => {
                if grace_over {
                    self.abort(id, AbortReason::ShutdownGrace);
                    return;
                }
                if run.valid_until <= now {
                    self.abort(id, AbortReason::LockExpired);
                    return;
                }
                if run.timeout_at.is_some_and(|t| t <= now) {
                    self.abort(id, AbortReason::TimedOut);
                    return;
                }
                if entry.extend_sent_at.is_none() && run.next_heartbeat <= now {
                    entry.extend_sent_at = Some(now);
                    run.next_heartbeat = now + hb;
                    self.actions.push_back(Action::Extend {
                        id,
                        key: entry.lock_key.clone(),
                        token: run.token.clone(),
                        ttl,
                    });
                    if let Some(v) = vis {
                        entry.heartbeat_vis += 1;
                        self.batches.visibility.push(id, (entry.handle.clone(), v));
                    }
                }
            }
            State::Waiting { next_upkeep } if *next_upkeep <= now => {
                // Received ahead and still waiting for a slot: kept hidden
                // as a running message is, so it does not come back to
                // another consumer while it waits here.
                *next_upkeep = now + hb;
                if let Some(v) = vis {
                    entry.heartbeat_vis += 1;
                    self.batches.visibility.push(id, (entry.handle.clone(), v));
                }
            }
            State::Completing {
                token, retry_at, ..
            } if retry_at.is_some_and(|t| t <= now) => {
                *retry_at = None;
                self.batches
                    .complete
                    .push(id, (entry.lock_key.clone(), token.clone()));
            }
            State::Deleting {
                retry_at, queued, ..
            } if retry_at.is_some_and(|t| t <= now) => {
                *retry_at = None;
                *queued = true;
                self.queue_delete(id);
            }
            _ => {}
        }
        self.reschedule(id);
    }
}

#[cfg(test)]
#[path = "timers_tests.rs"]
mod tests;
