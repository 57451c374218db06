//! Quickstart: a consumer on in-memory backends — nothing to install,
//! nothing to configure.
//!
//! ```text
//! cargo run -p iniesta-tokio --example quickstart
//! ```
//!
//! It registers handlers, publishes a handful of events to the in-memory SNS
//! topic its SQS queue is subscribed to, and consumes them, printing one line
//! per outcome:
//!
//! - `UserCreated.accounts` is handled once;
//! - `OrderPlaced.orders` is delivered twice by the topic (SNS delivers at
//!   least once); the lock and completion record make the copy harmless: it
//!   is acknowledged without running the handler again;
//! - `PaymentReceived.billing`'s handler fails the first time; the message
//!   stays in the queue, comes back after the queue's 1 s visibility
//!   timeout, and succeeds;
//! - `NewsletterSent.marketing` has no handler of its own and goes to the
//!   default handler.
//!
//! Once every event is handled it shuts down gracefully and prints the
//! counts. Set `RUST_LOG=debug` to see the consumer's own logs.
//!
//! To run the same handlers against AWS and Redis, replace
//! `Iniesta::in_memory(&world)` with `Iniesta::new()` and set the
//! `INIESTA_*` environment (see `iniesta_core::settings`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use iniesta_core::handler::{HandlerError, HandlerResult, Json, Key, State};
use iniesta_core::{DispatchOutcome, Event};
use iniesta_tokio::{Delivery, InMemory, InMemoryOptions, Iniesta};

#[derive(serde::Deserialize)]
struct UserCreated {
    id: u64,
}

#[derive(serde::Deserialize)]
struct OrderPlaced {
    id: u64,
}

#[derive(serde::Deserialize)]
struct PaymentReceived {
    id: u64,
}

/// The payment service, shared by the handlers: here a counter of attempts,
/// so that the first one fails on purpose.
#[derive(Clone, Default)]
struct Payments {
    attempts: Arc<AtomicU32>,
}

/// A handler as a named function: its extractors are its arguments, and
/// `?` works because it returns a `HandlerResult`.
async fn record_payment(
    Json(payment): Json<PaymentReceived>,
    State(payments): State<Payments>,
) -> HandlerResult {
    if payments.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(HandlerError::new(
            "payment service unreachable (first attempt fails on purpose)",
        ));
    }
    println!("  handler: payment {} recorded", payment.id);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        // Logs on stderr, in colour only on a terminal: stdout carries the
        // example's own report.
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    // The topic, this service's queue subscribed to it, and the lock
    // backend, in memory. A short visibility timeout brings a failed message
    // back quickly.
    let mut options = InMemoryOptions::default();
    options.visibility_timeout = Duration::from_secs(1);
    let world = InMemory::with_options(options)?;

    // Shared state, given once and read by any handler with `State<T>`.
    let payments = Payments::default();

    let consumer = Iniesta::in_memory(&world)
        .state(payments.clone())
        .on(
            "UserCreated.accounts",
            |Json(user): Json<UserCreated>| async move {
                println!("  handler: welcome, user {}", user.id);
            },
        )
        .on(
            "OrderPlaced.orders",
            |Json(order): Json<OrderPlaced>, key: Key| async move {
                println!("  handler: order {} placed (key {key})", order.id);
            },
        )
        .on("PaymentReceived.billing", record_payment)
        .default_handler(|d: Delivery| async move {
            println!(
                "  default handler: {} is not ours; acknowledged",
                d.message.event
            );
        })
        .observer(print_outcome)
        .start()
        .await?;

    world
        .publish("UserCreated.accounts", r#"{"id": 1}"#)
        .await?;
    world.topic().duplicate_next(1); // the next event reaches the queue twice
    world.publish("OrderPlaced.orders", r#"{"id": 2}"#).await?;
    world
        .publish("PaymentReceived.billing", r#"{"id": 3}"#)
        .await?;
    world
        .publish("NewsletterSent.marketing", r#"{"id": 4}"#)
        .await?;
    let copies = world.topic().stats().delivered;
    println!("published 4 events ({copies} copies reached the queue)");

    // Wait until every copy has left the queue: handled and deleted, or
    // recognised as a duplicate and deleted. A generous bound keeps a broken
    // setup from hanging.
    let mut stats = consumer.watch_stats();
    let all_done = tokio::time::timeout(
        Duration::from_secs(60),
        stats.wait_for(|s| s.deleted >= copies),
    )
    .await;

    let stats = consumer.shutdown_and_wait().await?;
    println!("done: {stats}");
    match all_done {
        Ok(Ok(_)) if world.queue().is_empty() => Ok(()),
        _ => Err(format!(
            "not every event was handled; {} left in the queue",
            world.queue().len()
        )
        .into()),
    }
}

/// One line per message outcome.
fn print_outcome(event: &Event) {
    match event {
        Event::Succeeded { message, elapsed } => println!(
            "ok        {} (key {}, delivery {}) in {elapsed:.1?}",
            message.event,
            message.key(),
            message.receive_count
        ),
        Event::Failed {
            message, outcome, ..
        } => {
            let why = match outcome {
                DispatchOutcome::Failed { error, .. } => error.to_string(),
                DispatchOutcome::Panicked(p) => format!("panicked: {p}"),
                other => format!("{other:?}"),
            };
            println!(
                "failed    {} (key {}, delivery {}): {why}; it will come back",
                message.event,
                message.key(),
                message.receive_count
            );
        }
        Event::Duplicate { message } => println!(
            "duplicate {} (key {}): already handled; deleted without running the handler",
            message.event,
            message.key()
        ),
        Event::NoHandler { message } => println!(
            "unhandled {} (key {}): no handler; left in the queue",
            message.event,
            message.key()
        ),
        _ => {}
    }
}
