//! SQS's limits and units, in one place.
//!
//! Every part of iniesta that talks about SQS visibility — the settings, the
//! consumer state machine, the SQS adapter and the in-memory queue — takes
//! its limits and its rounding from here, so that they cannot disagree about
//! what SQS will do with a duration.
//!
//! SQS takes a visibility timeout in **whole seconds**, from 0 to 12 hours.
//! A duration between two whole seconds MUST be rounded **up** before it is
//! sent: rounding down would shorten every visibility it touches, and turns
//! a sub-second heartbeat extension (`INIESTA_LOCK_TIMEOUT=0.8` gives 0.8 s)
//! into 0, which makes a message whose handler is still running visible at
//! once — it is received again and, after enough receives, moved to the
//! dead-letter queue while its first handler still runs. Rounding up only
//! ever keeps a message hidden a little longer than asked, which is safe: a
//! failed message is redelivered at most a second later.
//!
//! ```
//! use std::time::Duration;
//! use iniesta_core::sqs;
//!
//! assert_eq!(sqs::visibility_seconds(Duration::from_millis(800)), 1);
//! assert_eq!(sqs::visibility_seconds(Duration::from_millis(1001)), 2);
//! assert_eq!(sqs::visibility(Duration::from_millis(2500)), Duration::from_secs(3));
//! assert_eq!(sqs::visibility(Duration::from_secs(13 * 3600)), sqs::MAX_VISIBILITY);
//! ```

use std::time::Duration;

/// The longest visibility timeout SQS accepts: 12 hours (43 200 s). A
/// longer one is rejected with `InvalidParameterValue`.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(MAX_VISIBILITY_SECONDS as u64);

/// [`MAX_VISIBILITY`] in the unit SQS takes.
pub const MAX_VISIBILITY_SECONDS: u32 = 12 * 60 * 60;

/// The most messages one receive returns, and the most entries one batch
/// call (delete, change visibility, publish) takes.
pub const MAX_BATCH: usize = 10;

/// The longest long-poll wait of one receive: 20 seconds.
pub const MAX_WAIT_TIME: Duration = Duration::from_secs(20);

/// `d` as the whole seconds SQS takes for a visibility timeout: rounded up
/// (0.8 s → 1, 1 s → 1, 1.001 s → 2, 0 → 0) and clamped to 12 hours.
///
/// Callers that send a visibility timeout to SQS MUST convert it with this
/// function (or [`visibility`]); they MUST NOT truncate, for the reason the
/// [module docs](self) give.
pub fn visibility_seconds(d: Duration) -> u32 {
    let whole = d.as_secs();
    let up = if d.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    };
    // Clamped first, so the conversion cannot fail.
    u32::try_from(up.min(u64::from(MAX_VISIBILITY_SECONDS))).unwrap_or(MAX_VISIBILITY_SECONDS)
}

/// The visibility timeout SQS applies when asked for `d`: `d` rounded up to
/// whole seconds and clamped to 12 hours (see [`visibility_seconds`]).
///
/// Whatever compares a visibility with another duration (a heartbeat
/// interval, a lock timeout) MUST compare this value, not `d`, because this
/// is how long the message really stays hidden.
pub fn visibility(d: Duration) -> Duration {
    Duration::from_secs(u64::from(visibility_seconds(d)))
}

#[cfg(test)]
#[path = "sqs_tests.rs"]
mod tests;
