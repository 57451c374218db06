//! An in-memory SNS topic that fans out to [`MockQueue`]s.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use iniesta_core::publish::{envelope_json, message_size, MAX_MESSAGE_BYTES};
use iniesta_core::{BackendError, FilterPolicy, OutgoingMessage, Topic};

use crate::clock::Clock;
use crate::codes;
use crate::queue::{DedupWindow, MockQueue, Sequence, MAX_BATCH_ENTRIES};
use crate::topic_fifo::{fifo_queue_on_standard_topic, with_sequence_number, TopicOptions};
use crate::{ACCOUNT_ID, REGION};

/// How a queue is subscribed to a [`MockTopic`]: by default the SNS
/// envelope and no filter policy, as SNS itself.
///
/// `#[non_exhaustive]`, so that new subscription attributes can come: start
/// from [`SubscribeOptions::default`] and use the `with_*` methods (or set
/// the fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// `RawMessageDelivery`: when on, the queue gets the published body as
    /// is and the message attributes as SQS message attributes; when off (the
    /// SNS default) the body is the SNS JSON envelope and there are no SQS
    /// message attributes.
    pub raw_delivery: bool,
    /// The subscription's filter policy; `None` delivers every message.
    pub filter_policy: Option<FilterPolicy>,
}

impl SubscribeOptions {
    /// These options with raw message delivery on or off
    /// ([`raw_delivery`](Self::raw_delivery)).
    pub fn with_raw_delivery(mut self, raw: bool) -> Self {
        self.raw_delivery = raw;
        self
    }

    /// These options with a filter policy
    /// ([`filter_policy`](Self::filter_policy)).
    pub fn with_filter_policy(mut self, policy: FilterPolicy) -> Self {
        self.filter_policy = Some(policy);
        self
    }
}

/// A subscription, for inspection ([`MockTopic::subscriptions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// The subscription ARN (`{topic arn}:sub-{n}`).
    pub arn: String,
    /// The subscribed queue's ARN (SNS's `Endpoint`).
    pub endpoint: String,
    /// The delivery mode and filter policy.
    pub options: SubscribeOptions,
}

/// Counters of what happened on a topic ([`MockTopic::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// Messages accepted by publish.
    pub published: u64,
    /// SQS messages sent to subscribed queues (duplicates count).
    pub delivered: u64,
    /// Deliveries a filter policy dropped (one per message and subscription).
    pub filtered_out: u64,
    /// Publishes answered by an injected failure.
    pub injected_faults: u64,
    /// Publishes a FIFO topic accepted and delivered to nobody: their
    /// deduplication id was seen within the last five minutes.
    pub deduplicated: u64,
}

struct Sub {
    arn: String,
    queue: MockQueue,
    options: SubscribeOptions,
}

#[derive(Default)]
struct State {
    subscriptions: Vec<Sub>,
    fail_publishes: u32,
    duplicate_next: u32,
    stats: TopicStats,
    /// FIFO: deduplication ids → notification numbers.
    seen: DedupWindow,
    /// FIFO: the envelopes' sequence numbers.
    sequence: Sequence,
}

struct Inner {
    name: String,
    arn: String,
    clock: Clock,
    options: TopicOptions,
    state: Mutex<State>,
}

/// An in-memory SNS topic: publish fans a message out to every subscribed
/// [`MockQueue`] whose filter policy matches, in raw or envelope delivery,
/// with fault injection (failed publishes, duplicate deliveries).
///
/// A FIFO topic ([`TopicOptions::with_fifo`], a name ending in `.fifo`)
/// needs a message group per publish, drops duplicates within five minutes
/// and hands the group and deduplication id on to FIFO queues (see
/// [`publish_now`](Self::publish_now)).
///
/// SNS message ids are `sns-{n}`, numbered by the clock; subscription ARNs
/// are `{topic arn}:sub-{n}`.
///
/// `MockTopic` is a cheap handle: clones share one topic.
///
/// ```
/// use iniesta_core::publish::event_message;
/// use iniesta_core::FilterPolicy;
/// use iniesta_mock::{Clock, MockQueue, MockTopic, SubscribeOptions};
///
/// let clock = Clock::virtual_clock();
/// let topic = MockTopic::new("global", &clock);
/// let queue = MockQueue::new("iniesta-test-users", &clock);
/// topic.subscribe(
///     &queue,
///     SubscribeOptions::default()
///         .with_raw_delivery(true)
///         .with_filter_policy(FilterPolicy::from_filters("iniesta_pass", ["User.*"]).unwrap()),
/// );
///
/// topic.publish_now(event_message("iniesta_pass", "User.created", "{}", 1).unwrap()).unwrap();
/// topic.publish_now(event_message("iniesta_pass", "Order.placed", "{}", 1).unwrap()).unwrap();
/// assert_eq!(queue.len(), 1); // the order event was filtered out
/// ```
#[derive(Clone)]
pub struct MockTopic {
    inner: Arc<Inner>,
}

