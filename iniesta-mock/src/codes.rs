//! The error codes the mocks report in [`BackendError::code`](iniesta_core::BackendError),
//! spelled as SQS and SNS spell them, so code that branches on a real
//! backend's codes branches the same way on the mocks.

/// A receipt handle that this queue never issued.
pub const RECEIPT_HANDLE_IS_INVALID: &str = "ReceiptHandleIsInvalid";
/// A visibility change for a delivery that is not in flight: the message is
/// visible, deleted, or was received again since this handle was issued.
pub const MESSAGE_NOT_INFLIGHT: &str = "MessageNotInflight";
/// A parameter out of range (a visibility timeout over 12 hours, more than
/// 10 messages per receive, a wait time over 20 seconds, an oversized
/// message).
pub const INVALID_PARAMETER_VALUE: &str = "InvalidParameterValue";
/// A batch call with more than 10 entries.
pub const TOO_MANY_ENTRIES_IN_BATCH_REQUEST: &str = "TooManyEntriesInBatchRequest";
/// An injected failure (see the fault methods of each mock).
pub const INTERNAL_ERROR: &str = "InternalError";
/// An SNS publish with a bad parameter (an empty or oversized message).
pub const INVALID_PARAMETER: &str = "InvalidParameter";
/// A required parameter left out: SQS's answer to a FIFO queue's
/// `SendMessage` without a `MessageGroupId`.
pub const MISSING_PARAMETER: &str = "MissingParameter";
/// A queue attribute the queue's type does not have: SQS's answer to
/// `ContentBasedDeduplication` on a standard queue.
pub const INVALID_ATTRIBUTE_NAME: &str = "InvalidAttributeName";
