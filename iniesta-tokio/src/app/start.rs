//! Starting a consumer: the backends chosen, the start-up checks run, the
//! driver spawned with its observers.

#[cfg(any(feature = "mock", feature = "aws"))]
use std::sync::Arc;

use iniesta_core::settings::Settings;
#[cfg(feature = "mock")]
use iniesta_core::LockBackend;
#[cfg(any(feature = "mock", feature = "aws"))]
use iniesta_core::Queue;
use iniesta_core::{Consumer, ConsumerConfig, DeliveryMode, Driver, Runtime, Stats};
use tokio_util::sync::CancellationToken;

use super::{ConsumerHandle, Error, Iniesta, LOG_TARGET};
use crate::observe::{traced_handlers, FanOut, MetricsObserver, StatsObserver, TracingObserver};
use crate::runtime::TokioRuntime;
use crate::wiring;

impl Iniesta {
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
            graceful_shutdown,
            #[cfg(feature = "tower")]
            layers,
            #[cfg(any(feature = "aws", feature = "dynamodb"))]
            aws,
            #[cfg(feature = "http")]
            listen,
        } = self;
        if let Some(e) = registration_error {
            return Err(e);
        }
        handlers.check_state()?;
        if handlers.events().is_empty() && !handlers.has_default() {
            return Err(Error::NoHandlers);
        }
        #[cfg_attr(not(feature = "mock"), allow(unused_mut))]
        let mut settings = match settings {
            Some(s) => s,
            None => Settings::from_env()?,
        };
        // Listening from here on, `/healthz` answers during the start-up
        // checks; a failed start drops (and so stops) the server.
        #[cfg(feature = "http")]
        let http = match listen {
            Some(addr) => Some(crate::http::HttpServer::bind(addr, tracing).await?),
            None => None,
        };

        // Without some backend features, fewer choices follow.
        #[allow(unused_mut)]
        let mut chosen_queue = queue.map(|q| (q, "given".to_owned(), None::<String>));
        #[allow(unused_mut)]
        let mut chosen_lock = lock.map(|l| (l, "given".to_owned()));
        #[allow(unused_mut)]
        let mut mode = delivery_mode;
        // Whether the queue is FIFO, when its attributes said so; else its
        // name tells (below).
        #[allow(unused_mut)]
        let mut queue_fifo: Option<bool> = None;

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

        let settings_mode = wiring::delivery_mode(&settings);

        #[cfg(feature = "aws")]
        if chosen_queue.is_none() {
            let sqs = sqs_queue(&settings, mode.or(settings_mode), &aws).await?;
            chosen_queue = Some((sqs.queue, sqs.described, Some(sqs.name)));
            mode = mode.or(Some(sqs.mode));
            queue_fifo = Some(sqs.fifo);
        }

        #[cfg(any(feature = "redlock", feature = "dynamodb"))]
        if chosen_lock.is_none() {
            #[cfg(feature = "dynamodb")]
            let given = super::aws::given_dynamodb_lock(&settings, &aws);
            #[cfg(not(feature = "dynamodb"))]
            let given = None;
            let chosen = match given {
                Some(chosen) => chosen,
                None => wiring::lock_backend(&settings)
                    .await
                    .map_err(Error::from_lock)?,
            };
            let described = chosen.describe();
            chosen_lock = Some((chosen.into_shared(), described));
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
        #[cfg(feature = "http")]
        let queue = match &http {
            Some(server) => server.watch(queue, &lock, &scope, &lock_desc),
            None => queue,
        };

        let mut config = ConsumerConfig::from_settings(&settings, mode, &scope);
        // SQS requires a FIFO queue's name to end in `.fifo` (and only a
        // FIFO queue's), so the name tells the kind of a queue whose
        // attributes were not read. Set before `tune`, which may override.
        config.fifo = queue_fifo.unwrap_or_else(|| scope.ends_with(".fifo"));
        if tracing {
            tracing::info!(
                target: LOG_TARGET,
                queue = %queue_desc,
                fifo = config.fifo,
                "{}",
                if config.fifo {
                    "FIFO queue detected: the messages of one group are handled one at a time, in order"
                } else {
                    "standard queue detected: messages are handled in any order"
                }
            );
        }
        for f in tune {
            f(&mut config);
        }
        // The layers given to `.layer(..)` go around every handler now that
        // all are registered, in the order given; the span goes around them.
        #[cfg(feature = "tower")]
        let handlers = layers
            .into_iter()
            .fold(handlers, |handlers, apply| apply(&handlers));
        let registry = if tracing {
            traced_handlers(&handlers)
        } else {
            handlers.clone()
        };

        let runtime = TokioRuntime::new();
        let max_in_flight = config.max_in_flight;
        let consumer = Consumer::new(config, &registry, runtime.now())?;

        let (stats_observer, stats) = StatsObserver::new();
        let mut observer = FanOut::new().with(stats_observer);
        if tracing {
            observer.push(TracingObserver::new());
        }
        if metrics {
            observer.push(MetricsObserver::for_registry(&handlers));
        }
        for o in observers {
            observer.push_boxed(o);
        }

        let shutdown = CancellationToken::new();
        #[cfg(feature = "http")]
        let listen_addr = http.as_ref().map(|server| {
            server.running(&shutdown);
            server.local_addr()
        });
        let driver = Driver::new(consumer, registry, queue, lock, runtime);
        let run = driver.run(shutdown.clone().cancelled_owned(), observer);
        let trigger = shutdown.clone();
        let task = tokio::spawn(async move {
            // The signal lives in the consumer's task: it is dropped when
            // the consumer stops, whatever stopped it.
            let signal = async move {
                match graceful_shutdown {
                    Some(signal) => signal.await,
                    None => std::future::pending().await,
                }
                if tracing && !trigger.is_cancelled() {
                    tracing::info!(
                        target: LOG_TARGET,
                        "graceful shutdown requested; stopping the consumer"
                    );
                }
                trigger.cancel();
            };
            tokio::pin!(run);
            let stats = tokio::select! {
                stats = &mut run => stats,
                () = signal => run.await,
            };
            if tracing {
                tracing::info!(target: LOG_TARGET, %stats, "iniesta consumer finished");
            }
            #[cfg(feature = "http")]
            if let Some(server) = http {
                server.stop().await;
            }
            stats
        });
        if tracing {
            tracing::info!(
                target: LOG_TARGET,
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
            #[cfg(feature = "http")]
            listen_addr,
        })
    }

    /// [`start`](Self::start)s the consumer, runs it until SIGINT or SIGTERM
    /// (Ctrl-C), then shuts it down gracefully; returns what it did.
    pub async fn run_until_signal(self) -> Result<Stats, Error> {
        self.start().await?.run_until_signal().await
    }
}

