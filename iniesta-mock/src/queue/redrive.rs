//! SQS's redrive policy: moving a message that was received too often to
//! the dead-letter queue.
//!
//! SQS moves a message when a receive *would* deliver it although it was
//! already received `maxReceiveCount` times; nothing happens at the moment
//! its visibility timeout ends. The message keeps its id, body, attributes,
//! receive count and (in a standard queue) its sent time, and the
//! dead-letter queue reports where it came from in the
//! `DeadLetterQueueSourceArn` system attribute. A FIFO queue's dead-letter
//! queue is a FIFO queue (SQS refuses any other): a moved message keeps its
//! group and deduplication id, gets a sequence number of the dead-letter
//! queue, and its enqueue time resets to the move, as the SQS developer
//! guide says of FIFO dead-letter queues. Moving a message unblocks its
//! group in the source queue.

use std::cmp::Reverse;
use std::fmt;
use std::sync::Arc;

use iniesta_core::Time;

use super::handles::message_id;
use super::store::Stored;
use super::MockQueue;

/// SQS's redrive policy on a source queue: a receive that would deliver a
/// message already received `max_receive_count` times moves it to
/// `dead_letter_queue` instead.
///
/// The dead-letter queue is an ordinary [`MockQueue`]: a test inspects it
/// with [`len`](MockQueue::len), [`snapshot`](MockQueue::snapshot),
/// [`stats`](MockQueue::stats) or receives from it. It MUST run on the same
/// [`Clock`](crate::Clock) as its source queue: message ids are unique per
/// clock, and a moved message keeps its id. (A message that meets another
/// with its id in the dead-letter queue panics the receive that moves it.)
///
/// ```
/// use std::collections::BTreeMap;
/// use std::time::Duration;
/// use iniesta_mock::{Clock, MockQueue, QueueOptions, Redrive};
///
/// let clock = Clock::virtual_clock();
/// let dlq = MockQueue::new("orders-dlq", &clock);
/// let queue = MockQueue::with_options(
///     "orders",
///     &clock,
///     QueueOptions::default().with_redrive(Redrive::new(&dlq, 2)),
/// );
/// let id = queue.send("poison", BTreeMap::new());
/// for _ in 0..2 {
///     assert_eq!(queue.receive_now(10, Some(Duration::ZERO)).len(), 1);
/// }
/// assert!(queue.receive_now(10, None).is_empty()); // the third receive moves it
/// assert_eq!(dlq.snapshot()[0].message_id, id);
/// assert_eq!(queue.stats().dead_lettered, 1);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Redrive {
    /// Where messages go (SQS's `deadLetterTargetArn`).
    pub dead_letter_queue: MockQueue,
    /// How many receives a message may have; the next receive moves it.
    /// From 1 to 1000, as SQS.
    pub max_receive_count: u32,
}

impl Redrive {
    /// A redrive policy to `dead_letter_queue` after `max_receive_count`
    /// receives.
    pub fn new(dead_letter_queue: &MockQueue, max_receive_count: u32) -> Redrive {
        Redrive {
            dead_letter_queue: dead_letter_queue.clone(),
            max_receive_count,
        }
    }
}

/// Equal when both name the same queue (not merely one of the same name).
impl PartialEq for Redrive {
    fn eq(&self, other: &Redrive) -> bool {
        self.max_receive_count == other.max_receive_count
            && self.dead_letter_queue.same_queue(&other.dead_letter_queue)
    }
}

impl Eq for Redrive {}

/// Names the dead-letter queue without reading its state.
impl fmt::Debug for Redrive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redrive")
            .field("dead_letter_queue", &self.dead_letter_queue.name())
            .field("max_receive_count", &self.max_receive_count)
            .finish()
    }
}

impl MockQueue {
    /// Takes in messages that `source_arn`'s redrive policy moved here, each
    /// under its number (so with its id), visible at once.
    ///
    /// Called while the source queue's state is locked. That cannot
    /// deadlock: a queue's redrive target exists before the queue, so the
    /// queues form chains without cycles, and locks are always taken along
    /// them.
    pub(super) fn accept_dead_letters(
        &self,
        moved: Vec<(u64, Box<Stored>)>,
        source_arn: &Arc<str>,
        now: Time,
    ) {
        {
            let mut st = self.state();
            for (n, mut m) in moved {
                assert!(
                    !st.knows(n),
                    "dead-letter queue {} already holds a message {}: a dead-letter queue \
                     MUST run on the same Clock as its source queue {source_arn}",
                    self.name(),
                    message_id(n),
                );
                m.arrived_count = m.receive_count;
                m.visible_at = now;
                m.source_arn = Some(Arc::clone(source_arn));
                if let (Some(group), Some(ids)) = (m.group_id.clone(), m.fifo.take()) {
                    // A FIFO dead-letter queue: the message joins the end
                    // of its group with a sequence number of this queue,
                    // and (unlike a standard one) its enqueue time resets.
                    m.fifo = Some(st.fifo.push(n, &group, ids.deduplication_id));
                    m.sent_at = now;
                } else {
                    st.ready.push(Reverse((now, n)));
                }
                st.messages.insert(n, m);
                st.stats.dead_letter_arrivals += 1;
            }
        }
        self.inner.arrived.notify(usize::MAX);
    }
}

#[cfg(test)]
#[path = "redrive_tests.rs"]
mod tests;
