//! Why a consumer could not start, or ended abnormally.

use iniesta_core::settings::SettingsError;
use iniesta_core::{ConfigError, RegistryError};

/// Why a consumer could not start (or ended abnormally). Each message says
/// what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad or missing settings; one line per problem.
    #[error("invalid iniesta settings:\n{0}")]
    Settings(#[from] SettingsError),
    /// A handler registration was refused (an event registered twice, an
    /// empty event name, two default handlers).
    #[error("handler registration refused: {0}")]
    Handlers(#[from] RegistryError),
    /// [`Iniesta::handlers`](crate::Iniesta::handlers) was given after
    /// handlers or state registered on the builder, which it would have
    /// dropped.
    #[error(
        ".handlers(registry) came after {}, which it would drop: call .handlers(registry) \
         before .on/.state/.handler, or register them on the registry",
        replaced_list(events, *default, states)
    )]
    HandlersReplaced {
        /// The events whose handlers would be dropped.
        events: Vec<String>,
        /// Whether a default handler would be dropped.
        default: bool,
        /// The state types that would be dropped.
        states: Vec<&'static str>,
    },
    /// No handler at all.
    #[error(
        "no handlers registered: add one with .on(event, handler) or \
         .default_handler(handler); without one every message would stay in the queue"
    )]
    NoHandlers,
    /// The consumer configuration does not fit together.
    #[error("invalid consumer configuration: {0}")]
    Config(#[from] ConfigError),
    /// The start-up verification failed; the report lists every problem and
    /// how to fix it.
    #[cfg(feature = "aws")]
    #[error("{0}")]
    Verification(Box<iniesta_aws::VerificationReport>),
    /// An AWS call needed to start failed.
    #[cfg(feature = "aws")]
    #[error(transparent)]
    Aws(#[from] iniesta_aws::AwsError),
    /// The Redlock could not be built from `INIESTA_CACHES`.
    #[cfg(feature = "redlock")]
    #[error(transparent)]
    Redlock(#[from] iniesta_redlock::RedlockError),
    /// The lock backend of `INIESTA_LOCK_BACKEND` is not built in.
    #[cfg(any(feature = "redlock", feature = "dynamodb"))]
    #[error(transparent)]
    Lock(crate::wiring::LockError),
    /// No queue backend was chosen.
    #[error(
        "no queue to consume: pass one with .queue(..), use in-memory backends \
         (.in_memory_backends(..), `mock` feature), or enable the `aws` feature"
    )]
    NoQueue,
    /// A queue was given with `.queue(..)` but no name for it: lock keys are
    /// scoped to the queue's name.
    #[error(
        "the queue given with .queue(..) has no name: set INIESTA_SQS_QUEUE_NAME \
         (or SERVICE_NAME for the queue-name template); lock keys are scoped to it"
    )]
    NoQueueName,
    /// No lock backend was chosen.
    #[error(
        "no lock backend: pass one with .lock(..), use in-memory backends \
         (.in_memory_backends(..), `mock` feature), or enable the `redlock` or `dynamodb` feature"
    )]
    NoLock,
    /// The consumer task ended abnormally (it panicked or was cancelled).
    #[error("the consumer task ended abnormally: {0}")]
    Crashed(String),
    /// The health and metrics server of `.listen(..)` could not start.
    #[cfg(feature = "http")]
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// The process could not listen for SIGINT/SIGTERM.
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] std::io::Error),
}

#[cfg(any(feature = "redlock", feature = "dynamodb"))]
impl Error {
    /// The error of a lock backend that could not be built; a refused
    /// Redlock URL stays [`Error::Redlock`].
    pub(crate) fn from_lock(e: crate::wiring::LockError) -> Error {
        match e {
            #[cfg(feature = "redlock")]
            crate::wiring::LockError::Redlock(e) => Error::Redlock(e),
            #[allow(unreachable_patterns)]
            other => Error::Lock(other),
        }
    }
}

/// "handlers for A, B, the default handler and state of type S" for
/// [`Error::HandlersReplaced`].
fn replaced_list(events: &[String], default: bool, states: &[&'static str]) -> String {
    let mut parts = Vec::new();
    if !events.is_empty() {
        parts.push(format!("handlers for {}", events.join(", ")));
    }
    if default {
        parts.push("a default handler".to_owned());
    }
    if !states.is_empty() {
        parts.push(format!("state of type {}", states.join(", ")));
    }
    parts.join(" and ")
}
