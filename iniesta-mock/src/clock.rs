//! The clock every mock reads: virtual (moved by the test), real, or an
//! outside time source (an async runtime's clock, which may be paused).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_listener::{Event, EventListener};
use futures::future::{BoxFuture, FutureExt};
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
/// Three modes:
/// - **virtual** ([`Clock::virtual_clock`], alias [`Clock::manual`]): starts
///   at [`Time::ZERO`] (in Unix time: [`Clock::VIRTUAL_EPOCH`]) and moves
///   only when the test calls
///   [`advance`](Clock::advance) or [`set`](Clock::set). Nothing reads the
///   OS clock, so a test's outcome does not depend on how fast it runs. Long
///   polls wait in *virtual* time: they return when a message arrives or when
///   the test moves the clock past their wait time.
/// - **real** ([`Clock::real`]): `now()` is the time elapsed since the clock
///   was created (in Unix time: the wall clock then, plus that); for
///   examples and benchmarks that run against wall time.
/// - **source** ([`Clock::from_source`]): `now()` and the waits of long
///   polls come from functions the caller gives, so the mocks keep the time
///   of an async runtime's clock. Tokio's clock, for one, can be paused
///   (`#[tokio::test(start_paused = true)]`) and then jumps to the next timer
///   whenever every task is idle: on such a clock, visibility timeouts and
///   lock expiries pass as fast as the code under test lets them, with no
///   `advance` calls in the test (`iniesta_tokio::InMemory` is built this
///   way). In Unix time its instants count from the wall clock at its
///   creation.
///
/// **Unix time.** SQS stamps a message's `SentTimestamp` and
/// `ApproximateFirstReceiveTimestamp` in milliseconds since the Unix epoch,
/// and code under test reads them as such (a message's age is the wall
/// clock minus its `SentTimestamp`), so the queues stamp them in the same
/// unit: [`unix_millis`](Clock::unix_millis) of the instant. A virtual
/// clock maps its instants onto a fixed origin, so a run stamps the same
/// values every time; the others onto the wall clock.
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
    /// The Unix time of [`Time::ZERO`] on this clock.
    epoch: Duration,
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
    Source(Source),
}

/// Reads an outside clock: the time since its origin.
type ReadTime = Box<dyn Fn() -> Duration + Send + Sync>;
/// Waits at least the given time on an outside clock.
type Sleep = Box<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// An outside clock: how to read it and how to wait on it.
struct Source {
    now: ReadTime,
    sleep: Sleep,
    /// The latest time read, in nanoseconds: a reading earlier than it (a
    /// source that is not monotonic, or one read from two runtimes) is
    /// replaced by it, so the mocks never see time go back.
    latest: AtomicU64,
}

impl Clock {
    /// The Unix time of a virtual clock's [`Time::ZERO`]:
    /// 2026-01-01T00:00:00Z. Fixed, so that the timestamps a run stamps do
    /// not depend on when it runs.
    pub const VIRTUAL_EPOCH: Duration = Duration::from_secs(1_767_225_600);

    /// A virtual clock at [`Time::ZERO`]; it moves only when told to.
    pub fn virtual_clock() -> Clock {
        Clock::with_mode(Mode::Virtual(AtomicU64::new(0)), Clock::VIRTUAL_EPOCH)
    }

    /// Same as [`Clock::virtual_clock`]: a clock the test moves by hand.
    pub fn manual() -> Clock {
        Clock::virtual_clock()
    }

    /// A wall clock: [`now`](Clock::now) is the time elapsed since this call.
    pub fn real() -> Clock {
        Clock::with_mode(Mode::Real(Instant::now()), unix_now())
    }

    /// A clock that reads the time from `now` (the time since an origin of
    /// the caller's choosing) and on which long polls wait with `sleep`.
    ///
    /// `sleep(d)` must complete once at least `d` has passed as `now`
    /// counts it. Long polls wait on it (and on sent messages) for the end
    /// of their wait time or the next visibility timeout, so when the
    /// source is an async runtime's clock it should be that runtime's
    /// timer: a runtime that moves a paused clock to its next timer then
    /// sees this wait too. Time never goes back: a reading earlier than
    /// one already seen counts as that one.
    ///
    /// The clock cannot be moved by [`advance`](Clock::advance) or
    /// [`set`](Clock::set); it moves as its source does.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use futures::future::FutureExt;
    /// use iniesta_core::Time;
    /// use iniesta_mock::Clock;
    ///
    /// // A source that, like a paused runtime clock, jumps ahead whenever
    /// // someone waits on it.
    /// let millis = Arc::new(AtomicU64::new(0));
    /// let (read, wait) = (millis.clone(), millis.clone());
    /// let clock = Clock::from_source(
    ///     move || Duration::from_millis(read.load(Ordering::SeqCst)),
    ///     move |d| {
    ///         wait.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    ///         futures::future::ready(()).boxed()
    ///     },
    /// );
    /// assert_eq!(clock.now(), Time::ZERO);
    /// futures::executor::block_on(clock.sleep(Duration::from_secs(30)));
    /// assert_eq!(clock.now(), Time::from_millis(30_000));
    /// ```
    pub fn from_source<N, S>(now: N, sleep: S) -> Clock
    where
        N: Fn() -> Duration + Send + Sync + 'static,
        S: Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    {
        // The source's origin in Unix time: the wall clock now, less the
        // source's reading now.
        let epoch = unix_now().saturating_sub(now());
        let source = Source {
            now: Box::new(now),
            sleep: Box::new(sleep),
            latest: AtomicU64::new(0),
        };
        Clock::with_mode(Mode::Source(source), epoch)
    }

