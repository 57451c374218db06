//! The [`Iniesta`] builder: settings, handlers, backends and observability,
//! gathered before [`start`](Iniesta::start).

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
#[cfg(feature = "tower")]
use iniesta_core::handler::tower::{HandlerService, Layer, Service};
use iniesta_core::handler::{BatchFn, BatchHandler, BatchOptions, HandlerFn};
use iniesta_core::registry::Events;
use iniesta_core::settings::Settings;
use iniesta_core::{
    ConsumerConfig, DeliveryMode, Handler, HandlerRegistry, LockBackend, Observer, Queue,
};

use super::error::Error;

type Tune = Box<dyn FnOnce(&mut ConsumerConfig) + Send>;

/// A layer given to [`Iniesta::layer`], put around the handlers when the
/// consumer starts.
#[cfg(feature = "tower")]
pub(super) type ApplyLayer = Box<dyn FnOnce(&HandlerRegistry) -> HandlerRegistry + Send>;

/// Builds and starts a consumer: settings, handlers, backends and
/// observability in one place.
///
/// # Choosing the backends
///
/// - `.queue(..)` and `.lock(..)` given explicitly always win.
/// - Otherwise in-memory backends set with [`in_memory_backends`]
///   (`mock` feature) are used.
/// - Otherwise, with the `aws` feature, the queue is the SQS queue the
///   settings name (`INIESTA_SQS_QUEUE_NAME` or the template; endpoints from
///   `INIESTA_SQS_ENDPOINT_URL` / `INIESTA_SNS_ENDPOINT_URL`). Unless
///   `INIESTA_DRY_RUN` is set, the start-up verification runs first, with the
///   checks of `INIESTA_INITIALIZATION_TYPE` (`EVENT_POLLING`: topic,
///   queue, subscription, filter policy, queue policy, delivery mode;
///   `QUEUE_POLLING`: the queue only); a failed check stops the start with
///   [`Error::Verification`], and the detected delivery mode is used to
///   parse messages (`INIESTA_RAW_DELIVERY` overrides it, and the
///   verification then checks the subscription agrees).
/// - Otherwise the lock is the one `INIESTA_LOCK_BACKEND` names: `redlock`
///   (the default, `redlock` feature), a Redlock over `INIESTA_CACHES`
///   (`INIESTA_LOCK_RETRY_COUNT` attempts per lock); or `dynamodb`
///   (`dynamodb` feature), the DynamoDB table of `INIESTA_DYNAMODB_TABLE`
///   (endpoint from `INIESTA_DYNAMODB_ENDPOINT_URL`).
/// - The AWS clients (SQS, SNS, DynamoDB) are built from the standard AWS
///   environment, unless the service brings its own configuration with
///   `.aws_config(..)` or its own clients with `.sqs_client(..)`,
///   `.sns_client(..)` and `.dynamodb_client(..)`; the verification runs
///   with the clients used.
///
/// # Example
///
/// ```
/// use iniesta_tokio::{InMemory, Iniesta, Json};
///
/// #[derive(serde::Deserialize)]
/// struct UserCreated { id: u64 }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let world = InMemory::new();
/// let consumer = Iniesta::in_memory(&world)
///     .on("UserCreated.users", |Json(user): Json<UserCreated>| async move {
///         println!("welcome {}", user.id);
///     })
///     .start()
///     .await?;
///
/// world.publish("UserCreated.users", r#"{"id": 7}"#).await?;
/// let mut stats = consumer.watch_stats();
/// stats.wait_for(|s| s.deleted == 1).await?;
///
/// let stats = consumer.shutdown_and_wait().await?;
/// assert_eq!(stats.succeeded, 1);
/// assert!(world.queue().is_empty());
/// # Ok(())
/// # }
/// ```
///
/// [`in_memory_backends`]: Iniesta::in_memory_backends
/// [`Error::Verification`]: crate::Error::Verification
pub struct Iniesta {
    pub(super) settings: Option<Settings>,
    pub(super) handlers: HandlerRegistry,
    pub(super) registration_error: Option<Error>,
    pub(super) queue: Option<Arc<dyn Queue>>,
    pub(super) lock: Option<Arc<dyn LockBackend>>,
    pub(super) delivery_mode: Option<DeliveryMode>,
    #[cfg(feature = "mock")]
    pub(super) in_memory: Option<crate::memory::InMemory>,
    pub(super) observers: Vec<Box<dyn Observer>>,
    pub(super) tracing: bool,
    pub(super) metrics: bool,
    pub(super) tune: Vec<Tune>,
    pub(super) graceful_shutdown: Option<BoxFuture<'static, ()>>,
    #[cfg(feature = "tower")]
    pub(super) layers: Vec<ApplyLayer>,
    #[cfg(any(feature = "aws", feature = "dynamodb"))]
    pub(super) aws: super::aws::GivenAws,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`.
    #[cfg(feature = "http")]
    pub(super) listen: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Iniesta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iniesta")
            .field("settings", &self.settings)
            .field("handlers", &self.handlers)
            .field("queue", &self.queue.is_some())
            .field("lock", &self.lock.is_some())
            .field("delivery_mode", &self.delivery_mode)
            .field("observers", &self.observers.len())
            .field("tracing", &self.tracing)
            .field("metrics", &self.metrics)
            .field("graceful_shutdown", &self.graceful_shutdown.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Iniesta {
    fn default() -> Self {
        Iniesta::new()
    }
}

impl Iniesta {
    /// A builder that reads its settings from the environment
    /// ([`Settings::from_env`]) when it starts, unless
    /// [`settings`](Self::settings) gives them.
    pub fn new() -> Self {
        Iniesta {
            settings: None,
            handlers: HandlerRegistry::new(),
            registration_error: None,
            queue: None,
            lock: None,
            delivery_mode: None,
            #[cfg(feature = "mock")]
            in_memory: None,
            observers: Vec::new(),
            tracing: true,
            metrics: true,
            tune: Vec::new(),
            graceful_shutdown: None,
            #[cfg(feature = "tower")]
            layers: Vec::new(),
            #[cfg(any(feature = "aws", feature = "dynamodb"))]
            aws: super::aws::GivenAws::default(),
            #[cfg(feature = "http")]
            listen: None,
        }
    }

    /// A builder on in-memory backends with default settings: the
    /// environment is not read, nothing needs configuring. For development,
    /// examples and tests.
    #[cfg(feature = "mock")]
    pub fn in_memory(world: &crate::memory::InMemory) -> Self {
        Iniesta::new()
            .settings(Settings::default())
            .in_memory_backends(world)
    }

    /// Uses these settings instead of reading the environment.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Uses `world`'s queue and lock (unless `.queue`/`.lock` give others)
    /// and its delivery mode. The topic ARN and event key of the settings
    /// are set to the world's, so its envelopes parse.
    #[cfg(feature = "mock")]
    pub fn in_memory_backends(mut self, world: &crate::memory::InMemory) -> Self {
        self.in_memory = Some(world.clone());
        self
    }

    /// Takes the handlers and state of `registry`; `.on`, `.state` and the
    /// like after it add to them. It MUST come before any of those: given
    /// after them it would drop what they registered, so that makes
    /// [`start`](Self::start) fail with [`Error::HandlersReplaced`] naming
    /// what would be lost (as does a second `.handlers`).
    pub fn handlers(mut self, registry: HandlerRegistry) -> Self {
        let events = self.handlers.events();
        let default = self.handlers.has_default();
        let states = self.handlers.state_map().type_names();
        if !events.is_empty() || default || !states.is_empty() {
            self.registration_error
                .get_or_insert(Error::HandlersReplaced {
                    events,
                    default,
                    states,
                });
        }
        self.handlers = registry;
        self
    }

    /// Registers an async function of
    /// [extractors](iniesta_core::handler::extract) for one event or a list
    /// of events; it returns `()` or `Result<(), E>` for any
    /// `E: Into<HandlerError>`. A refused registration (an event taken
    /// twice) is reported by [`start`](Self::start).
    ///
    /// ```
    /// use iniesta_core::handler::{Json, State};
    /// use iniesta_tokio::Iniesta;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct UserCreated { id: u64 }
    ///
    /// #[derive(Clone)]
    /// struct Db;
    /// impl Db {
    ///     async fn insert(&self, id: u64) -> Result<(), std::io::Error> { Ok(()) }
    /// }
    ///
    /// let builder = Iniesta::new()
    ///     .state(Db)
    ///     .on("UserCreated.users", |Json(e): Json<UserCreated>, State(db): State<Db>| async move {
    ///         db.insert(e.id).await
    ///     });
    /// ```
    pub fn on<F, Args>(mut self, events: impl Events, f: F) -> Self
    where
        F: HandlerFn<Args>,
        Args: 'static,
    {
        if let Err(e) = self.handlers.on(events, f) {
            self.registration_error.get_or_insert(e.into());
        }
        self
    }

