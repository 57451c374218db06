//! Extractors: what a handler function takes as arguments, each read from
//! the [`Delivery`].
//!
//! A handler is an async function of up to eight extractors:
//!
//! | extractor | what it gives |
//! |---|---|
//! | [`Json<T>`] | the payload decoded into `T`; a payload that does not decode is a permanent failure |
//! | [`State<S>`] | the state of type `S` given to the registry (or the `Iniesta` builder) once |
//! | [`Key`] | the idempotency key ([`Message::key`](crate::Message::key)) |
//! | [`ReceiveCount`] | how many times SQS has delivered the message |
//! | [`Attributes`] | the message attributes |
//! | [`LockToken`] | the token of the lock held for this run |
//! | [`LockLost`] | the signal that fires if that lock is lost |
//! | [`SharedMessage`] | the whole parsed message |
//! | [`Delivery`] | all of the above |

use std::fmt;

use serde::de::DeserializeOwned;

use super::{Delivery, HandlerError, StateNeed};
use crate::lock_lost::LockLost;
use crate::message::{Attributes, SharedMessage};
use crate::ports::LockToken;

/// Builds a handler argument from a delivery.
///
/// Implement it for your own argument types; a failure is the handler's
/// failure (the handler does not run).
pub trait FromDelivery: Sized {
    /// The argument for this delivery.
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError>;

    /// The state types this extractor reads, so that a missing one is
    /// reported when the consumer starts. Only [`State`] needs any.
    fn state_needs(needs: &mut Vec<StateNeed>) {
        let _ = needs;
    }
}

impl FromDelivery for Delivery {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        Ok(delivery.clone())
    }
}

impl FromDelivery for SharedMessage {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        Ok(delivery.message.clone())
    }
}

impl FromDelivery for LockToken {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        Ok(delivery.token.clone())
    }
}

impl FromDelivery for LockLost {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        Ok(delivery.lock_lost.clone())
    }
}

impl FromDelivery for Attributes {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        Ok(delivery.message.attributes.clone())
    }
}

/// The payload decoded into `T`.
///
/// A payload that does not decode into `T` can never succeed: it is a
/// permanent failure ([`Retry::Never`](super::Retry::Never)), never an
/// endless retry.
///
/// ```
/// use iniesta_core::handler::{DeliveryBuilder, Json};
/// use iniesta_core::HandlerRegistry;
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct UserCreated { id: u64 }
///
/// let mut handlers = HandlerRegistry::new();
/// handlers
///     .on("UserCreated.users", |Json(user): Json<UserCreated>| async move {
///         assert_eq!(user.id, 7);
///     })
///     .unwrap();
///
/// let delivery = DeliveryBuilder::new("UserCreated.users")
///     .json(&UserCreated { id: 7 })
///     .unwrap()
///     .build();
/// # futures::executor::block_on(async {
/// assert!(handlers.run(delivery).await.is_ok());
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromDelivery for Json<T> {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        let message = &delivery.message;
        message.json::<T>().map(Json).map_err(|error| {
            HandlerError::permanent(DecodeError {
                event: message.event.clone(),
                type_name: std::any::type_name::<T>(),
                error,
            })
        })
    }
}

/// A payload that did not decode into the handler's type.
///
/// Its text names the event, the type, the kind of mismatch and where in
/// the payload it is, but not serde's own message: that quotes the payload's
/// values (an e-mail address, a name), and failures are logged at `warn`,
/// where bodies never appear. [`serde_error`](Self::serde_error) has it for
/// code that wants it.
#[derive(Debug)]
pub struct DecodeError {
    event: String,
    type_name: &'static str,
    error: serde_json::Error,
}

impl DecodeError {
    /// The message's event.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The type the payload should have decoded into.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// serde's error, whose text may quote the payload.
    pub fn serde_error(&self) -> &serde_json::Error {
        &self.error
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use serde_json::error::Category;
        let what = match self.error.classify() {
            Category::Syntax => "it is not valid JSON",
            Category::Data => "its values do not fit the type",
            Category::Eof => "it ends too early",
            Category::Io => "it could not be read",
        };
        write!(
            f,
            "the payload of {} does not decode into {}: {what} (line {}, column {})",
            self.event,
            self.type_name,
            self.error.line(),
            self.error.column()
        )
    }
}

impl std::error::Error for DecodeError {}

/// State given once to the registry ([`HandlerRegistry::state`]) or the
/// `Iniesta` builder, cloned for each run: a database pool, a client.
/// A handler that needs a state nobody gave stops the consumer's start
/// with an error naming the type.
///
/// [`HandlerRegistry::state`]: crate::HandlerRegistry::state
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State<S>(pub S);

impl<S: Clone + Send + Sync + 'static> FromDelivery for State<S> {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        delivery.state.get::<S>().map(State).ok_or_else(|| {
            HandlerError::new(MissingState {
                type_name: std::any::type_name::<S>(),
            })
        })
    }

    fn state_needs(needs: &mut Vec<StateNeed>) {
        needs.push(StateNeed::of::<S>());
    }
}

/// A handler asked for state of a type that was not given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no state of type {type_name} was given to the handlers (call .state(..) with one)")]
pub struct MissingState {
    /// The type asked for.
    pub type_name: &'static str,
}

/// The idempotency key: the SNS message id if the message had one, else
/// the SQS message id. Writes a handler makes elsewhere SHOULD be
/// conditional on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(pub String);

impl FromDelivery for Key {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        Ok(Key(delivery.message.key().to_owned()))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many times SQS has delivered the message, this time included
/// (`ApproximateReceiveCount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReceiveCount(pub u32);

impl FromDelivery for ReceiveCount {
    fn from_delivery(delivery: &Delivery) -> Result<Self, HandlerError> {
        Ok(ReceiveCount(delivery.message.receive_count))
    }
}
