//! FIFO queues: sending with a message group and a deduplication id, and
//! the order in which receives take a FIFO queue's messages.
//!
//! The rules, as the SQS developer guide states them for FIFO queues:
//! - every message names a `MessageGroupId` (else `MissingParameter`) and
//!   a `MessageDeduplicationId`, or the queue has
//!   `ContentBasedDeduplication` and the id is the SHA-256 of the body
//!   (else `InvalidParameterValue`). Both are 1 to 128 characters of ASCII
//!   letters, digits and punctuation;
//! - a message sent with the deduplication id of one accepted in the last
//!   five minutes is accepted, answered with the first one's message id,
//!   and not enqueued. The window counts from the first message's send and
//!   holds even after it was deleted; its scope is the queue (SQS's default
//!   `DeduplicationScope`);
//! - each accepted message gets a `SequenceNumber`: a 20-digit decimal,
//!   increasing along the queue, and (as in SQS) not consecutive;
//! - a receive returns the messages of a group in send order and never a
//!   group with a message in flight (received, not deleted, visibility not
//!   over): the group's later messages wait until that message is deleted
//!   or visible again. One receive takes as many messages of one group as
//!   it can (in order) before it goes to the next group, oldest first.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use iniesta_core::settings::check_fifo_id;
use iniesta_core::{Attributes, BackendError, OutgoingMessage, ReceiptHandle, Time};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use super::handles::message_id;
use super::store::{Gone, State, Stored};
use super::MockQueue;
use crate::codes;

/// How long SQS and SNS remember a FIFO message's deduplication id: a
/// message with the id of one accepted less than five minutes earlier is
/// accepted and dropped.
pub const DEDUPLICATION_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The first sequence number is above this, so that every one has 20
/// digits, as SQS's do.
const SEQUENCE_BASE: u128 = 10_000_000_000_000_000_000;
/// The distance between two sequence numbers of a queue: SQS's are not
/// consecutive either, so nobody should count on it.
const SEQUENCE_STEP: u128 = 65_536;

/// A FIFO message's deduplication id and sequence number.
#[derive(Debug, Clone)]
pub(crate) struct FifoIds {
    pub(super) deduplication_id: Arc<str>,
    pub(super) sequence: u128,
}

/// A FIFO queue's message groups, remembered deduplication ids and
/// sequence numbers.
#[derive(Default)]
pub(crate) struct FifoState {
    /// The live messages of each group, in the order the queue took them.
    groups: FxHashMap<Arc<str>, VecDeque<u64>>,
    /// Deduplication ids → message numbers.
    seen: DedupWindow,
    sequence: Sequence,
}

impl FifoState {
    /// Adds live message `n` at the end of its group; returns its ids.
    pub(super) fn push(&mut self, n: u64, group: &Arc<str>, dedup: Arc<str>) -> FifoIds {
        self.groups
            .entry(Arc::clone(group))
            .or_default()
            .push_back(n);
        FifoIds {
            deduplication_id: dedup,
            sequence: self.sequence.next(),
        }
    }

    /// Takes message `n` out of its group (deleted or moved away).
    pub(super) fn remove(&mut self, n: u64, group: &str) {
        if let Some(q) = self.groups.get_mut(group) {
            if let Some(i) = q.iter().position(|&m| m == n) {
                q.remove(i);
            }
            if q.is_empty() {
                self.groups.remove(group);
            }
        }
    }
}

/// Sequence numbers as SQS and SNS FIFO give them: 20-digit decimals,
/// increasing, not consecutive.
#[derive(Default)]
pub(crate) struct Sequence(u128);

impl Sequence {
    /// The next sequence number.
    pub(crate) fn next(&mut self) -> u128 {
        self.0 = self.0.max(SEQUENCE_BASE) + SEQUENCE_STEP;
        self.0
    }
}

/// The deduplication ids accepted in the last [`DEDUPLICATION_INTERVAL`],
/// each with the number of the message (or notification) it let through.
#[derive(Default)]
pub(crate) struct DedupWindow {
    /// Id → (when its message was accepted, its number).
    seen: FxHashMap<Arc<str>, (Time, u64)>,
    /// The same ids, oldest first, to forget them when the window ends.
    order: VecDeque<(Time, Arc<str>)>,
}