    /// Registers a batch handler for one event or a list of events, with
    /// the default [`BatchOptions`] (up to 10 deliveries, gathered for up
    /// to 100 ms): an async function of a
    /// [`Batch<T>`](iniesta_core::handler::Batch) and extractors such as
    /// [`State<S>`](iniesta_core::handler::State), returning a
    /// [`BatchOutcome`](iniesta_core::handler::BatchOutcome). Each delivery
    /// is still locked and settled on its own: the successes are deleted,
    /// the failures retried. See
    /// [`HandlerRegistry::on_batch`](iniesta_core::HandlerRegistry::on_batch).
    ///
    /// ```
    /// use iniesta_core::handler::{Batch, BatchOutcome};
    /// use iniesta_tokio::{InMemory, Iniesta};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct UserCreated { id: u64 }
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let world = InMemory::new();
    /// let consumer = Iniesta::in_memory(&world)
    ///     .on_batch("UserCreated.users", |users: Batch<UserCreated>| async move {
    ///         let ids: Vec<u64> = users.payloads().map(|u| u.id).collect();
    ///         println!("welcome {ids:?}");
    ///         BatchOutcome::all_ok()
    ///     })
    ///     .start()
    ///     .await?;
    ///
    /// world.publish("UserCreated.users", r#"{"id": 7}"#).await?;
    /// world.publish("UserCreated.users", r#"{"id": 8}"#).await?;
    /// consumer.watch_stats().wait_for(|s| s.deleted == 2).await?;
    /// consumer.shutdown_and_wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_batch<F, T, Args>(self, events: impl Events, f: F) -> Self
    where
        F: BatchFn<T, Args>,
        T: Send + 'static,
        Args: 'static,
    {
        self.on_batch_with(events, BatchOptions::default(), f)
    }