impl MockTopic {
    /// A standard topic named `name`, with no subscriptions.
    ///
    /// # Panics
    ///
    /// On a name ending in `.fifo`, which SNS keeps for FIFO topics
    /// ([`with_options`](Self::with_options) makes those).
    pub fn new(name: impl Into<String>, clock: &Clock) -> MockTopic {
        MockTopic::with_options(name, clock, TopicOptions::default())
    }

    /// A topic named `name` with the given options, with no subscriptions.
    ///
    /// # Panics
    ///
    /// On options SNS refuses (see [`try_with_options`](Self::try_with_options)).
    pub fn with_options(
        name: impl Into<String>,
        clock: &Clock,
        options: TopicOptions,
    ) -> MockTopic {
        MockTopic::try_with_options(name, clock, options)
            .unwrap_or_else(|e| panic!("SNS would refuse this topic: {e}"))
    }

    /// A topic named `name` with the given options, or
    /// [`InvalidParameter`](codes::INVALID_PARAMETER) where SNS refuses
    /// them: a FIFO topic whose name does not end in `.fifo`, a standard
    /// one whose name does, content-based deduplication on a standard
    /// topic.
    pub fn try_with_options(
        name: impl Into<String>,
        clock: &Clock,
        options: TopicOptions,
    ) -> Result<MockTopic, BackendError> {
        let name = name.into();
        options.check(&name)?;
        Ok(MockTopic {
            inner: Arc::new(Inner {
                arn: format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"),
                name,
                clock: clock.clone(),
                options,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// The topic's options.
    pub fn options(&self) -> &TopicOptions {
        &self.inner.options
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The topic's ARN (`arn:aws:sns:us-east-1:000000000000:{name}`), as
    /// envelopes name it in `TopicArn`.
    pub fn arn(&self) -> &str {
        &self.inner.arn
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update completes before anything can panic, so a poisoned
        // lock still guards consistent state.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes `queue`; returns the subscription ARN.
    ///
    /// As in SNS, one queue has at most one subscription to a topic:
    /// subscribing it again returns the existing ARN, with the subscription's
    /// options replaced by `options` (as SNS's `SetSubscriptionAttributes`
    /// would).
    ///
    /// # Panics
    ///
    /// Where SNS refuses the subscription (see
    /// [`try_subscribe`](Self::try_subscribe)).
    pub fn subscribe(&self, queue: &MockQueue, options: SubscribeOptions) -> String {
        self.try_subscribe(queue, options)
            .unwrap_or_else(|e| panic!("SNS would refuse this subscription: {e}"))
    }

    /// Like [`subscribe`](Self::subscribe), or
    /// [`InvalidParameter`](codes::INVALID_PARAMETER) for a FIFO queue on a
    /// standard topic, which SNS refuses. (A standard queue on a FIFO topic
    /// is taken, as SNS takes it; see [`publish_now`](Self::publish_now).)
    pub fn try_subscribe(
        &self,
        queue: &MockQueue,
        options: SubscribeOptions,
    ) -> Result<String, BackendError> {
        if queue.options().fifo && !self.inner.options.fifo {
            return Err(fifo_queue_on_standard_topic(queue.name(), self.name()));
        }
        let mut st = self.state();
        if let Some(sub) = st
            .subscriptions
            .iter_mut()
            .find(|s| s.queue.same_queue(queue))
        {
            sub.options = options;
            return Ok(sub.arn.clone());
        }
        let arn = format!(
            "{}:sub-{}",
            self.inner.arn,
            self.inner.clock.next_subscription_number()
        );
        st.subscriptions.push(Sub {
            arn: arn.clone(),
            queue: queue.clone(),
            options,
        });
        Ok(arn)
    }

    /// Removes the subscription with this ARN; returns whether there was one.
    pub fn unsubscribe(&self, subscription_arn: &str) -> bool {
        let mut st = self.state();
        let before = st.subscriptions.len();
        st.subscriptions.retain(|s| s.arn != subscription_arn);
        st.subscriptions.len() != before
    }

    /// The subscriptions, in the order they were made.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state()
            .subscriptions
            .iter()
            .map(|s| Subscription {
                arn: s.arn.clone(),
                endpoint: s.queue.arn().to_owned(),
                options: s.options.clone(),
            })
            .collect()
    }

    /// Publishes a message at once; returns its SNS message id.
    ///
    /// Every subscription whose filter policy matches the message attributes
    /// ([`FilterPolicy::matches`]; no policy matches everything) gets one SQS
    /// message (two under [`duplicate_next`](Self::duplicate_next)), in
    /// subscription order:
    /// - raw delivery: the body as published, the message attributes as SQS
    ///   message attributes;
    /// - envelope delivery: the body is
    ///   [`envelope_json`](iniesta_core::publish::envelope_json) of this
    ///   topic, the SNS message id, the body and the attributes; no SQS
    ///   message attributes.
    ///
    /// Message groups and deduplication (see [`TopicOptions`]):
    /// - a FIFO topic needs a `group_id`, and a `deduplication_id` unless
    ///   it has content-based deduplication; a publish whose deduplication
    ///   id was accepted within [`DEDUPLICATION_INTERVAL`](crate::DEDUPLICATION_INTERVAL)
    ///   answers `Ok` with the first publish's id and delivers nothing. FIFO
    ///   queues get the group id and the deduplication id with the message
    ///   (and an envelope with the topic's `SequenceNumber`); standard
    ///   queues get neither;
    /// - a standard topic hands a `group_id` to its queues (SNS's fair
    ///   queues) and refuses a `deduplication_id`.
    ///
    /// Errors, as SNS reports them: an empty message, or one over 256 KiB
    /// with its attributes, a FIFO publish without a group id or without
    /// any deduplication id, a deduplication id on a standard topic, or a
    /// group or deduplication id that is not 1 to 128 ASCII letters, digits
    /// or punctuation, is [`InvalidParameter`](codes::INVALID_PARAMETER);
    /// an injected failure ([`fail_publishes`](Self::fail_publishes)) is
    /// [`InternalError`](codes::INTERNAL_ERROR). None delivers anything.
    ///
    /// ```
    /// use iniesta_core::OutgoingMessage;
    /// use iniesta_mock::{Clock, MockQueue, MockTopic, QueueOptions, SubscribeOptions, TopicOptions};
    ///
    /// let clock = Clock::virtual_clock();
    /// let topic = MockTopic::with_options("prices.fifo", &clock, TopicOptions::default().with_fifo(true));
    /// let queue = MockQueue::with_options("pricing.fifo", &clock, QueueOptions::default().with_fifo(true));
    /// topic.subscribe(&queue, SubscribeOptions::default().with_raw_delivery(true));
    ///
    /// let update = |body: &str, dedup: &str| {
    ///     OutgoingMessage::new(body, Default::default())
    ///         .with_group_id("part-214")
    ///         .with_deduplication_id(dedup)
    /// };
    /// let id = topic.publish_now(update("9.99", "u-1")).unwrap();
    /// assert_eq!(topic.publish_now(update("9.99", "u-1")).unwrap(), id); // dropped
    /// let got = queue.receive_now(10, None);
    /// assert_eq!(got.len(), 1);
    /// assert_eq!(got[0].attributes.message_group_id(), Some("part-214"));
    /// assert_eq!(got[0].attributes.other["MessageDeduplicationId"], "u-1");
    /// ```
    pub fn publish_now(&self, message: OutgoingMessage) -> Result<String, BackendError> {
        let fifo = self.inner.options.fifo;
        let (id, copies, targets, group, dedup, sequence) = {
            let mut st = self.state();
            if st.fail_publishes > 0 {
                st.fail_publishes -= 1;
                st.stats.injected_faults += 1;
                return Err(BackendError::new(
                    codes::INTERNAL_ERROR,
                    "Publish failed: injected fault",
                ));
            }
            if message.body.is_empty() {
                return Err(BackendError::new(
                    codes::INVALID_PARAMETER,
                    "Invalid parameter: Empty message; SNS needs a non-empty body",
                ));
            }
            let size = message_size(&message);
            if size > MAX_MESSAGE_BYTES {
                return Err(BackendError::new(
                    codes::INVALID_PARAMETER,
                    format!(
                        "Invalid parameter: Message too long: {size} bytes with attributes, \
                         SNS takes at most {MAX_MESSAGE_BYTES}"
                    ),
                ));
            }
            let (group, dedup) = self.inner.options.ids(&message)?;
            let now = self.inner.clock.now();
            if let Some(first) = dedup.as_ref().and_then(|d| st.seen.duplicate_of(d, now)) {
                st.stats.deduplicated += 1;
                return Ok(notification_id(first));
            }
            let copies = if st.duplicate_next > 0 {
                st.duplicate_next -= 1;
                2
            } else {
                1
            };
            let mut targets = Vec::with_capacity(st.subscriptions.len());
            let mut filtered = 0;
            for s in &st.subscriptions {
                let pass = s
                    .options
                    .filter_policy
                    .as_ref()
                    .map_or(true, |p| p.matches(&message.attributes));
                if pass {
                    targets.push((s.queue.clone(), s.options.raw_delivery));
                } else {
                    filtered += 1;
                }
            }
            st.stats.published += 1;
            st.stats.filtered_out += filtered;
            st.stats.delivered += (targets.len() * copies) as u64;
            let n = self.inner.clock.next_notification_number();
            if let Some(d) = &dedup {
                st.seen.remember(d, now, n);
            }
            let sequence = fifo.then(|| st.sequence.next());
            (notification_id(n), copies, targets, group, dedup, sequence)
        };
        // Sent after the topic's lock is released: a queue's lock is never
        // taken while holding it.
        let mut envelope = None;
        for (queue, raw) in targets {
            // A FIFO queue gets the group and deduplication id of a FIFO
            // topic; a standard queue only a standard topic's group id.
            let queue_fifo = queue.options().fifo;
            let (group, dedup) = match (fifo, queue_fifo) {
                (true, true) => (group.as_deref(), dedup.as_deref()),
                (true, false) => (None, None),
                (false, _) => (group.as_deref(), None),
            };
            for _ in 0..copies {
                let (body, attributes) = if raw {
                    (message.body.clone(), message.attributes.clone())
                } else {
                    let body = envelope.get_or_insert_with(|| {
                        let json =
                            envelope_json(&self.inner.arn, &id, &message.body, &message.attributes);
                        match sequence {
                            Some(seq) => with_sequence_number(&json, seq),
                            None => json,
                        }
                    });
                    (body.clone(), Default::default())
                };
                let sqs = OutgoingMessage {
                    body,
                    attributes,
                    group_id: group.map(str::to_owned),
                    deduplication_id: dedup.map(str::to_owned),
                };
                // SNS does not report a failed delivery to the publisher;
                // with the ids checked above, none fails here.
                let _ = queue.send_message(sqs);
            }
        }
        Ok(id)
    }

    /// Makes each of the next `n` publishes deliver two SQS messages to every
    /// matching queue: the same SNS message id, two SQS message ids, as SNS's
    /// at-least-once delivery allows. Replaces any count left from before.
    pub fn duplicate_next(&self, n: u32) {
        self.state().duplicate_next = n;
    }

    /// Makes the next `n` publishes fail with code
    /// [`InternalError`](codes::INTERNAL_ERROR), delivering nothing. Counted
    /// per message (a batch of 3 consumes 3). Replaces any count left from
    /// before.
    pub fn fail_publishes(&self, n: u32) {
        self.state().fail_publishes = n;
    }

    /// Cancels every pending injected fault.
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.fail_publishes = 0;
        st.duplicate_next = 0;
    }

    /// Counters of publishes, deliveries and faults.
    pub fn stats(&self) -> TopicStats {
        self.state().stats
    }
}

/// An SNS message id of this crate: `sns-{n}`.
fn notification_id(n: u64) -> String {
    format!("sns-{n}")
}

impl fmt::Debug for MockTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockTopic")
            .field("arn", &self.inner.arn)
            .field("subscriptions", &self.state().subscriptions.len())
            .finish()
    }
}

/// The async face of the topic: [`publish_now`](MockTopic::publish_now)
/// per message. A batch over 10 messages fails on every entry with
/// [`TooManyEntriesInBatchRequest`](codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST),
/// as SNS's `PublishBatch` does.
#[async_trait]
impl Topic for MockTopic {
    async fn publish(&self, message: OutgoingMessage) -> Result<String, BackendError> {
        self.publish_now(message)
    }

    async fn publish_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<String, BackendError>> {
        if messages.len() > MAX_BATCH_ENTRIES {
            let err = BackendError::new(
                codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST,
                format!(
                    "a batch takes at most {MAX_BATCH_ENTRIES} messages, got {}; split it",
                    messages.len()
                ),
            );
            return messages.iter().map(|_| Err(err.clone())).collect();
        }
        messages.into_iter().map(|m| self.publish_now(m)).collect()
    }
}

#[cfg(test)]
#[path = "topic_tests.rs"]
mod tests;
