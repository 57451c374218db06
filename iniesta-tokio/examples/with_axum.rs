//! A web service that also consumes events: the consumer starts with the
//! server and stops with it.
//!
//! ```text
//! cargo run -p iniesta-tokio --example with_axum
//! curl localhost:3000/health
//! curl -X POST localhost:3000/publish/UserCreated.accounts -d '{"id": 1}'
//! curl localhost:3000/health
//! # Ctrl-C (or SIGTERM): the server stops accepting requests, the consumer
//! # finishes the events in progress, both exit.
//! ```
//!
//! As the original Iniesta attaches its poller to the web app's start and
//! stop listeners, the consumer starts before the server accepts requests,
//! and one SIGINT/SIGTERM shuts down both gracefully: one token is given to
//! both `with_graceful_shutdown`s, so axum drains its connections while the
//! consumer stops receiving, lets running handlers finish (within
//! `INIESTA_SHUTDOWN_GRACE`), and releases or completes every message in
//! progress; awaiting the consumer's handle waits for that.
//!
//! `/health` reports the consumer's live counts (503 once it is stopping).
//!
//! # Backends
//!
//! By default everything is in memory, so the example runs anywhere; the
//! `/publish/{event}` route publishes into the in-memory topic.
//!
//! To consume a real SQS queue with a Redlock over Redis, set the
//! `INIESTA_*` environment; the example then builds the consumer with
//! `Iniesta::new()`, which reads it, verifies the AWS resources at start-up
//! and uses the Redis servers of `INIESTA_CACHES`:
//!
//! ```text
//! INIESTA_INITIALIZATION_TYPE=EVENT_POLLING \
//! INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN=arn:aws:sns:eu-west-1:123456789012:global \
//! INIESTA_SQS_CONSUMER_FILTERS='UserCreated.*' \
//! INIESTA_CACHES=redis://10.0.0.1:6379/0,redis://10.0.0.2:6379/0,redis://10.0.0.3:6379/0 \
//! SERVICE_NAME=accounts \
//! cargo run -p iniesta-tokio --example with_axum
//! ```
//!
//! (`INIESTA_SQS_ENDPOINT_URL` / `INIESTA_SNS_ENDPOINT_URL` point it at an
//! emulator such as moto or LocalStack.) `PORT` sets the listening port
//! (default 3000).

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use iniesta_tokio::{shutdown_signal, Delivery, InMemory, Iniesta, Key, StatsWatch};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    stats: StatsWatch,
    stopping: CancellationToken,
    /// The in-memory world, when not running against AWS.
    world: Option<InMemory>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let use_environment = std::env::var_os("INIESTA_INITIALIZATION_TYPE").is_some();
    let world = (!use_environment).then(InMemory::new);
    let builder = match &world {
        Some(world) => Iniesta::in_memory(world),
        None => Iniesta::new(),
    };

    // One token stops both the server and the consumer; a signal cancels it.
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = shutdown_signal().await {
            tracing::error!(%e, "cannot listen for SIGINT/SIGTERM; stopping now");
        }
        on_signal.cancel();
    });

    // Start: the consumer first, so the service never serves without it.
    let consumer =
        builder
            .on(
                "UserCreated.accounts",
                // `iniesta_tokio::Json` decodes an event; `axum::Json` a request.
                |iniesta_tokio::Json(user): iniesta_tokio::Json<serde_json::Value>,
                 Key(key): Key| async move {
                    tracing::info!(%user, %key, "welcoming a new user");
                },
            )
            .default_handler(|d: Delivery| async move {
                tracing::info!(event = %d.message.event, "event without a handler of its own");
            })
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .start()
            .await?;

    let state = AppState {
        stats: consumer.watch_stats(),
        stopping: shutdown.clone(),
        world,
    };
    let app = Router::new()
        .route("/health", get(health))
        .route("/publish/{event}", post(publish))
        .with_state(state);

    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000u16);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;

    // Stop: whatever ended the server (an error too), the consumer finishes
    // its work before the process exits.
    shutdown.cancel();
    let stats = consumer.await?;
    tracing::info!(%stats, "stopped");
    served?;
    Ok(())
}

async fn health(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let s = state.stats.get();
    let stopping = state.stopping.is_cancelled();
    let status = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if stopping { "stopping" } else { "ok" },
        "consumer": {
            "received": s.received,
            "dispatched": s.dispatched,
            "succeeded": s.succeeded,
            "failed": s.failed,
            "panicked": s.panicked,
            "aborted": s.aborted,
            "duplicates_acked": s.acked_duplicates,
            "skipped_busy": s.skipped_busy,
            "lock_unavailable": s.lock_unavailable,
            "no_handler": s.no_handler,
            "malformed": s.malformed,
            "deleted": s.deleted,
            "delete_failures": s.delete_failures,
        },
    });
    (status, Json(body))
}

async fn publish(
    State(state): State<AppState>,
    Path(event): Path<String>,
    body: String,
) -> (StatusCode, String) {
    let Some(world) = &state.world else {
        return (
            StatusCode::NOT_FOUND,
            "publishing here is for the in-memory demo; publish to SNS instead\n".into(),
        );
    };
    match world.publish(&event, body).await {
        Ok(id) => (StatusCode::ACCEPTED, format!("published {event} as {id}\n")),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}
