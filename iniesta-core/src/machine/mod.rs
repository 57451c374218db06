//! The consumer state machine.
//!
//! [`Consumer`] decides everything about consuming a queue and does nothing
//! itself: it never awaits, never reads a clock and never draws randomness.
//! Time and the results of IO come in as [`Input`]s; commands (a shutdown)
//! are its methods; the IO it wants comes out as [`Action`]s; what happened
//! comes out as [`Event`]s for logs and metrics. A driver (such as
//! [`crate::driver::Driver`]) runs it against real ports; tests run it
//! against in-memory ones, step by step, on a virtual clock.
//!
//! The machine is pure data. It routes each message with the [`Routes`] of
//! a [`HandlerRegistry`] and names the handler to run by its [`HandlerId`];
//! the handler objects stay with the driver. It names every call it makes:
//! a receive by its [`ReceiveId`], a handler or a single lock call by the
//! message's [`MessageId`], a batch call by its [`BatchId`], whose answers
//! come back entry by entry. All its deadlines are kept in one timer table,
//! whose earliest is [`Consumer::poll_timeout`].
//!
//! # Lifecycle of one message
//!
//! **receive → parse → acquire → dispatch → complete → delete**, or on the way:
//!
//! | lock answer | what the machine does |
//! |---|---|
//! | `Acquired` | dispatch to the handler (heartbeat extends lock and visibility while it runs) |
//! | `Busy` | skip: no dispatch, no delete (another consumer works on it) |
//! | `Done` | ack: delete without dispatch (a copy of completed work) |
//! | `Unavailable` | leave: no dispatch, no delete; the redelivery tries again |
//!
//! After a successful dispatch the lock becomes a completion record
//! (`Complete`) *before* the message is deleted, so a copy that comes back
//! after a failed delete meets the record and is acked without running the
//! handler again. After a failed dispatch the lock is released and the message
//! is left for redelivery (optionally hidden for an exponential backoff).
//! Unparseable messages are reported and left in the queue (a dead-letter
//! queue ends their journey), never deleted.
//!
//! # FIFO queues
//!
//! With [`ConsumerConfig::fifo`], the message group
//! ([`Message::group_id`](crate::Message::group_id)) orders handling:
//!
//! - **One at a time, in order.** A message of a group starts (leaves the
//!   waiting messages for its lock) only when no other message of its group
//!   is between its start and the end of its handling: its completion
//!   record written (a success; a `Done` lock answer, a duplicate, counts
//!   as one), or its journey over after anything else. What is kept in
//!   order is the handlers' runs; deletes may overlap the next run.
//! - **Groups in parallel.** Other groups' messages take the free slots
//!   meanwhile, first received first: a busy group holds back only itself.
//! - **A message that does not succeed holds its group**, as SQS does: a
//!   failure (released, maybe with a backoff), a `Busy` or `Unavailable`
//!   lock answer, a permanent failure left for the dead-letter queue, an
//!   abort, a message that cannot be parsed or that the filters refuse and
//!   that stays in the queue. Every message of its group received behind it
//!   that has not started goes back to the queue at once, unprocessed
//!   ([`Event::ReturnedForOrder`]), so that SQS delivers the group again in
//!   order, the failed one first.
//!
//! On a standard queue (`fifo` off) group ids (fair queues) order nothing
//! and are ignored.
//!
//! # Layout
//!
//! The configuration ([`ConsumerConfig`]) and the vocabulary ([`Input`],
//! [`Action`], [`Event`]) are public. Inside, each file holds one part of
//! the journey: `receive` (how many to ask for, parsing, filters),
//! `dispatch` (the lock's answer, the handler, heartbeats, aborts),
//! `give_up` (permanent failures), `groups` (FIFO message groups), `settle`
//! (completion record, delete, release, return, forgetting), `shutdown`,
//! `timers` (the one timer table) and `batches` (per-message wishes gathered
//! into batch calls, and their answers mapped back), over `state` (where
//! each message stands).

use std::collections::VecDeque;

use crate::registry::{HandlerRegistry, Routes};
use crate::time::Time;

pub use crate::registry::{HandlerId, Route};
pub use crate::sqs::{MAX_BATCH, MAX_VISIBILITY};

