//! Message ids, receipt handles and the errors that name them.
//!
//! Ids are `msg-{n}` with `n` from the clock; a receipt handle is
//! `{message id}/{receive count}`. Both come from counters, so a run is
//! repeatable, and a handle says which delivery of which message it names.

use iniesta_core::{BackendError, ReceiptHandle};

use super::options::MAX_BATCH_ENTRIES;
use crate::codes;

pub(super) fn message_id(n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut id = String::with_capacity(4 + digits.len());
    id.push_str("msg-");
    id.push_str(digits);
    id
}

/// The number of a message id this crate wrote (`msg-{n}`).
pub(super) fn message_number(id: &str) -> Option<u64> {
    id.strip_prefix("msg-").and_then(parse_number)
}

/// A decimal number as this crate writes them: digits only, no leading zero,
/// at most `u64::MAX`. Read in one pass (every delete reads two).
pub(super) fn parse_number(s: &str) -> Option<u64> {
    let digits = s.as_bytes();
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `msg-{n}/{k}` → (n, k).
pub(super) fn parse_handle(handle: &ReceiptHandle) -> Option<(u64, u32)> {
    let (id, k) = handle.as_str().rsplit_once('/')?;
    let n = message_number(id)?;
    let k = u32::try_from(parse_number(k)?).ok()?;
    Some((n, k))
}

pub(super) fn injected(action: &str) -> BackendError {
    BackendError::new(
        codes::INTERNAL_ERROR,
        format!("{action} failed: injected fault"),
    )
}

pub(super) fn invalid_handle(handle: &ReceiptHandle) -> BackendError {
    BackendError::new(
        codes::RECEIPT_HANDLE_IS_INVALID,
        format!("the receipt handle {handle:?} was not issued by this queue"),
    )
}

pub(super) fn not_in_flight(handle: &ReceiptHandle, why: &str) -> BackendError {
    BackendError::new(
        codes::MESSAGE_NOT_INFLIGHT,
        format!("the message of receipt handle {handle:?} is not in flight: {why}"),
    )
}

pub(super) fn too_many_entries(len: usize) -> BackendError {
    BackendError::new(
        codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST,
        format!("a batch takes at most {MAX_BATCH_ENTRIES} entries, got {len}; split it"),
    )
}

#[cfg(test)]
#[path = "handles_tests.rs"]
mod tests;
