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
    /// SQS's `FifoQueue`: a FIFO queue delivers the messages of one message
    /// group in order, one group member in flight at a time, and drops
    /// duplicates within five minutes (see [`MockQueue`](crate::MockQueue)).
    /// Its name MUST end in `.fifo`, and a standard queue's MUST NOT, as
    /// SQS requires. Default `false`; it cannot change once the queue is
    /// made (nor can it in SQS).
    pub fifo: bool,
    /// SQS's `ContentBasedDeduplication` (FIFO queues only): a message sent
    /// without a deduplication id gets the SHA-256 of its body (hex) as
    /// one. Default `false`: then every send to a FIFO queue MUST name a
    /// deduplication id.
    pub content_based_deduplication: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            retain_deleted: true,
            redrive: None,
            fifo: false,
            content_based_deduplication: false,
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

    /// These options for a FIFO queue or a standard one
    /// ([`fifo`](Self::fifo)).
    pub fn with_fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// These options with content-based deduplication on or off
    /// ([`content_based_deduplication`](Self::content_based_deduplication)).
    pub fn with_content_based_deduplication(mut self, on: bool) -> Self {
        self.content_based_deduplication = on;
        self
    }

    /// The options as the queue named `name` applies them, or the error SQS
    /// gives for them: the visibility timeout rounded up to whole seconds
    /// and at most 12 hours, `max_receive_count` from 1 to 1000, a `.fifo`
    /// name exactly for a FIFO queue, content-based deduplication only on a
    /// FIFO queue, and a dead-letter queue of the source's type.
    pub(super) fn applied(mut self, name: &str) -> Result<QueueOptions, BackendError> {
        self.visibility_timeout = applied_visibility(self.visibility_timeout)?;
        check_type(&self, name)?;
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

/// The rules of SQS's `CreateQueue` on a queue's type: a FIFO queue's name
/// ends in `.fifo` and a standard queue's does not (SQS answers
/// `InvalidParameterValue` either way), `ContentBasedDeduplication` exists
/// only on FIFO queues (`InvalidAttributeName` on a standard one), and a
/// redrive policy's dead-letter queue is of the source queue's type
/// (`InvalidParameterValue` on its `RedrivePolicy`).
fn check_type(options: &QueueOptions, name: &str) -> Result<(), BackendError> {
    let bad = |what: String| Err(BackendError::new(codes::INVALID_PARAMETER_VALUE, what));
    let fifo_name = name.ends_with(".fifo");
    if options.fifo && !fifo_name {
        return bad(format!(
            "the name of a FIFO queue must end with the .fifo suffix; got {name:?}"
        ));
    }
    if !options.fifo && fifo_name {
        return bad(format!(
            "a standard queue's name can only include alphanumeric characters, hyphens or \
             underscores; {name:?} ends in .fifo: make it a FIFO queue (QueueOptions::with_fifo)"
        ));
    }
    if options.content_based_deduplication && !options.fifo {
        return Err(BackendError::new(
            codes::INVALID_ATTRIBUTE_NAME,
            format!(
                "unknown attribute ContentBasedDeduplication: queue {name:?} is a standard \
                 queue, and only FIFO queues deduplicate"
            ),
        ));
    }
    if let Some(r) = &options.redrive {
        let dlq = &r.dead_letter_queue;
        if dlq.options().fifo != options.fifo {
            let kind = |fifo: bool| if fifo { "a FIFO" } else { "a standard" };
            return bad(format!(
                "invalid RedrivePolicy: the dead-letter queue of {} queue must be {} queue too; \
                 {} is {} queue",
                kind(options.fifo),
                kind(options.fifo),
                dlq.name(),
                kind(dlq.options().fifo),
            ));
        }
    }
    Ok(())
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
