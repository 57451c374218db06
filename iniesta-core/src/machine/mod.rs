//! The consumer state machine.
//!
//! [`Consumer`] decides everything about consuming a queue and does nothing
//! itself: it never awaits, never reads a clock and never draws randomness.
//! Time and the results of IO come in as [`Input`]s; the IO it wants comes
//! out as [`Action`]s; what happened comes out as [`Event`]s for logs and
//! metrics. A driver (such as [`crate::driver`]) runs it against real ports;
//! tests run it against in-memory ones, step by step, on a virtual clock.
//!
//! # Lifecycle of one message
//!
//! **receive → parse → acquire → dispatch → complete → delete**, or on the way:
//!
//! | lock answer | what the machine does |
//! |---|---|
//! | `Acquired` | dispatch to the handler (heartbeat extends lock and visibility while it runs) |
//! | `Busy` | skip: no dispatch, no delete (another consumer works on it) |
//! | `Done` | ack: delete without dispatch (a copy of finished work) |
//! | `Unavailable` | leave: no dispatch, no delete; the redelivery tries again |
//!
//! After a successful dispatch the lock becomes a completion record
//! (`Complete`) *before* the message is deleted, so a copy that comes back
//! after a failed delete meets the record and is acked without running the
//! handler again. After a failed dispatch the lock is released and the message
//! is left for redelivery (optionally hidden for an exponential backoff).
//! Unparseable messages are reported and left in the queue (a dead-letter
//! queue ends their journey), never deleted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use crate::message::ReceiptHandle;
use crate::ports::{LockKey, LockToken};
use crate::registry::HandlerRegistry;
use crate::time::Time;

pub use crate::sqs::{MAX_BATCH, MAX_VISIBILITY};

mod batches;
mod config;
mod dispatch;
mod finish;
mod io;
mod receive;
mod shutdown;
mod state;
mod timers;

pub use config::{Backoff, ConfigError, ConsumerConfig};
pub use io::{AbortReason, Action, DispatchOutcome, Event, Input, MessageId, ReceiveId};
use state::{Entry, Running, State};

/// A map keyed by the machine's own counters ([`MessageId`], [`ReceiveId`]).
/// They are never chosen by anyone outside, so the map needs no protection
/// against hash flooding, only speed: the Fx hash (one multiplication per
/// key).
pub(crate) type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// The consumer state machine. See the [module docs](self) for the rules.
///
/// # Driving contract
///
/// 1. Create it with [`Consumer::new`], passing the current time.
/// 2. Loop:
///    - Drain [`poll_action`](Self::poll_action) until `None`, carrying out
///      every action (concurrently is fine, and intended). Every action except
///      `CancelReceive` and `Abort` MUST eventually be answered through
///      [`handle_input`](Self::handle_input), exactly once per message or
///      receive it names.
///    - Drain [`poll_event`](Self::poll_event) (logging, metrics); dropping
///      events is allowed.
///    - If [`is_finished`](Self::is_finished), stop.
///    - Wait until the earliest of: an answer arrives, or the instant
///      [`poll_timeout`](Self::poll_timeout) returns. Then call
///      `handle_input` for each answer and/or
///      [`handle_timeout`](Self::handle_timeout), with the current time.
/// 3. To shut down, hand it [`Input::Shutdown`] and keep driving until
///    `is_finished`.
///
/// Time passed in MUST NOT go backwards (a smaller time is treated as the
/// last one seen). Answers for messages the machine no longer tracks are
/// ignored, so a late answer is harmless.
pub struct Consumer {
    config: ConsumerConfig,
    handlers: HandlerRegistry,
    now: Time,
    next_id: u64,
    entries: IdMap<MessageId, Entry>,
    /// (deadline, message), earliest on top. An entry is live while its
    /// message is tracked with exactly that deadline (`Entry::timer`);
    /// rescheduling or forgetting a message leaves the old entry behind,
    /// stale, instead of searching for it. Stale entries are dropped when
    /// they reach the top, after every input and timeout, so the top is
    /// always live when [`Consumer::poll_timeout`] reads it.
    timers: BinaryHeap<Reverse<(Time, MessageId)>>,
    /// Whether an entry of `timers` went stale since the last clean-up.
    timers_stale: bool,
    /// Outstanding receives: slots reserved, and when each was sent.
    receives: IdMap<ReceiveId, (u32, Time)>,
    reserved: usize,
    receive_failures: u32,
    receive_resume_at: Option<Time>,
    pending_acquire: Vec<(MessageId, LockKey)>,
    /// Scratch space for building lock keys.
    key_buf: String,
    /// Completion records to write, sent as one batch per round.
    pending_complete: Vec<(MessageId, LockKey, LockToken)>,
    pending_delete: VecDeque<MessageId>,
    /// When the oldest pending delete must go out, full batch or not.
    delete_due: Option<Time>,
    pending_visibility: Vec<(MessageId, ReceiptHandle, Duration)>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    shutdown_deadline: Option<Time>,
    stopped_reported: bool,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("now", &self.now)
            .field("in_flight", &self.entries.len())
            .field("receives", &self.receives.len())
            .field("shutting_down", &self.shutdown_deadline.is_some())
            .finish()
    }
}

