#![cfg_attr(docsrs, feature(doc_cfg))]
//! A [`LockBackend`](iniesta_core::ports::LockBackend) on DynamoDB
//! conditional writes, with completion records.
//!
//! The consumer takes a lock per event so that one consumer at a time
//! handles it, and turns the lock into a completion record when the work
//! succeeded, so a redelivered copy is acknowledged without running the
//! handler again. [`DynamoLock`] keeps both as items of one table
//! (partition key `id`, String; default name [`DEFAULT_TABLE`]), one item
//! per key, and changes them only with single-item conditional writes:
//!
//! - **acquire**: `PutItem` if the key is absent or expired → `Acquired`;
//!   refused → the refusing item (returned with the refusal) says `Done`
//!   (a record) or `Busy` (a live lock);
//! - **extend**, **release**: `UpdateItem` / `DeleteItem` only on our own
//!   live lock, else `NotHeld`;
//! - **complete**: `PutItem` of our record unless another owner's live
//!   lock is there. Our lock becomes the record; a free key (our lock
//!   expired while the work ran) takes it too, because the work did
//!   finish; a record already there answers `Ok` (renewed when it is ours,
//!   so a retry after a lost reply is `Ok`).
//!
//! Expiry is the `expires_at` attribute (epoch ms), compared with the
//! caller's clock in **every** condition. DynamoDB's TTL (on the `ttl`
//! attribute, epoch seconds) only cleans up, hours late; it never decides.
//! Throttling, timeouts and service errors answer `Unavailable`, never a
//! wrong `Acquired`.
//!
//! DynamoDB gives no fencing tokens either: a handler whose lock expired
//! may still be running when another takes the key. The handler's
//! lock-lost signal and conditional writes of its own are the defence.
//!
//! ```no_run
//! use std::time::Duration;
//! use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
//! use iniesta_core::ports::{AcquireOutcome, LockBackend, LockKey};
//! use iniesta_dynamodb::{create_table, DynamoLock, DEFAULT_TABLE};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // A local emulator (moto_server, DynamoDB Local); drop `endpoint_url`
//! // and use the default credential chain for AWS.
//! let config = aws_sdk_dynamodb::Config::builder()
//!     .behavior_version(BehaviorVersion::latest())
//!     .region(Region::new("us-east-1"))
//!     .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
//!     .endpoint_url("http://127.0.0.1:5000")
//!     .build();
//! let client = aws_sdk_dynamodb::Client::from_conf(config);
//! create_table(&client, DEFAULT_TABLE).await?; // development only
//!
//! let lock = DynamoLock::new(client, DEFAULT_TABLE);
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

pub mod item;
mod lock;
mod reads;
mod table;
pub mod timing;
mod writes;

pub use lock::{DynamoLock, DEFAULT_TIMEOUT, MAX_PARALLEL};
pub use reads::MAX_BATCH_GET;
pub use table::{
    check_table, create_table, describe_table, key_schema_problem, TableError, TableReport,
    CREATE_WAIT, DEFAULT_TABLE,
};
pub use writes::{ACQUIRE_IF, COMPLETE_IF, HELD_IF};

/// The AWS SDK crate whose client [`DynamoLock::new`] and the table
/// functions take, re-exported so that a service builds it with the same
/// version.
pub use aws_sdk_dynamodb;
