//! Health and metrics over HTTP (`http` feature): what
//! [`Iniesta::listen`](crate::Iniesta::listen) and `iniesta consume
//! --listen` serve, on one port.
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | every series of the process's `metrics` recorder (the consumer's are in the [crate docs](crate#metrics)), in the Prometheus text format |
//! | `/healthz` | `200 ok` while the server runs: the process is alive and its runtime answers |
//! | `/readyz` | `200 ready` when the consumer can do its work; else `503` with the reasons, one a line |
//!
//! # Ready
//!
//! `/readyz` answers 200 when all of these hold, and otherwise lists each
//! that does not, as a line starting with `starting:`, `stopped:`,
//! `shutting down:`, `receive:` or `lock:`:
//!
//! 1. **Started**: the start-up checks passed (the AWS verification, or it
//!    was skipped by `INIESTA_DRY_RUN` or because the queue was given) and
//!    the consumer task runs. The server listens from the beginning of
//!    [`start`](crate::Iniesta::start), so `/healthz` answers while the
//!    checks run and `/readyz` says `starting`.
//! 2. **Not shutting down**: no graceful shutdown has begun. From its
//!    first moment the consumer takes no new messages, so a load balancer
//!    or orchestrator may as well stop counting on it.
//! 3. **Polling**: fewer than [`RECEIVE_FAILURES_NOT_READY`] receive calls
//!    in a row have failed (any answer of the queue, empty or not, ends a
//!    streak), and no receive call has been waiting for an answer longer
//!    than its long poll plus [`RECEIVE_STALL_GRACE`]. The receive calls are
//!    watched themselves, not the consumer's events: an empty receive
//!    reports no event, so on an idle queue the events could not tell
//!    polling from stuck.
//! 4. **Lock backend reachable**: the latest lock probe answered. Every
//!    [`LOCK_PROBE_INTERVAL`] a throw-away key
//!    (`iniesta:probe:readyz:{queue}:{pid}`) is locked and released through
//!    the consumer's own lock backend; `Unavailable`, or no answer within
//!    [`LOCK_PROBE_TIMEOUT`], is a failed probe. `/readyz` answers from the
//!    latest probe at once, so however often it is asked the backend sees
//!    one probe per interval; a change shows within about one interval.
//!
//! # Metrics recorder
//!
//! `metrics` has one global recorder per process. The first consumer that
//! listens installs a Prometheus recorder (with the histogram buckets of
//! [`names::HISTOGRAM_BUCKETS`](crate::observe::names::HISTOGRAM_BUCKETS))
//! and every later one in the process reuses it, so several consumers, or
//! one started again, serve the same series. When a recorder installed by
//! other code is already there, `/metrics` could not read it:
//! [`start`](crate::Iniesta::start) fails with [`HttpError::RecorderTaken`]
//! (serve that recorder's series yourself, and leave `listen` out).
//! With [`metrics(false)`](crate::Iniesta::metrics) the recorder is still
//! installed, and `/metrics` shows only what other code records.
//!
//! The server stops when the consumer has stopped; once
//! [`ConsumerHandle::wait`](crate::ConsumerHandle::wait) returns, the port
//! is free again.

mod lock_probe;
mod prometheus;
mod readiness;
mod routes;
#[cfg(test)]
mod tests;
mod watched_queue;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iniesta_core::{LockBackend, Queue};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::readiness::Readiness;

/// The target of this module's logs: log filters name it.
const LOG_TARGET: &str = "iniesta_tokio::http";

/// Receive calls failing in a row that make the consumer not ready. One
/// or two are a blip (throttling, a dropped connection) the consumer's
/// backoff rides out; three in a row mean the queue cannot be reached.
pub const RECEIVE_FAILURES_NOT_READY: u32 = 3;

/// How long past its long poll a receive call may go unanswered before the
/// consumer is not ready: a call that hangs consumes nothing.
pub const RECEIVE_STALL_GRACE: Duration = Duration::from_secs(30);

/// How often the lock backend is probed; `/readyz` answers from the latest
/// probe.
pub const LOCK_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// How long a lock probe may take before it counts as failed.
pub const LOCK_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the recorder's histograms are drained into their buckets,
/// besides on every scrape: keeps their memory bounded when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How long a stopping server may take to finish the requests it is
/// answering before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why the health and metrics server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address could not be listened on (taken, not local, no
    /// permission).
    #[error("cannot listen on {addr} for /metrics, /healthz and /readyz: {source}; choose another address")]
    Bind {
        /// The address given to `listen`.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another `metrics` recorder is installed in this process, and
    /// `/metrics` cannot read it.
    #[error(
        "another metrics recorder is already installed in this process, so /metrics cannot \
         serve the consumer's series: export them with that recorder and drop .listen(..), \
         or do not install the other recorder"
    )]
    RecorderTaken,
    /// The exporter refused a histogram's buckets.
    #[error("the Prometheus exporter refused the buckets of {metric}: {message}")]
    Buckets {
        /// The histogram.
        metric: &'static str,
        /// The exporter's error.
        message: String,
    },
}

