#![cfg_attr(docsrs, feature(doc_cfg))]
// These docs link to items of optional features. Built without them
// (`cargo doc -p iniesta-tokio` on the default features) such a link has no
// target and renders as plain text; with every feature (docs.rs, the
// workspace's doc build) every link is checked.
#![cfg_attr(
    not(all(feature = "mock", feature = "http", feature = "tower")),
    allow(rustdoc::broken_intra_doc_links)
)]
//! # iniesta-tokio
//!
//! ```no_run
//! use iniesta_tokio::{InMemory, Iniesta, Json};
//!
//! #[derive(serde::Deserialize)]
//! struct OrderPlaced { id: u64 }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let world = InMemory::new(); // Iniesta::new() instead: SQS + Redis from INIESTA_*
//!     world.publish("OrderPlaced.orders", r#"{"id": 1}"#).await?;
//!     Iniesta::in_memory(&world)
//!         .on("OrderPlaced.orders", |Json(order): Json<OrderPlaced>| async move {
//!             println!("order {} placed", order.id);
//!         })
//!         .run_until_signal() // Ctrl-C or SIGTERM: a graceful shutdown
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! The tokio binding of iniesta-rs: consume the domain events other
//! services publish to one SNS topic, through this service's own SQS queue,
//! with a lock per event so each is handled once.
//!
//! - [`Iniesta`] builds a consumer: settings from the `INIESTA_*`
//!   environment (or code), handlers, and the backends chosen by cargo
//!   features — SQS with its start-up verification (`aws`), a Redlock over
//!   Redis (`redlock`) or a DynamoDB table (`dynamodb`), or everything in
//!   memory (`mock`, see [`InMemory`]).
//! - [`ConsumerHandle`] is the running consumer: [`shutdown`], [`wait`],
//!   [`run_until_signal`] (SIGINT/SIGTERM), live [`stats`].
//! - [`TokioRuntime`] is the [`iniesta_core::Runtime`] the core's driver runs
//!   on; handlers run on tasks of their own (workers the driver reuses),
//!   so they run in parallel (up to `INIESTA_MAX_IN_FLIGHT`) and a panic is
//!   a failed dispatch, not a crash.
//! - [`observe`] turns what the consumer does into logs ([`TracingObserver`],
//!   plus a span per message around each handler) and metrics
//!   ([`MetricsObserver`]).
//!
//! The app above runs until SIGINT or SIGTERM and then shuts down
//! gracefully (see [`ConsumerHandle`] for what that guarantees). To drive a
//! consumer from code instead (a test, a web server's lifecycle),
//! [`start`](Iniesta::start) it and stop it when done:
//!
//! ```
//! use iniesta_core::Delivery;
//! use iniesta_tokio::{InMemory, Iniesta};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let world = InMemory::new(); // or Iniesta::new() for SQS + Redis from the environment
//! let consumer = Iniesta::in_memory(&world)
//!     .on("OrderPlaced.orders", |d: Delivery| async move {
//!         println!("order {} placed", d.message.body);
//!     })
//!     .default_handler(|d: Delivery| async move {
//!         println!("{} is not for us; acknowledged", d.message.event);
//!     })
//!     .start()
//!     .await?;
//!
//! world.publish("OrderPlaced.orders", r#"{"id": 1}"#).await?;
//! world.publish("OrderShipped.orders", r#"{"id": 1}"#).await?;
//! consumer.watch_stats().wait_for(|s| s.deleted == 2).await?;
//! let stats = consumer.shutdown_and_wait().await?; // graceful
//! println!("{stats}");
//! # Ok(())
//! # }
//! ```
//!
//! # Logs
//!
//! With tracing on (the default), every handler runs inside an
//! `iniesta.message` span with the fields `event`, `message_id`, `key` and
//! `receive_count`, and every consumer event is logged at the level an
//! operator expects: `info` for start and stop, `warn` for what needs
//! attention (failures, aborts, missing handlers, malformed messages, lock
//! backend trouble), `debug` for the routine (see [`TracingObserver`]).
//! Message bodies only appear at `debug`. Install any `tracing` subscriber
//! to see them.
//!
//! # Metrics
//!
//! With metrics on (the default), these are recorded through the
//! [`metrics`] facade; install a recorder (a Prometheus exporter, …) to
//! collect them:
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `iniesta_messages_received_total` | counter | | messages received from the queue |
//! | `iniesta_receive_failures_total` | counter | `kind` = `throttled` \| `credentials` \| `access_denied` \| `queue_missing` \| `network` \| `other` | failed receive calls (throttling, expired credentials, …); each is followed by a pause, so a steady rate means nothing is being consumed |
//! | `iniesta_messages_dispatched_total` | counter | `event` | handlers started |
//! | `iniesta_messages_succeeded_total` | counter | `event` | handlers that returned `Ok` |
//! | `iniesta_messages_failed_total` | counter | `event`, `outcome` = `error` \| `panic` \| `aborted` | handlers that did not succeed (the message is left for redelivery) |
//! | `iniesta_handlers_in_flight` | gauge | `event` | handlers running now; an aborted one counts until it has stopped |
//! | `iniesta_handler_seconds` | histogram, seconds | `event`, `outcome` = `ok` \| `error` \| `panic` \| `aborted` | how long handlers ran; export with [`names::HANDLER_SECONDS_BUCKETS`](observe::names::HANDLER_SECONDS_BUCKETS) (5 ms to 15 min) |
//! | `iniesta_message_age_seconds` | histogram, seconds | `event` | how long a message had been in the queue when its handler started (now minus its `SentTimestamp`, never below 0); export with [`names::MESSAGE_AGE_SECONDS_BUCKETS`](observe::names::MESSAGE_AGE_SECONDS_BUCKETS) (100 ms to 14 days) |
//! | `iniesta_messages_deleted_total` | counter | | messages deleted from the queue |
//! | `iniesta_delete_failures_total` | counter | `will_retry` = `true` \| `false` | failed delete attempts; with `false` the message comes back and its completion record acknowledges it |
//! | `iniesta_messages_given_up_total` | counter | `deleted` = `true` \| `false` | messages given up on (permanent failures), deleted or left for the dead-letter queue |
//! | `iniesta_messages_skipped_busy_total` | counter | | messages skipped because another consumer held the lock |
//! | `iniesta_duplicates_acked_total` | counter | | duplicates of handled events, deleted without running the handler |
//! | `iniesta_lock_unavailable_total` | counter | | messages left because the lock backend was unavailable |
//! | `iniesta_messages_malformed_total` | counter | | messages that could not be parsed |
//! | `iniesta_no_handler_total` | counter | | messages with no handler and no default handler |
//! | `iniesta_unmatched_events_total` | counter | | messages whose event the consumer's filters refuse (never dispatched) |
//! | `iniesta_messages_returned_for_order_total` | counter | | FIFO messages sent back unhandled because one ahead of them in their group did not succeed |
//!
//! `event` is the handler route that takes the message (`UserCreated.users`,
//! a prefix as `Order.*`, or `default`), never the event name itself, so
//! foreign events cannot multiply the series; see [`MetricsObserver`], and
//! [`names`](observe::names) for the histogram buckets to give the exporter.
//!
//! # Features
//!
//! | feature | default | gives |
//! |---|---|---|
//! | `aws` | on | the SQS queue and the start-up verification |
//! | `redlock` | on | the Redlock lock backend over `INIESTA_CACHES` |
//! | `dynamodb` | on | the DynamoDB lock backend (`INIESTA_LOCK_BACKEND=dynamodb`) |
//! | `mock` | off | [`InMemory`] backends |
//! | `cli` | off | the `iniesta` binary (every backend, `clap`, `tracing-subscriber`, `http`) |
//! | `http` | off | `/metrics` (Prometheus), `/healthz` and `/readyz` on one port: [`Iniesta::listen`], see [`http`] |
//! | `serde` | off | `Serialize` and `Deserialize` for [`Stats`] (a health endpoint's JSON, a report file) |
//! | `tower` | off | tower layers around the handlers (`Iniesta::layer`), services as handlers, the message span as a layer (`observe::TraceLayer`) |
//!
//! [`shutdown`]: ConsumerHandle::shutdown
//! [`wait`]: ConsumerHandle::wait
//! [`run_until_signal`]: ConsumerHandle::run_until_signal
//! [`stats`]: ConsumerHandle::stats
#![warn(missing_docs)]

