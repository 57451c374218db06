//! [`WatchedQueue`]: the consumer's queue, telling [`Readiness`] how its
//! receive calls end.
//!
//! The consumer reports no event for a receive that returns no message, so
//! on an idle queue its events cannot tell "polling fine" from "not
//! polling"; the calls themselves can.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iniesta_core::{
    BackendError, EntryResult, Queue, ReceiptHandle, ReceiveRequest, ReceivedMessage,
};

use super::readiness::Readiness;

/// A queue that forwards every call to `inner` and records each receive's
/// outcome (and how long it has been waiting) in `readiness`.
pub(super) struct WatchedQueue {
    pub(super) inner: Arc<dyn Queue>,
    pub(super) readiness: Readiness,
}

/// Marks a receive call over when it is dropped unanswered (a shutdown
/// cancels long polls), so it does not count as waiting forever.
struct Pending<'a> {
    readiness: &'a Readiness,
    id: u64,
    answered: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.readiness.receive_done(self.id, None);
        }
    }
}

#[async_trait]
impl Queue for WatchedQueue {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        let mut pending = Pending {
            readiness: &self.readiness,
            id: self.readiness.receive_sent(request.wait_time),
            answered: false,
        };
        let result = self.inner.receive(request).await;
        pending.answered = true;
        let outcome = result.as_ref().map(|_| ()).map_err(ToString::to_string);
        self.readiness.receive_done(pending.id, Some(outcome));
        result
    }

    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        self.inner.delete_batch(handles).await
    }

    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        self.inner.change_visibility_batch(entries).await
    }
}
