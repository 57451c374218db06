//! Handlers: what runs for each event, what it is given, and what it may
//! answer.
//!
//! A handler is usually an async function of [extractors](extract):
//!
//! ```
//! use iniesta_core::handler::{HandlerError, Json, State};
//! use iniesta_core::HandlerRegistry;
//!
//! #[derive(serde::Deserialize)]
//! struct UserCreated { id: u64 }
//!
//! #[derive(Clone)]
//! struct Db; // a connection pool, say
//! impl Db {
//!     async fn insert(&self, id: u64) -> Result<(), std::io::Error> { Ok(()) }
//! }
//!
//! let mut handlers = HandlerRegistry::new();
//! handlers.state(Db);
//! handlers
//!     .on("UserCreated.users", |Json(e): Json<UserCreated>, State(db): State<Db>| async move {
//!         db.insert(e.id).await
//!     })
//!     .unwrap();
//! ```
//!
//! It returns `()` or `Result<(), E>` for any `E: Into<HandlerError>`. An
//! `Err` retries after the configured backoff unless the error says
//! otherwise ([`HandlerError::retry_after`], [`HandlerError::permanent`]);
//! a panic is a failure that retries; a handler that outlives
//! `INIESTA_HANDLER_TIMEOUT` is aborted, and that is a failure too.
//!
//! [`DeliveryBuilder`] and [`HandlerRegistry::run`](crate::HandlerRegistry::run)
//! test a handler without a consumer.
//!
//! A batch handler ([`HandlerRegistry::on_batch`](crate::HandlerRegistry::on_batch))
//! gets up to N deliveries of a route at once, as a [`Batch`], and answers
//! a [`BatchOutcome`]: an outcome per delivery.
//! [`HandlerRegistry::run_batch`](crate::HandlerRegistry::run_batch) tests
//! one.

use async_trait::async_trait;

use crate::lock_lost::LockLost;
use crate::message::SharedMessage;
use crate::ports::LockToken;

mod batch;
mod batch_fn;
mod error;
pub mod extract;
mod func;
mod outcome;
mod state;
mod testing;
#[cfg(feature = "tower")]
pub mod tower;

pub use batch::{
    Batch, BatchItem, BatchOptions, BatchOutcome, IntoBatchOutcome, ItemFailure, ItemRef,
};
pub(crate) use batch_fn::OneAtATime;
pub use batch_fn::{fit_results, BatchFn, BatchFnHandler, BatchHandler, FromBatch};
pub use error::{BoxError, ErrorChain, HandlerError, Retry};
pub use extract::{DecodeError, FromDelivery, Json, Key, MissingState, ReceiveCount, State};
pub use func::{CallFuture, FnHandler, HandlerFn, SyncFnHandler};
pub use outcome::{HandlerResult, IntoOutcome};
pub use state::{StateMap, StateNeed};
pub use testing::DeliveryBuilder;

/// What a handler gets: the message, the lock token under which it runs,
/// a signal that fires if that lock is lost, and the registry's state.
///
/// The lock keeps other consumers of this queue from running the same event
/// while the handler runs, for as long as heartbeats keep extending it. If
/// the lock is lost (see [`LockLost`]) the handler is aborted and another
/// consumer may run the event; a handler that writes elsewhere SHOULD make
/// those writes conditional on [`Message::key`](crate::Message::key) (for
/// example an insert that fails when the key is already there).
///
/// Build one for a test with [`DeliveryBuilder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Delivery {
    /// The parsed message. [`Message::key`](crate::Message::key) is the
    /// idempotency key.
    pub message: SharedMessage,
    /// The token of the lock held for this dispatch.
    pub token: LockToken,
    /// Fires when the lock is lost while the handler runs.
    pub lock_lost: LockLost,
    /// The state given to the registry, read by [`State`].
    pub state: StateMap,
}

impl Delivery {
    /// A delivery of `message` under the lock held with `token`, with a
    /// signal that has not fired and no state.
    pub fn new(message: SharedMessage, token: LockToken) -> Self {
        Delivery {
            message,
            token,
            lock_lost: LockLost::new(),
            state: StateMap::new(),
        }
    }

    /// The same delivery with `state` for the [`State`] extractor.
    pub fn with_state(mut self, state: StateMap) -> Self {
        self.state = state;
        self
    }
}

/// Handles the events it is registered for.
///
/// Returning `Ok` completes the message and deletes it. Returning `Err`
/// (or panicking) does not: the message is released and handled again
/// after the backoff, after the delay [`HandlerError::retry_after`] asks,
/// or never ([`HandlerError::permanent`]).
///
/// Most handlers are functions registered with
/// [`HandlerRegistry::on`](crate::HandlerRegistry::on); implement this
/// trait for a handler with its own fields, or to wrap others.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery.
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError>;

    /// The state types this handler reads from [`Delivery::state`], so that
    /// a consumer without them refuses to start. A handler that wraps
    /// another MUST forward this.
    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        let _ = needs;
    }
}

#[async_trait]
impl<H: Handler + ?Sized> Handler for std::sync::Arc<H> {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        (**self).handle(delivery).await
    }

    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        (**self).state_needs(needs)
    }
}

#[cfg(test)]
mod tests;
