//! How long an acquired lock is safely ours.
//!
//! Redlock's rule: a lock taken with `ttl` on a majority, after `elapsed`
//! on our clock, is ours for `ttl − elapsed − drift`, where `drift = ttl ×
//! drift_factor + drift_min` covers the nodes' clocks running at slightly
//! different rates. The arithmetic is checked: absurd inputs (a TTL near
//! `Duration::MAX`, an acquisition slower than the TTL) give `None`, never a
//! panic or a wrapped-around huge validity.

use std::time::Duration;

/// The clock drift allowed for a lock of `ttl`: `ttl × drift_factor +
/// drift_min`, or `None` when it cannot be represented or `drift_factor` is
/// not a finite, non-negative number.
pub fn drift(ttl: Duration, drift_factor: f64, drift_min: Duration) -> Option<Duration> {
    if !(drift_factor.is_finite() && drift_factor >= 0.0) {
        return None;
    }
    let proportional = Duration::try_from_secs_f64(ttl.as_secs_f64() * drift_factor).ok()?;
    proportional.checked_add(drift_min)
}

/// How long a lock taken with `ttl` is safely held when acquiring it took
/// `elapsed`: `ttl − elapsed − drift(ttl)`. `None` when that is zero or
/// less (the lock must be treated as not acquired) or not representable.
///
/// ```
/// use std::time::Duration;
/// use iniesta_redlock::quorum::validity;
/// let ms = Duration::from_millis;
/// // 10 s TTL, 30 ms to acquire: 10 000 − 30 − (100 + 2) ms.
/// assert_eq!(validity(ms(10_000), ms(30), 0.01, ms(2)), Some(ms(9_868)));
/// // Slower than the TTL allows: not held.
/// assert_eq!(validity(ms(100), ms(99), 0.01, ms(2)), None);
/// ```
pub fn validity(
    ttl: Duration,
    elapsed: Duration,
    drift_factor: f64,
    drift_min: Duration,
) -> Option<Duration> {
    let drift = drift(ttl, drift_factor, drift_min)?;
    let left = ttl.checked_sub(elapsed)?.checked_sub(drift)?;
    (!left.is_zero()).then_some(left)
}
