//! The lock probe: every [`LOCK_PROBE_INTERVAL`], a throw-away lock taken
//! and released through the consumer's own [`LockBackend`], its answer kept
//! for `/readyz`.
//!
//! The probe runs in the background rather than per request, so `/readyz`
//! answers at once (an orchestrator's probe times out in about a second)
//! and the backend sees one probe per interval however often it is asked.

use std::sync::Arc;
use std::time::Duration;

use iniesta_core::{AcquireOutcome, LockBackend, LockError, LockKey};
use tokio_util::sync::CancellationToken;

use super::readiness::{LockHealth, Readiness};
use super::{LOCK_PROBE_INTERVAL, LOCK_PROBE_TIMEOUT};

/// How long the probe's lock lives if its release is lost: short, and
/// never in the way of a message's lock (the key is the probe's own).
const PROBE_TTL: Duration = Duration::from_secs(5);

/// Probes `lock` until `stop` is cancelled, recording each answer in
/// `readiness`. The key names the queue and the process, so consumers that
/// share a lock backend do not probe each other's key.
pub(super) fn spawn(
    lock: Arc<dyn LockBackend>,
    scope: &str,
    readiness: Readiness,
    stop: CancellationToken,
) {
    let key = LockKey::from(format!(
        "iniesta:probe:readyz:{scope}:{}",
        std::process::id()
    ));
    tokio::spawn(async move {
        let mut every = tokio::time::interval(LOCK_PROBE_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let health = tokio::select! {
                () = stop.cancelled() => return,
                health = probe(lock.as_ref(), &key) => health,
            };
            readiness.lock_probed(health);
        }
    });
}

/// One probe: acquire `key`, then release it. Any answer of the backend
/// (acquired, busy, done; a release of a lock it no longer holds) means it
/// is reachable; `Unavailable`, or no answer within
/// [`LOCK_PROBE_TIMEOUT`], means it is not.
pub(super) async fn probe(lock: &dyn LockBackend, key: &LockKey) -> LockHealth {
    let attempt = async {
        let outcome = lock.acquire(vec![key.clone()], PROBE_TTL).await.pop();
        match outcome {
            Some(AcquireOutcome::Acquired { token, .. }) => {
                match lock.release(key.clone(), token).await {
                    Err(LockError::Unavailable(e)) => {
                        LockHealth::Unreachable(format!("the probe's release failed: {e}"))
                    }
                    // Released, or expired meanwhile: the backend answered.
                    _ => LockHealth::Reachable,
                }
            }
            Some(AcquireOutcome::Unavailable(LockError::Unavailable(e))) => {
                LockHealth::Unreachable(e)
            }
            Some(AcquireOutcome::Unavailable(e)) => LockHealth::Unreachable(e.to_string()),
            Some(AcquireOutcome::Busy | AcquireOutcome::Done) => LockHealth::Reachable,
            None => LockHealth::Unreachable("the backend gave no answer for the probe".into()),
        }
    };
    match tokio::time::timeout(LOCK_PROBE_TIMEOUT, attempt).await {
        Ok(health) => health,
        Err(_) => LockHealth::Unreachable(format!(
            "the probe had no answer within {} s",
            LOCK_PROBE_TIMEOUT.as_secs()
        )),
    }
}
