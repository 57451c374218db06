#![cfg_attr(docsrs, feature(doc_cfg))]
//! A [`LockBackend`](iniesta_core::ports::LockBackend) on the Redlock
//! algorithm over N independent Redis servers, with completion records.
//!
//! The consumer takes a lock per event so that each event is processed by
//! one consumer at a time, and turns the lock into a completion record when
//! the work succeeded, so a redelivered copy is acknowledged without running
//! the handler again. [`Redlock`] keeps both on a majority of nodes:
//!
//! - **acquire**: the lock is ours when a majority (`N/2 + 1`) granted it and
//!   [`validity`] is positive; a completion record on any node answers
//!   `Done` (any two majorities intersect, so a record written on a majority
//!   is always seen); anything less is undone on every node.
//! - **extend**, **release**: Lua scripts that act only when the node holds
//!   the caller's token.
//! - **complete**: writes the completion record unless another owner holds
//!   a live lock on the key. Our own lock becomes the record; a free key
//!   (our lock expired while the work ran) takes it too, because the work
//!   did finish and a later duplicate must not run it again; a record
//!   already there is left in place (so a retry after a lost reply answers
//!   `Ok`; the script also renews a record of ours, `SET … IFEQ` does not).
//!
//! **What it costs Redis**, as `INFO commandstats` counts it (a script call
//! is its `EVALSHA` plus every command it runs). The keys of one batch go
//! to each node in one pipeline. Acquire is one `SET … NX PX … GET` per key
//! on every server. Complete is one `SET … IFEQ token PX … GET` per key on a
//! server that compares and sets (Redis 8.4, Valkey 8.1; asked on each
//! connection's first complete): **2 commands per node per message, 6 over
//! three nodes**,
//! whatever the batch. On an older server the complete is a script call per
//! batch (`EVALSHA`, one `MGET`, a `SET` per key): 2.2 per node in batches
//! of 10 (6.6 over three), 4 for a message alone. Extend and release are
//! one script call per key. Every write checks the owner token on the node,
//! atomically, whichever form it takes.
//!
//! **Standalone servers, not a Redis Cluster.** Each URL is one independent
//! Redis server (a primary, with or without replicas of its own). A batch
//! names keys from any hash slot in one script call, which a Redis Cluster
//! refuses (`CROSSSLOT`); keys are not hash-tagged and batches are not
//! grouped by slot. Redlock wants nodes that fail independently, which the
//! shards of one cluster, sharing its failover, are not.
//!
//! The crate is split the way its algorithm is: [`quorum`] holds the
//! decisions (tally, majority, validity) as pure functions of the nodes'
//! answers and the elapsed time; [`Redlock`] is the IO around them; and
//! [`memory::MemoryNode`] applies the nodes' rules to a map, so model
//! tests run the real decisions on a virtual clock with any node faults.
//!
//! ```no_run
//! use std::time::Duration;
//! use iniesta_core::ports::{AcquireOutcome, LockBackend, LockKey};
//! use iniesta_redlock::{Redlock, RedlockConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let lock = Redlock::new(RedlockConfig::with_urls([
//!     "redis://10.0.0.1:6379/",
//!     "redis://10.0.0.2:6379/",
//!     "redis://10.0.0.3:6379/",
//! ]))?;
//! let key = LockKey::from("sqs:event:1f2e");
//! match lock.acquire(vec![key.clone()], Duration::from_secs(10)).await.remove(0) {
//!     AcquireOutcome::Acquired { token, .. } => {
//!         // ... do the work, then keep a record for a day:
//!         let keep_for = Duration::from_secs(86_400);
//!         lock.complete(vec![(key, token)], keep_for).await.remove(0)?;
//!     }
//!     AcquireOutcome::Done => { /* already processed: acknowledge */ }
//!     _ => { /* busy elsewhere or backend trouble: leave for redelivery */ }
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod commands;
mod config;
pub mod memory;
mod node;
pub mod quorum;
mod redlock;
mod replies;
mod scripts;

pub use config::{RedlockConfig, RedlockError};
pub use iniesta_core::settings::redact_url;
pub use quorum::{drift, validity};
pub use redlock::{Redlock, MAX_KEYS_PER_CALL};
pub use scripts::DONE_PREFIX;
