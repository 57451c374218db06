//! The built-in handler of `iniesta consume`: one JSON line per handled
//! event on stdout.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use iniesta_core::{Delivery, Handler, HandlerError, Message};

/// Prints every event it handles; can sleep and fail on purpose, to watch
/// the consumer's redelivery and locking at work.
#[derive(Debug, Default)]
pub struct PrintHandler {
    /// Sleep this long per call, before printing.
    pub sleep: Duration,
    /// Fail every Nth call (counting all calls from 1).
    pub fail_every: Option<u64>,
    calls: AtomicU64,
}

impl PrintHandler {
    /// A handler that sleeps `sleep` per call and fails every `fail_every`th
    /// call.
    pub fn new(sleep: Duration, fail_every: Option<u64>) -> Self {
        PrintHandler {
            sleep,
            fail_every,
            calls: AtomicU64::new(0),
        }
    }
}

/// The JSON line printed for a handled message; `group_id` is the FIFO
/// message group (`null` on a standard queue); `started_us` and
/// `finished_us` are when the handler started and finished, in µs since the
/// Unix epoch, so that lines of several consumers can be put in one order
/// (how the order of a FIFO group is watched from outside).
pub fn json_line(message: &Message, started_us: u64, finished_us: u64) -> String {
    serde_json::json!({
        "event": message.event,
        "key": message.key(),
        "message_id": message.sqs_message_id,
        "sns_message_id": message.sns_message_id,
        "receive_count": message.receive_count,
        "version": message.version(),
        "body": message.body,
        "group_id": message.group_id,
        "started_us": started_us,
        "finished_us": finished_us,
    })
    .to_string()
}

#[async_trait]
impl Handler for PrintHandler {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let message = &delivery.message;
        tracing::info!(
            event = %message.event,
            key = %message.key(),
            receive_count = message.receive_count,
            call,
            "handler started"
        );
        let started_us = unix_micros();
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        if self.fail_every.is_some_and(|n| call % n == 0) {
            return Err(format!("call {call} fails on purpose (--fail-every)").into());
        }
        // One line, flushed at once, so that a reader sees each handled
        // event as soon as it is done.
        let mut line = json_line(message, started_us, unix_micros());
        line.push('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        Ok(())
    }
}

/// Now, in µs since the Unix epoch (0 if the clock is before it).
fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
