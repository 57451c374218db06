//! An in-memory SQS standard queue.
//!
//! - [`options`]: how a queue behaves, and the SQS limits and units it
//!   enforces (visibility in whole seconds, rounded up);
//! - [`redrive`]: the redrive policy that moves a message received too often
//!   to a dead-letter queue;
//! - [`store`]: the messages and the order receives take them in;
//! - [`handles`]: message ids and receipt handles;
//! - [`inspect`]: what a test reads off a queue.

mod handles;
mod inspect;
mod options;
mod redrive;
mod store;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use event_listener::Event;
use futures::future;
use iniesta_core::{
    AttributeValue, Attributes, BackendError, EntryResult, Queue, ReceiptHandle, ReceiveRequest,
    ReceivedMessage, SystemAttributes, Time,
};

use crate::clock::Clock;
use crate::{ACCOUNT_ID, REGION};
use handles::{
    injected, invalid_handle, message_id, message_number, millis, not_in_flight, parse_handle,
    too_many_entries,
};
use options::{applied_visibility, check_request};
use store::{take, Faults, Gone, State, Stored};

pub use inspect::{QueueStats, QueuedMessage};
pub use options::{
    QueueOptions, DEFAULT_VISIBILITY_TIMEOUT, MAX_BATCH_ENTRIES, MAX_VISIBILITY_TIMEOUT,
    MAX_WAIT_TIME,
};
pub use redrive::Redrive;

/// The system attribute naming the queue a dead-letter message came from.
const DEAD_LETTER_QUEUE_SOURCE_ARN: &str = "DeadLetterQueueSourceArn";

struct Inner {
    name: String,
    url: String,
    arn: String,
    clock: Clock,
    /// As applied (see [`QueueOptions::applied`]).
    options: QueueOptions,
    state: Mutex<State>,
    /// Notified when a message is sent or its visibility changes, so long
    /// polls re-check.
    arrived: Event,
}

/// An in-memory SQS standard queue on a [`Clock`], with SQS's delivery
/// semantics and fault injection.
///
/// Semantics, as SQS documents them:
/// - a receive returns up to `max` *visible* messages, oldest-visible first
///   (then in send order), and hides each for the visibility timeout; each
///   receive issues a fresh receipt handle and counts
///   `ApproximateReceiveCount` up;
/// - a message whose visibility timeout ends without a delete is delivered
///   again;
/// - only the latest receipt handle of a message deletes it; an older
///   (stale) handle is answered with success but deletes nothing; deleting an
///   already deleted message succeeds; a handle the queue never issued is
///   [`ReceiptHandleIsInvalid`](crate::codes::RECEIPT_HANDLE_IS_INVALID);
/// - visibility timeouts are whole seconds: every one the queue takes (per
///   receive, per change, or the queue's default) is rounded **up** as
///   [`iniesta_core::sqs::visibility`] does, the same rounding the SQS
///   adapter applies before sending, and one over 12 hours is
///   [`InvalidParameterValue`](crate::codes::INVALID_PARAMETER_VALUE). So a test
///   sees the visibility SQS would apply, never a finer one;
/// - with a [`Redrive`] policy, a receive that would deliver a message
///   already received `max_receive_count` times moves it to the dead-letter
///   queue instead.
///
/// Message ids are `msg-{n}`, numbered by the clock (unique across the
/// queues of one clock); receipt handles are `{message id}/{receive count}`.
/// Neither involves randomness, so a run is repeatable.
///
/// `MockQueue` is a cheap handle: clones share one queue.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::time::Duration;
/// use iniesta_mock::{Clock, MockQueue};
///
/// let clock = Clock::virtual_clock();
/// let queue = MockQueue::new("orders", &clock);
/// let id = queue.send("hello", BTreeMap::new());
///
/// let first = queue.receive_now(10, None);
/// assert_eq!(first[0].message_id, id);
/// assert!(queue.receive_now(10, None).is_empty()); // in flight
///
/// clock.advance(Duration::from_secs(30)); // visibility timeout over
/// let second = queue.receive_now(10, None);
/// assert_eq!(second[0].receive_count(), 2);
///
/// queue.delete_now(&first[0].receipt_handle).unwrap(); // stale: no-op
/// assert_eq!(queue.len(), 1);
/// queue.delete_now(&second[0].receipt_handle).unwrap();
/// assert!(queue.is_empty());
/// ```
#[derive(Clone)]
pub struct MockQueue {
    inner: Arc<Inner>,
}

