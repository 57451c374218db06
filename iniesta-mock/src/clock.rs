//! The clock every mock reads: virtual (moved by the test) or real.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener};
use iniesta_core::Time;

/// The time source shared by the mocks of one test, and the counter their
/// ids come from.
///
/// A clock is the "world" of a test: every [`MockQueue`](crate::MockQueue),
/// [`MockTopic`](crate::MockTopic) and [`MockLock`](crate::MockLock) built on
/// it reads its time from it, and queues and topics number their message ids
/// from it, so ids are unique across all queues and topics of the world (as
/// SQS and SNS ids are) and the same run gives the same ids.
///
/// Two modes:
/// - **virtual** ([`Clock::virtual_clock`], alias [`Clock::manual`]): starts
///   at [`Time::ZERO`] and moves only when the test calls
///   [`advance`](Clock::advance) or [`set`](Clock::set). Nothing reads the
///   OS clock, so a test's outcome does not depend on how fast it runs. Long
///   polls wait in *virtual* time: they return when a message arrives or when
///   the test moves the clock past their wait time.
/// - **real** ([`Clock::real`]): `now()` is the time elapsed since the clock
///   was created; for examples and benchmarks that run against wall time.
///
/// `Clock` is a cheap handle: clones share one clock.
///
/// ```
/// use std::time::Duration;
/// use iniesta_core::Time;
/// use iniesta_mock::Clock;
///
/// let clock = Clock::virtual_clock();
/// assert_eq!(clock.now(), Time::ZERO);
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), Time::from_millis(30_000));
/// clock.set(Time::from_millis(10)); // earlier: ignored
/// assert_eq!(clock.now(), Time::from_millis(30_000));
/// ```
#[derive(Clone)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

struct ClockInner {
    mode: Mode,
    /// Notified whenever a virtual clock moves, so that long polls re-check.
    moved: Event,
    /// Message ids (`msg-{n}`) of every queue on this clock.
    next_message: AtomicU64,
    /// SNS message ids (`sns-{n}`) of every topic on this clock.
    next_notification: AtomicU64,
    /// Subscription numbers of every topic on this clock.
    next_subscription: AtomicU64,
}

enum Mode {
    /// Nanoseconds since the origin; saturates at `u64::MAX` (584 years).
    Virtual(AtomicU64),
    Real(Instant),
}

impl Clock {
    /// A virtual clock at [`Time::ZERO`]; it moves only when told to.
    pub fn virtual_clock() -> Clock {
        Clock::with_mode(Mode::Virtual(AtomicU64::new(0)))
    }

    /// Same as [`Clock::virtual_clock`]: a clock the test moves by hand.
    pub fn manual() -> Clock {
        Clock::virtual_clock()
    }

    /// A wall clock: [`now`](Clock::now) is the time elapsed since this call.
    pub fn real() -> Clock {
        Clock::with_mode(Mode::Real(Instant::now()))
    }

    fn with_mode(mode: Mode) -> Clock {
        Clock {
            inner: Arc::new(ClockInner {
                mode,
                moved: Event::new(),
                next_message: AtomicU64::new(1),
                next_notification: AtomicU64::new(1),
                next_subscription: AtomicU64::new(1),
            }),
        }
    }

    /// Whether this is a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self.inner.mode, Mode::Virtual(_))
    }

    /// The current time.
    pub fn now(&self) -> Time {
        match &self.inner.mode {
            Mode::Virtual(nanos) => {
                Time::from_duration(Duration::from_nanos(nanos.load(Ordering::Acquire)))
            }
            Mode::Real(start) => Time::from_duration(start.elapsed()),
        }
    }

    /// Moves a virtual clock forward by `by` and wakes every long poll on it,
    /// so that messages whose visibility timeout ended, and polls whose wait
    /// time is over, are seen.
    ///
    /// # Panics
    ///
    /// On a real clock: wall time cannot be moved. Build the mocks on
    /// [`Clock::virtual_clock`] to control time.
    pub fn advance(&self, by: Duration) {
        let nanos = self.virtual_nanos("advance");
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            Some(n.saturating_add(by))
        });
        self.inner.moved.notify(usize::MAX);
    }

    /// Moves a virtual clock forward to `to`. Time never goes back: a `to`
    /// earlier than [`now`](Clock::now) is **ignored** (the clock stays where
    /// it is), so a test may call `set` with times from any source without
    /// breaking the monotonic order the mocks rely on.
    ///
    /// # Panics
    ///
    /// On a real clock, as [`advance`](Clock::advance) does.
    pub fn set(&self, to: Time) {
        let nanos = self.virtual_nanos("set");
        let to = u64::try_from(to.since_origin().as_nanos()).unwrap_or(u64::MAX);
        let previous = nanos.fetch_max(to, Ordering::AcqRel);
        if previous < to {
            self.inner.moved.notify(usize::MAX);
        }
    }

    fn virtual_nanos(&self, what: &str) -> &AtomicU64 {
        match &self.inner.mode {
            Mode::Virtual(nanos) => nanos,
            Mode::Real(_) => panic!(
                "Clock::{what} called on a real clock: wall time cannot be moved; \
                 build the mocks on Clock::virtual_clock() to control time"
            ),
        }
    }

    /// A listener that fires the next time a virtual clock moves. Register it
    /// *before* checking a condition, then await it, so that no move is
    /// missed. A real clock never fires it.
    pub(crate) fn listen(&self) -> EventListener {
        self.inner.moved.listen()
    }

    pub(crate) fn next_message_number(&self) -> u64 {
        self.inner.next_message.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_notification_number(&self) -> u64 {
        self.inner.next_notification.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_subscription_number(&self) -> u64 {
        self.inner.next_subscription.fetch_add(1, Ordering::Relaxed)
    }
}

impl Default for Clock {
    /// A virtual clock.
    fn default() -> Self {
        Clock::virtual_clock()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("virtual", &self.is_virtual())
            .field("now", &self.now())
            .finish()
    }
}

#[cfg(test)]
#[path = "clock_tests.rs"]
mod tests;