    /// [`on_batch`](Self::on_batch) with the largest batch and the longest
    /// wait to fill one given. A batch never holds more deliveries than
    /// `max_in_flight` (`INIESTA_MAX_IN_FLIGHT`): each holds its own slot.
    pub fn on_batch_with<F, T, Args>(
        mut self,
        events: impl Events,
        options: BatchOptions,
        f: F,
    ) -> Self
    where
        F: BatchFn<T, Args>,
        T: Send + 'static,
        Args: 'static,
    {
        if let Err(e) = self.handlers.on_batch_with(events, options, f) {
            self.registration_error.get_or_insert(e.into());
        }
        self
    }

    /// Registers a [`BatchHandler`] for one event or a list of events.
    pub fn batch_handler(
        mut self,
        events: impl Events,
        options: BatchOptions,
        handler: impl BatchHandler,
    ) -> Self {
        if let Err(e) = self.handlers.add_batch(events, options, handler) {
            self.registration_error.get_or_insert(e.into());
        }
        self
    }

    /// Registers a [`Handler`] for one event or a list of events.
    pub fn handler(mut self, events: impl Events, handler: impl Handler) -> Self {
        if let Err(e) = self.handlers.add(events, handler) {
            self.registration_error.get_or_insert(e.into());
        }
        self
    }

    /// Registers the default handler, an async function of extractors: it
    /// gets every event without a handler of its own (without one, such
    /// messages stay in the queue).
    pub fn default_handler<F, Args>(mut self, f: F) -> Self
    where
        F: HandlerFn<Args>,
        Args: 'static,
    {
        if let Err(e) = self.handlers.on_default(f) {
            self.registration_error.get_or_insert(e.into());
        }
        self
    }

    /// Aborts a handler that runs longer than `timeout` (its future is
    /// dropped); that counts as a failure and the message is retried. The
    /// same as `INIESTA_HANDLER_TIMEOUT`, which it overrides. Without a
    /// timeout a hung handler holds its message and its slot for as long as
    /// its heartbeats keep the lock: forever.
    pub fn handler_timeout(self, timeout: std::time::Duration) -> Self {
        self.configure(move |c| c.handler_timeout = Some(timeout))
    }

