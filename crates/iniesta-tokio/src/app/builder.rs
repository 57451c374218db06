//! The [`Iniesta`] app builder and the [`ConsumerHandle`] of a running
//! consumer.

use std::future::Future;
use std::sync::Arc;

use iniesta_core::registry::Events;
use iniesta_core::settings::{Settings, SettingsError};
use iniesta_core::{
    ConfigError, Consumer, ConsumerConfig, Delivery, DeliveryMode, Handler, HandlerError,
    HandlerRegistry, LockBackend, Observer, Queue, RegistryError, Runtime, Stats,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::observe::{
    traced_handlers, FanOut, MetricsObserver, StatsObserver, StatsWatch, TracingObserver,
};
use crate::runtime::TokioRuntime;

/// Why a consumer could not start (or ended abnormally). Each message says
/// what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad or missing settings; one line per problem.
    #[error("invalid iniesta settings:\n{0}")]
    Settings(#[from] SettingsError),
    /// A handler registration was refused (an event registered twice, an
    /// empty event name, two default handlers).
    #[error("handler registration refused: {0}")]
    Handlers(#[from] RegistryError),
    /// No handler at all.
    #[error(
        "no handlers registered: add one with .on(event, handler) or \
         .default_handler(handler); without one every message would stay in the queue"
    )]
    NoHandlers,
    /// The consumer configuration does not fit together.
    #[error("invalid consumer configuration: {0}")]
    Config(#[from] ConfigError),
    /// The start-up verification failed; the report lists every problem and
    /// how to fix it.
    #[cfg(feature = "aws")]
    #[error("{0}")]
    Verification(Box<iniesta_aws::VerificationReport>),
    /// An AWS call needed to start failed.
    #[cfg(feature = "aws")]
    #[error(transparent)]
    Aws(#[from] iniesta_aws::AwsError),
    /// The Redlock could not be built from `INIESTA_CACHES`.
    #[cfg(feature = "redlock")]
    #[error(transparent)]
    Redlock(#[from] iniesta_redlock::RedlockError),
    /// No queue backend was chosen.
    #[error(
        "no queue to consume: pass one with .queue(..), use in-memory backends \
         (.in_memory_backends(..), `mock` feature), or enable the `aws` feature"
    )]
    NoQueue,
    /// A queue was given with `.queue(..)` but no name for it: lock keys are
    /// scoped to the queue's name.
    #[error(
        "the queue given with .queue(..) has no name: set INIESTA_SQS_QUEUE_NAME \
         (or SERVICE_NAME for the queue-name template); lock keys are scoped to it"
    )]
    NoQueueName,
    /// No lock backend was chosen.
    #[error(
        "no lock backend: pass one with .lock(..), use in-memory backends \
         (.in_memory_backends(..), `mock` feature), or enable the `redlock` feature"
    )]
    NoLock,
    /// The consumer task ended abnormally (it panicked or was cancelled).
    #[error("the consumer task ended abnormally: {0}")]
    Crashed(String),
    /// The process could not listen for SIGINT/SIGTERM.
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] std::io::Error),
}

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
/// - Otherwise, with the `redlock` feature, the lock is a Redlock over
///   `INIESTA_CACHES` (`INIESTA_LOCK_RETRY_COUNT` attempts per lock).
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
pub struct Iniesta {
    settings: Option<Settings>,
    handlers: HandlerRegistry,
    registration_error: Option<RegistryError>,
    queue: Option<Arc<dyn Queue>>,
    lock: Option<Arc<dyn LockBackend>>,
    delivery_mode: Option<DeliveryMode>,
    #[cfg(feature = "mock")]
    in_memory: Option<crate::memory::InMemory>,
    observers: Vec<Box<dyn Observer>>,
    tracing: bool,
    metrics: bool,
    tune: Vec<Tune>,
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

