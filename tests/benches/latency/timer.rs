//! The simulation's clock for waits: how long a simulated round trip or
//! handler really takes.
//!
//! Tokio's timer has a resolution of one millisecond and rounds every
//! deadline up to the next tick, and a busy worker polls the woken task a
//! little later still: a 20 ms `tokio::time::sleep` took 21.2–22 ms here and
//! a 5 ms handler 6.2–7.8 ms. A simulation built on it therefore simulates a
//! slower network than it says, and the consumer's share of the nominal
//! bound looks ~10 % worse than its turnaround is. The precise timer wakes
//! each wait from a thread of its own at its deadline (the kernel's timer
//! slack, ~50 µs), so a simulated 20 ms is 20 ms plus only the time the
//! runtime takes to poll the woken task, which is the consumer's to pay.
//! The bench runs on either (`LATENCY_TIMER`), so the two can be compared.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

/// Which clock the simulated waits use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A thread of its own wakes each wait at its deadline.
    Precise,
    /// `tokio::time::sleep`: whole milliseconds, rounded up.
    Tokio,
}

impl Timer {
    /// `LATENCY_TIMER`: `precise` (the default) or `tokio`.
    pub fn from_env() -> Self {
        match std::env::var("LATENCY_TIMER").as_deref() {
            Err(_) | Ok("") | Ok("precise") => Timer::Precise,
            Ok("tokio") => Timer::Tokio,
            Ok(other) => panic!("LATENCY_TIMER: expected `precise` or `tokio`, got {other:?}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Timer::Precise => "precise timer thread",
            Timer::Tokio => "tokio's timer (1 ms, rounded up)",
        }
    }

    /// Waits `d` on this clock.
    pub async fn sleep(self, d: Duration) {
        if d.is_zero() {
            return;
        }
        match self {
            Timer::Tokio => tokio::time::sleep(d).await,
            Timer::Precise => {
                let (tx, rx) = oneshot::channel();
                let deadline = Instant::now() + d;
                waits().add(deadline, tx);
                let _ = rx.await;
            }
        }
    }
}

/// One wait, ordered by deadline, then by arrival so that equal deadlines
/// keep their order.
struct Wait {
    deadline: Instant,
    seq: u64,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Wait {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Wait {}
impl PartialOrd for Wait {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Wait {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// The waits not yet due, shared with the timer thread.
struct Waits {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    due: BinaryHeap<Reverse<Wait>>,
    seq: u64,
    /// When the timer thread wakes next on its own (`None`: not before it
    /// is told). A new wait wakes it only if it is due earlier, so that the
    /// tasks that wait do not pay a system call each (the waits are dense:
    /// the thread is almost always about to wake anyway).
    wakes_at: Option<Instant>,
}

impl Waits {
    fn add(&self, deadline: Instant, tx: oneshot::Sender<()>) {
        let mut s = self.state.lock().unwrap();
        s.seq += 1;
        let seq = s.seq;
        s.due.push(Reverse(Wait { deadline, seq, tx }));
        let wake = s.wakes_at.map_or(true, |at| deadline < at);
        drop(s);
        if wake {
            self.changed.notify_one();
        }
    }
}

/// The shared waits, the timer thread started on first use.
fn waits() -> &'static Waits {
    static WAITS: OnceLock<&'static Waits> = OnceLock::new();
    WAITS.get_or_init(|| {
        let waits: &'static Waits = Box::leak(Box::new(Waits {
            state: Mutex::new(State {
                due: BinaryHeap::new(),
                seq: 0,
                wakes_at: None,
            }),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("latency-timer".into())
            .spawn(move || run(waits))
            .expect("a timer thread");
        waits
    })
}

/// Answers each wait when it is due. The answers are sent with the lock
/// released; a wait added meanwhile is seen on the next turn, before the
/// thread sleeps again, so none is missed.
fn run(waits: &Waits) {
    let mut ready = Vec::new();
    let mut s = waits.state.lock().unwrap();
    loop {
        let now = Instant::now();
        while s.due.peek().is_some_and(|w| w.0.deadline <= now) {
            let wait = s.due.pop().expect("peeked").0;
            ready.push((wait.deadline, wait.tx));
        }
        if !ready.is_empty() {
            drop(s);
            for (deadline, tx) in ready.drain(..) {
                let _ = tx.send(());
                // Counted once sent: in a burst, the last is sent last.
                LATENESS.record(Instant::now().saturating_duration_since(deadline));
            }
            s = waits.state.lock().unwrap();
            continue;
        }
        s.wakes_at = s.due.peek().map(|w| w.0.deadline);
        s = match s.wakes_at {
            Some(at) => waits.changed.wait_timeout(s, at - now).unwrap().0,
            None => waits.changed.wait(s).unwrap(),
        };
    }
}

/// How late the timer thread answers its waits: the sum and the count
/// since the last [`take_lateness`], kept always (a clock read and two
/// atomic adds per answer, on the timer thread) and logged with
/// `LATENCY_SAMPLE_QUEUE`.
struct Lateness {
    micros: AtomicU64,
    waits: AtomicU64,
}

static LATENESS: Lateness = Lateness {
    micros: AtomicU64::new(0),
    waits: AtomicU64::new(0),
};

impl Lateness {
    fn record(&self, late: Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
        self.waits.fetch_add(1, Ordering::Relaxed);
    }
}

/// The mean lateness of the precise timer's answers since the last call
/// (`None`: it answered none, e.g. on tokio's timer), and starts over.
pub fn take_lateness() -> Option<Duration> {
    let micros = LATENESS.micros.swap(0, Ordering::Relaxed);
    let waits = LATENESS.waits.swap(0, Ordering::Relaxed);
    (waits > 0).then(|| Duration::from_micros(micros / waits))
}