impl DedupWindow {
    /// The number of the message accepted with `id` less than
    /// [`DEDUPLICATION_INTERVAL`] before `now`, if any; forgets the ids
    /// whose window ended.
    pub(crate) fn duplicate_of(&mut self, id: &str, now: Time) -> Option<u64> {
        while let Some((t, old)) = self.order.front() {
            if now.saturating_duration_since(*t) < DEDUPLICATION_INTERVAL {
                break;
            }
            if self.seen.get(old).is_some_and(|(at, _)| at == t) {
                self.seen.remove(old);
            }
            self.order.pop_front();
        }
        self.seen.get(id).map(|&(_, n)| n)
    }

    /// Remembers that `id` let message `n` through at `now`.
    pub(crate) fn remember(&mut self, id: &Arc<str>, now: Time, n: u64) {
        self.seen.insert(Arc::clone(id), (now, n));
        self.order.push_back((now, Arc::clone(id)));
    }
}

/// The SHA-256 of `body` in lower-case hex: the deduplication id of
/// content-based deduplication, as SQS and SNS compute it (the body only,
/// not the attributes).
pub(crate) fn content_hash(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

/// Checks a `MessageGroupId` or `MessageDeduplicationId` as SQS and SNS do
/// ([`check_fifo_id`]: 1 to 128 ASCII letters, digits or punctuation).
/// `code` is the service's code for a bad parameter.
pub(crate) fn check_id(parameter: &str, id: &str, code: &str) -> Result<(), BackendError> {
    check_fifo_id(id).map_err(|reason| {
        BackendError::new(code, format!("invalid {parameter} {id:?}: it {reason}"))
    })
}

/// SQS's answer to a FIFO queue's receipt handle used after its visibility
/// timeout ended (see [`MockQueue::delete_now`]).
pub(super) fn expired_handle(handle: &ReceiptHandle) -> BackendError {
    BackendError::new(
        codes::INVALID_PARAMETER_VALUE,
        format!(
            "Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle \
             has expired."
        ),
    )
}

impl MockQueue {
    /// Sends a message as SQS's `SendMessage` does, with the message group
    /// and deduplication id of [`OutgoingMessage`]; returns its message id.
    ///
    /// On a FIFO queue ([`QueueOptions::fifo`](crate::QueueOptions::fifo)):
    /// no `group_id` is [`MissingParameter`](codes::MISSING_PARAMETER); no
    /// `deduplication_id` without content-based deduplication is
    /// [`InvalidParameterValue`](codes::INVALID_PARAMETER_VALUE); a
    /// duplicate within [`DEDUPLICATION_INTERVAL`] answers `Ok` with the
    /// first message's id and enqueues nothing (counted in
    /// [`QueueStats::deduplicated`](crate::QueueStats::deduplicated)).
    ///
    /// On a standard queue: a `group_id` is carried to the receiver and
    /// orders nothing (SQS's fair queues); a `deduplication_id` is
    /// [`InvalidParameterValue`](codes::INVALID_PARAMETER_VALUE), since
    /// only FIFO queues take one.
    ///
    /// ```
    /// use iniesta_core::OutgoingMessage;
    /// use iniesta_mock::{Clock, MockQueue, QueueOptions};
    ///
    /// let clock = Clock::virtual_clock();
    /// let queue = MockQueue::with_options("orders.fifo", &clock, QueueOptions::default().with_fifo(true));
    /// let send = |body: &str, dedup: &str| {
    ///     queue.send_message(
    ///         OutgoingMessage::new(body, Default::default())
    ///             .with_group_id("order-7")
    ///             .with_deduplication_id(dedup),
    ///     )
    /// };
    /// let first = send("placed", "d-1").unwrap();
    /// assert_eq!(send("placed again", "d-1").unwrap(), first); // a duplicate: dropped
    /// send("paid", "d-2").unwrap();
    ///
    /// let got = queue.receive_now(10, None);
    /// let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    /// assert_eq!(bodies, ["placed", "paid"]); // one group, in order
    /// assert_eq!(got[0].attributes.message_group_id(), Some("order-7"));
    /// ```
    pub fn send_message(&self, message: OutgoingMessage) -> Result<String, BackendError> {
        let OutgoingMessage {
            body,
            attributes,
            group_id,
            deduplication_id,
        } = message;
        let bad = codes::INVALID_PARAMETER_VALUE;
        if let Some(g) = &group_id {
            check_id("MessageGroupId", g, bad)?;
        }
        if let Some(d) = &deduplication_id {
            check_id("MessageDeduplicationId", d, bad)?;
        }
        let attributes = Attributes::from(attributes);
        let options = &self.inner.options;
        if !options.fifo {
            if deduplication_id.is_some() {
                return Err(BackendError::new(
                    bad,
                    format!(
                        "the request includes MessageDeduplicationId, which is not valid for \
                         standard queue {}: only FIFO queues deduplicate",
                        self.name()
                    ),
                ));
            }
            return Ok(self.enqueue(body, attributes, group_id.map(Arc::from)));
        }
        let Some(group) = group_id else {
            return Err(BackendError::new(
                codes::MISSING_PARAMETER,
                format!(
                    "The request must contain the parameter MessageGroupId: {} is a FIFO queue",
                    self.name()
                ),
            ));
        };
        let dedup = match deduplication_id {
            Some(d) => d,
            None if options.content_based_deduplication => content_hash(&body),
            None => {
                return Err(BackendError::new(
                    bad,
                    format!(
                        "The queue should either have ContentBasedDeduplication enabled or \
                         MessageDeduplicationId provided explicitly (queue {})",
                        self.name()
                    ),
                ))
            }
        };
        Ok(self.enqueue_fifo(body, attributes, Arc::from(group), Arc::from(dedup)))
    }

    /// Enqueues a checked FIFO message, or answers a duplicate with the
    /// first one's id.
    fn enqueue_fifo(
        &self,
        body: String,
        attributes: Attributes,
        group: Arc<str>,
        dedup: Arc<str>,
    ) -> String {
        let now = self.inner.clock.now();
        let n = {
            let mut st = self.state();
            if let Some(first) = st.fifo.seen.duplicate_of(&dedup, now) {
                st.stats.deduplicated += 1;
                return message_id(first);
            }
            let n = self.inner.clock.next_message_number();
            st.fifo.seen.remember(&dedup, now, n);
            let ids = st.fifo.push(n, &group, dedup);
            st.messages.insert(
                n,
                Stored::sent(body, attributes, now, Some(group), Some(ids)),
            );
            st.stats.sent += 1;
            n
        };
        self.inner.arrived.notify(usize::MAX);
        message_id(n)
    }

    /// Picks what a FIFO receive delivers: up to `max` messages of groups
    /// with nothing in flight, whole groups in order, the group with the
    /// oldest first message first. Messages the redrive policy claims are
    /// taken out and returned, to go to the dead-letter queue.
    pub(super) fn pick_fifo(
        &self,
        st: &mut State,
        now: Time,
        max: u32,
        taken: &mut Vec<u64>,
    ) -> Vec<(u64, Box<Stored>)> {
        let max = max as usize;
        let redrive = self.inner.options.redrive.as_ref();
        let in_flight = |n: &u64| st.messages.get(n).is_some_and(|m| m.visible_at > now);
        let mut open: Vec<(u128, Arc<str>)> = st
            .fifo
            .groups
            .iter()
            .filter(|(_, q)| !q.iter().any(in_flight))
            .filter_map(|(g, q)| {
                let first = st.messages.get(q.front()?)?;
                Some((first.fifo.as_ref()?.sequence, Arc::clone(g)))
            })
            .collect();
        open.sort_unstable();
        let mut moved = Vec::new();
        for (_, group) in open {
            let mut i = 0;
            while taken.len() < max {
                let Some(&n) = st.fifo.groups.get(&group).and_then(|q| q.get(i)) else {
                    break;
                };
                let claimed = st.messages.get(&n).is_some_and(|m| {
                    redrive.is_some_and(|r| m.receive_count >= r.max_receive_count)
                });
                if claimed {
                    st.fifo.remove(n, &group);
                    if let Some(m) = st.messages.remove(&n) {
                        st.gone.insert(n, Gone::Moved { issued: m.issued() });
                        st.stats.dead_lettered += 1;
                        moved.push((n, m));
                    }
                    continue;
                }
                taken.push(n);
                i += 1;
            }
            if taken.len() >= max {
                break;
            }
        }
        moved
    }

    /// When a FIFO queue may next have something to deliver without a send
    /// or delete: the earliest end of a visibility timeout after `now`.
    pub(super) fn next_fifo_change(&self, now: Time) -> Option<Time> {
        let st = self.state();
        st.messages
            .values()
            .map(|m| m.visible_at)
            .filter(|t| *t > now)
            .min()
    }
}
