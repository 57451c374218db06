//! An in-memory SQS queue, standard or FIFO.
//!
//! - [`options`]: how a queue behaves, and the SQS limits and units it
//!   enforces (visibility in whole seconds, rounded up);
//! - [`redrive`]: the redrive policy that moves a message received too often
//!   to a dead-letter queue;
//! - [`store`]: the messages and the order receives take them in;
//! - [`handles`]: message ids and receipt handles;
//! - [`receive`]: receiving, and the redrive policy applied on the way;
//! - [`delete`]: deleting by receipt handle;
//! - [`visibility`]: changing the visibility of a message in flight;
//! - [`fifo`]: FIFO queues: message groups, deduplication, sequence
//!   numbers and the order of a FIFO receive;
//! - [`faults`]: injected faults;
//! - [`inspect`]: what a test reads off a queue;
//! - [`port`]: the async [`Queue`](iniesta_core::Queue) port, with long
//!   polls and batches.

mod delete;
mod faults;
mod fifo;
mod handles;
mod inspect;
mod options;
mod port;
mod ready;
mod receive;
mod redrive;
mod store;
#[cfg(test)]
mod tests;
mod visibility;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use event_listener::Event;
use iniesta_core::{AttributeValue, Attributes, BackendError};

use crate::clock::Clock;
use crate::{ACCOUNT_ID, REGION};
use handles::message_id;
use store::{State, Stored};

pub use fifo::DEDUPLICATION_INTERVAL;
pub(crate) use fifo::{check_id, content_hash, DedupWindow, Sequence};
pub use inspect::{QueueStats, QueuedMessage};
pub use options::{
    QueueOptions, DEFAULT_VISIBILITY_TIMEOUT, MAX_BATCH_ENTRIES, MAX_VISIBILITY_TIMEOUT,
    MAX_WAIT_TIME,
};
pub use redrive::Redrive;

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

/// An in-memory SQS queue (standard or FIFO) on a [`Clock`], with SQS's
/// delivery semantics and fault injection.
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
/// A FIFO queue ([`QueueOptions::with_fifo`], a name ending in `.fifo`)
/// keeps SQS's FIFO rules on top: messages are sent with
/// [`send_message`](Self::send_message) and a group id, duplicates within
/// [`DEDUPLICATION_INTERVAL`] are dropped, a group is received in order and
/// not at all while one of its messages is in flight, deliveries carry
/// `MessageGroupId`, `MessageDeduplicationId` and `SequenceNumber`, and a
/// receipt handle expires with its visibility timeout (see
/// [`send_message`](Self::send_message) and [`delete_now`](Self::delete_now)).
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
/// assert_eq!(first[0].sqs_message_id, id);
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
    /// `max_receive_count` outside 1 to 1000, a FIFO queue whose name does
    /// not end in `.fifo` (or a standard one whose name does), a dead-letter
    /// queue of the other type; content-based deduplication on a standard
    /// queue is [`InvalidAttributeName`](crate::codes::INVALID_ATTRIBUTE_NAME).
    /// The visibility timeout is rounded up to whole seconds
    /// ([`options`](Self::options) shows it so).
    pub fn try_with_options(
        name: impl Into<String>,
        clock: &Clock,
        options: QueueOptions,
    ) -> Result<MockQueue, BackendError> {
        let name = name.into();
        let options = options.applied(&name)?;
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
    ///
    /// # Panics
    ///
    /// On a FIFO queue, which needs a message group and a deduplication id:
    /// send there with [`send_message`](Self::send_message).
    pub fn send(
        &self,
        body: impl Into<String>,
        message_attributes: BTreeMap<String, AttributeValue>,
    ) -> String {
        assert!(
            !self.inner.options.fifo,
            "MockQueue::send on FIFO queue {}: SQS refuses a message without MessageGroupId; \
             use MockQueue::send_message with OutgoingMessage::with_group_id",
            self.name()
        );
        self.enqueue(body.into(), Attributes::from(message_attributes), None)
    }

    /// Enqueues a message on a standard queue, with the group id of a fair
    /// queue if it has one.
    fn enqueue(&self, body: String, attributes: Attributes, group_id: Option<Arc<str>>) -> String {
        let now = self.inner.clock.now();
        let n = self.inner.clock.next_message_number();
        {
            let mut st = self.state();
            st.messages
                .insert(n, Stored::sent(body, attributes, now, group_id, None));
            st.ready.push(Reverse((now, n)));
            st.stats.sent += 1;
        }
        self.inner.arrived.notify(usize::MAX);
        message_id(n)
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