    fn with_mode(mode: Mode, epoch: Duration) -> Clock {
        Clock {
            inner: Arc::new(ClockInner {
                mode,
                epoch,
                moved: Event::new(),
                next_message: AtomicU64::new(1),
                next_notification: AtomicU64::new(1),
                next_subscription: AtomicU64::new(1),
            }),
        }
    }

    /// Whether this is a virtual clock (moved only by
    /// [`advance`](Clock::advance) and [`set`](Clock::set)).
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
            Mode::Source(source) => {
                let read = u64::try_from((source.now)().as_nanos()).unwrap_or(u64::MAX);
                let latest = source.latest.fetch_max(read, Ordering::AcqRel).max(read);
                Time::from_duration(Duration::from_nanos(latest))
            }
        }
    }

    /// Instant `t` of this clock in milliseconds since the Unix epoch, the
    /// unit of SQS's `SentTimestamp`: [`Clock::VIRTUAL_EPOCH`] plus `t` on
    /// a virtual clock, the wall clock at the clock's creation plus the
    /// time since on the others.
    ///
    /// ```
    /// use std::time::Duration;
    /// use iniesta_mock::Clock;
    ///
    /// let clock = Clock::virtual_clock();
    /// clock.advance(Duration::from_millis(1234));
    /// // 2026-01-01T00:00:01.234Z
    /// assert_eq!(clock.unix_millis(clock.now()), 1_767_225_601_234);
    /// ```
    pub fn unix_millis(&self, t: Time) -> u64 {
        let unix = self.inner.epoch.saturating_add(t.since_origin());
        u64::try_from(unix.as_millis()).unwrap_or(u64::MAX)
    }

    /// Waits until at least `d` has passed on this clock: on a virtual
    /// clock, until the test has moved it that far; on a real clock, on a
    /// timer thread of its own (so under any async runtime); on a source
    /// clock, with its `sleep`.
    pub fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        match &self.inner.mode {
            Mode::Virtual(_) => {
                let clock = self.clone();
                let deadline = self.now() + d;
                async move {
                    loop {
                        // Listen before looking, so that no move is missed.
                        let moved = clock.listen();
                        if clock.now() >= deadline {
                            return;
                        }
                        moved.await;
                    }
                }
                .boxed()
            }
            Mode::Real(_) => futures_timer::Delay::new(d).boxed(),
            Mode::Source(source) => (source.sleep)(d),
        }
    }

    /// Moves a virtual clock forward by `by` and wakes every long poll on it,
    /// so that messages whose visibility timeout ended, and polls whose wait
    /// time is over, are seen.
    ///
    /// # Panics
    ///
    /// On a real or source clock: only a virtual clock is moved by hand.
    /// Build the mocks on [`Clock::virtual_clock`] to control time.
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
    /// On a real or source clock, as [`advance`](Clock::advance) does.
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
            Mode::Source(_) => panic!(
                "Clock::{what} called on a clock that follows an outside time source: \
                 move the source instead (a paused tokio clock: tokio::time::advance), \
                 or build the mocks on Clock::virtual_clock() to control time"
            ),
        }
    }

    fn mode_name(&self) -> &'static str {
        match self.inner.mode {
            Mode::Virtual(_) => "virtual",
            Mode::Real(_) => "real",
            Mode::Source(_) => "source",
        }
    }

    /// A listener that fires the next time a virtual clock moves. Register it
    /// *before* checking a condition, then await it, so that no move is
    /// missed. Only a virtual clock fires it.
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

/// The wall clock, as a duration since the Unix epoch (zero for a system
/// clock set before it).
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
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
            .field("mode", &self.mode_name())
            .field("now", &self.now())
            .finish()
    }
}

#[cfg(test)]
#[path = "clock_tests.rs"]
mod tests;
