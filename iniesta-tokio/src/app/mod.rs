//! The [`Iniesta`] app builder and the [`ConsumerHandle`] of a running
//! consumer.

/// The target of the consumer's start and stop logs, whichever file writes
/// them: log filters name it.
const LOG_TARGET: &str = "iniesta_tokio::app";

#[cfg(any(feature = "aws", feature = "dynamodb"))]
mod aws;
mod builder;
mod error;
mod handle;
mod start;

pub use builder::Iniesta;
pub use error::Error;
pub use handle::ConsumerHandle;
