//! [`Readiness`]: what `/readyz` answers, kept up to date by the consumer's
//! start and shutdown, its receive calls and the lock probe.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{RECEIVE_FAILURES_NOT_READY, RECEIVE_STALL_GRACE};

/// Where the consumer is in its life.
#[derive(Debug)]
enum Phase {
    /// `start` is choosing the backends and running the start-up checks.
    Starting,
    /// Consuming until the token is cancelled (a shutdown starts).
    Running(CancellationToken),
    /// The consumer task has ended.
    Stopped,
}

/// The receive calls seen by the [`WatchedQueue`](super::watched_queue::WatchedQueue).
#[derive(Debug, Default)]
struct Receives {
    /// Receive calls that failed since the last one that succeeded.
    failures_in_a_row: u32,
    /// The error of the latest failed call of that streak.
    last_error: Option<String>,
    /// Calls waiting for an answer: an id, when each was sent and its long
    /// poll.
    pending: Vec<(u64, Instant, Duration)>,
    next_id: u64,
}

/// The last answer of the lock probe.
#[derive(Debug, Clone)]
pub(super) enum LockHealth {
    /// No probe has answered yet.
    Unknown,
    /// The backend answered the latest probe.
    Reachable,
    /// The latest probe failed: why.
    Unreachable(String),
}

#[derive(Debug)]
struct State {
    phase: Phase,
    receives: Receives,
    /// `None` until the consumer's lock backend is known.
    lock: Option<(String, LockHealth)>,
}

/// Whether the consumer is ready, shared by the server, the watched queue
/// and the lock probe. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Readiness {
    state: Arc<Mutex<State>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            state: Arc::new(Mutex::new(State {
                phase: Phase::Starting,
                receives: Receives::default(),
                lock: None,
            })),
        }
    }
}

impl Readiness {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole; a panic elsewhere cannot
        // leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The start-up checks passed and the consumer runs; cancelling `token`
    /// starts its shutdown.
    pub(crate) fn running(&self, token: CancellationToken) {
        self.state().phase = Phase::Running(token);
    }

    /// The consumer task has ended.
    pub(crate) fn stopped(&self) {
        self.state().phase = Phase::Stopped;
    }

    /// The consumer locks with the backend `described` (for the reasons'
    /// text); not ready until a probe of it answers.
    pub(super) fn lock_known(&self, described: &str) {
        self.state().lock = Some((described.to_owned(), LockHealth::Unknown));
    }

    /// The answer of the latest lock probe.
    pub(super) fn lock_probed(&self, health: LockHealth) {
        if let Some((_, h)) = &mut self.state().lock {
            *h = health;
        }
    }

    /// A receive call with a long poll of `wait` is sent; returns its id
    /// for [`receive_done`](Self::receive_done).
    pub(super) fn receive_sent(&self, wait: Duration) -> u64 {
        let mut st = self.state();
        let r = &mut st.receives;
        let id = r.next_id;
        r.next_id += 1;
        r.pending.push((id, Instant::now(), wait));
        id
    }

    /// The receive call `id` is over: answered with `outcome`, or dropped
    /// (`None`: cancelled by a shutdown).
    pub(super) fn receive_done(&self, id: u64, outcome: Option<Result<(), String>>) {
        let mut st = self.state();
        let r = &mut st.receives;
        r.pending.retain(|(p, ..)| *p != id);
        match outcome {
            Some(Ok(())) => {
                r.failures_in_a_row = 0;
                r.last_error = None;
            }
            Some(Err(e)) => {
                r.failures_in_a_row = r.failures_in_a_row.saturating_add(1);
                r.last_error = Some(e);
            }
            None => {}
        }
    }

    /// Why the consumer is not ready, one reason a line; empty when it is.
    pub(crate) fn reasons(&self) -> Vec<String> {
        let now = Instant::now();
        let st = self.state();
        let mut out = Vec::new();
        match &st.phase {
            Phase::Starting => out.push(
                "starting: the start-up checks (AWS resources, lock backend) have not finished"
                    .to_owned(),
            ),
            Phase::Stopped => out.push("stopped: the consumer has stopped".to_owned()),
            Phase::Running(token) if token.is_cancelled() => out.push(
                "shutting down: no new messages are received; running handlers are finishing"
                    .to_owned(),
            ),
            Phase::Running(_) => {}
        }
        let r = &st.receives;
        if r.failures_in_a_row >= RECEIVE_FAILURES_NOT_READY {
            out.push(format!(
                "receive: the last {} receive calls failed, the latest with: {}",
                r.failures_in_a_row,
                r.last_error.as_deref().unwrap_or("an unknown error")
            ));
        }
        if let Some((_, sent, wait)) = r.pending.iter().min_by_key(|(_, sent, _)| *sent) {
            let waited = now.saturating_duration_since(*sent);
            if waited > *wait + RECEIVE_STALL_GRACE {
                out.push(format!(
                    "receive: a receive call has had no answer for {} s (its long poll is {} s)",
                    waited.as_secs(),
                    wait.as_secs()
                ));
            }
        }
        match &st.lock {
            Some((described, LockHealth::Unknown)) => out.push(format!(
                "lock: the first probe of {} has not answered yet",
                backend(described)
            )),
            Some((described, LockHealth::Unreachable(e))) => {
                out.push(format!("lock: {} is unreachable: {e}", backend(described)))
            }
            Some((_, LockHealth::Reachable)) => {}
            // Still starting: said above.
            None => {}
        }
        out
    }
}

/// The lock backend as the reasons name it: with what it is, unless the
/// builder only knows it was given (`.lock(..)`); the backend's own errors
/// name its servers or table anyway.
fn backend(described: &str) -> String {
    if described == "given" {
        "the lock backend".to_owned()
    } else {
        format!("the lock backend ({described})")
    }
}
