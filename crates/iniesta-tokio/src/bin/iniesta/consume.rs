//! `iniesta consume`: the consumer with the built-in printing handler.

use std::sync::Arc;
use std::time::Duration;

use iniesta_aws::{resolve_queue_url, AwsClients, SqsQueue, VerifyScope};
use iniesta_core::driver::{self, Runtime};
use iniesta_core::ports::{AcquireOutcome, LockBackend};
use iniesta_core::settings::{vars, InitializationType, Settings};
use iniesta_core::{Consumer, ConsumerConfig, DeliveryMode, HandlerRegistry};
use iniesta_redlock::{Redlock, RedlockConfig};

use crate::aws;
use crate::cli::ConsumeArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::handler::PrintHandler;

/// Verifies, connects, and consumes until SIGINT or SIGTERM; prints the
/// summary to stderr.
pub async fn run(config: &Config, args: &ConsumeArgs) -> Result<(), CliError> {
    let settings = &config.settings;
    let kind = polling_kind(config)?;
    aws::validate(config, &[kind])?;
    let clients = aws::clients(settings).await?;
    let (queue_url, mode) = connect(&clients, settings, kind).await?;
    tracing::info!(queue = %queue_url, ?mode, "consuming");

    let lock = Arc::new(redlock(config)?);
    probe_lock(&lock, settings).await?;

    let mut handlers = HandlerRegistry::new();
    handlers
        .set_default(PrintHandler::new(
            Duration::from_millis(args.sleep_ms),
            args.fail_every,
        ))
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let runtime = crate::interim::TokioRuntime::new();
    let consumer = Consumer::new(
        ConsumerConfig::from_settings(settings, mode),
        handlers,
        runtime.now(),
    )
    .map_err(|e| CliError::Settings(vec![format!("{e}; adjust the INIESTA_* settings")]))?;
    let queue = Arc::new(SqsQueue::new(clients.sqs.clone(), queue_url));
    let stats = driver::run(
        consumer,
        queue,
        lock,
        runtime,
        shutdown_signal(),
        crate::interim::TracingObserver::new(),
    )
    .await;
    eprintln!("iniesta: stopped; {stats}");
    Ok(())
}

/// Event polling, unless only queue polling is configured.
fn polling_kind(config: &Config) -> Result<InitializationType, CliError> {
    let types = &config.settings.initialization_types;
    if types.is_empty() || types.contains(&InitializationType::EventPolling) {
        Ok(InitializationType::EventPolling)
    } else if types.contains(&InitializationType::QueuePolling) {
        Ok(InitializationType::QueuePolling)
    } else {
        Err(config.problem(
            vars::INITIALIZATION_TYPE,
            Some(
                types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "expected EVENT_POLLING or QUEUE_POLLING among the types to consume",
        ))
    }
}

/// The queue URL and delivery mode: from the start-up verification, or,
/// with INIESTA_DRY_RUN, from the queue name and the settings alone.
async fn connect(
    clients: &AwsClients,
    settings: &Settings,
    kind: InitializationType,
) -> Result<(String, DeliveryMode), CliError> {
    // Queue polling reads whatever was sent to the queue: raw messages.
    let fallback_mode = match kind {
        InitializationType::QueuePolling => DeliveryMode::Raw,
        _ => DeliveryMode::Envelope,
    };
    let configured_mode = settings.raw_delivery.map(aws::delivery_mode);
    if settings.dry_run {
        let name = settings.resolved_queue_name().unwrap_or_default();
        let url = resolve_queue_url(&clients.sqs, &name)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        return Ok((url, configured_mode.unwrap_or(fallback_mode)));
    }
    let scope = match kind {
        InitializationType::QueuePolling => VerifyScope::QueuePolling,
        _ => VerifyScope::EventPolling,
    };
    let report = aws::run_verify(clients, settings, scope).await;
    if !report.is_ok() {
        eprintln!("{report}");
        return Err(CliError::Verification {
            failed: report.failures().len(),
        });
    }
    for warning in report.warnings() {
        tracing::warn!("start-up check: {warning}");
    }
    let url = report.queue_url().map(str::to_owned).ok_or_else(|| {
        CliError::Runtime("the verification found no queue URL; run `iniesta verify`".into())
    })?;
    let mode = report
        .delivery_mode()
        .or(configured_mode)
        .unwrap_or(fallback_mode);
    Ok((url, mode))
}

/// The Redlock over INIESTA_CACHES.
fn redlock(config: &Config) -> Result<Redlock, CliError> {
    let settings = &config.settings;
    let mut redlock = RedlockConfig::with_urls(settings.caches.iter().cloned());
    // INIESTA_LOCK_RETRY_COUNT counts attempts; the Redlock counts retries.
    redlock.retry_count = settings.lock_retry_count.saturating_sub(1);
    Redlock::new(redlock).map_err(|e| config.problem(vars::CACHES, None, e.to_string()))
}

/// Takes and releases a throw-away lock, so that unreachable Redis servers
/// stop the command at once instead of leaving every message unlocked.
async fn probe_lock(lock: &Redlock, settings: &Settings) -> Result<(), CliError> {
    let key = format!("iniesta:probe:{}", std::process::id());
    let outcome = lock
        .acquire(vec![key.clone()], Duration::from_secs(5))
        .await
        .into_iter()
        .next();
    match outcome {
        Some(AcquireOutcome::Acquired { token, .. }) => {
            let _ = lock.release(key, token).await;
            Ok(())
        }
        Some(AcquireOutcome::Unavailable(e)) => Err(CliError::Runtime(format!(
            "cannot lock on a majority of the {} Redis server(s) in INIESTA_CACHES: {e}; \
             start them or correct INIESTA_CACHES",
            settings.caches.len()
        ))),
        // Busy or Done: someone else probes under our key; Redis answers.
        _ => Ok(()),
    }
}

/// Completes on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}; stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down gracefully"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("error: second signal: stopping without waiting for running handlers");
        std::process::exit(i32::from(crate::error::exit::RUNTIME));
    });
}