impl Consumer {
    /// A consumer that routes to `handlers`, starting at `now`.
    pub fn new(
        config: ConsumerConfig,
        handlers: HandlerRegistry,
        now: Time,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut c = Consumer {
            config,
            handlers,
            now,
            next_id: 0,
            entries: IdMap::default(),
            timers: BinaryHeap::new(),
            timers_stale: false,
            receives: IdMap::default(),
            reserved: 0,
            receive_failures: 0,
            receive_resume_at: None,
            pending_acquire: Vec::new(),
            key_buf: String::new(),
            pending_complete: Vec::new(),
            pending_delete: VecDeque::new(),
            delete_due: None,
            pending_visibility: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            shutdown_deadline: None,
            stopped_reported: false,
        };
        c.fill_receives();
        Ok(c)
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Messages in progress (received and not finished).
    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// Whether a shutdown has finished: no receive outstanding, no message in
    /// progress, no handler running, nothing left to do.
    pub fn is_finished(&self) -> bool {
        self.shutdown_deadline.is_some()
            && self.entries.is_empty()
            && self.receives.is_empty()
            && self.actions.is_empty()
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.flush();
        self.actions.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) at the latest,
    /// if no input arrives first. `None`: only an input can make progress.
    pub fn poll_timeout(&self) -> Option<Time> {
        let mut t = self.timers.peek().map(|Reverse((t, _))| *t);
        for other in [
            self.receive_resume_at,
            self.shutdown_deadline.filter(|_| self.any_running()),
            self.delete_due,
        ] {
            t = match (t, other) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        t
    }

    /// Time has passed: run every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
        if self.receive_resume_at.is_some_and(|t| t <= self.now) {
            self.receive_resume_at = None;
        }
        if self.shutdown_deadline.is_some_and(|t| t <= self.now) {
            let running: Vec<MessageId> = self
                .entries
                .iter()
                .filter(|(_, e)| matches!(&e.state, State::Running(r) if !r.aborting))
                .map(|(id, _)| *id)
                .collect();
            for id in running {
                self.abort(id, AbortReason::ShutdownGrace);
            }
        }
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > self.now {
                break;
            }
            self.timers.pop();
            match self.entries.get_mut(&id) {
                Some(e) if e.timer == Some(t) => e.timer = None,
                _ => continue, // stale, and now gone
            }
            self.on_deadline(id);
        }
        self.drop_stale_timers();
        self.fill_receives();
    }

    /// An IO answer (or a shutdown request) arrived at `now`.
    pub fn handle_input(&mut self, now: Time, input: Input) {
        self.advance(now);
        match input {
            Input::Received { id, result } => self.on_received(id, result),
            Input::Acquired { id, outcome } => self.on_acquired(id, outcome),
            Input::Dispatched { id, outcome } => self.on_dispatched(id, outcome),
            Input::Extended { id, result } => self.on_extended(id, result),
            Input::Completed { id, result } => self.on_completed(id, result),
            Input::Released { id, result } => self.on_released(id, result),
            Input::Deleted { id, result } => self.on_deleted(id, result),
            Input::VisibilityChanged { id, result } => self.on_visibility_changed(id, result),
            Input::Shutdown => self.on_shutdown(),
        }
        self.drop_stale_timers();
        self.fill_receives();
    }

    pub(super) fn advance(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    pub(super) fn any_running(&self) -> bool {
        self.entries
            .values()
            .any(|e| matches!(&e.state, State::Running(r) if !r.aborting))
    }
}
