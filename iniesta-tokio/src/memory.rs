//! In-memory backends for development, examples and tests (`mock` feature).

use std::time::Duration;

use iniesta_core::publish::{event_message, PublishError};
use iniesta_core::{BackendError, DeliveryMode, FilterError, FilterPolicy, Topic};
use iniesta_mock::{
    Clock, MockLock, MockQueue, MockTopic, QueueOptions, SubscribeOptions, TopicOptions,
};

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
    /// A FIFO topic (`iniesta-global.fifo`) and a FIFO queue
    /// (`iniesta-development-local.fifo`), both with content-based
    /// deduplication (default `false`). Publish with
    /// [`InMemory::publish_in_group`]; a consumer on the world handles each
    /// group's events one at a time, in order.
    pub fifo: bool,
}

impl Default for InMemoryOptions {
    fn default() -> Self {
        InMemoryOptions {
            visibility_timeout: iniesta_mock::DEFAULT_VISIBILITY_TIMEOUT,
            raw_delivery: false,
            filters: Vec::new(),
            // The settings' default, so a consumer on default settings reads it.
            event_key: iniesta_core::settings::Settings::default().event_key,
            fifo: false,
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
/// backend, all in memory on tokio's clock: everything a consumer needs to
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
///
/// # Time: tokio's clock, which a test may pause
///
/// The world reads the time from [`tokio::time::Instant`] and its long polls
/// wait on tokio timers, as the consumer's own timers do
/// ([`TokioRuntime`](crate::TokioRuntime)). On a running runtime that is
/// wall time. Under a **paused** clock — `#[tokio::test(start_paused =
/// true)]`, with tokio's `test-util` feature in your dev-dependencies —
/// tokio moves the clock to the next timer whenever every task is waiting,
/// so the queue's visibility timeouts, lock expiries and heartbeats,
/// backoffs and long polls all pass at once and together: a test of a retry
/// after the default 30 s visibility timeout finishes in milliseconds,
/// and asserts on tokio's time rather than on the wall clock.
/// `tokio::time::advance` moves the paused clock by hand.
///
/// The queue's long polls therefore need a tokio runtime with its time
/// driver (as the consumer does): poll them inside `#[tokio::main]`,
/// `#[tokio::test]`, or a runtime built with `enable_time()`.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use iniesta_tokio::{Delivery, InMemory, Iniesta};
///
/// // In a test: #[tokio::test(start_paused = true)]
/// async fn a_failed_payment_is_retried() -> Result<(), Box<dyn std::error::Error>> {
///     let world = InMemory::new(); // the default 30 s visibility timeout
///     let calls = Arc::new(AtomicU32::new(0));
///     let c = calls.clone();
///     let consumer = Iniesta::in_memory(&world)
///         .on("PaymentReceived.billing", move |_d: Delivery| {
///             let first = c.fetch_add(1, Ordering::SeqCst) == 0;
///             async move {
///                 if first {
///                     return Err("the bank did not answer".to_owned());
///                 }
///                 Ok(())
///             }
///         })
///         .start()
///         .await?;
///
///     let start = tokio::time::Instant::now();
///     world.publish("PaymentReceived.billing", r#"{"amount": 12}"#).await?;
///     let mut stats = consumer.watch_stats();
///     stats.wait_for(|s| s.succeeded == 1).await?;
///     // The message came back after its visibility timeout, on tokio's
///     // clock; the wall clock hardly moved.
///     assert!(start.elapsed() >= Duration::from_secs(30));
///     assert_eq!(calls.load(Ordering::SeqCst), 2);
///
///     consumer.shutdown_and_wait().await?;
///     Ok(())
/// }
/// # tokio::runtime::Builder::new_current_thread()
/// #     .enable_time()
/// #     .start_paused(true)
/// #     .build()
/// #     .unwrap()
/// #     .block_on(a_failed_payment_is_retried())
/// #     .unwrap();
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
        let clock = tokio_clock();
        // SQS and SNS want a FIFO resource's name to end in `.fifo`.
        let suffix = if options.fifo { ".fifo" } else { "" };
        let topic = MockTopic::with_options(
            format!("iniesta-global{suffix}"),
            &clock,
            TopicOptions::default()
                .with_fifo(options.fifo)
                .with_content_based_deduplication(options.fifo),
        );
        let queue = MockQueue::with_options(
            format!("iniesta-development-local{suffix}"),
            &clock,
            QueueOptions::default()
                .with_visibility_timeout(options.visibility_timeout)
                .with_fifo(options.fifo)
                .with_content_based_deduplication(options.fifo),
        );
        let mut subscription = SubscribeOptions::default().with_raw_delivery(options.raw_delivery);
        if !options.filters.is_empty() {
            subscription = subscription.with_filter_policy(FilterPolicy::from_filters(
                &options.event_key,
                &options.filters,
            )?);
        }
        topic.subscribe(&queue, subscription);
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

    /// Publishes `body` as `event` in FIFO message group `group` (a world
    /// built with [`InMemoryOptions::fifo`]); the topic's content-based
    /// deduplication drops a second identical body within five minutes.
    pub async fn publish_in_group(
        &self,
        event: &str,
        body: impl Into<String>,
        group: &str,
    ) -> Result<String, InMemoryPublishError> {
        let message = event_message(&self.options.event_key, event, body, 1)?.with_group_id(group);
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

    /// The clock every part reads: tokio's time, measured from when the
    /// world was built (paused when tokio's clock is, see [`InMemory`]).
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

/// A mock clock on tokio's time: `now` is the [`tokio::time::Instant`]
/// elapsed since this call, and long polls wait with [`tokio::time::sleep`],
/// so that a paused runtime sees their waits as timers and moves its clock
/// to them. A wait on a wall-clock timer would take wall time while the
/// paused clock stands still, and be jumped over when another timer is due
/// first.
fn tokio_clock() -> Clock {
    let origin = tokio::time::Instant::now();
    Clock::from_source(
        move || origin.elapsed(),
        |d| Box::pin(tokio::time::sleep(d)),
    )
}
