//! Ports with a round trip: the in-memory queue and lock behind adapters
//! that wait as a remote service would.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::timer::Timer;
use async_trait::async_trait;
use iniesta_core::message::{ReceiptHandle, ReceivedMessage};
use iniesta_core::ports::{
    AcquireOutcome, BackendError, EntryResult, LockBackend, LockError, LockKey, LockToken, Queue,
    ReceiveRequest,
};

/// A port that waits one round trip before every call, as a remote service
/// would. The wait is a timer, so many calls wait at once (as many requests
/// in flight on a connection pool would).
pub struct Remote<T> {
    pub inner: T,
    pub round_trip: Duration,
    pub timer: Timer,
    /// On the lock: counts the slots held, from each acquire call to the
    /// answer of the complete (or release) that frees them, which is when
    /// the consumer takes and gives back a slot.
    pub slots: Option<Arc<SlotMeter>>,
}

/// The number of slots held over time, to tell whether the consumer kept
/// its slots full (and for how long each message held one) or waited for
/// messages to fill them.
#[derive(Debug)]
pub struct SlotMeter {
    state: Mutex<MeterState>,
}

#[derive(Debug)]
struct MeterState {
    held: i64,
    since: Instant,
    /// Slot-seconds held so far.
    integral: f64,
    /// Seconds the acquire and complete calls took, summed per message
    /// (a call of n keys counts n times), and the messages they carried.
    acquire_secs: f64,
    acquired: u64,
    acquire_calls: u64,
    complete_secs: f64,
    completed: u64,
    complete_calls: u64,
}

/// Per message, the mean time its acquire and its complete call took, s,
/// and the calls' mean sizes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallTimes {
    pub acquire: f64,
    pub complete: f64,
    /// Mean keys per acquire call, and entries per complete call: how well
    /// the consumer batches its lock calls.
    pub keys_per_acquire: f64,
    pub entries_per_complete: f64,
}

impl SlotMeter {
    pub fn new() -> Self {
        SlotMeter {
            state: Mutex::new(MeterState {
                held: 0,
                since: Instant::now(),
                integral: 0.0,
                acquire_secs: 0.0,
                acquired: 0,
                acquire_calls: 0,
                complete_secs: 0.0,
                completed: 0,
                complete_calls: 0,
            }),
        }
    }

    fn add(&self, delta: i64) {
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        s.integral += s.held as f64 * now.duration_since(s.since).as_secs_f64();
        s.held += delta;
        s.since = now;
    }

    fn call(&self, acquire: bool, n: usize, took: Duration) {
        let mut s = self.state.lock().unwrap();
        let weighted = n as f64 * took.as_secs_f64();
        if acquire {
            s.acquire_secs += weighted;
            s.acquired += n as u64;
            s.acquire_calls += 1;
        } else {
            s.complete_secs += weighted;
            s.completed += n as u64;
            s.complete_calls += 1;
        }
    }

    /// The mean time of the acquire and complete calls, per message.
    pub fn call_times(&self) -> CallTimes {
        let s = self.state.lock().unwrap();
        CallTimes {
            acquire: s.acquire_secs / s.acquired.max(1) as f64,
            complete: s.complete_secs / s.completed.max(1) as f64,
            keys_per_acquire: s.acquired as f64 / s.acquire_calls.max(1) as f64,
            entries_per_complete: s.completed as f64 / s.complete_calls.max(1) as f64,
        }
    }

    /// Slot-seconds held until now.
    pub fn slot_seconds(&self) -> f64 {
        self.add(0);
        self.state.lock().unwrap().integral
    }
}

impl<T> Remote<T> {
    async fn trip(&self) {
        self.timer.sleep(self.round_trip).await;
    }
}

#[async_trait]
impl<Q: Queue> Queue for Remote<Q> {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        self.trip().await;
        self.inner.receive(request).await
    }

    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        self.trip().await;
        self.inner.delete_batch(handles).await
    }

    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        self.trip().await;
        self.inner.change_visibility_batch(entries).await
    }
}

#[async_trait]
impl<L: LockBackend> LockBackend for Remote<L> {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        // One round trip for the batch: Redlock pipelines a batch's keys to
        // each node and asks the nodes in parallel.
        let n = keys.len();
        if let Some(m) = &self.slots {
            m.add(n as i64);
        }
        let began = Instant::now();
        self.trip().await;
        let answers = self.inner.acquire(keys, ttl).await;
        if let Some(m) = &self.slots {
            m.call(true, n, began.elapsed());
        }
        answers
    }

    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        self.trip().await;
        self.inner.extend(key, token, ttl).await
    }

    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        // One round trip for the batch, as for acquire.
        let n = entries.len();
        let began = Instant::now();
        self.trip().await;
        let answers = self.inner.complete(entries, keep_for).await;
        if let Some(m) = &self.slots {
            m.call(false, n, began.elapsed());
            m.add(-(n as i64));
        }
        answers
    }

    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        self.trip().await;
        let answer = self.inner.release(key, token).await;
        if let Some(m) = &self.slots {
            m.add(-1);
        }
        answer
    }
}