mod batches;
mod config;
mod dispatch;
mod give_up;
mod groups;
mod io;
mod receive;
mod settle;
mod shutdown;
mod state;
mod timers;

use batches::{BatchKind, Batches};
pub use config::{Backoff, ConfigError, ConsumerConfig};
use give_up::GivenUp;
use groups::Groups;
pub use io::{AbortReason, Action, BatchId, DispatchOutcome, Event, Input, MessageId, ReceiveId};
use state::{Content, Entry, Running, State};
use timers::Timers;

/// A map keyed by the machine's own counters ([`MessageId`], [`ReceiveId`],
/// [`BatchId`]). They are never chosen by anyone outside, so the map needs
/// no protection against hash flooding, only speed: the Fx hash (one
/// multiplication per key).
pub(crate) type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// The consumer state machine. See the [module docs](self) for the rules.
///
/// # Driving contract
///
/// IO answers and commands come in apart: [`handle_input`](Self::handle_input)
/// takes the answers to the machine's own actions; a command (a shutdown)
/// is a method of its own. A driver:
///
/// 1. MUST create the machine with [`Consumer::new`], passing the current
///    time and the registry whose handlers it runs: an [`Action::Dispatch`]
///    names its handler by its [`HandlerId`] in that registry.
/// 2. Then, in a loop:
///    - MUST drain [`poll_action`](Self::poll_action) until `None` and carry
///      out every action (concurrently is fine, and intended);
///    - MUST answer every action through `handle_input`, except
///      `CancelReceive` and `Abort`, which are answered by the input of the
///      receive or handler they stop: a receive, a dispatch, an extend and a
///      release exactly once; a batch action exactly once per entry, as
///      `(batch, index)` with the entry's index in the action's list, in any
///      order. When a backend answers fewer entries than it was given, the
///      driver MUST answer the others itself, as failures, or their
///      messages wait forever;
///    - SHOULD drain [`poll_event`](Self::poll_event) (logs, metrics);
///      dropping events is allowed;
///    - stops once [`is_stopped`](Self::is_stopped);
///    - waits until the earliest of: an answer arrives, a command is due, or
///      the instant [`poll_timeout`](Self::poll_timeout) returns (`None`:
///      only an answer or a command can make progress). It then MUST call
///      `handle_input` for each answer, the command's method, and
///      [`handle_timeout`](Self::handle_timeout) once that instant has
///      passed, each with the current time.
/// 3. To shut down, it calls [`shutdown`](Self::shutdown) and MUST keep
///    driving until `is_stopped`: only then is no handler running and every
///    message in progress completed or released.
///
/// Time passed in MUST NOT go backwards (a smaller time is treated as the
/// last one seen). Answers for messages, receives or batch entries the
/// machine no longer tracks (or has had answered already) are ignored, so a
/// late or repeated answer is harmless.
pub struct Consumer {
    config: ConsumerConfig,
    routes: Routes,
    now: Time,
    next_id: u64,
    entries: IdMap<MessageId, Entry>,
    timers: Timers,
    /// Outstanding receives: slots reserved, and when each was sent.
    receives: IdMap<ReceiveId, (u32, Time)>,
    /// How many receives may be outstanding now: adapts between one and
    /// `concurrent_receives` (see [`ConsumerConfig::concurrent_receives`]),
    /// starting from all of them.
    receive_target: usize,
    reserved: usize,
    receive_failures: u32,
    batches: Batches,
    /// Scratch space for building lock keys.
    key_buf: String,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    stopped_reported: bool,
    /// Messages whose handlers failed permanently.
    given_up: GivenUp,
    /// Entries holding a handler slot (`Entry::holds_slot`).
    slots: usize,
    /// Entries waiting for a slot, first received first (by id). On a FIFO
    /// queue only the first of each group; the rest wait in `groups`.
    waiting: VecDeque<MessageId>,
    /// FIFO message groups in progress (only with `config.fifo`).
    groups: Groups,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("now", &self.now)
            .field("in_flight", &self.entries.len())
            .field("receives", &self.receives.len())
            .field("shutting_down", &self.shutting_down())
            .finish()
    }
}

