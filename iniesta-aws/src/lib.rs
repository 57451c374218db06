#![cfg_attr(docsrs, feature(doc_cfg))]
//! # iniesta-aws
//!
//! The AWS adapters of iniesta-rs: the core's [`Queue`](iniesta_core::Queue)
//! port on SQS ([`SqsQueue`]) and [`Topic`](iniesta_core::Topic) port on SNS
//! ([`SnsTopic`]), the start-up [verification](verify()) a consumer runs
//! before polling, and [provisioning](provision()) of the resources for
//! development and tests.
//!
//! - [`AwsClients`] builds the SQS and SNS clients once, from the standard
//!   AWS configuration chain or from static credentials for an emulator.
//! - [`SqsQueue`] receives with long polling and deletes / changes
//!   visibility in batches; every SDK error becomes a
//!   [`BackendError`](iniesta_core::BackendError) that keeps the AWS error
//!   code.
//! - [`SnsTopic`] publishes, in batches too, and in the original Iniesta wire
//!   format with [`SnsTopic::publish_event`].
//! - [`verify()`] runs every check and returns one
//!   [`VerificationReport`] listing what is wrong and how to fix it.
//! - [`provision()`] creates or repairs the topic, queue, queue policy and
//!   subscription, idempotently.
//!
//! ```no_run
//! use std::time::Duration;
//! use iniesta_aws::{verify, AwsClients, AwsEndpoints, SqsQueue, VerifyRequest};
//! use iniesta_core::{FilterPolicy, Queue, ReceiveRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Endpoint overrides come from INIESTA_SQS_ENDPOINT_URL / INIESTA_SNS_ENDPOINT_URL.
//! let clients = AwsClients::from_env(AwsEndpoints::default()).await;
//! let filters = FilterPolicy::from_filters("iniesta_pass", ["UserCreated.users"])?;
//! let topic = "arn:aws:sns:us-east-1:123456789012:global";
//! let queue_name = iniesta_aws::queue_name(None, "iniesta-{env}-{service_name}", "prod", "orders");
//!
//! // Check everything before polling; the report lists every problem and its fix.
//! let report = verify(&clients, &VerifyRequest::event_polling(topic, &queue_name, filters)).await;
//! if !report.is_ok() {
//!     eprintln!("{report}");
//!     return Ok(());
//! }
//! let queue = SqsQueue::new(clients.sqs.clone(), report.queue_url().unwrap_or_default());
//! let messages = queue
//!     .receive(ReceiveRequest { max_messages: 10, wait_time: Duration::from_secs(20), visibility_timeout: None })
//!     .await?;
//! # let _ = messages;
//! # Ok(())
//! # }
//! ```
//!
//! Credentials never appear in logs or errors. Calls are logged with
//! `tracing` at debug level.
#![warn(missing_docs)]

mod batch;
pub mod clients;
pub mod error;
pub mod fifo;
pub mod policy;
pub mod provision;
pub mod publish_batch;
pub mod queue;
pub mod redrive;
pub mod topic;
pub mod verify;

pub use clients::{AwsClients, AwsEndpoints};
pub use error::AwsError;
pub use fifo::{is_fifo_name, FifoError};
pub use policy::{evaluate_queue_policy, queue_policy_json, PolicyVerdict};
pub use provision::{provision, ProvisionRequest, Provisioned, TopicRef};
pub use publish_batch::{BulkEntry, BulkFailure, BulkPublisher, BulkResult, BulkRetry};
pub use queue::{queue_name, resolve_queue_url, SqsQueue, DEFAULT_QUEUE_NAME_TEMPLATE};
pub use redrive::{redrive, RedriveError, RedriveOptions, RedriveReport};
pub use topic::{SnsTopic, DEFAULT_EVENT_KEY};
pub use verify::{
    verify, Check, CheckResult, CheckStatus, VerificationReport, VerifyRequest, VerifyScope,
};

/// The AWS SDK crates whose clients this crate takes and hands out
/// ([`AwsClients`], [`SqsQueue::new`], [`SnsTopic::new`]), re-exported so
/// that a service builds them with the same versions.
pub use {aws_sdk_sns, aws_sdk_sqs};
