//! The [`ConsumerHandle`] of a running consumer: shutdown, stats, wait.

use std::future::IntoFuture;

use futures::future::BoxFuture;
use iniesta_core::Stats;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Error, LOG_TARGET};
use crate::observe::StatsWatch;
use crate::wiring::shutdown_signal;

/// A running consumer.
///
/// # Shutdown
///
/// [`shutdown`](Self::shutdown) (or a signal, with
/// [`run_until_signal`](Self::run_until_signal), or the future given to
/// [`Iniesta::with_graceful_shutdown`](crate::Iniesta::with_graceful_shutdown))
/// starts a graceful shutdown:
///
/// 1. no new receive is sent, and long polls in progress are cancelled;
/// 2. messages received but not started are made visible again at once
///    (`INIESTA_RETURN_UNSTARTED_ON_SHUTDOWN`, default on), so another
///    consumer takes them without waiting for their visibility timeout;
/// 3. running handlers get up to `INIESTA_SHUTDOWN_GRACE` (default 30 s) to
///    finish; their locks keep being extended meanwhile. A handler that
///    succeeds is completed and its message deleted; one that fails is
///    released for redelivery; one still running when the grace ends is
///    aborted (its future dropped) and released;
/// 4. the consumer stops, and [`wait`](Self::wait) returns its [`Stats`]
///    (as does awaiting the handle itself).
///
/// When `wait` returns, no handler runs and every message that was in
/// progress was completed and deleted, or released and left in the queue.
///
/// Dropping the handle does **not** stop the consumer: it keeps running in
/// its task until the runtime ends. Call `shutdown` first.
#[derive(Debug)]
pub struct ConsumerHandle {
    pub(super) shutdown: CancellationToken,
    pub(super) stats: StatsWatch,
    pub(super) task: JoinHandle<Stats>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[cfg(feature = "http")]
    pub(super) listen_addr: Option<std::net::SocketAddr>,
}

impl ConsumerHandle {
    /// Starts the graceful shutdown (see the [type docs](Self)); returns at
    /// once. Calling it again does nothing.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// The token whose cancellation shuts the consumer down: hand a clone
    /// to code that decides when to stop (a web server's shutdown hook, …).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// What the consumer has done so far.
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// A live view of the [`Stats`], updated after every event: read with
    /// `get`, wait for a condition with `wait_for`. It can be moved to
    /// another task (a health endpoint).
    pub fn watch_stats(&self) -> StatsWatch {
        self.stats.clone()
    }

    /// The address `/metrics`, `/healthz` and `/readyz` are served on
    /// ([`Iniesta::listen`](crate::Iniesta::listen); with port 0, the port
    /// chosen), or `None` without `listen`.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen_addr
    }

    /// Whether the consumer has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the consumer to stop (after [`shutdown`](Self::shutdown):
    /// without one it runs forever) and returns what it did.
    pub async fn wait(self) -> Result<Stats, Error> {
        self.task.await.map_err(|e| Error::Crashed(e.to_string()))
    }

    /// [`shutdown`](Self::shutdown), then [`wait`](Self::wait).
    pub async fn shutdown_and_wait(self) -> Result<Stats, Error> {
        self.shutdown();
        self.wait().await
    }

    /// Runs until SIGINT or SIGTERM (Ctrl-C), then shuts down gracefully and
    /// waits. Also returns if the consumer stops by itself (another holder
    /// of the [`shutdown_token`](Self::shutdown_token) cancelled it).
    pub async fn run_until_signal(mut self) -> Result<Stats, Error> {
        tokio::select! {
            signal = shutdown_signal() => {
                self.shutdown();
                match signal {
                    Ok(()) => {
                        tracing::info!(target: LOG_TARGET, "shutdown signal received; stopping the consumer gracefully");
                        self.wait().await
                    }
                    Err(e) => {
                        // Stop rather than run with no way to stop cleanly.
                        let _ = (&mut self.task).await;
                        Err(Error::Signal(e))
                    }
                }
            }
            stats = &mut self.task => stats.map_err(|e| Error::Crashed(e.to_string())),
        }
    }
}

/// Awaiting the handle is [`wait`](ConsumerHandle::wait): it completes when
/// the consumer has stopped, with what it did. With
/// [`Iniesta::with_graceful_shutdown`](crate::Iniesta::with_graceful_shutdown)
/// that is all a service needs to write:
///
/// ```
/// use iniesta_tokio::{InMemory, Iniesta};
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let world = InMemory::new();
/// let stop = CancellationToken::new();
/// let consumer = Iniesta::in_memory(&world)
///     .on("OrderPlaced.orders", || async {})
///     .with_graceful_shutdown(stop.clone().cancelled_owned())
///     .start()
///     .await?;
///
/// // Elsewhere (a signal listener, the web server's end), something
/// // decides to stop: here, once the order is handled.
/// let mut progress = consumer.watch_stats();
/// tokio::spawn(async move {
///     let _ = progress.wait_for(|s| s.deleted == 1).await;
///     stop.cancel();
/// });
/// world.publish("OrderPlaced.orders", r#"{"id": 1}"#).await?;
///
/// let stats = consumer.await?; // returns once the consumer has stopped
/// assert_eq!(stats.succeeded, 1);
/// # Ok(())
/// # }
/// ```
impl IntoFuture for ConsumerHandle {
    type Output = Result<Stats, Error>;
    type IntoFuture = BoxFuture<'static, Result<Stats, Error>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}
