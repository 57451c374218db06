//! Errors: [`AwsError`] for this crate's own API, and the mapping of SDK
//! errors to the core's [`BackendError`], keeping the AWS error code so that
//! callers can tell `NotFound` from `AccessDenied` without parsing text.

use std::error::Error as StdError;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use iniesta_core::publish::PublishError;
use iniesta_core::BackendError;

/// The SQS error codes meaning "no such queue" (query and JSON protocol
/// spellings).
pub(crate) const SQS_NO_QUEUE: [&str; 2] = [
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

/// The SNS error code meaning "no such topic / subscription".
pub(crate) const SNS_NOT_FOUND: &str = "NotFound";

/// An error from this crate's API (provisioning, queue resolution,
/// publishing).
///
/// Messages never contain credentials: they carry the AWS error code and
/// message, the operation, and the resource name or ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// An AWS call failed.
    #[error("{operation} failed: {source}")]
    Call {
        /// The AWS operation (`sqs:GetQueueUrl`, `sns:Publish`, …).
        operation: &'static str,
        /// The backend's error, with its AWS code when it gave one.
        source: BackendError,
    },
    /// The queue does not exist.
    #[error(
        "SQS queue {name:?} does not exist: create it (`iniesta provision` in development) \
         or set INIESTA_SQS_QUEUE_NAME to an existing queue"
    )]
    QueueNotFound {
        /// The queue name asked for.
        name: String,
    },
    /// The topic does not exist.
    #[error(
        "SNS topic {arn} does not exist: create it (`iniesta provision` in development) \
         or correct INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN"
    )]
    TopicNotFound {
        /// The topic ARN asked for.
        arn: String,
    },
    /// AWS answered without a field this crate needs.
    #[error("{operation} answered without {field}; the endpoint may not be SQS/SNS compatible")]
    MissingField {
        /// The AWS operation.
        operation: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// The message could not be built (empty event name, over the size
    /// limit).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A message lacks the FIFO message group its topic needs, or carries
    /// an id SNS would refuse; found before any call.
    #[error(transparent)]
    Fifo(#[from] crate::fifo::FifoError),
    /// An argument this crate cannot use.
    #[error("{0}")]
    Invalid(String),
}

impl AwsError {
    /// The AWS error code, when the error came from AWS with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { source, .. } => source.code.as_deref(),
            _ => None,
        }
    }

    /// The error as a [`BackendError`], for the port traits.
    pub fn into_backend(self) -> BackendError {
        match self {
            AwsError::Call { source, .. } => source,
            AwsError::QueueNotFound { .. } => BackendError::new(SQS_NO_QUEUE[0], self.to_string()),
            AwsError::TopicNotFound { .. } => BackendError::new(SNS_NOT_FOUND, self.to_string()),
            other => BackendError::message(other.to_string()),
        }
    }

    pub(crate) fn call(operation: &'static str, source: BackendError) -> Self {
        AwsError::Call { operation, source }
    }
}

/// Maps an SDK error to a [`BackendError`]: the AWS code and message when
/// AWS answered, else the error chain (connection refused, timeout, …).
pub(crate) fn backend_error<E>(err: &E) -> BackendError
where
    E: ProvideErrorMetadata + StdError,
{
    let code = err.code().map(str::to_owned);
    let message = match err.message() {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => error_chain(err),
    };
    BackendError { code, message }
}

/// Whether an error's code is one of `codes`.
pub(crate) fn has_code(err: &BackendError, codes: &[&str]) -> bool {
    err.code.as_deref().is_some_and(|c| codes.contains(&c))
}

/// An error and its sources, `outer: inner: innermost`, skipping a source
/// whose text the previous one already contains.
fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}
