#![cfg_attr(docsrs, feature(doc_cfg))]
//! # iniesta-mock
//!
//! In-memory implementations of the iniesta-core ports —
//! [`Queue`](iniesta_core::Queue) ([`MockQueue`]),
//! [`Topic`](iniesta_core::Topic) ([`MockTopic`]) and
//! [`LockBackend`](iniesta_core::LockBackend) ([`MockLock`]) — with the
//! semantics of the real services on a [`Clock`] the test controls, and
//! fault injection.
//!
//! Why: the guarantees of iniesta (each event handled once, nothing lost)
//! depend on SQS and SNS details — visibility timeouts and redelivery, stale
//! receipt handles, duplicate deliveries, filter policies, the two delivery
//! modes — and on lock expiry. These mocks reproduce those details
//! deterministically, so unit tests, property tests, examples and benchmarks
//! can exercise them without AWS or Redis and without waiting for wall time:
//! - time is a [`Clock`]: virtual (moved by the test; no OS time is read) or
//!   real;
//! - ids, receipt handles and lock tokens come from counters, never from
//!   randomness, so a run is repeatable;
//! - every operation has a synchronous `_now` form for tests that drive the
//!   mocks step by step, and the port traits are implemented on top of them
//!   for code that drives them asynchronously (no async runtime needed:
//!   long polls wake on a sent message or a clock move);
//! - FIFO queues and topics ([`QueueOptions::with_fifo`],
//!   [`TopicOptions::with_fifo`]) keep SQS's and SNS's FIFO rules: message
//!   groups in order and blocked while a member is in flight, five-minute
//!   deduplication, sequence numbers, receipt handles that expire with
//!   their visibility timeout;
//! - faults are injected by count: failed or lost deletes, failed receives,
//!   duplicate SNS deliveries, lock backend outages and lost replies.
//!
//! All types are cheap [`Clone`] handles, `Send + Sync`.
//!
//! ## Example
//!
//! A topic, a queue subscribed to it with a filter policy in envelope
//! delivery, a published event that is received, parsed and deleted:
//!
//! ```
//! use iniesta_core::publish::event_message;
//! use iniesta_core::{parse, DeliveryMode, FilterPolicy, ParseConfig};
//! use iniesta_mock::{Clock, MockQueue, MockTopic, SubscribeOptions};
//!
//! let clock = Clock::virtual_clock();
//! let topic = MockTopic::new("iniesta-global", &clock);
//! let queue = MockQueue::new("iniesta-test-users", &clock);
//! let policy = FilterPolicy::from_filters("iniesta_pass", ["UserCreated.*"]).unwrap();
//! topic.subscribe(
//!     &queue,
//!     SubscribeOptions::default().with_filter_policy(policy),
//! );
//!
//! let event = event_message("iniesta_pass", "UserCreated.accounts", r#"{"id":7}"#, 1).unwrap();
//! let sns_id = topic.publish_now(event).unwrap();
//!
//! let received = queue.receive_now(10, None);
//! assert_eq!(received.len(), 1);
//! let config = ParseConfig {
//!     mode: DeliveryMode::Envelope,
//!     event_key: "iniesta_pass".into(),
//!     topic_arn: Some(topic.arn().to_owned()),
//! };
//! let message = parse(&received[0], &config).unwrap();
//! assert_eq!(message.event, "UserCreated.accounts");
//! assert_eq!(message.key(), sns_id); // the SNS message id is the idempotency key
//!
//! queue.delete_now(&received[0].receipt_handle).unwrap();
//! assert!(queue.is_empty());
//! ```
//!
//! ## Async use
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use iniesta_core::{Queue, ReceiveRequest};
//! use iniesta_mock::{Clock, MockQueue};
//!
//! let clock = Clock::virtual_clock();
//! let queue = MockQueue::new("q", &clock);
//! queue.send("hi", BTreeMap::new());
//! let request = ReceiveRequest {
//!     max_messages: 10,
//!     wait_time: Duration::from_secs(20),
//!     visibility_timeout: None,
//! };
//! let got = futures::executor::block_on(queue.receive(request)).unwrap();
//! assert_eq!(got[0].body, "hi");
//! ```
#![warn(missing_docs)]

mod clock;
pub mod codes;
pub mod conformance;
mod lock;
mod queue;
mod topic;
mod topic_fifo;

pub use clock::Clock;
pub use lock::{LockState, LockStats, MockLock};
pub use queue::{
    MockQueue, QueueOptions, QueueStats, QueuedMessage, Redrive, DEDUPLICATION_INTERVAL,
    DEFAULT_VISIBILITY_TIMEOUT, MAX_BATCH_ENTRIES, MAX_VISIBILITY_TIMEOUT, MAX_WAIT_TIME,
};
pub use topic::{MockTopic, SubscribeOptions, Subscription, TopicStats};
pub use topic_fifo::TopicOptions;

/// The region in the ARNs and URLs of the mocks.
pub const REGION: &str = "us-east-1";
/// The account id in the ARNs and URLs of the mocks.
pub const ACCOUNT_ID: &str = "000000000000";

#[cfg(test)]
mod assertions {
    use super::*;

    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handles_are_send_sync_clone() {
        send_sync_clone::<Clock>();
        send_sync_clone::<MockQueue>();
        send_sync_clone::<MockTopic>();
        send_sync_clone::<MockLock>();
    }
}
