//! # iniesta-core
//!
//! The sans-IO heart of iniesta-rs: consume domain events that other services
//! publish to an SNS topic, through this service's own SQS queue, with a lock
//! per event so each is processed once.
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
pub use registry::{
    Delivery, Handler, HandlerError, HandlerId, HandlerRegistry, RegistryError, Route, Routes,
};
pub use stats::Stats;
pub use time::Time;