    /// Resolves the settings and backends, runs the start-up checks, and
    /// starts consuming in a background task.
    ///
    /// Must be called inside a tokio runtime. Errors say what to change:
    /// invalid settings (every problem at once), a refused handler
    /// registration, a failed verification (the report), no backend.
    pub async fn start(self) -> Result<ConsumerHandle, Error> {
        let Iniesta {
            settings,
            handlers,
            registration_error,
            queue,
            lock,
            delivery_mode,
            #[cfg(feature = "mock")]
            in_memory,
            observers,
            tracing,
            metrics,
            tune,
        } = self;
        if let Some(e) = registration_error {
            return Err(e.into());
        }
        if handlers.events().is_empty() && !handlers.has_default() {
            return Err(Error::NoHandlers);
        }
        #[cfg_attr(not(feature = "mock"), allow(unused_mut))]
        let mut settings = match settings {
            Some(s) => s,
            None => Settings::from_env()?,
        };

        // Without some backend features, fewer choices follow.
        #[allow(unused_mut)]
        let mut chosen_queue = queue.map(|q| (q, "given".to_owned(), None::<String>));
        #[allow(unused_mut)]
        let mut chosen_lock = lock.map(|l| (l, "given".to_owned()));
        #[allow(unused_mut)]
        let mut mode = delivery_mode;

        #[cfg(feature = "mock")]
        if let Some(world) = &in_memory {
            settings.topic_arn = Some(world.topic().arn().to_owned());
            settings.event_key = world.options().event_key.clone();
            if chosen_queue.is_none() {
                let q: Arc<dyn Queue> = Arc::new(world.queue().clone());
                let name = world.queue().name().to_owned();
                chosen_queue = Some((q, format!("in-memory queue {name}"), Some(name)));
                mode = mode.or(Some(world.delivery_mode()));
            }
            if chosen_lock.is_none() {
                let l: Arc<dyn LockBackend> = Arc::new(world.lock().clone());
                chosen_lock = Some((l, "in-memory lock".to_owned()));
            }
        }

        let settings_mode = settings.raw_delivery.map(|raw| {
            if raw {
                DeliveryMode::Raw
            } else {
                DeliveryMode::Envelope
            }
        });

        #[cfg(feature = "aws")]
        if chosen_queue.is_none() {
            let (q, detected, described) = aws_queue(&settings, mode.or(settings_mode)).await?;
            chosen_queue = Some((q, described, settings.resolved_queue_name().ok()));
            mode = mode.or(detected);
        }

        #[cfg(feature = "redlock")]
        if chosen_lock.is_none() {
            let mut config = iniesta_redlock::RedlockConfig::with_urls(settings.caches.clone());
            // The setting counts attempts; the Redlock counts retries after
            // the first attempt.
            config.retry_count = settings.lock_retry_count.saturating_sub(1);
            let nodes = config.urls.len();
            let l: Arc<dyn LockBackend> = Arc::new(iniesta_redlock::Redlock::new(config)?);
            chosen_lock = Some((l, format!("Redlock over {nodes} Redis node(s)")));
        }

        let (queue, queue_desc, queue_name) = chosen_queue.ok_or(Error::NoQueue)?;
        // Lock keys are scoped to the queue (services on one topic may share
        // lock servers). A queue given by `.queue(…)` is named by the
        // settings (`INIESTA_SQS_QUEUE_NAME`, or the template).
        let scope = queue_name
            .or_else(|| settings.resolved_queue_name().ok())
            .ok_or(Error::NoQueueName)?;
        let (lock, lock_desc) = chosen_lock.ok_or(Error::NoLock)?;
        let mode = mode.or(settings_mode).unwrap_or(DeliveryMode::Envelope);

        let mut config = ConsumerConfig::from_settings(&settings, mode, &scope);
        for f in tune {
            f(&mut config);
        }
        let registry = if tracing {
            traced_handlers(&handlers)
        } else {
            handlers.clone()
        };

        let runtime = TokioRuntime::new();
        let max_in_flight = config.max_in_flight;
        let consumer = Consumer::new(config, registry, runtime.now())?;

        let (stats_observer, stats) = StatsObserver::new();
        let mut observer = FanOut::new().with(stats_observer);
        if tracing {
            observer.push(TracingObserver::new());
        }
        if metrics {
            observer.push(MetricsObserver::new());
        }
        for o in observers {
            observer.push_boxed(o);
        }

        let shutdown = CancellationToken::new();
        let run = iniesta_core::driver::run(
            consumer,
            queue,
            lock,
            runtime,
            shutdown.clone().cancelled_owned(),
            observer,
        );
        let task = tokio::spawn(async move {
            let stats = run.await;
            if tracing {
                tracing::info!(%stats, "iniesta consumer finished");
            }
            stats
        });
        if tracing {
            tracing::info!(
                queue = %queue_desc,
                lock = %lock_desc,
                delivery = ?mode,
                max_in_flight,
                events = ?handlers.events(),
                default_handler = handlers.has_default(),
                "iniesta consumer started"
            );
        }
        Ok(ConsumerHandle {
            shutdown,
            stats,
            task,
        })
    }

    /// [`start`](Self::start)s the consumer, runs it until SIGINT or SIGTERM
    /// (Ctrl-C), then shuts it down gracefully; returns what it did.
    pub async fn run_until_signal(self) -> Result<Stats, Error> {
        self.start().await?.run_until_signal().await
    }
}

