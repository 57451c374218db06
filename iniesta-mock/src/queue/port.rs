//! The [`Queue`] port: the async face of the queue, with SQS's limits
//! checked, long polls and batches.

use std::cmp::Reverse;
use std::time::Duration;

use async_trait::async_trait;
use futures::future;
use iniesta_core::{
    BackendError, EntryResult, Queue, ReceiptHandle, ReceiveRequest, ReceivedMessage, Time,
};

use super::handles::too_many_entries;
use super::options::{check_request, MAX_BATCH_ENTRIES};
use super::MockQueue;

/// The async face of the queue, with SQS's limits checked: 1 to 10 messages
/// per receive, a wait of at most 20 s, a visibility timeout of at most
/// 12 h (rounded up to whole seconds, as everywhere in this queue), at most
/// 10 entries per batch (a larger batch fails on every entry with
/// [`TooManyEntriesInBatchRequest`](crate::codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST)
/// and consumes no injected faults).
///
/// `receive` returns at once when a message is visible. Otherwise it is a
/// long poll: it waits until a message is sent or becomes visible, or until
/// `wait_time` has passed **on the queue's clock**, then returns what is
/// visible (maybe nothing). On a virtual clock the wait ends only when the
/// test advances the clock past it (or a message comes); with a zero
/// `wait_time` it never waits. On a real clock the waiting needs no
/// particular async runtime; on a source clock
/// ([`Clock::from_source`](crate::Clock::from_source)) it waits with the
/// source's `sleep`, so it needs whatever runtime that sleep needs.
#[async_trait]
impl Queue for MockQueue {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        let visibility = check_request(&request)?;
        let clock = &self.inner.clock;
        let deadline = clock.now() + request.wait_time;
        let mut first = true;
        loop {
            // Listen before looking, so a send or clock move in between is
            // not missed.
            let arrived = self.inner.arrived.listen();
            let moved = clock.listen();
            let now = clock.now();
            let got = if first {
                first = false;
                self.receive_applied(request.max_messages, visibility)?
            } else {
                let mut st = self.state();
                self.take_visible(&mut st, now, request.max_messages, visibility)
            };
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            if clock.is_virtual() {
                future::select(arrived, moved).await;
            } else {
                // A timer of the clock's own kind: on a source clock that is
                // the runtime's timer, so a paused runtime sees this wait
                // and moves its clock to it when every task is idle.
                let wake_at = self.next_visible().map_or(deadline, |t| t.min(deadline));
                let timer = clock.sleep(wake_at.saturating_duration_since(now));
                let _ = future::select(arrived, timer).await;
            }
        }
    }

    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        if handles.len() > MAX_BATCH_ENTRIES {
            return handles
                .iter()
                .map(|_| Err(too_many_entries(handles.len())))
                .collect();
        }
        handles.iter().map(|h| self.delete_now(h)).collect()
    }

    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        if entries.len() > MAX_BATCH_ENTRIES {
            return entries
                .iter()
                .map(|_| Err(too_many_entries(entries.len())))
                .collect();
        }
        entries
            .iter()
            .map(|(h, d)| self.change_visibility_now(h, *d))
            .collect()
    }
}

impl MockQueue {
    /// The earliest time at which a message is visible: after `now` when
    /// none is visible now (a receive just came back empty), else a time
    /// already past, which means "look again at once". Stale entries at the
    /// front of the order are dropped on the way.
    fn next_visible(&self) -> Option<Time> {
        if self.inner.options.fifo {
            // A FIFO queue keeps no heap; after an empty receive, the next
            // change without a send or delete is a visibility timeout's end.
            return self.next_fifo_change(self.inner.clock.now());
        }
        let mut st = self.state();
        while let Some(&Reverse((t, n))) = st.ready.peek() {
            if st.messages.get(&n).is_some_and(|m| m.visible_at == t) {
                return Some(t);
            }
            st.ready.pop();
        }
        None
    }
}
