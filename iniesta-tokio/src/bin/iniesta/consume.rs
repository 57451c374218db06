//! `iniesta consume`: the library's consumer with the built-in printing
//! handler.

use std::time::Duration;

use iniesta_core::ports::{AcquireOutcome, LockBackend, LockKey};
use iniesta_core::settings::{vars, InitializationType, LockBackend as LockBackendKind, Settings};
use iniesta_core::HandlerRegistry;
use iniesta_tokio::wiring::{self, Signals};
use iniesta_tokio::{Error, Iniesta};

use crate::aws;
use crate::cli::ConsumeArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::handler::PrintHandler;

/// Verifies, connects, and consumes until SIGINT or SIGTERM; prints the
/// summary to stderr.
pub async fn run(config: &Config, args: &ConsumeArgs) -> Result<(), CliError> {
    let kind = polling_kind(config)?;
    aws::validate(config, &[kind])?;
    let mut settings = config.settings.clone();
    // The CLI's default mode is event polling (the library wants it named).
    settings.initialization_types.insert(kind);
    // Fails early, with a clear message, when no region is configured.
    aws::clients(&settings).await?;

    let chosen = wiring::lock_backend(&settings)
        .await
        .map_err(|e| lock_error(config, e))?;
    let described = chosen.describe();
    let lock = chosen.into_shared();
    probe_lock(lock.as_ref(), &settings, &described).await?;

    let mut handlers = HandlerRegistry::new();
    handlers
        .set_default(PrintHandler::new(
            Duration::from_millis(args.sleep_ms),
            args.fail_every,
        ))
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut builder = Iniesta::new()
        .settings(settings)
        .handlers(handlers)
        .lock(lock)
        // Recorded only where /metrics shows them.
        .metrics(args.listen.is_some());
    if let Some(addr) = args.listen {
        builder = builder.listen(addr);
    }
    let consumer = builder.start().await.map_err(|e| start_error(config, e))?;
    tracing::info!("consuming; stop with SIGINT or SIGTERM");

    let token = consumer.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        token.cancel();
    });
    let stats = consumer.wait().await.map_err(|e| start_error(config, e))?;
    eprintln!("iniesta: stopped; {stats}");
    Ok(())
}

/// The CLI's error (and exit code) for why the consumer could not start.
fn start_error(config: &Config, e: Error) -> CliError {
    match e {
        Error::Settings(e) => config.check(Err(e)).unwrap_err(),
        Error::Config(e) => CliError::Settings(vec![format!("{e}; adjust the INIESTA_* settings")]),
        Error::Redlock(e) => config.problem(vars::CACHES, None, e.to_string()),
        Error::Verification(report) => {
            eprintln!("{report}");
            CliError::Verification {
                failed: report.failures().len(),
            }
        }
        Error::Aws(e) => {
            CliError::Runtime(format!("{e}; check the endpoint, credentials and region"))
        }
        other => CliError::Runtime(other.to_string()),
    }
}

/// What to poll: event polling when no type is configured (the CLI's
/// default), else as the library decides.
fn polling_kind(config: &Config) -> Result<InitializationType, CliError> {
    let types = &config.settings.initialization_types;
    if types.is_empty() {
        return Ok(InitializationType::EventPolling);
    }
    wiring::polling_kind(types).ok_or_else(|| config.error(wiring::no_polling_type(types)))
}

/// The CLI's error for a lock backend that could not be built.
fn lock_error(config: &Config, e: wiring::LockError) -> CliError {
    match e {
        wiring::LockError::Redlock(e) => config.problem(vars::CACHES, None, e.to_string()),
        other => config.problem(
            vars::LOCK_BACKEND,
            Some(config.settings.lock_backend.to_string()),
            other.to_string(),
        ),
    }
}

/// Takes and releases a throw-away lock, so that unreachable lock servers
/// (or a missing table) stop the command at once instead of leaving every
/// message unlocked.
async fn probe_lock(
    lock: &dyn LockBackend,
    settings: &Settings,
    described: &str,
) -> Result<(), CliError> {
    let key = LockKey::from(format!("iniesta:probe:{}", std::process::id()));
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
        Some(AcquireOutcome::Unavailable(e)) => {
            Err(CliError::Runtime(match settings.lock_backend {
                LockBackendKind::Redlock => format!(
                    "cannot lock on a majority of the {} Redis server(s) in INIESTA_CACHES: {e}; \
                 start them or correct INIESTA_CACHES",
                    settings.caches.len()
                ),
                LockBackendKind::DynamoDb => format!(
                    "cannot lock in the {described}: {e}; create it with `iniesta provision` \
                 or correct INIESTA_DYNAMODB_TABLE and INIESTA_DYNAMODB_ENDPOINT_URL"
                ),
                other => format!(
                    "cannot lock with the {other} backend ({described}): {e}; \
                     check INIESTA_LOCK_BACKEND and that backend's settings"
                ),
            }))
        }
        // Busy or Done: someone else probes under our key; Redis answers.
        _ => Ok(()),
    }
}

/// Completes on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}; stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    match signals.recv().await {
        Ok(signal) => tracing::info!("{signal}: shutting down gracefully"),
        Err(e) => {
            tracing::error!("cannot listen for SIGINT: {e}; shutting down gracefully");
            return;
        }
    }
    tokio::spawn(async move {
        if signals.recv().await.is_ok() {
            eprintln!("error: second signal: stopping without waiting for running handlers");
            std::process::exit(i32::from(crate::error::exit::RUNTIME));
        }
    });
}