/// The SQS queue the settings name, verified unless `INIESTA_DRY_RUN`.
/// Returns the queue, the delivery mode to use when known, and a
/// description for the start-up log.
#[cfg(feature = "aws")]
async fn aws_queue(
    settings: &Settings,
    wanted_mode: Option<DeliveryMode>,
) -> Result<(Arc<dyn Queue>, Option<DeliveryMode>, String), Error> {
    use iniesta_aws::{verify, AwsClients, AwsEndpoints, SqsQueue, VerifyRequest, VerifyScope};
    use iniesta_core::settings::{InitializationType, SettingsProblem};

    let scope = if settings.wants(InitializationType::EventPolling) {
        VerifyScope::EventPolling
    } else if settings.wants(InitializationType::QueuePolling) {
        VerifyScope::QueuePolling
    } else {
        let mut error = SettingsError::new(vec![SettingsProblem::new(
            iniesta_core::settings::vars::INITIALIZATION_TYPE,
            (!settings.initialization_types.is_empty()).then(|| {
                settings
                    .initialization_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            "expected EVENT_POLLING (consume the events of the global topic) or \
             QUEUE_POLLING (consume the queue alone) to run a consumer",
        )]);
        if let Err(e) = settings.validate_initialization_types() {
            error.merge(e);
        }
        return Err(error.into());
    };
    settings.validate_initialization_types()?;
    let queue_name = settings.resolved_queue_name()?;
    let clients = AwsClients::from_env(AwsEndpoints {
        sqs: settings.sqs_endpoint_url.clone(),
        sns: settings.sns_endpoint_url.clone(),
    })
    .await;

    // Messages sent to a queue directly carry the event as a message
    // attribute, as raw delivery does.
    let fallback = match scope {
        VerifyScope::QueuePolling => DeliveryMode::Raw,
        _ => DeliveryMode::Envelope,
    };
    if settings.dry_run {
        let queue = SqsQueue::connect(clients.sqs.clone(), &queue_name).await?;
        let mode = wanted_mode.unwrap_or(fallback);
        tracing::info!(
            queue = %queue_name, delivery = ?mode,
            "INIESTA_DRY_RUN is set: skipping the AWS start-up checks"
        );
        let q: Arc<dyn Queue> = Arc::new(queue);
        return Ok((q, Some(mode), format!("SQS queue {queue_name}")));
    }

    let filter_policy = match scope {
        // Validated above: event polling has a valid, non-empty filter list.
        VerifyScope::EventPolling => settings.filter_policy().ok(),
        _ => None,
    };
    let request = VerifyRequest {
        scope,
        topic_arn: settings.topic_arn.clone(),
        queue_name: queue_name.clone(),
        filter_policy,
        assert_filter_policies: settings.assert_filter_policies,
        lock_timeout: Some(settings.lock_timeout),
        expected_delivery_mode: wanted_mode,
    };
    let report = verify(&clients, &request).await;
    if !report.is_ok() {
        return Err(Error::Verification(Box::new(report)));
    }
    for warning in report.warnings() {
        tracing::warn!("start-up check: {warning}");
    }
    let url = report.queue_url().map(str::to_owned).ok_or_else(|| {
        iniesta_aws::AwsError::Invalid(format!(
            "the verification passed without resolving the URL of queue {queue_name}"
        ))
    })?;
    let mode = wanted_mode.or(report.delivery_mode()).unwrap_or(fallback);
    let q: Arc<dyn Queue> = Arc::new(SqsQueue::new(clients.sqs.clone(), url));
    Ok((q, Some(mode), format!("SQS queue {queue_name}")))
}

/// A running consumer.
///
/// # Shutdown
///
/// [`shutdown`](Self::shutdown) (or a signal, with
/// [`run_until_signal`](Self::run_until_signal)) starts a graceful shutdown:
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
/// 4. the consumer stops, and [`wait`](Self::wait) returns its [`Stats`].
///
/// When `wait` returns, no handler runs and every message that was in
/// progress was completed and deleted, or released and left in the queue.
///
/// Dropping the handle does **not** stop the consumer: it keeps running in
/// its task until the runtime ends. Call `shutdown` first.
#[derive(Debug)]
pub struct ConsumerHandle {
    shutdown: CancellationToken,
    stats: StatsWatch,
    task: JoinHandle<Stats>,
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
                        tracing::info!("shutdown signal received; stopping the consumer gracefully");
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

/// Completes when the process receives SIGINT (Ctrl-C) or SIGTERM (on
/// non-Unix systems: Ctrl-C). Use it as the shutdown trigger of a web
/// server that runs beside the consumer.
///
/// Fails when the signal handlers cannot be installed.
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
