//! Time as an input.
//!
//! The core never reads a clock. Drivers hand it a [`Time`]: a monotonic
//! instant measured from an origin the driver chooses (its start, say). Only
//! differences between two `Time`s mean anything.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A monotonic instant, as a duration since an origin chosen by the driver.
///
/// Arithmetic saturates instead of panicking or wrapping: a driver that
/// hands the machine a time far in the future (a clock jump) must not make it
/// crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(Duration);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(Duration::ZERO);
    /// The latest representable instant; used as "never".
    pub const MAX: Time = Time(Duration::MAX);

    /// The instant `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Time(since_origin)
    }

    /// The instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Time(Duration::from_millis(ms))
    }

    /// How long after the origin this instant is.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(rhs))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, rhs: Duration) -> Time {
        Time(self.0.saturating_sub(rhs))
    }
}

#[cfg(test)]
#[path = "time_tests.rs"]
mod tests;