mod app;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "mock")]
mod memory;
pub mod observe;
mod runtime;
#[doc(hidden)]
pub mod wiring;

pub use app::{ConsumerHandle, Error, Iniesta};
#[cfg(feature = "mock")]
pub use memory::{InMemory, InMemoryOptions, InMemoryPublishError};
pub use observe::{
    ConsumerStopped, FanOut, MetricsObserver, StatsObserver, StatsWatch, TracingObserver,
};
pub use runtime::TokioRuntime;
pub use wiring::shutdown_signal;

/// The core types handlers and builders use, re-exported so a service needs
/// only this crate.
pub use iniesta_core::{
    self as core,
    handler::{DeliveryBuilder, HandlerResult, Json, Key, ReceiveCount, Retry, State},
    settings::Settings,
    Delivery, DeliveryMode, HandlerError, HandlerRegistry, Stats,
};

/// For implementing [`core::Queue`], [`core::Topic`] or
/// [`core::LockBackend`] with no dependency on `async-trait` of one's own.
pub use iniesta_core::async_trait;
/// What [`ConsumerHandle::shutdown_token`] hands out, re-exported so that a
/// service names the same `tokio-util` version.
pub use tokio_util::sync::CancellationToken;

/// The AWS SDK crates whose configuration and clients the builder takes
/// (`aws` and `dynamodb` features), re-exported so that a service builds
/// them with the same versions.
#[cfg(any(feature = "aws", feature = "dynamodb"))]
pub use aws_config;
#[cfg(feature = "dynamodb")]
pub use aws_sdk_dynamodb;
#[cfg(feature = "aws")]
pub use {aws_sdk_sns, aws_sdk_sqs};
