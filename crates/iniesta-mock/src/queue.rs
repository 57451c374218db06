//! An in-memory SQS standard queue.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
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
use rustc_hash::FxHashMap;

use crate::clock::Clock;
use crate::codes;
use crate::{ACCOUNT_ID, REGION};

/// The visibility timeout of a queue unless [`QueueOptions`] says otherwise
/// (SQS's default).
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest visibility timeout SQS accepts: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// The most messages one receive returns, and the most entries of one batch
/// call.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// The longest long-poll wait SQS accepts: 20 seconds.
pub const MAX_WAIT_TIME: Duration = Duration::from_secs(20);

/// How a [`MockQueue`] behaves. Build it with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use iniesta_mock::QueueOptions;
///
/// let options = QueueOptions {
///     visibility_timeout: Duration::from_secs(5),
///     ..QueueOptions::default()
/// };
/// assert!(options.retain_deleted);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// How long a received message stays hidden when the receive names no
    /// visibility timeout (default 30 s, as SQS).
    pub visibility_timeout: Duration,
    /// Whether deleted messages stay listed by [`MockQueue::snapshot`] (with
    /// `deleted: true`) so a test can inspect what was processed. Default
    /// `true`. Long benchmarks should turn it off: the queue then drops a
    /// deleted message's body and attributes and keeps only its receive
    /// count (so that its receipt handles are still recognised).
    pub retain_deleted: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            retain_deleted: true,
        }
    }
}

/// A message as the queue holds it, for inspection ([`MockQueue::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuedMessage {
    /// The SQS message id.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// The SQS message attributes.
    pub message_attributes: Attributes,
    /// How often the message was received.
    pub receive_count: u32,
    /// When it was sent.
    pub sent_at: Time,
    /// When it was first received, if ever.
    pub first_received_at: Option<Time>,
    /// When it is (or was, or becomes) visible to receives.
    pub visible_at: Time,
    /// Whether a receive would return it now (false when in flight or deleted).
    pub visible: bool,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// Counters of what happened on a queue ([`MockQueue::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Messages sent.
    pub sent: u64,
    /// Receive calls (sync and async, including failed and empty ones).
    pub receive_calls: u64,
    /// Deliveries returned by receives (a redelivery counts again).
    pub received: u64,
    /// Messages deleted.
    pub deleted: u64,
    /// Deletes with a stale handle, which succeeded but deleted nothing.
    pub stale_deletes: u64,
    /// Successful visibility changes.
    pub visibility_changes: u64,
    /// Calls or entries answered by an injected fault (failed or lost).
    pub injected_faults: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    fail_receives: u32,
    fail_deletes: u32,
    lose_deletes: u32,
    fail_visibility_changes: u32,
}

fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

struct Stored {
    body: String,
    /// Shared with every delivery of the message (no copy per receive).
    attributes: Attributes,
    receive_count: u32,
    sent_at: Time,
    first_received_at: Option<Time>,
    visible_at: Time,
}

/// A deleted message: kept whole, or only its receive count. Messages are
/// boxed in the maps so that the tables stay small: growing them then moves
/// pointers, not whole messages.
enum Gone {
    Kept {
        message: Box<Stored>,
        deleted_at: Time,
    },
    Dropped {
        receive_count: u32,
    },
}

impl Gone {
    fn receive_count(&self) -> u32 {
        match self {
            Gone::Kept { message, .. } => message.receive_count,
            Gone::Dropped { receive_count } => *receive_count,
        }
    }
}

#[derive(Default)]
struct State {
    /// Live messages by number.
    messages: FxHashMap<u64, Box<Stored>>,
    /// (visible_at, number) of every live message, earliest first: receives
    /// take from the top, so the oldest-visible message comes first, then
    /// send order. Entries are not removed when a message is deleted or its
    /// visibility changes; such a stale entry (its message gone, or its time
    /// no longer the message's) is skipped when it reaches the top. That
    /// keeps deletes and visibility changes off the heap.
    ready: BinaryHeap<Reverse<(Time, u64)>>,
    /// Deleted messages by number.
    gone: FxHashMap<u64, Gone>,
    faults: Faults,
    stats: QueueStats,
    /// Scratch space of `take_visible`, kept between receives.
    taken: Vec<u64>,
    handle_buf: String,
}