/// The SQS queue the settings name, ready to poll.
#[cfg(feature = "aws")]
struct SqsChoice {
    queue: Arc<dyn Queue>,
    /// The queue's name; lock keys are scoped to it.
    name: String,
    /// The delivery mode to parse with.
    mode: DeliveryMode,
    /// For the start-up log.
    described: String,
    /// Whether the queue is FIFO: its `FifoQueue` attribute as the
    /// verification read it, else its name.
    fifo: bool,
}

/// The SQS queue the settings name, on the given clients or configuration
/// if any, verified unless `INIESTA_DRY_RUN`, and the delivery mode to use:
/// `wanted_mode`, else the one the verification detects, else the default
/// of what is polled.
#[cfg(feature = "aws")]
async fn sqs_queue(
    settings: &Settings,
    wanted_mode: Option<DeliveryMode>,
    given: &super::aws::GivenAws,
) -> Result<SqsChoice, Error> {
    use iniesta_aws::{verify, SqsQueue};

    let polling = wiring::Polling::from_settings(settings)?;
    let clients = wiring::aws_clients_with(
        settings,
        given.config.as_ref(),
        given.sqs.clone(),
        given.sns.clone(),
    )
    .await;
    let queue_name = polling.queue_name.clone();
    let described = format!("SQS queue {queue_name}");
    let fallback = polling.default_delivery_mode();
    if settings.dry_run {
        let queue = SqsQueue::connect(clients.sqs.clone(), &queue_name).await?;
        let mode = wanted_mode.unwrap_or(fallback);
        tracing::info!(
            target: LOG_TARGET,
            queue = %queue_name, delivery = ?mode,
            "INIESTA_DRY_RUN is set: skipping the AWS start-up checks"
        );
        return Ok(SqsChoice {
            queue: Arc::new(queue),
            fifo: iniesta_aws::is_fifo_name(&queue_name),
            name: queue_name,
            mode,
            described,
        });
    }

    let scope = wiring::verify_scope(polling.kind);
    let request = wiring::verify_request(settings, scope, wanted_mode);
    let report = verify(&clients, &request).await;
    if !report.is_ok() {
        return Err(Error::Verification(Box::new(report)));
    }
    for warning in report.warnings() {
        tracing::warn!(target: LOG_TARGET, "start-up check: {warning}");
    }
    let url = report.queue_url().map(str::to_owned).ok_or_else(|| {
        iniesta_aws::AwsError::Invalid(format!(
            "the verification passed without resolving the URL of queue {queue_name}"
        ))
    })?;
    Ok(SqsChoice {
        queue: Arc::new(SqsQueue::new(clients.sqs.clone(), url)),
        fifo: report
            .queue_is_fifo()
            .unwrap_or_else(|| iniesta_aws::is_fifo_name(&queue_name)),
        name: queue_name,
        mode: wanted_mode.or(report.delivery_mode()).unwrap_or(fallback),
        described,
    })
}