impl MockQueue {
    /// A queue named `name` with the default [`QueueOptions`].
    pub fn new(name: impl Into<String>, clock: &Clock) -> MockQueue {
        MockQueue::with_options(name, clock, QueueOptions::default())
    }

    /// A queue named `name` with the given options.
    ///
    /// # Panics
    ///
    /// On options SQS refuses (see [`try_with_options`](Self::try_with_options)).
    pub fn with_options(
        name: impl Into<String>,
        clock: &Clock,
        options: QueueOptions,
    ) -> MockQueue {
        MockQueue::try_with_options(name, clock, options)
            .unwrap_or_else(|e| panic!("SQS would refuse these queue options: {e}"))
    }

    /// A queue named `name` with the given options, or
    /// [`InvalidParameterValue`](crate::codes::INVALID_PARAMETER_VALUE) for
    /// options SQS refuses: a visibility timeout over 12 hours, a
    /// `max_receive_count` outside 1 to 1000. The visibility timeout is
    /// rounded up to whole seconds ([`options`](Self::options) shows it so).
    pub fn try_with_options(
        name: impl Into<String>,
        clock: &Clock,
        options: QueueOptions,
    ) -> Result<MockQueue, BackendError> {
        let options = options.applied()?;
        let name = name.into();
        Ok(MockQueue {
            inner: Arc::new(Inner {
                url: format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"),
                arn: format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"),
                name,
                clock: clock.clone(),
                options,
                state: Mutex::new(State::default()),
                arrived: Event::new(),
            }),
        })
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The queue's URL, shaped like an SQS queue URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The queue's ARN (`arn:aws:sqs:us-east-1:000000000000:{name}`), as a
    /// subscription names its endpoint.
    pub fn arn(&self) -> &str {
        &self.inner.arn
    }

    /// The clock the queue runs on.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The queue's options, as applied: the visibility timeout in whole
    /// seconds.
    pub fn options(&self) -> &QueueOptions {
        &self.inner.options
    }

    /// The dead-letter queue of the queue's [`Redrive`] policy, if it has
    /// one.
    pub fn dead_letter_queue(&self) -> Option<&MockQueue> {
        self.inner
            .options
            .redrive
            .as_ref()
            .map(|r| &r.dead_letter_queue)
    }

    /// Whether two handles name the same queue.
    pub fn same_queue(&self, other: &MockQueue) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent state
        // (every update is completed before anything can panic), so a
        // poisoned lock is used as is instead of spreading the panic.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a message; it is visible at once. Returns its SQS message id.
    pub fn send(
        &self,
        body: impl Into<String>,
        message_attributes: BTreeMap<String, AttributeValue>,
    ) -> String {
        let now = self.inner.clock.now();
        let n = self.inner.clock.next_message_number();
        {
            let mut st = self.state();
            st.messages.insert(
                n,
                Box::new(Stored {
                    body: body.into(),
                    attributes: Attributes::from(message_attributes),
                    receive_count: 0,
                    arrived_count: 0,
                    sent_at: now,
                    first_received_at: None,
                    visible_at: now,
                    source_arn: None,
                }),
            );
            st.ready.push(Reverse((now, n)));
            st.stats.sent += 1;
        }
        self.inner.arrived.notify(usize::MAX);
        message_id(n)
    }

    /// Receives up to `max` visible messages at once, never waiting; hides
    /// each for `visibility` (the queue's timeout when `None`), rounded up
    /// to whole seconds as SQS applies it.
    ///
    /// An injected receive failure ([`fail_receives`](Self::fail_receives))
    /// is consumed and returns no messages, and so does a `visibility` over
    /// 12 hours; use [`try_receive_now`](Self::try_receive_now) to see
    /// either as an error. `max` is not checked against SQS's limit of 10
    /// here (the async [`Queue::receive`] checks it).
    pub fn receive_now(&self, max: u32, visibility: Option<Duration>) -> Vec<ReceivedMessage> {
        self.try_receive_now(max, visibility).unwrap_or_default()
    }

    /// Like [`receive_now`](Self::receive_now), but an injected failure is
    /// returned as `Err` with code [`InternalError`](crate::codes::INTERNAL_ERROR),
    /// and a `visibility` over 12 hours as
    /// [`InvalidParameterValue`](crate::codes::INVALID_PARAMETER_VALUE) (rejected
    /// before the call counts or consumes a fault, as SQS validates first).
    pub fn try_receive_now(
        &self,
        max: u32,
        visibility: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, BackendError> {
        let visibility = visibility.map(applied_visibility).transpose()?;
        self.receive_applied(max, visibility)
    }

    /// A receive whose visibility was already checked and rounded.
    fn receive_applied(
        &self,
        max: u32,
        visibility: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, BackendError> {
        let now = self.inner.clock.now();
        let mut st = self.state();
        st.stats.receive_calls += 1;
        if take(&mut st.faults.fail_receives) {
            st.stats.injected_faults += 1;
            return Err(injected("ReceiveMessage"));
        }
        Ok(self.take_visible(&mut st, now, max, visibility))
    }

    /// The receive itself: takes up to `max` messages visible at `now`,
    /// moving those the redrive policy claims to the dead-letter queue.
    /// `visibility` MUST already be as SQS applies it.
    fn take_visible(
        &self,
        st: &mut State,
        now: Time,
        max: u32,
        visibility: Option<Duration>,
    ) -> Vec<ReceivedMessage> {
        let hide_until = now + visibility.unwrap_or(self.inner.options.visibility_timeout);
        let redrive = self.inner.options.redrive.as_ref();
        let mut moved: Vec<(u64, Box<Stored>)> = Vec::new();
        // Reused from receive to receive (no allocation per call).
        let mut taken = std::mem::take(&mut st.taken);
        taken.clear();
        while taken.len() < max as usize {
            match st.ready.peek() {
                Some(&Reverse((visible_at, n))) if visible_at <= now => {
                    st.ready.pop();
                    let Some(m) = st.messages.get(&n) else {
                        continue; // a stale entry: deleted or moved
                    };
                    // A stale entry, or a second entry of one message.
                    if m.visible_at != visible_at || taken.contains(&n) {
                        continue;
                    }
                    if redrive.is_some_and(|r| m.receive_count >= r.max_receive_count) {
                        if let Some(m) = st.messages.remove(&n) {
                            let issued = m.issued();
                            st.gone.insert(n, Gone::Moved { issued });
                            st.stats.dead_lettered += 1;
                            moved.push((n, m));
                        }
                        continue;
                    }
                    taken.push(n);
                }
                _ => break,
            }
        }
        if let (Some(r), false) = (redrive, moved.is_empty()) {
            let source_arn: Arc<str> = Arc::from(self.inner.arn.as_str());
            r.dead_letter_queue
                .accept_dead_letters(moved, &source_arn, now);
        }
        let mut out = Vec::with_capacity(taken.len());
        // Each handle is written here, then copied into its shared text.
        let mut handle = std::mem::take(&mut st.handle_buf);
        for &n in &taken {
            // Pushed only after the loop above, so a zero visibility timeout
            // cannot return one message twice in one receive.
            st.ready.push(Reverse((hide_until, n)));
            let Some(m) = st.messages.get_mut(&n) else {
                continue; // unreachable: only live messages were taken
            };
            m.receive_count = m.receive_count.saturating_add(1);
            m.visible_at = hide_until;
            let first = *m.first_received_at.get_or_insert(now);
            let mut other = BTreeMap::new();
            if let Some(arn) = &m.source_arn {
                other.insert(DEAD_LETTER_QUEUE_SOURCE_ARN.to_owned(), arn.to_string());
            }
            let attributes = SystemAttributes {
                receive_count: Some(m.receive_count),
                sent_timestamp: Some(millis(m.sent_at)),
                first_receive_timestamp: Some(millis(first)),
                other,
            };
            let mut digits = itoa::Buffer::new();
            let id = message_id(n);
            let count = digits.format(m.receive_count);
            handle.clear();
            handle.push_str(&id);
            handle.push('/');
            handle.push_str(count);
            out.push(ReceivedMessage {
                receipt_handle: ReceiptHandle::new(&handle),
                message_id: id,
                body: m.body.clone(),
                attributes,
                message_attributes: m.attributes.clone(),
            });
        }
        st.taken = taken;
        st.handle_buf = handle;
        st.stats.received += out.len() as u64;
        out
    }

    /// Deletes the delivery named by `handle`, with SQS's semantics:
    /// - the latest handle of a message deletes it;
    /// - a stale handle (the message was received again since) returns `Ok`
    ///   and deletes nothing;
    /// - a handle of an already deleted message returns `Ok`;
    /// - a handle of a message the redrive policy moved to the dead-letter
    ///   queue returns `Ok` and deletes nothing (counted as a stale delete);
    /// - a handle this queue never issued is `Err` with code
    ///   [`ReceiptHandleIsInvalid`](crate::codes::RECEIPT_HANDLE_IS_INVALID).
    ///
    /// Injected faults are applied first, before the handle is looked at:
    /// [`fail_deletes`](Self::fail_deletes) answers `Err`
    /// ([`InternalError`](crate::codes::INTERNAL_ERROR)),
    /// [`lose_deletes`](Self::lose_deletes) answers `Ok`; neither deletes.
    pub fn delete_now(&self, handle: &ReceiptHandle) -> Result<(), BackendError> {
        let now = self.inner.clock.now();
        let mut st = self.state();
        if take(&mut st.faults.fail_deletes) {
            st.stats.injected_faults += 1;
            return Err(injected("DeleteMessage"));
        }
        if take(&mut st.faults.lose_deletes) {
            st.stats.injected_faults += 1;
            return Ok(());
        }
        let (n, k) = parse_handle(handle).ok_or_else(|| invalid_handle(handle))?;
        if let Some(gone) = st.gone.get(&n) {
            if !gone.issued().contains(k) {
                return Err(invalid_handle(handle));
            }
            if matches!(gone, Gone::Moved { .. }) {
                st.stats.stale_deletes += 1;
            }
            return Ok(());
        }
        let Some(m) = st.messages.get(&n) else {
            return Err(invalid_handle(handle));
        };
        if !m.issued().contains(k) {
            return Err(invalid_handle(handle));
        }
        if k < m.receive_count {
            st.stats.stale_deletes += 1;
            return Ok(());
        }
        let Some(m) = st.messages.remove(&n) else {
            return Err(invalid_handle(handle));
        };
        let gone = if self.inner.options.retain_deleted {
            Gone::Kept {
                message: m,
                deleted_at: now,
            }
        } else {
            Gone::Dropped { issued: m.issued() }
        };
        st.gone.insert(n, gone);
        st.stats.deleted += 1;
        Ok(())
    }

    /// Changes the visibility of the delivery named by `handle`: the message
    /// becomes visible `timeout` from now, rounded up to whole seconds as
    /// SQS applies it (zero: at once; 0.8 s: after 1 s).
    ///
    /// Only the latest handle of a message that is in flight (received and
    /// still hidden) may do this; a stale handle, or a message that is
    /// visible, deleted or moved to the dead-letter queue, is `Err` with
    /// code [`MessageNotInflight`](crate::codes::MESSAGE_NOT_INFLIGHT). A `timeout`
    /// over 12 hours is
    /// [`InvalidParameterValue`](crate::codes::INVALID_PARAMETER_VALUE); a handle
    /// never issued is
    /// [`ReceiptHandleIsInvalid`](crate::codes::RECEIPT_HANDLE_IS_INVALID). An
    /// injected fault ([`fail_visibility_changes`](Self::fail_visibility_changes))
    /// is applied first and changes nothing.
    pub fn change_visibility_now(
        &self,
        handle: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        let now = self.inner.clock.now();
        {
            let mut st = self.state();
            if take(&mut st.faults.fail_visibility_changes) {
                st.stats.injected_faults += 1;
                return Err(injected("ChangeMessageVisibility"));
            }
            let timeout = applied_visibility(timeout)?;
            let (n, k) = parse_handle(handle).ok_or_else(|| invalid_handle(handle))?;
            if let Some(gone) = st.gone.get(&n) {
                return Err(if !gone.issued().contains(k) {
                    invalid_handle(handle)
                } else if matches!(gone, Gone::Moved { .. }) {
                    not_in_flight(handle, "the message was moved to the dead-letter queue")
                } else {
                    not_in_flight(handle, "the message was deleted")
                });
            }
            let Some(m) = st.messages.get_mut(&n) else {
                return Err(invalid_handle(handle));
            };
            if !m.issued().contains(k) {
                return Err(invalid_handle(handle));
            }
            if k < m.receive_count {
                return Err(not_in_flight(
                    handle,
                    "the handle is stale: the message was received again since",
                ));
            }
            if m.visible_at <= now {
                return Err(not_in_flight(
                    handle,
                    "the message is visible: its visibility timeout ended",
                ));
            }
            let new = now + timeout;
            if new != m.visible_at {
                m.visible_at = new;
                st.ready.push(Reverse((new, n)));
            }
            st.stats.visibility_changes += 1;
        }
        // Waiting long polls re-check: on a real clock they sleep until the
        // earliest visibility, which may just have moved closer.
        self.inner.arrived.notify(usize::MAX);
        Ok(())
    }

    /// Messages not deleted (visible or in flight), not counting those moved
    /// to the dead-letter queue.
    pub fn len(&self) -> usize {
        self.state().messages.len()
    }

    /// Whether every message sent was deleted (or moved to the dead-letter
    /// queue).
    pub fn is_empty(&self) -> bool {
        self.state().messages.is_empty()
    }

    /// Messages a receive would find visible now (including those the
    /// redrive policy will move instead of delivering).
    pub fn visible_len(&self) -> usize {
        let now = self.inner.clock.now();
        let st = self.state();
        st.messages.values().filter(|m| m.visible_at <= now).count()
    }

    /// Messages received and still hidden.
    pub fn in_flight_len(&self) -> usize {
        let now = self.inner.clock.now();
        let st = self.state();
        st.messages.values().filter(|m| m.visible_at > now).count()
    }

    /// Messages deleted so far.
    pub fn deleted_count(&self) -> u64 {
        self.state().stats.deleted
    }

    /// Counters of sends, receives, deletes, faults and dead-letter moves.
    pub fn stats(&self) -> QueueStats {
        self.state().stats
    }

    /// Every message the queue holds, in send order: live ones and, when
    /// [`QueueOptions::retain_deleted`] is on, deleted ones. Messages moved
    /// to the dead-letter queue are listed there, not here.
    pub fn snapshot(&self) -> Vec<QueuedMessage> {
        let now = self.inner.clock.now();
        let st = self.state();
        let live = st.messages.iter().map(|(n, m)| (*n, &**m, false));
        let gone = st.gone.iter().filter_map(|(n, g)| match g {
            Gone::Kept { message, .. } => Some((*n, &**message, true)),
            Gone::Dropped { .. } | Gone::Moved { .. } => None,
        });
        let mut all: Vec<(u64, &Stored, bool)> = live.chain(gone).collect();
        all.sort_by_key(|(n, _, _)| *n);
        all.into_iter()
            .map(|(n, m, deleted)| QueuedMessage {
                message_id: message_id(n),
                body: m.body.clone(),
                message_attributes: m.attributes.clone(),
                receive_count: m.receive_count,
                sent_at: m.sent_at,
                first_received_at: m.first_received_at,
                visible_at: m.visible_at,
                visible: !deleted && m.visible_at <= now,
                deleted,
                dead_letter_source_arn: m.source_arn.as_deref().map(str::to_owned),
            })
            .collect()
    }

    /// When a deleted message was deleted, if the queue still knows (only
    /// with [`QueueOptions::retain_deleted`]).
    pub fn deleted_at(&self, message_id: &str) -> Option<Time> {
        let n = message_number(message_id)?;
        match self.state().gone.get(&n)? {
            Gone::Kept { deleted_at, .. } => Some(*deleted_at),
            Gone::Dropped { .. } | Gone::Moved { .. } => None,
        }
    }

    /// Makes the next `n` receives (sync or async) fail with code
    /// [`InternalError`](crate::codes::INTERNAL_ERROR). Replaces any count left
    /// from before; each receive call consumes one.
    pub fn fail_receives(&self, n: u32) {
        self.state().faults.fail_receives = n;
    }

    /// Makes the next `n` deletes fail with code
    /// [`InternalError`](crate::codes::INTERNAL_ERROR), deleting nothing. Counted
    /// per entry: a batch of 3 consumes 3. Takes precedence over
    /// [`lose_deletes`](Self::lose_deletes).
    pub fn fail_deletes(&self, n: u32) {
        self.state().faults.fail_deletes = n;
    }

    /// Makes the next `n` deletes answer `Ok` but delete nothing, as when a
    /// delete is lost (or a deleted message comes back, as SQS allows).
    /// Counted per entry.
    pub fn lose_deletes(&self, n: u32) {
        self.state().faults.lose_deletes = n;
    }

    /// Makes the next `n` visibility changes fail with code
    /// [`InternalError`](crate::codes::INTERNAL_ERROR), changing nothing. Counted
    /// per entry.
    pub fn fail_visibility_changes(&self, n: u32) {
        self.state().faults.fail_visibility_changes = n;
    }

    /// Cancels every pending injected fault.
    pub fn clear_faults(&self) {
        self.state().faults = Faults::default();
    }

    /// The earliest time at which a message is visible: after `now` when
    /// none is visible now (a receive just came back empty), else a time
    /// already past, which means "look again at once". Stale entries on top
    /// of the heap are dropped on the way.
    fn next_visible(&self) -> Option<Time> {
        let mut st = self.state();
        while let Some(&Reverse((t, n))) = st.ready.peek() {
            if st.messages.get(&n).is_some_and(|m| m.visible_at == t) {
                return Some(t);
            }
            st.ready.pop();
        }
        None
    }
}

impl fmt::Debug for MockQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockQueue")
            .field("name", &self.inner.name)
            .field("len", &self.len())
            .finish()
    }
}

/// The async face of the queue, with SQS's limits checked: 1 to 10 messages
/// per receive, a wait of at most 20 s, a visibility timeout of at most
/// 12 h (rounded up to whole seconds, as everywhere in this queue), at most
/// 10 entries per batch (a larger batch fails on every entry with
/// [`TooManyEntriesInBatchRequest`](crate::codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST)
/// and consumes no injected faults).
///
/// `receive` returns at once when a message is visible. Otherwise it is a
/// long poll: it waits until a message is sent or becomes visible, or until
/// `wait_time` has passed **on the queue's clock**, then returns what is
/// visible (maybe nothing). On a virtual clock the wait ends only when the
/// test advances the clock past it (or a message comes); with a zero
/// `wait_time` it never waits. The waiting needs no particular async
/// runtime.
#[async_trait]
impl Queue for MockQueue {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        let visibility = check_request(&request)?;
        let clock = &self.inner.clock;
        let deadline = clock.now() + request.wait_time;
        let mut first = true;
        loop {
            // Listen before looking, so a send or clock move in between is
            // not missed.
            let arrived = self.inner.arrived.listen();
            let moved = clock.listen();
            let now = clock.now();
            let got = if first {
                first = false;
                self.receive_applied(request.max_messages, visibility)?
            } else {
                let mut st = self.state();
                self.take_visible(&mut st, now, request.max_messages, visibility)
            };
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            if clock.is_virtual() {
                future::select(arrived, moved).await;
            } else {
                let wake_at = self.next_visible().map_or(deadline, |t| t.min(deadline));
                let timer = futures_timer::Delay::new(wake_at.saturating_duration_since(now));
                let _ = future::select(arrived, timer).await;
            }
        }
    }

    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        if handles.len() > MAX_BATCH_ENTRIES {
            return handles
                .iter()
                .map(|_| Err(too_many_entries(handles.len())))
                .collect();
        }
        handles.iter().map(|h| self.delete_now(h)).collect()
    }

    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        if entries.len() > MAX_BATCH_ENTRIES {
            return entries
                .iter()
                .map(|_| Err(too_many_entries(entries.len())))
                .collect();
        }
        entries
            .iter()
            .map(|(h, d)| self.change_visibility_now(h, *d))
            .collect()
    }
}