struct Inner {
    name: String,
    url: String,
    arn: String,
    clock: Clock,
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
///   [`ReceiptHandleIsInvalid`](codes::RECEIPT_HANDLE_IS_INVALID).
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
    pub fn with_options(
        name: impl Into<String>,
        clock: &Clock,
        options: QueueOptions,
    ) -> MockQueue {
        let name = name.into();
        MockQueue {
            inner: Arc::new(Inner {
                url: format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"),
                arn: format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"),
                name,
                clock: clock.clone(),
                options,
                state: Mutex::new(State::default()),
                arrived: Event::new(),
            }),
        }
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

    /// The queue's options.
    pub fn options(&self) -> &QueueOptions {
        &self.inner.options
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
                    sent_at: now,
                    first_received_at: None,
                    visible_at: now,
                }),
            );
            st.ready.push(Reverse((now, n)));
            st.stats.sent += 1;
        }
        self.inner.arrived.notify(usize::MAX);
        message_id(n)
    }

    /// Receives up to `max` visible messages at once, never waiting; hides
    /// each for `visibility` (the queue's timeout when `None`).
    ///
    /// An injected receive failure ([`fail_receives`](Self::fail_receives))
    /// is consumed and returns no messages; use
    /// [`try_receive_now`](Self::try_receive_now) to see it as an error.
    /// `max` is not checked against SQS's limit of 10 here (the async
    /// [`Queue::receive`] checks it).
    pub fn receive_now(&self, max: u32, visibility: Option<Duration>) -> Vec<ReceivedMessage> {
        self.try_receive_now(max, visibility).unwrap_or_default()
    }

    /// Like [`receive_now`](Self::receive_now), but an injected failure is
    /// returned as `Err` with code [`InternalError`](codes::INTERNAL_ERROR).
    pub fn try_receive_now(
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

    /// The receive itself: takes up to `max` messages visible at `now`.
    fn take_visible(
        &self,
        st: &mut State,
        now: Time,
        max: u32,
        visibility: Option<Duration>,
    ) -> Vec<ReceivedMessage> {
        let hide_until = now + visibility.unwrap_or(self.inner.options.visibility_timeout);
        // Reused from receive to receive (no allocation per call).
        let mut taken = std::mem::take(&mut st.taken);
        taken.clear();
        while taken.len() < max as usize {
            match st.ready.peek() {
                Some(&Reverse((visible_at, n))) if visible_at <= now => {
                    st.ready.pop();
                    let live = st
                        .messages
                        .get(&n)
                        .is_some_and(|m| m.visible_at == visible_at);
                    // A stale entry, or a second entry of one message.
                    if live && !taken.contains(&n) {
                        taken.push(n);
                    }
                }
                _ => break,
            }
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
            let attributes = SystemAttributes {
                receive_count: Some(m.receive_count),
                sent_timestamp: Some(millis(m.sent_at)),
                first_receive_timestamp: Some(millis(first)),
                other: BTreeMap::new(),
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
    /// - a handle this queue never issued is `Err` with code
    ///   [`ReceiptHandleIsInvalid`](codes::RECEIPT_HANDLE_IS_INVALID).
    ///
    /// Injected faults are applied first, before the handle is looked at:
    /// [`fail_deletes`](Self::fail_deletes) answers `Err`
    /// ([`InternalError`](codes::INTERNAL_ERROR)),
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
            return if k >= 1 && k <= gone.receive_count() {
                Ok(())
            } else {
                Err(invalid_handle(handle))
            };
        }
        let Some(m) = st.messages.get(&n) else {
            return Err(invalid_handle(handle));
        };
        if k == 0 || k > m.receive_count {
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
            Gone::Dropped {
                receive_count: m.receive_count,
            }
        };
        st.gone.insert(n, gone);
        st.stats.deleted += 1;
        Ok(())
    }

    /// Changes the visibility of the delivery named by `handle`: the message
    /// becomes visible `timeout` from now (zero: at once).
    ///
    /// Only the latest handle of a message that is in flight (received and
    /// still hidden) may do this; a stale handle, or a message that is
    /// visible or deleted, is `Err` with code
    /// [`MessageNotInflight`](codes::MESSAGE_NOT_INFLIGHT). A `timeout` over
    /// 12 hours is [`InvalidParameterValue`](codes::INVALID_PARAMETER_VALUE);
    /// a handle never issued is
    /// [`ReceiptHandleIsInvalid`](codes::RECEIPT_HANDLE_IS_INVALID). An
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
            if timeout > MAX_VISIBILITY_TIMEOUT {
                return Err(BackendError::new(
                    codes::INVALID_PARAMETER_VALUE,
                    format!(
                        "visibility timeout {timeout:?} is over the limit of 12 hours \
                         (43200 s); clamp it"
                    ),
                ));
            }
            let (n, k) = parse_handle(handle).ok_or_else(|| invalid_handle(handle))?;
            if let Some(gone) = st.gone.get(&n) {
                return Err(if k >= 1 && k <= gone.receive_count() {
                    not_in_flight(handle, "the message was deleted")
                } else {
                    invalid_handle(handle)
                });
            }
            let Some(m) = st.messages.get_mut(&n) else {
                return Err(invalid_handle(handle));
            };
            if k == 0 || k > m.receive_count {
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

    /// Messages not deleted (visible or in flight).
    pub fn len(&self) -> usize {
        self.state().messages.len()
    }

    /// Whether every message sent was deleted.
    pub fn is_empty(&self) -> bool {
        self.state().messages.is_empty()
    }

    /// Messages a receive would return now.
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

    /// Counters of sends, receives, deletes and faults.
    pub fn stats(&self) -> QueueStats {
        self.state().stats
    }

    /// Every message the queue holds, in send order: live ones and, when
    /// [`QueueOptions::retain_deleted`] is on, deleted ones.
    pub fn snapshot(&self) -> Vec<QueuedMessage> {
        let now = self.inner.clock.now();
        let st = self.state();
        let live = st.messages.iter().map(|(n, m)| (*n, &**m, false));
        let gone = st.gone.iter().filter_map(|(n, g)| match g {
            Gone::Kept { message, .. } => Some((*n, &**message, true)),
            Gone::Dropped { .. } => None,
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
            })
            .collect()
    }

    /// When a deleted message was deleted, if the queue still knows (only
    /// with [`QueueOptions::retain_deleted`]).
    pub fn deleted_at(&self, message_id: &str) -> Option<Time> {
        let n = message_id.strip_prefix("msg-").and_then(parse_number)?;
        match self.state().gone.get(&n)? {
            Gone::Kept { deleted_at, .. } => Some(*deleted_at),
            Gone::Dropped { .. } => None,
        }
    }

    /// Makes the next `n` receives (sync or async) fail with code
    /// [`InternalError`](codes::INTERNAL_ERROR). Replaces any count left
    /// from before; each receive call consumes one.
    pub fn fail_receives(&self, n: u32) {
        self.state().faults.fail_receives = n;
    }

    /// Makes the next `n` deletes fail with code
    /// [`InternalError`](codes::INTERNAL_ERROR), deleting nothing. Counted
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
    /// [`InternalError`](codes::INTERNAL_ERROR), changing nothing. Counted
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

fn message_id(n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut id = String::with_capacity(4 + digits.len());
    id.push_str("msg-");
    id.push_str(digits);
    id
}

fn millis(t: Time) -> u64 {
    u64::try_from(t.since_origin().as_millis()).unwrap_or(u64::MAX)
}

/// A decimal number as this crate writes them: digits only, no leading zero.
pub(crate) fn parse_number(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

/// `msg-{n}/{k}` → (n, k).
fn parse_handle(handle: &ReceiptHandle) -> Option<(u64, u32)> {
    let (id, k) = handle.0.rsplit_once('/')?;
    let n = parse_number(id.strip_prefix("msg-")?)?;
    let k = u32::try_from(parse_number(k)?).ok()?;
    Some((n, k))
}

fn injected(action: &str) -> BackendError {
    BackendError::new(
        codes::INTERNAL_ERROR,
        format!("{action} failed: injected fault"),
    )
}

fn invalid_handle(handle: &ReceiptHandle) -> BackendError {
    BackendError::new(
        codes::RECEIPT_HANDLE_IS_INVALID,
        format!("the receipt handle {handle:?} was not issued by this queue"),
    )
}

fn not_in_flight(handle: &ReceiptHandle, why: &str) -> BackendError {
    BackendError::new(
        codes::MESSAGE_NOT_INFLIGHT,
        format!("the message of receipt handle {handle:?} is not in flight: {why}"),
    )
}

fn too_many_entries(len: usize) -> BackendError {
    BackendError::new(
        codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST,
        format!("a batch takes at most {MAX_BATCH_ENTRIES} entries, got {len}; split it"),
    )
}

fn check_request(request: &ReceiveRequest) -> Result<(), BackendError> {
    let bad = |what: String| Err(BackendError::new(codes::INVALID_PARAMETER_VALUE, what));
    if request.max_messages == 0 || request.max_messages as usize > MAX_BATCH_ENTRIES {
        return bad(format!(
            "max_messages must be between 1 and {MAX_BATCH_ENTRIES}, got {}",
            request.max_messages
        ));
    }
    if request.wait_time > MAX_WAIT_TIME {
        return bad(format!(
            "wait_time must be at most 20 s, got {:?}",
            request.wait_time
        ));
    }
    if let Some(v) = request.visibility_timeout {
        if v > MAX_VISIBILITY_TIMEOUT {
            return bad(format!(
                "visibility_timeout must be at most 12 hours, got {v:?}"
            ));
        }
    }
    Ok(())
}

/// The async face of the queue, with SQS's limits checked: 1 to 10 messages
/// per receive, a wait of at most 20 s, a visibility timeout of at most
/// 12 h, at most 10 entries per batch (a larger batch fails on every entry
/// with [`TooManyEntriesInBatchRequest`](codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST)
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
        check_request(&request)?;
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
                self.try_receive_now(request.max_messages, request.visibility_timeout)?
            } else {
                let mut st = self.state();
                self.take_visible(
                    &mut st,
                    now,
                    request.max_messages,
                    request.visibility_timeout,
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn setup() -> (Clock, MockQueue) {
        let clock = Clock::virtual_clock();
        let queue = MockQueue::new("q", &clock);
        (clock, queue)
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), AttributeValue::String(v.to_string())))
            .collect()
    }

    fn code(e: BackendError) -> String {
        e.code.unwrap_or_default()
    }

    #[test]
    fn names_and_addresses() {
        let (_, q) = setup();
        assert_eq!(q.name(), "q");
        assert_eq!(q.arn(), "arn:aws:sqs:us-east-1:000000000000:q");
        assert!(q.url().ends_with("/000000000000/q"), "{}", q.url());
    }

    #[test]
    fn visibility_moved_back_and_forth_never_returns_a_message_twice() {
        let clock = Clock::virtual_clock();
        let q = MockQueue::new("q", &clock);
        let a = q.send("a", BTreeMap::new());
        let b = q.send("b", BTreeMap::new());
        let first = q.receive_now(1, None);
        assert_eq!(first[0].message_id, a);
        // Back to visible now, then received again with the same timeout:
        // the queue now holds two entries for `a` at the same instant.
        q.change_visibility_now(&first[0].receipt_handle, Duration::ZERO)
            .unwrap();
        let again = q.receive_now(10, None);
        let ids: Vec<_> = again.iter().map(|m| m.message_id.clone()).collect();
        assert_eq!(ids, [a.clone(), b.clone()], "each once, oldest first");
        assert_eq!(q.visible_len(), 0);
        assert_eq!(q.in_flight_len(), 2);
        clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
        let third = q.receive_now(10, None);
        let ids: Vec<_> = third.iter().map(|m| m.message_id.clone()).collect();
        assert_eq!(ids, [a.clone(), b.clone()], "each once, oldest first");
        // A deleted message is not returned, even with entries left behind.
        q.delete_now(&third[0].receipt_handle).unwrap();
        clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
        let last = q.receive_now(10, None);
        let ids: Vec<_> = last.iter().map(|m| m.message_id.clone()).collect();
        assert_eq!(ids, [b]);
        assert_eq!(last[0].receive_count(), 3);
    }

    #[test]
    fn receive_sets_system_attributes_and_hides_the_message() {
        let (clock, q) = setup();
        clock.advance(Duration::from_millis(1234));
        let id = q.send("body", attrs(&[("iniesta_pass", "A.b")]));
        clock.advance(Duration::from_millis(1000));
        let got = q.receive_now(10, None);
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(m.message_id, id);
        assert_eq!(m.body, "body");
        assert_eq!(m.message_attributes, attrs(&[("iniesta_pass", "A.b")]));
        assert_eq!(m.attributes.receive_count, Some(1));
        assert_eq!(m.attributes.sent_timestamp, Some(1234));
        assert_eq!(m.attributes.first_receive_timestamp, Some(2234));
        assert_eq!(q.len(), 1);
        assert_eq!(q.visible_len(), 0);
        assert_eq!(q.in_flight_len(), 1);
        assert!(q.receive_now(10, None).is_empty());
    }

    #[test]
    fn visibility_expiry_redelivers_with_receive_count_two() {
        let (clock, q) = setup();
        q.send("x", BTreeMap::new());
        let first = q.receive_now(1, None);
        clock.advance(DEFAULT_VISIBILITY_TIMEOUT - Duration::from_millis(1));
        assert!(q.receive_now(1, None).is_empty(), "still hidden");
        clock.advance(Duration::from_millis(1));
        let second = q.receive_now(1, None);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].message_id, first[0].message_id);
        assert_eq!(second[0].receive_count(), 2);
        assert_ne!(second[0].receipt_handle, first[0].receipt_handle);
        assert_eq!(
            second[0].attributes.first_receive_timestamp,
            first[0].attributes.first_receive_timestamp,
            "first receive time is kept"
        );
    }

    #[test]
    fn order_is_oldest_visible_first_then_send_order() {
        let (clock, q) = setup();
        let a = q.send("a", BTreeMap::new());
        let b = q.send("b", BTreeMap::new());
        // a is received with a short timeout: visible again at t=1s.
        assert_eq!(q.receive_now(1, Some(SECOND))[0].message_id, a);
        clock.advance(2 * SECOND);
        let c = q.send("c", BTreeMap::new());
        let ids: Vec<String> = q
            .receive_now(10, None)
            .into_iter()
            .map(|m| m.message_id)
            .collect();
        // b visible since 0, a since 1 s, c since 2 s.
        assert_eq!(ids, vec![b, a, c]);
    }

    #[test]
    fn max_limits_the_receive() {
        let (_, q) = setup();
        for i in 0..5 {
            q.send(format!("{i}"), BTreeMap::new());
        }
        assert_eq!(q.receive_now(2, None).len(), 2);
        assert_eq!(q.receive_now(0, None).len(), 0);
        assert_eq!(q.receive_now(10, None).len(), 3);
    }

    #[test]
    fn zero_visibility_does_not_return_a_message_twice_in_one_receive() {
        let (_, q) = setup();
        q.send("x", BTreeMap::new());
        let got = q.receive_now(10, Some(Duration::ZERO));
        assert_eq!(got.len(), 1);
        let again = q.receive_now(10, Some(Duration::ZERO));
        assert_eq!(again.len(), 1, "visible again at once");
        assert_eq!(again[0].receive_count(), 2);
    }

    #[test]
    fn queue_option_sets_the_default_visibility_timeout() {
        let clock = Clock::virtual_clock();
        let q = MockQueue::with_options(
            "q",
            &clock,
            QueueOptions {
                visibility_timeout: 5 * SECOND,
                ..QueueOptions::default()
            },
        );
        q.send("x", BTreeMap::new());
        q.receive_now(1, None);
        clock.advance(5 * SECOND);
        assert_eq!(q.receive_now(1, None).len(), 1);
    }

    #[test]
    fn stale_handle_delete_is_a_no_op() {
        let (clock, q) = setup();
        q.send("x", BTreeMap::new());
        let first = q.receive_now(1, None).remove(0);
        clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
        let second = q.receive_now(1, None).remove(0);
        assert_eq!(q.delete_now(&first.receipt_handle), Ok(()));
        assert_eq!(q.len(), 1, "stale handle must not delete");
        assert_eq!(q.stats().stale_deletes, 1);
        assert_eq!(q.delete_now(&second.receipt_handle), Ok(()));
        assert_eq!(q.len(), 0);
        assert_eq!(q.deleted_count(), 1);
        // Deleting again, with either handle, succeeds and changes nothing.
        assert_eq!(q.delete_now(&second.receipt_handle), Ok(()));
        assert_eq!(q.delete_now(&first.receipt_handle), Ok(()));
        assert_eq!(q.deleted_count(), 1);
    }

    #[test]
    fn latest_handle_deletes_even_after_its_visibility_ended() {
        let (clock, q) = setup();
        q.send("x", BTreeMap::new());
        let m = q.receive_now(1, None).remove(0);
        clock.advance(2 * DEFAULT_VISIBILITY_TIMEOUT);
        assert_eq!(q.visible_len(), 1);
        q.delete_now(&m.receipt_handle).unwrap();
        assert!(q.is_empty());
        assert!(q.receive_now(10, None).is_empty());
    }

    #[test]
    fn handles_never_issued_are_invalid() {
        let (_, q) = setup();
        q.send("x", BTreeMap::new());
        let m = q.receive_now(1, None).remove(0);
        let other = MockQueue::new("other", q.clock());
        let foreign_id = other.send("y", BTreeMap::new());
        let bad = [
            "garbage".to_string(),
            String::new(),
            format!("{}/2", m.message_id),
            format!("{}/0", m.message_id),
            format!("{}/01", m.message_id),
            "msg-999/1".to_string(),
            format!("{foreign_id}/1"),
        ];
        for h in bad {
            let e = q.delete_now(&ReceiptHandle::new(&h)).unwrap_err();
            assert_eq!(code(e), codes::RECEIPT_HANDLE_IS_INVALID, "{h}");
            let e = q
                .change_visibility_now(&ReceiptHandle::new(&h), SECOND)
                .unwrap_err();
            assert_eq!(code(e), codes::RECEIPT_HANDLE_IS_INVALID, "{h}");
        }
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn ids_are_unique_across_queues_of_one_clock() {
        let (clock, q) = setup();
        let other = MockQueue::new("other", &clock);
        let a = q.send("x", BTreeMap::new());
        let b = other.send("x", BTreeMap::new());
        assert_ne!(a, b);
    }

    #[test]
    fn change_visibility_rules() {
        let (clock, q) = setup();
        q.send("x", BTreeMap::new());
        let first = q.receive_now(1, None).remove(0);

        // Extends an in-flight message, counted from now.
        clock.advance(20 * SECOND);
        q.change_visibility_now(&first.receipt_handle, 60 * SECOND)
            .unwrap();
        clock.advance(59 * SECOND);
        assert!(q.receive_now(1, None).is_empty());
        clock.advance(SECOND);

        // Visible now: not in flight.
        let e = q
            .change_visibility_now(&first.receipt_handle, SECOND)
            .unwrap_err();
        assert_eq!(code(e), codes::MESSAGE_NOT_INFLIGHT);

        // Received again: the first handle is stale.
        let second = q.receive_now(1, None).remove(0);
        let e = q
            .change_visibility_now(&first.receipt_handle, SECOND)
            .unwrap_err();
        assert_eq!(code(e), codes::MESSAGE_NOT_INFLIGHT);

        // Over 12 hours.
        let e = q
            .change_visibility_now(
                &second.receipt_handle,
                MAX_VISIBILITY_TIMEOUT + Duration::from_millis(1),
            )
            .unwrap_err();
        assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE);
        q.change_visibility_now(&second.receipt_handle, MAX_VISIBILITY_TIMEOUT)
            .unwrap();

        // Zero: visible at once.
        q.change_visibility_now(&second.receipt_handle, Duration::ZERO)
            .unwrap();
        assert_eq!(q.visible_len(), 1);
        let third = q.receive_now(1, None).remove(0);
        assert_eq!(third.receive_count(), 3);

        // Deleted: not in flight.
        q.delete_now(&third.receipt_handle).unwrap();
        let e = q
            .change_visibility_now(&third.receipt_handle, SECOND)
            .unwrap_err();
        assert_eq!(code(e), codes::MESSAGE_NOT_INFLIGHT);
    }

    #[test]
    fn fail_receives_fails_the_next_receives_only() {
        let (_, q) = setup();
        q.send("x", BTreeMap::new());
        q.fail_receives(2);
        let e = q.try_receive_now(10, None).unwrap_err();
        assert_eq!(code(e), codes::INTERNAL_ERROR);
        assert!(
            q.receive_now(10, None).is_empty(),
            "second failure: nothing"
        );
        assert_eq!(q.visible_len(), 1, "failed receives hide nothing");
        assert_eq!(q.try_receive_now(10, None).unwrap().len(), 1);
        let s = q.stats();
        assert_eq!(s.injected_faults, 2);
        assert_eq!(s.receive_calls, 3);
        assert_eq!(s.received, 1);
    }

    #[test]
    fn fail_deletes_reports_an_error_and_deletes_nothing() {
        let (_, q) = setup();
        q.send("x", BTreeMap::new());
        let m = q.receive_now(1, None).remove(0);
        q.fail_deletes(1);
        let e = q.delete_now(&m.receipt_handle).unwrap_err();
        assert_eq!(code(e), codes::INTERNAL_ERROR);
        assert_eq!(q.len(), 1);
        q.delete_now(&m.receipt_handle).unwrap();
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn lost_delete_answers_ok_and_the_message_comes_back() {
        let (clock, q) = setup();
        q.send("x", BTreeMap::new());
        let m = q.receive_now(1, None).remove(0);
        q.lose_deletes(1);
        assert_eq!(q.delete_now(&m.receipt_handle), Ok(()));
        assert_eq!(q.len(), 1);
        assert_eq!(q.deleted_count(), 0);
        clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
        let again = q.receive_now(1, None);
        assert_eq!(again[0].message_id, m.message_id);
        assert_eq!(again[0].receive_count(), 2);
    }

    #[test]
    fn fail_visibility_changes_changes_nothing() {
        let (clock, q) = setup();
        q.send("x", BTreeMap::new());
        let m = q.receive_now(1, None).remove(0);
        q.fail_visibility_changes(1);
        let e = q
            .change_visibility_now(&m.receipt_handle, 3600 * SECOND)
            .unwrap_err();
        assert_eq!(code(e), codes::INTERNAL_ERROR);
        clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
        assert_eq!(q.visible_len(), 1, "the old timeout still applies");
    }

    #[test]
    fn clear_faults_cancels_pending_faults() {
        let (_, q) = setup();
        q.send("x", BTreeMap::new());
        q.fail_receives(5);
        q.clear_faults();
        assert_eq!(q.try_receive_now(1, None).unwrap().len(), 1);
    }

    #[test]
    fn batch_faults_count_per_entry() {
        let (_, q) = setup();
        q.send("a", BTreeMap::new());
        q.send("b", BTreeMap::new());
        let got = q.receive_now(10, None);
        q.fail_deletes(1);
        let handles = got.iter().map(|m| m.receipt_handle.clone()).collect();
        let results = futures::executor::block_on(q.delete_batch(handles));
        assert!(results[0].is_err());
        assert_eq!(results[1], Ok(()));
        assert_eq!(q.len(), 1);
        assert_eq!(q.snapshot()[0].message_id, got[0].message_id);
    }

    #[test]
    fn oversized_batches_fail_every_entry_and_consume_no_faults() {
        let (_, q) = setup();
        for i in 0..11 {
            q.send(format!("{i}"), BTreeMap::new());
        }
        let mut got = q.receive_now(10, None);
        got.extend(q.receive_now(10, None));
        assert_eq!(got.len(), 11);
        q.fail_deletes(1);
        let handles: Vec<ReceiptHandle> = got.iter().map(|m| m.receipt_handle.clone()).collect();
        let results = futures::executor::block_on(q.delete_batch(handles.clone()));
        assert_eq!(results.len(), 11);
        for r in results {
            assert_eq!(
                code(r.unwrap_err()),
                codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST
            );
        }
        let entries = handles.iter().map(|h| (h.clone(), SECOND)).collect();
        let results = futures::executor::block_on(q.change_visibility_batch(entries));
        assert!(results.iter().all(|r| r.is_err()));
        assert_eq!(q.len(), 11);
        // The injected fault is still pending.
        assert!(q.delete_now(&handles[0]).is_err());
        assert_eq!(q.delete_now(&handles[0]), Ok(()));
    }

    #[test]
    fn change_visibility_batch_applies_each_entry() {
        let (clock, q) = setup();
        q.send("a", BTreeMap::new());
        q.send("b", BTreeMap::new());
        let got = q.receive_now(10, None);
        let entries = vec![
            (got[0].receipt_handle.clone(), Duration::ZERO),
            (ReceiptHandle("nope".into()), SECOND),
            (got[1].receipt_handle.clone(), 100 * SECOND),
        ];
        let results = futures::executor::block_on(q.change_visibility_batch(entries));
        assert_eq!(results[0], Ok(()));
        assert_eq!(
            code(results[1].clone().unwrap_err()),
            codes::RECEIPT_HANDLE_IS_INVALID
        );
        assert_eq!(results[2], Ok(()));
        clock.advance(DEFAULT_VISIBILITY_TIMEOUT);
        let visible: Vec<String> = q
            .receive_now(10, None)
            .into_iter()
            .map(|m| m.message_id)
            .collect();
        assert_eq!(visible, vec![got[0].message_id.clone()]);
    }

    #[test]
    fn snapshot_lists_live_and_deleted_messages() {
        let (clock, q) = setup();
        let a = q.send("a", attrs(&[("k", "v")]));
        let b = q.send("b", BTreeMap::new());
        let _c = q.send("c", BTreeMap::new());
        let got = q.receive_now(2, None);
        clock.advance(SECOND);
        q.delete_now(&got[0].receipt_handle).unwrap();
        let snap = q.snapshot();
        assert_eq!(snap.len(), 3);
        assert_eq!(snap[0].message_id, a);
        assert!(snap[0].deleted);
        assert!(!snap[0].visible);
        assert_eq!(snap[0].message_attributes, attrs(&[("k", "v")]));
        assert_eq!(q.deleted_at(&a), Some(Time::from_millis(1000)));
        assert_eq!(snap[1].message_id, b);
        assert!(!snap[1].deleted && !snap[1].visible);
        assert_eq!(snap[1].receive_count, 1);
        assert_eq!(snap[1].first_received_at, Some(Time::ZERO));
        assert!(snap[2].visible);
        assert_eq!(snap[2].receive_count, 0);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn without_retention_deleted_messages_are_dropped_but_their_handles_known() {
        let clock = Clock::virtual_clock();
        let q = MockQueue::with_options(
            "q",
            &clock,
            QueueOptions {
                retain_deleted: false,
                ..QueueOptions::default()
            },
        );
        q.send("a", BTreeMap::new());
        let m = q.receive_now(1, None).remove(0);
        q.delete_now(&m.receipt_handle).unwrap();
        assert!(q.snapshot().is_empty());
        assert_eq!(q.deleted_at(&m.message_id), None);
        assert_eq!(q.delete_now(&m.receipt_handle), Ok(()));
        let unissued = ReceiptHandle::new(format!("{}/2", m.message_id));
        assert_eq!(
            code(q.delete_now(&unissued).unwrap_err()),
            codes::RECEIPT_HANDLE_IS_INVALID
        );
        assert_eq!(q.deleted_count(), 1);
    }

    #[test]
    fn async_receive_checks_sqs_limits() {
        let (_, q) = setup();
        let request = |max, wait, vis| ReceiveRequest {
            max_messages: max,
            wait_time: wait,
            visibility_timeout: vis,
        };
        for r in [
            request(0, Duration::ZERO, None),
            request(11, Duration::ZERO, None),
            request(1, 21 * SECOND, None),
            request(1, Duration::ZERO, Some(MAX_VISIBILITY_TIMEOUT + SECOND)),
        ] {
            let e = futures::executor::block_on(q.receive(r)).unwrap_err();
            assert_eq!(code(e), codes::INVALID_PARAMETER_VALUE, "{r:?}");
        }
        assert_eq!(q.stats().receive_calls, 0, "rejected before receiving");
    }

    #[test]
    fn handle_parsing_is_strict() {
        assert_eq!(
            parse_handle(&ReceiptHandle("msg-12/3".into())),
            Some((12, 3))
        );
        for bad in [
            "msg-12",
            "msg-/3",
            "msg-+1/3",
            "msg-1/-3",
            "x-1/3",
            "msg-1/3/4",
        ] {
            assert_eq!(parse_handle(&ReceiptHandle(bad.into())), None, "{bad}");
        }
    }
}
