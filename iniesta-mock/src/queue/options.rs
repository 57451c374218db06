//! How a [`MockQueue`](crate::MockQueue) behaves, and the SQS limits and units it enforces.
//!
//! The mock takes the units of the real service: SQS takes visibility
//! timeouts in whole seconds, so every visibility the mock is given goes
//! through [`iniesta_core::sqs::visibility`], the same rounding the SQS
//! adapter applies before it sends one. A test that passes against the mock
//! then sees the visibility a real queue would apply, not a finer one.

use std::time::Duration;

use iniesta_core::{sqs, BackendError, ReceiveRequest};

use super::Redrive;
use crate::codes;

/// The visibility timeout of a queue unless [`QueueOptions`] says otherwise
/// (SQS's default).
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest visibility timeout SQS accepts: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = sqs::MAX_VISIBILITY;
/// The most messages one receive returns, and the most entries of one batch
/// call.
pub const MAX_BATCH_ENTRIES: usize = sqs::MAX_BATCH;
/// The longest long-poll wait SQS accepts: 20 seconds.
pub const MAX_WAIT_TIME: Duration = sqs::MAX_WAIT_TIME;
/// The largest `maxReceiveCount` of an SQS redrive policy.
const MAX_RECEIVE_COUNT: u32 = 1000;

/// How a [`MockQueue`](crate::MockQueue) behaves. Start from the defaults
/// and change what you need with the `with_*` methods (or set the fields);
/// the struct is `#[non_exhaustive]` so that new options can come without
/// breaking anyone:
///
/// ```
/// use std::time::Duration;
/// use iniesta_mock::QueueOptions;
///
/// let options = QueueOptions::default().with_visibility_timeout(Duration::from_secs(5));
/// assert_eq!(options.visibility_timeout, Duration::from_secs(5));
/// assert!(options.retain_deleted);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueOptions {
    /// How long a received message stays hidden when the receive names no
    /// visibility timeout (default 30 s, as SQS). Rounded up to whole
    /// seconds when the queue is made, as SQS applies it; MUST be at most
    /// 12 hours.
    pub visibility_timeout: Duration,
    /// Whether deleted messages stay listed by [`MockQueue::snapshot`](crate::MockQueue::snapshot) (with
    /// `deleted: true`) so a test can inspect what was processed. Default
    /// `true`. Long benchmarks should turn it off: the queue then drops a
    /// deleted message's body and attributes and keeps only its receive
    /// count (so that its receipt handles are still recognised).
    pub retain_deleted: bool,
    /// SQS's redrive policy: the dead-letter queue and its
    /// `maxReceiveCount`. `None` (the default) keeps a message that is never
    /// deleted in the queue for ever.
    pub redrive: Option<Redrive>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            retain_deleted: true,
            redrive: None,
        }
    }
}

impl QueueOptions {
    /// These options with another [`visibility_timeout`](Self::visibility_timeout).
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// These options with deleted messages kept in snapshots or not
    /// ([`retain_deleted`](Self::retain_deleted)).
    pub fn with_retain_deleted(mut self, retain: bool) -> Self {
        self.retain_deleted = retain;
        self
    }

    /// These options with a dead-letter queue ([`redrive`](Self::redrive)).
    pub fn with_redrive(mut self, redrive: Redrive) -> Self {
        self.redrive = Some(redrive);
        self
    }

    /// The options as the queue applies them, or the error SQS gives for
    /// them: the visibility timeout rounded up to whole seconds and at most
    /// 12 hours, `max_receive_count` from 1 to 1000.
    pub(super) fn applied(mut self) -> Result<QueueOptions, BackendError> {
        self.visibility_timeout = applied_visibility(self.visibility_timeout)?;
        if let Some(r) = &self.redrive {
            if !(1..=MAX_RECEIVE_COUNT).contains(&r.max_receive_count) {
                return Err(BackendError::new(
                    codes::INVALID_PARAMETER_VALUE,
                    format!(
                        "maxReceiveCount must be from 1 to {MAX_RECEIVE_COUNT}, got {}",
                        r.max_receive_count
                    ),
                ));
            }
        }
        Ok(self)
    }
}

/// The visibility timeout SQS applies when asked for `timeout`, or the
/// error it gives: whole seconds rounded up
/// ([`iniesta_core::sqs::visibility`]); over 12 hours is
/// [`InvalidParameterValue`](codes::INVALID_PARAMETER_VALUE).
///
/// Every visibility the queue takes MUST pass through here, so that the
/// mock never keeps a precision SQS does not have.
pub(super) fn applied_visibility(timeout: Duration) -> Result<Duration, BackendError> {
    if timeout > MAX_VISIBILITY_TIMEOUT {
        return Err(BackendError::new(
            codes::INVALID_PARAMETER_VALUE,
            format!(
                "visibility timeout {timeout:?} is over the limit of 12 hours \
                 (43200 s); clamp it"
            ),
        ));
    }
    Ok(sqs::visibility(timeout))
}

/// A receive's parameters checked against SQS's limits; its visibility
/// timeout as SQS applies it.
pub(super) fn check_request(request: &ReceiveRequest) -> Result<Option<Duration>, BackendError> {
    let bad = |what: String| Err(BackendError::new(codes::INVALID_PARAMETER_VALUE, what));
    if request.max_messages == 0 || request.max_messages as usize > MAX_BATCH_ENTRIES {
        return bad(format!(
            "max_messages must be between 1 and {MAX_BATCH_ENTRIES}, got {}",
            request.max_messages
        ));
    }
    if request.wait_time > MAX_WAIT_TIME {
        return bad(format!(
            "wait_time must be at most 20 s, got {:?}",
            request.wait_time
        ));
    }
    request
        .visibility_timeout
        .map(applied_visibility)
        .transpose()
}
