//! Observability: logs ([`TracingObserver`]), metrics ([`MetricsObserver`]),
//! live counts ([`StatsObserver`], read through a [`StatsWatch`]), a fan-out
//! of several observers ([`FanOut`]) and a span per message around each
//! handler ([`traced_handlers`]).
//!
//! The driver reports every [`Event`] of the consumer to one
//! [`Observer`]; these types turn the events into what an operator looks at.
//! The [`Iniesta`](crate::Iniesta) builder installs all of them by default.
//!
//! [`Event`]: iniesta_core::Event
//! [`Observer`]: iniesta_core::Observer

/// The target of the logs and spans of this module, whichever file writes
/// them: log filters name it.
const LOG_TARGET: &str = "iniesta_tokio::observe";

mod fanout;
mod logs;
mod metrics;
mod span;
mod stats;

pub use self::fanout::FanOut;
pub use self::logs::TracingObserver;
pub use self::metrics::{describe_metrics, names, MetricsObserver};
pub use self::span::traced_handlers;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use self::span::{TraceLayer, TraceService};
pub use self::stats::{ConsumerStopped, StatsObserver, StatsWatch};

#[cfg(test)]
mod tests;
