//! In-memory backends for development, examples and tests (`mock` feature).

use std::time::Duration;

use iniesta_core::publish::{event_message, PublishError};
use iniesta_core::{BackendError, DeliveryMode, FilterError, FilterPolicy, Topic};
use iniesta_mock::{Clock, MockLock, MockQueue, MockTopic, QueueOptions, SubscribeOptions};

/// How [`InMemory::with_options`] sets up the in-memory world.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InMemoryOptions {
    /// The queue's visibility timeout: how soon a message whose handler
    /// failed comes back (default 30 s, as SQS; examples use 1 s so a retry
    /// is quick).
    pub visibility_timeout: Duration,
    /// Whether the subscription uses raw message delivery (default `false`:
    /// the SNS JSON envelope, as SNS's own default).
    pub raw_delivery: bool,
    /// The subscription's filters (`Event.service`, `Event.*`); empty
    /// delivers every published event.
    pub filters: Vec<String>,
    /// The message attribute that names the event (`iniesta_pass`).
    pub event_key: String,
}

impl Default for InMemoryOptions {
    fn default() -> Self {
        InMemoryOptions {
            visibility_timeout: iniesta_mock::DEFAULT_VISIBILITY_TIMEOUT,
            raw_delivery: false,
            filters: Vec::new(),
            // The settings' default, so a consumer on default settings reads it.
            event_key: iniesta_core::settings::Settings::default().event_key,
        }
    }
}

/// Why an in-memory publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InMemoryPublishError {
    /// The event could not be built (empty name, too large).
    #[error(transparent)]
    Message(#[from] PublishError),
    /// The topic refused it (an injected fault).
    #[error("publishing to the in-memory topic failed: {0}")]
    Topic(#[from] BackendError),
}

/// An SNS topic, this service's SQS queue subscribed to it, and a lock
/// backend, all in memory on a real clock: everything a consumer needs to
/// run with nothing to install or configure. Hand it to
/// [`Iniesta::in_memory`](crate::Iniesta::in_memory) and publish through
/// [`publish`](Self::publish) (or the [`topic`](Self::topic) directly, with
/// its fault injection: duplicate deliveries, failed deletes, …).
///
/// It is a cheap handle: clones share the same topic, queue and lock.
///
/// ```
/// use iniesta_tokio::InMemory;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let world = InMemory::new();
/// world.publish("UserCreated.users", r#"{"id": 7}"#).await.unwrap();
/// assert_eq!(world.queue().len(), 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InMemory {
    clock: Clock,
    topic: MockTopic,
    queue: MockQueue,
    lock: MockLock,
    options: InMemoryOptions,
}

impl InMemory {
    /// The default world: envelope delivery, no filter policy (every event
    /// reaches the queue), 30 s visibility timeout.
    pub fn new() -> Self {
        // No filters: building the world cannot fail.
        InMemory::with_options(InMemoryOptions::default())
            .unwrap_or_else(|_| unreachable!("no filters to reject"))
    }

    /// A world set up as `options` says. Fails when a filter is not of the
    /// form `Event.service` or `Event.*`.
    pub fn with_options(options: InMemoryOptions) -> Result<Self, FilterError> {
        let clock = Clock::real();
        let topic = MockTopic::new("iniesta-global", &clock);
        let queue = MockQueue::with_options(
            "iniesta-development-local",
            &clock,
            QueueOptions {
                visibility_timeout: options.visibility_timeout,
                ..QueueOptions::default()
            },
        );
        let filter_policy = if options.filters.is_empty() {
            None
        } else {
            Some(FilterPolicy::from_filters(
                &options.event_key,
                &options.filters,
            )?)
        };
        topic.subscribe(
            &queue,
            SubscribeOptions {
                raw_delivery: options.raw_delivery,
                filter_policy,
            },
        );
        let lock = MockLock::new(&clock);
        Ok(InMemory {
            clock,
            topic,
            queue,
            lock,
            options,
        })
    }

    /// Publishes `body` as `event` (a full name such as `UserCreated.users`)
    /// the way the original publisher does; returns the SNS message id, which
    /// is the consumer's idempotency key.
    pub async fn publish(
        &self,
        event: &str,
        body: impl Into<String>,
    ) -> Result<String, InMemoryPublishError> {
        let message = event_message(&self.options.event_key, event, body, 1)?;
        Ok(self.topic.publish(message).await?)
    }

    /// The topic.
    pub fn topic(&self) -> &MockTopic {
        &self.topic
    }

    /// The queue subscribed to the topic.
    pub fn queue(&self) -> &MockQueue {
        &self.queue
    }

    /// The lock backend.
    pub fn lock(&self) -> &MockLock {
        &self.lock
    }

    /// The clock every part reads (real time).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The options it was built with.
    pub fn options(&self) -> &InMemoryOptions {
        &self.options
    }

    /// How the subscription delivers messages.
    pub fn delivery_mode(&self) -> DeliveryMode {
        if self.options.raw_delivery {
            DeliveryMode::Raw
        } else {
            DeliveryMode::Envelope
        }
    }
}

impl Default for InMemory {
    fn default() -> Self {
        InMemory::new()
    }
}
