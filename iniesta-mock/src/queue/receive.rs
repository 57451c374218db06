//! Receiving: the visible messages taken oldest-visible first, hidden for
//! the visibility timeout, each with a fresh receipt handle and its system
//! attributes (with a FIFO message's group, deduplication id and sequence
//! number); those the redrive policy claims go to the dead-letter queue.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iniesta_core::message::{ATTR_DEDUPLICATION_ID, ATTR_MESSAGE_GROUP_ID, ATTR_SEQUENCE_NUMBER};
use iniesta_core::{BackendError, ReceiptHandle, ReceivedMessage, SystemAttributes, Time};

use super::handles::{injected, message_id};
use super::options::applied_visibility;
use super::store::{take, Gone, State, Stored};
use super::MockQueue;

/// The system attribute naming the queue a dead-letter message came from.
const DEAD_LETTER_QUEUE_SOURCE_ARN: &str = "DeadLetterQueueSourceArn";

impl MockQueue {
    /// Receives up to `max` visible messages at once, never waiting; hides
    /// each for `visibility` (the queue's timeout when `None`), rounded up
    /// to whole seconds as SQS applies it.
    ///
    /// An injected receive failure ([`fail_receives`](Self::fail_receives))
    /// is consumed and returns no messages, and so does a `visibility` over
    /// 12 hours; use [`try_receive_now`](Self::try_receive_now) to see
    /// either as an error. `max` is not checked against SQS's limit of 10
    /// here (the async [`Queue::receive`](iniesta_core::Queue::receive)
    /// checks it).
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
    pub(super) fn receive_applied(
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

    /// The receive itself: takes up to `max` messages visible at `now`
    /// (on a FIFO queue, in the order of its groups), moving those the
    /// redrive policy claims to the dead-letter queue. `visibility` MUST
    /// already be as SQS applies it.
    pub(super) fn take_visible(
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
        let moved = if self.inner.options.fifo {
            self.pick_fifo(st, now, max, &mut taken)
        } else {
            self.pick_standard(st, now, max, &mut taken)
        };
        if let (Some(r), false) = (self.inner.options.redrive.as_ref(), moved.is_empty()) {
            let source_arn: Arc<str> = Arc::from(self.inner.arn.as_str());
            r.dead_letter_queue
                .accept_dead_letters(moved, &source_arn, now);
        }
        let out = self.deliver(st, now, &taken, hide_until);
        st.taken = taken;
        out
    }

    /// Picks what a standard receive delivers: up to `max` messages visible
    /// at `now`, oldest-visible first. Messages the redrive policy claims
    /// are taken out and returned, to go to the dead-letter queue.
    fn pick_standard(
        &self,
        st: &mut State,
        now: Time,
        max: u32,
        taken: &mut Vec<u64>,
    ) -> Vec<(u64, Box<Stored>)> {
        let redrive = self.inner.options.redrive.as_ref();
        let mut moved: Vec<(u64, Box<Stored>)> = Vec::new();
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
        moved
    }

    /// Hands out the messages `taken`: hides each until `hide_until`,
    /// counts the receive and writes a fresh receipt handle and the system
    /// attributes.
    fn deliver(
        &self,
        st: &mut State,
        now: Time,
        taken: &[u64],
        hide_until: Time,
    ) -> Vec<ReceivedMessage> {
        let fifo = self.inner.options.fifo;
        let clock = &self.inner.clock;
        let mut out = Vec::with_capacity(taken.len());
        // Each handle is written here, then copied into its shared text.
        let mut handle = std::mem::take(&mut st.handle_buf);
        for &n in taken {
            // Pushed only after the picking, so a zero visibility timeout
            // cannot return one message twice in one receive. A FIFO queue
            // keeps its order in its groups instead.
            if !fifo {
                st.ready.push(Reverse((hide_until, n)));
            }
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
            if let Some(group) = &m.group_id {
                other.insert(ATTR_MESSAGE_GROUP_ID.to_owned(), group.to_string());
            }
            if let Some(ids) = &m.fifo {
                other.insert(
                    ATTR_DEDUPLICATION_ID.to_owned(),
                    ids.deduplication_id.to_string(),
                );
                other.insert(ATTR_SEQUENCE_NUMBER.to_owned(), ids.sequence.to_string());
            }
            let attributes = SystemAttributes {
                receive_count: Some(m.receive_count),
                // In ms since the Unix epoch, as SQS stamps them.
                sent_timestamp: Some(clock.unix_millis(m.sent_at)),
                first_receive_timestamp: Some(clock.unix_millis(first)),
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
                sqs_message_id: id,
                body: m.body.clone(),
                attributes,
                message_attributes: m.attributes.clone(),
            });
        }
        st.handle_buf = handle;
        st.stats.received += out.len() as u64;
        out
    }
}
