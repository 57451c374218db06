//! Time as the lock items hold it: epoch milliseconds for correctness,
//! epoch seconds for DynamoDB's own clean-up, and how long an acquired lock
//! is safely ours.
//!
//! DynamoDB has no server-side clock a condition could read, so every
//! condition compares an item's `expires_at` with the *caller's* time, sent
//! as a value. Clients' clocks must therefore agree within the drift margin
//! subtracted from every validity (keep them synchronised with NTP), as
//! Redlock assumes of its servers' clocks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest lifetime given to an item, in ms (about 285 000 years):
/// longer durations are clamped, so `now + lifetime` never overflows and
/// stays exact in any number representation.
pub const MAX_LIFETIME_MS: u64 = 1 << 53;

/// How long after an item's `expires_at` DynamoDB's TTL may delete it.
/// The TTL deletes items hours late, and only ever late, so it never
/// decides anything: every condition compares `expires_at` itself. The
/// grace keeps a client whose clock runs behind DynamoDB's from having a
/// live item cleaned up under it.
pub const CLEANUP_GRACE: Duration = Duration::from_secs(3600);

/// The default drift factor: 1 % of the TTL, as Redlock's.
pub const DRIFT_FACTOR: f64 = 0.01;

/// The default fixed drift: 2 ms, as Redlock's.
pub const DRIFT_MIN: Duration = Duration::from_millis(2);

/// `t` in whole milliseconds since the Unix epoch (0 before it).
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The lifetime an item gets when asked to live `d`: whole milliseconds,
/// rounded down so a lock never lives longer than asked, at least 1 ms, at
/// most [`MAX_LIFETIME_MS`].
pub fn lifetime_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LIFETIME_MS)
}

/// The `ttl` attribute (epoch **seconds**) of an item whose `expires_at` is
/// `expires_at_ms`: rounded up, plus [`CLEANUP_GRACE`].
pub fn cleanup_at(expires_at_ms: u64) -> u64 {
    expires_at_ms
        .div_ceil(1000)
        .saturating_add(CLEANUP_GRACE.as_secs())
}

/// The clock drift allowed for a lock of `ttl`: `ttl × factor + min`, or
/// `None` when it cannot be represented or `factor` is not a finite,
/// non-negative number.
pub fn drift(ttl: Duration, factor: f64, min: Duration) -> Option<Duration> {
    if !(factor.is_finite() && factor >= 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(ttl.as_secs_f64() * factor)
        .ok()?
        .checked_add(min)
}

/// How long a lock taken for `ttl` is safely ours when the request took
/// `elapsed` from being sent to its answer: `ttl − elapsed − drift(ttl)`.
/// `None` when that is zero or less (the lock must not be used) or cannot
/// be represented.
///
/// ```
/// use std::time::Duration;
/// use iniesta_dynamodb::timing::{validity, DRIFT_FACTOR, DRIFT_MIN};
/// let ms = Duration::from_millis;
/// // 10 s TTL, 12 ms round trip: 10 000 − 12 − (100 + 2) ms.
/// assert_eq!(validity(ms(10_000), ms(12), DRIFT_FACTOR, DRIFT_MIN), Some(ms(9_886)));
/// assert_eq!(validity(ms(100), ms(99), DRIFT_FACTOR, DRIFT_MIN), None);
/// ```
pub fn validity(ttl: Duration, elapsed: Duration, factor: f64, min: Duration) -> Option<Duration> {
    let drift = drift(ttl, factor, min)?;
    let left = ttl.checked_sub(elapsed)?.checked_sub(drift)?;
    (!left.is_zero()).then_some(left)
}

#[cfg(test)]
#[path = "timing_tests.rs"]
mod tests;
