//! The [`Iniesta`] builder: settings, handlers, backends and observability,
//! gathered before [`start`](Iniesta::start).

use std::future::Future;
use std::sync::Arc;

use iniesta_core::registry::Events;
use iniesta_core::settings::Settings;
use iniesta_core::{
    ConsumerConfig, Delivery, DeliveryMode, Handler, HandlerError, HandlerRegistry, LockBackend,
    Observer, Queue, RegistryError,
};

type Tune = Box<dyn FnOnce(&mut ConsumerConfig) + Send>;

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
///
/// # Example
///
/// ```
/// use iniesta_core::Delivery;
/// use iniesta_tokio::{InMemory, Iniesta};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let world = InMemory::new();
/// let consumer = Iniesta::in_memory(&world)
///     .on("UserCreated.users", |d: Delivery| async move {
///         println!("welcome {}", d.message.body);
///         Ok::<_, std::io::Error>(())
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
    pub(super) registration_error: Option<RegistryError>,
    pub(super) queue: Option<Arc<dyn Queue>>,
    pub(super) lock: Option<Arc<dyn LockBackend>>,
    pub(super) delivery_mode: Option<DeliveryMode>,
    #[cfg(feature = "mock")]
    pub(super) in_memory: Option<crate::memory::InMemory>,
    pub(super) observers: Vec<Box<dyn Observer>>,
    pub(super) tracing: bool,
    pub(super) metrics: bool,
    pub(super) tune: Vec<Tune>,
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

    /// Replaces the handlers with `registry`.
    pub fn handlers(mut self, registry: HandlerRegistry) -> Self {
        self.handlers = registry;
        self
    }

    /// Registers an async closure for one event or a list of events. A
    /// refused registration (an event taken twice) is reported by
    /// [`start`](Self::start).
    pub fn on<F, Fut, E>(mut self, events: impl Events, f: F) -> Self
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<HandlerError> + 'static,
    {
        if let Err(e) = self.handlers.on(events, f) {
            self.registration_error.get_or_insert(e);
        }
        self
    }

    /// Registers a [`Handler`] for one event or a list of events.
    pub fn handler(mut self, events: impl Events, handler: impl Handler) -> Self {
        if let Err(e) = self.handlers.add(events, handler) {
            self.registration_error.get_or_insert(e);
        }
        self
    }

    /// Registers the default handler: it gets every event without a handler
    /// of its own (without one, such messages stay in the queue).
    pub fn default_handler<F, Fut, E>(mut self, f: F) -> Self
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<HandlerError> + 'static,
    {
        if let Err(e) = self.handlers.on_default(f) {
            self.registration_error.get_or_insert(e);
        }
        self
    }

    /// Consumes this queue (wins over every other choice).
    pub fn queue(mut self, queue: Arc<dyn Queue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Locks with this backend (wins over every other choice).
    pub fn lock(mut self, lock: Arc<dyn LockBackend>) -> Self {
        self.lock = Some(lock);
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

    /// Adjusts the consumer configuration derived from the settings (for
    /// knobs without a setting: retry delays, receive backoff, …). Runs after
    /// the settings are applied; the result is validated.
    pub fn configure(mut self, f: impl FnOnce(&mut ConsumerConfig) + Send + 'static) -> Self {
        self.tune.push(Box::new(f));
        self
    }
}