impl Consumer {
    /// A consumer that routes with the routes of `handlers`, starting at
    /// `now`.
    pub fn new(
        config: ConsumerConfig,
        handlers: &HandlerRegistry,
        now: Time,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let receive_target = config.concurrent_receives;
        let mut c = Consumer {
            config,
            routes: handlers.routes().clone(),
            now,
            next_id: 0,
            entries: IdMap::default(),
            timers: Timers::default(),
            receives: IdMap::default(),
            receive_target,
            reserved: 0,
            receive_failures: 0,
            batches: Batches::default(),
            key_buf: String::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stopped_reported: false,
            given_up: GivenUp::default(),
            slots: 0,
            waiting: VecDeque::new(),
            groups: Groups::default(),
        };
        c.fill_receives();
        Ok(c)
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Messages in progress (received and not yet settled).
    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down()
    }

    /// Whether a shutdown is over ([`Event::Stopped`]): no receive
    /// outstanding, no message in progress, no handler running, nothing
    /// left to do.
    pub fn is_stopped(&self) -> bool {
        self.shutting_down()
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
        self.timers.next_timeout()
    }

    /// Time has passed: run every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
        if self.timers.receive_resume.is_some_and(|t| t <= self.now) {
            self.timers.receive_resume = None;
        }
        self.run_due_timers();
        self.fill_slots();
        self.drop_stale_timers();
        self.fill_receives();
    }

    /// An IO answer arrived at `now`.
    pub fn handle_input(&mut self, now: Time, input: Input) {
        self.handle_inputs(now, std::iter::once(input));
    }

    /// Several IO answers arrived at `now`: the same as
    /// [`handle_input`](Self::handle_input) for each in turn, except that
    /// the work that follows an answer (handing free slots to waiting
    /// messages, dropping stale timers, sending receives) is done once,
    /// after the last. A driver that collects the answers of a round hands
    /// them over at once this way; the receives it then sends are as large
    /// as the free room allows, not one per answer.
    pub fn handle_inputs(&mut self, now: Time, inputs: impl IntoIterator<Item = Input>) {
        self.advance(now);
        for input in inputs {
            self.apply_input(input);
        }
        self.fill_slots();
        self.drop_stale_timers();
        self.fill_receives();
    }

    /// One answer, without the work that follows (see
    /// [`handle_inputs`](Self::handle_inputs)).
    fn apply_input(&mut self, input: Input) {
        match input {
            Input::Received { id, result } => self.on_received(id, result),
            Input::Acquired {
                batch,
                index,
                outcome,
            } => {
                if let Some(id) = self.batches.answered(batch, index, BatchKind::Acquire) {
                    self.on_acquired(id, outcome);
                }
            }
            Input::HandlerFinished { id, outcome } => self.on_handler_finished(id, outcome),
            Input::Extended { id, result } => self.on_extended(id, result),
            Input::Completed {
                batch,
                index,
                result,
            } => {
                if let Some(id) = self.batches.answered(batch, index, BatchKind::Complete) {
                    self.on_completed(id, result);
                }
            }
            Input::Released { id, result } => self.on_released(id, result),
            Input::Deleted {
                batch,
                index,
                result,
            } => {
                if let Some(id) = self.batches.answered(batch, index, BatchKind::Delete) {
                    self.on_deleted(id, result);
                }
            }
            Input::VisibilityChanged {
                batch,
                index,
                result,
            } => {
                let kind = BatchKind::ChangeVisibility;
                if let Some(id) = self.batches.answered(batch, index, kind) {
                    self.on_visibility_changed(id, result);
                }
            }
        }
    }

    /// Begins a graceful shutdown at `now`: outstanding receives are
    /// cancelled, no new receive or handler starts, messages not yet
    /// started go back to the queue (if so configured), and running
    /// handlers get [`shutdown_grace`](ConsumerConfig::shutdown_grace) to
    /// finish before they are aborted. Keep driving until
    /// [`is_stopped`](Self::is_stopped). A second call changes nothing.
    pub fn shutdown(&mut self, now: Time) {
        self.advance(now);
        self.begin_shutdown();
        self.drop_stale_timers();
        self.fill_receives();
    }

    pub(super) fn advance(&mut self, now: Time) {
        self.now = self.now.max(now);
    }
}