/// The running server: its address, the readiness it answers from, and how
/// to stop it. Dropping it stops the server too (the start failed, or the
/// consumer task ended).
#[derive(Debug)]
pub(crate) struct HttpServer {
    addr: SocketAddr,
    readiness: Readiness,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Installs (or reuses) the Prometheus recorder, listens on `addr` and
    /// serves; logs where unless `tracing` is off.
    pub(crate) async fn bind(addr: SocketAddr, tracing: bool) -> Result<HttpServer, HttpError> {
        let prometheus = prometheus::handle()?;
        let bind_error = |source| HttpError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let readiness = Readiness::default();
        let stop = CancellationToken::new();
        let serve = axum::serve(
            listener,
            routes::router(prometheus.clone(), readiness.clone()),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned());
        let task = tokio::spawn(async move {
            let upkeep = async {
                let mut every = tokio::time::interval(UPKEEP_INTERVAL);
                loop {
                    every.tick().await;
                    prometheus.run_upkeep();
                }
            };
            tokio::select! {
                served = serve.into_future() => {
                    if let Err(e) = served {
                        tracing::error!(target: LOG_TARGET, "the health and metrics server failed: {e}");
                    }
                }
                () = upkeep => {}
            }
        });
        if tracing {
            tracing::info!(
                target: LOG_TARGET,
                "serving /metrics, /healthz and /readyz on http://{local}"
            );
        }
        Ok(HttpServer {
            addr: local,
            readiness,
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on (the port chosen, for port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Watches the consumer's backends: `queue`'s receive calls (the queue
    /// to hand the consumer is returned) and, in the background, probes of
    /// `lock` (`described` names it in the reasons; lock keys of `scope`).
    pub(crate) fn watch(
        &self,
        queue: Arc<dyn Queue>,
        lock: &Arc<dyn LockBackend>,
        scope: &str,
        described: &str,
    ) -> Arc<dyn Queue> {
        self.readiness.lock_known(described);
        lock_probe::spawn(
            lock.clone(),
            scope,
            self.readiness.clone(),
            self.stop.clone(),
        );
        Arc::new(watched_queue::WatchedQueue {
            inner: queue,
            readiness: self.readiness.clone(),
        })
    }

    /// The start-up checks passed and the consumer runs; cancelling
    /// `shutdown` starts its shutdown.
    pub(crate) fn running(&self, shutdown: &CancellationToken) {
        self.readiness.running(shutdown.clone());
    }

    /// The consumer has stopped: stops the server and waits (up to
    /// [`STOP_GRACE`]) until the port is free.
    pub(crate) async fn stop(mut self) {
        self.readiness.stopped();
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.readiness.stopped();
        self.stop.cancel();
    }
}