    /// Gives every handler `value` (a database pool, a client), read with
    /// the [`State`](iniesta_core::handler::State) extractor. One value per
    /// type. A handler that reads a state type nobody gave makes
    /// [`start`](Self::start) fail, naming the type.
    pub fn state<S: Clone + Send + Sync + 'static>(mut self, value: S) -> Self {
        self.handlers.state(value);
        self
    }

    /// Consumes this queue (wins over every other choice). An
    /// `Arc<dyn Queue>` already shared elsewhere is taken as it is (an `Arc`
    /// of a queue is a queue too).
    pub fn queue(mut self, queue: impl Queue) -> Self {
        self.queue = Some(share_queue(queue));
        self
    }

    /// Locks with this backend (wins over every other choice). An
    /// `Arc<dyn LockBackend>` already shared elsewhere is taken as it is.
    pub fn lock(mut self, lock: impl LockBackend) -> Self {
        self.lock = Some(share_lock(lock));
        self
    }

    /// Shuts the consumer down gracefully when `signal` completes (see
    /// [`ConsumerHandle`](crate::ConsumerHandle) for what that guarantees),
    /// so one trigger can stop a web server and the consumer beside it.
    /// Await the handle to wait until the consumer has stopped. A second
    /// call replaces the first signal; [`shutdown`] still works too.
    ///
    /// The signal is polled by the consumer's task and dropped when the
    /// consumer stops, so it may be any future: a token's
    /// `cancelled_owned()`, a oneshot receiver, a timer,
    /// [`shutdown_signal`](crate::shutdown_signal) mapped to `()`.
    ///
    /// ```
    /// use iniesta_tokio::{InMemory, Iniesta};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let world = InMemory::new();
    /// // One token for the whole service: a web server's
    /// // `with_graceful_shutdown` takes it too.
    /// let stop = CancellationToken::new();
    /// let consumer = Iniesta::in_memory(&world)
    ///     .on("OrderPlaced.orders", || async {})
    ///     .with_graceful_shutdown(stop.clone().cancelled_owned())
    ///     .start()
    ///     .await?;
    ///
    /// world.publish("OrderPlaced.orders", r#"{"id": 1}"#).await?;
    /// consumer.watch_stats().wait_for(|s| s.deleted == 1).await?;
    ///
    /// stop.cancel(); // SIGTERM, the server stopping, …
    /// let stats = consumer.await?; // the consumer has stopped
    /// assert_eq!(stats.succeeded, 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`shutdown`]: crate::ConsumerHandle::shutdown
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.graceful_shutdown = Some(Box::pin(signal));
        self
    }

    /// Parses messages as delivered in `mode`, instead of detecting it or
    /// taking it from `INIESTA_RAW_DELIVERY`.
    pub fn delivery_mode(mut self, mode: DeliveryMode) -> Self {
        self.delivery_mode = Some(mode);
        self
    }

    /// Adds an observer of the consumer's events, besides the built-in ones.
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Whether to log events and wrap handlers in a span per message
    /// (default on).
    pub fn tracing(mut self, on: bool) -> Self {
        self.tracing = on;
        self
    }

    /// Whether to record metrics (default on).
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Serves `/metrics` (Prometheus text), `/healthz` and `/readyz` on
    /// `addr` while the consumer runs (`http` feature); port 0 picks a free
    /// port, which [`ConsumerHandle::listen_addr`] tells.
    ///
    /// The server listens from the beginning of [`start`](Self::start), so
    /// `/healthz` answers during the start-up checks, and stops once the
    /// consumer has stopped. `/readyz` is 200 only while the consumer is
    /// started, not shutting down, polling, and its lock backend answers;
    /// the [`http`](crate::http) module says exactly when. The first
    /// consumer of the process that listens installs the global Prometheus
    /// recorder, and later ones reuse it; `start` fails with
    /// [`HttpError::RecorderTaken`] when other code installed a recorder
    /// first, and with [`HttpError::Bind`] when `addr` is taken.
    ///
    /// ```
    /// use iniesta_tokio::{InMemory, Iniesta};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let world = InMemory::new();
    /// let consumer = Iniesta::in_memory(&world)
    ///     .on("OrderPlaced.orders", || async {})
    ///     .listen(([127, 0, 0, 1], 0))
    ///     .start()
    ///     .await?;
    /// let addr = consumer.listen_addr().expect("it listens");
    /// println!("curl http://{addr}/metrics");
    /// consumer.shutdown_and_wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`ConsumerHandle::listen_addr`]: crate::ConsumerHandle::listen_addr
    /// [`HttpError::RecorderTaken`]: crate::http::HttpError::RecorderTaken
    /// [`HttpError::Bind`]: crate::http::HttpError::Bind
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn listen(mut self, addr: impl Into<std::net::SocketAddr>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Adjusts the consumer configuration derived from the settings (for
    /// knobs without a setting: retry delays, receive backoff, …). Runs after
    /// the settings are applied; the result is validated.
    pub fn configure(mut self, f: impl FnOnce(&mut ConsumerConfig) + Send + 'static) -> Self {
        self.tune.push(Box::new(f));
        self
    }

    /// Puts a tower [`Layer`] around every handler: a timeout, a
    /// concurrency or rate limit, a `MapRequest`, middleware of your own.
    ///
    /// The layers are applied when the consumer [starts](Self::start), so
    /// they wrap every handler, the default handler too, whether it was
    /// registered before or after this call (or given with
    /// [`handlers`](Self::handlers)). Each wraps the layers given before
    /// it, so the last one given is the outermost; the message's tracing
    /// span (unless [`tracing(false)`](Self::tracing)) goes around them all,
    /// so what the layers log names the message too.
    ///
    /// A layer makes one service per route, so state it keeps is kept per
    /// route (`ConcurrencyLimitLayer::new(1)` runs one delivery of each
    /// route at a time); the errors of the layered services keep the
    /// handler's retry kind, and tower's timeout is a failure that
    /// retries: see [`iniesta_core::handler::tower`] for both rules.
    ///
    /// ```
    /// use std::time::Duration;
    /// use iniesta_tokio::{InMemory, Iniesta};
    /// use tower::limit::ConcurrencyLimitLayer;
    /// use tower::timeout::TimeoutLayer;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let world = InMemory::new();
    /// let consumer = Iniesta::in_memory(&world)
    ///     // Each delivery gets 30 s, then fails and is retried ...
    ///     .layer(TimeoutLayer::new(Duration::from_secs(30)))
    ///     // ... once it is its turn: two at a time.
    ///     .layer(ConcurrencyLimitLayer::new(2))
    ///     .on("UserCreated.users", || async {})
    ///     .start()
    ///     .await?;
    ///
    /// world.publish("UserCreated.users", r#"{"id": 7}"#).await?;
    /// consumer.watch_stats().wait_for(|s| s.deleted == 1).await?;
    /// let stats = consumer.shutdown_and_wait().await?;
    /// assert_eq!(stats.succeeded, 1);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tower")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<HandlerService> + Send + 'static,
        L::Service: Service<iniesta_core::Delivery, Response = ()> + Send + 'static,
        <L::Service as Service<iniesta_core::Delivery>>::Future: Send + 'static,
        <L::Service as Service<iniesta_core::Delivery>>::Error: Into<iniesta_core::HandlerError>,
    {
        self.layers
            .push(Box::new(move |handlers: &HandlerRegistry| {
                handlers.layer(layer)
            }));
        self
    }
}

/// `queue`, shared; an `Arc<dyn Queue>` is kept rather than wrapped in a
/// second `Arc`, so calls do not go through two pointers.
fn share_queue<Q: Queue>(queue: Q) -> Arc<dyn Queue> {
    let mut slot = Some(queue);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<Arc<dyn Queue>>>() {
        Some(shared) => shared.take().expect("the slot was just filled"),
        None => Arc::new(slot.expect("the slot is still filled")),
    }
}

/// `lock`, shared; an `Arc<dyn LockBackend>` is kept as it is.
fn share_lock<L: LockBackend>(lock: L) -> Arc<dyn LockBackend> {
    let mut slot = Some(lock);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<Arc<dyn LockBackend>>>() {
        Some(shared) => shared.take().expect("the slot was just filled"),
        None => Arc::new(slot.expect("the slot is still filled")),
    }
}

#[cfg(test)]
#[path = "builder_tests.rs"]
mod tests;
