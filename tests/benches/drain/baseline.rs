//! The baseline side of the drain bench: bare loops of ReceiveMessage and
//! DeleteMessageBatch, with no parsing, no lock and no handler: the
//! fastest way to empty the queue on the same emulator.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};

use super::cpu::{cpu_share, cpu_time};
use super::{Side, WAIT_SECONDS};

/// `loops` concurrent loops of ReceiveMessage (10 at most, 20 s long poll,
/// the same attributes the consumer asks for) and DeleteMessageBatch, until
/// `n` distinct messages were deleted (or `max` has passed). `moto_pid`'s
/// CPU is sampled with the bench's own, to tell what bounded the loops.
pub async fn run_baseline(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    loops: usize,
    n: usize,
    max: Duration,
    moto_pid: u32,
) -> Side {
    let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let (done_tx, done_rx) = tokio::sync::watch::channel(None::<Instant>);
    let cpu_start = (cpu_time(moto_pid), cpu_time(std::process::id()));
    let start = Instant::now();
    let deadline = start + max;
    let mut tasks = Vec::new();
    for _ in 0..loops {
        let client = client.clone();
        let url = queue_url.to_owned();
        let seen = seen.clone();
        let errors = errors.clone();
        let done_tx = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline && seen.lock().unwrap().len() < n {
                let out = match client
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(WAIT_SECONDS)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) => {
                        errors.lock().unwrap().push(format!("receive: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let messages = out.messages();
                if messages.is_empty() {
                    continue;
                }
                let entries: Vec<_> = messages
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                            .build()
                            .ok()
                    })
                    .collect();
                match client
                    .delete_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let ok: HashSet<&str> = out.successful().iter().map(|s| s.id()).collect();
                        let mut seen = seen.lock().unwrap();
                        for (i, m) in messages.iter().enumerate() {
                            if ok.contains(i.to_string().as_str()) {
                                if let Some(id) = m.message_id() {
                                    seen.insert(id.to_owned());
                                }
                            }
                        }
                        if seen.len() >= n {
                            let _ = done_tx.send(Some(Instant::now()));
                        }
                    }
                    Err(e) => errors.lock().unwrap().push(format!("delete: {e}")),
                }
            }
        }));
    }
    drop(done_tx);
    let mut done_rx = done_rx;
    let waited = tokio::time::timeout(max + Duration::from_secs(1), async {
        loop {
            if let Some(at) = *done_rx.borrow() {
                return Some(at);
            }
            if done_rx.changed().await.is_err() {
                return *done_rx.borrow();
            }
        }
    })
    .await
    .ok()
    .flatten();
    let cpu_end = (cpu_time(moto_pid), cpu_time(std::process::id()));
    // Loops still in a long poll on the now empty queue are not part of the
    // measurement.
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let end = waited.unwrap_or_else(Instant::now);
    let seen = seen.lock().unwrap().len();
    let errors = errors.lock().unwrap();
    let mut note = String::new();
    if seen < n {
        note = format!("stopped by the time bound with {seen} of {n} messages");
    }
    if !errors.is_empty() {
        note.push_str(&format!(
            "{}{} failed call(s), first: {}",
            if note.is_empty() { "" } else { "; " },
            errors.len(),
            errors[0]
        ));
    }
    let elapsed = end.saturating_duration_since(start);
    Side {
        seen,
        elapsed,
        startup: None,
        moto_cpu: cpu_share(cpu_start.0, cpu_end.0, elapsed),
        client_cpu: cpu_share(cpu_start.1, cpu_end.1, elapsed),
        note,
    }
}
