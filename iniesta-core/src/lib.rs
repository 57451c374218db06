#![cfg_attr(docsrs, feature(doc_cfg))]
//! # iniesta-core
//!
//! The sans-IO heart of iniesta-rs: consume domain events that other services
//! publish to an SNS topic, through this service's own SQS queue, with a lock
//! per event so each is processed once.
//!
//! The whole loop, driven by hand: the machine hands out the IO it wants as
//! [`Action`]s and takes the answers as [`Input`]s, with the time. Here the
//! answers are written in place of a queue and a lock; [`Driver`] does the
//! same against real ports, and `iniesta-tokio` runs it on tokio.
//!
//! ```
//! use std::time::Duration;
//! use iniesta_core::machine::{Action, Consumer, ConsumerConfig, DispatchOutcome, Event, Input};
//! use iniesta_core::{
//!     AcquireOutcome, AttributeValue, Delivery, DeliveryMode, HandlerRegistry, LockToken, ParseConfig,
//!     ReceiptHandle, ReceivedMessage, SystemAttributes, Time,
//! };
//!
//! let mut handlers = HandlerRegistry::new();
//! handlers.on_sync("UserCreated.users", |_d: Delivery| ()).unwrap();
//! let parse = ParseConfig { mode: DeliveryMode::Raw, event_key: "iniesta_pass".into(), topic_arn: None };
//! let mut config = ConsumerConfig::new(parse, "iniesta-dev-users");
//! config.delete_batch_window = Duration::ZERO; // delete at once, not in batches
//! config.max_in_flight = 1; // one handler at a time
//! let mut now = Time::from_millis(0);
//! // The next message is received ahead while one runs; this walk-through
//! // follows the first one alone.
//! fn next(c: &mut Consumer) -> Option<Action> {
//!     std::iter::from_fn(|| c.poll_action()).find(|a| !matches!(a, Action::Receive { .. }))
//! }
//! let mut consumer = Consumer::new(config, &handlers, now).unwrap();
//!
//! // 1. receive: the queue answers with one message.
//! let Some(Action::Receive { id, .. }) = consumer.poll_action() else { panic!() };
//! let message = ReceivedMessage {
//!     sqs_message_id: "m-1".into(),
//!     receipt_handle: ReceiptHandle::new("rh-1"),
//!     body: r#"{"user_id": 7}"#.into(),
//!     attributes: SystemAttributes { receive_count: Some(1), ..SystemAttributes::default() },
//!     message_attributes: [("iniesta_pass".to_owned(), AttributeValue::String("UserCreated.users".into()))]
//!         .into_iter()
//!         .collect::<std::collections::BTreeMap<_, _>>()
//!         .into(),
//! };
//! consumer.handle_input(now, Input::Received { id, result: Ok(vec![message]) });
//!
//! // 2. acquire: the lock is ours for ten seconds.
//! let Some(Action::Acquire { batch, keys, .. }) = next(&mut consumer) else { panic!() };
//! assert_eq!(keys[0], "sqs:event:m-1");
//! let token = LockToken::new("t-1");
//! let outcome = AcquireOutcome::Acquired { token, validity: Duration::from_secs(10) };
//! consumer.handle_input(now, Input::Acquired { batch, index: 0, outcome });
//!
//! // 3. dispatch: run the handler it names; it succeeds.
//! let Some(Action::Dispatch { id, message, .. }) = next(&mut consumer) else { panic!() };
//! assert_eq!(message.event, "UserCreated.users");
//! now = Time::from_millis(5);
//! consumer.handle_input(now, Input::HandlerFinished { id, outcome: DispatchOutcome::Succeeded });
//!
//! // 4. complete: the lock becomes a completion record.
//! let Some(Action::Complete { batch, .. }) = next(&mut consumer) else { panic!() };
//! consumer.handle_input(now, Input::Completed { batch, index: 0, result: Ok(()) });
//!
//! // 5. delete: the message leaves the queue.
//! let Some(Action::Delete { batch, handles }) = next(&mut consumer) else { panic!() };
//! assert_eq!(handles, [ReceiptHandle::new("rh-1")]);
//! consumer.handle_input(now, Input::Deleted { batch, index: 0, result: Ok(()) });
//! assert!(std::iter::from_fn(|| consumer.poll_event()).any(|e| matches!(e, Event::Deleted { .. })));
//! assert_eq!(consumer.in_flight(), 0);
//! ```
//!
//! This crate does no IO, reads no clock and draws no randomness. It holds:
//! - the [message model](message) and its parsing for both SNS delivery modes;
//! - [filters] and the SNS filter policy built from them;
//! - [settings] read from the `INIESTA_*` environment;
//! - the [handler registry](registry): routes (pure data, for the machine)
//!   and the handlers they name (for the driver);
//! - the [ports]: the `Queue`, `Topic` and `LockBackend` traits adapters
//!   implement, and [SQS's limits and units](sqs) that every queue applies;
//! - the [signal](lock_lost) a handler gets when its lock is lost;
//! - the publisher's [wire format](publish);
//! - [the consumer state machine](machine) ([`Consumer`]) and a
//!   runtime-agnostic [driver] ([`Driver`]) that runs it against the ports.
#![warn(missing_docs)]

/// The common face of the crate's shared-text newtypes over `Arc<str>`
/// ([`ReceiptHandle`], [`LockKey`], [`LockToken`]): `new`, `as_str` and
/// `Display`.
macro_rules! shared_text {
    ($name:ident) => {
        impl $name {
            /// Wraps the given text (one allocation; clones share it).
            pub fn new(text: impl AsRef<str>) -> Self {
                $name(std::sync::Arc::from(text.as_ref()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub mod driver;
pub mod filters;
pub mod handler;
pub mod lock_lost;
pub mod machine;
pub mod message;
pub mod ports;
pub mod publish;
pub mod registry;
pub mod settings;
pub mod sqs;
pub mod stats;
pub mod time;

pub use driver::{Driver, Observer, Runtime};
pub use filters::{Filter, FilterError, FilterPolicy};
pub use handler::{
    Delivery, DeliveryBuilder, ErrorChain, Handler, HandlerError, HandlerResult, Json, Retry, State,
};
pub use lock_lost::LockLost;
pub use machine::{
    AbortReason, Action, Backoff, BatchId, ConfigError, Consumer, ConsumerConfig, DispatchOutcome,
    Event, Input, MessageId, ReceiveId,
};
pub use message::{
    parse, AttributeValue, Attributes, DeliveryMode, Message, ParseConfig, ParseError, Payload,
    ReceiptHandle, ReceivedMessage, SharedMessage, SystemAttributes,
};
pub use ports::{
    AcquireOutcome, BackendError, EntryResult, LockBackend, LockError, LockKey, LockToken,
    OutgoingMessage, Queue, ReceiveRequest, Topic,
};
pub use registry::{HandlerId, HandlerRegistry, RegistryError, Route, Routes};
pub use stats::Stats;
pub use time::Time;

/// The attribute the port traits ([`Queue`], [`Topic`], [`LockBackend`])
/// are declared with, re-exported so that an implementation needs no
/// dependency of its own (and names the same version):
///
/// ```
/// use iniesta_core::{async_trait, BackendError, OutgoingMessage, Topic};
///
/// struct Discard;
///
/// #[async_trait]
/// impl Topic for Discard {
///     async fn publish(&self, _message: OutgoingMessage) -> Result<String, BackendError> {
///         Ok("discarded".to_owned())
///     }
/// }
/// ```
pub use async_trait::async_trait;
