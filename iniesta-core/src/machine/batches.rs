//! Batching: per-message wishes gathered into batch calls.

use super::*;

impl Consumer {
    /// Queues a delete for the next batch.
    pub(super) fn queue_delete(&mut self, id: MessageId) {
        self.pending_delete.push_back(id);
        if self.delete_due.is_none() {
            self.delete_due = Some(self.now + self.config.delete_batch_window);
        }
    }

    /// Turns pending per-message wishes into batch actions. Deletes go out
    /// in full batches at once, and the rest when the oldest has waited the
    /// batch window (at once while shutting down).
    pub(super) fn flush(&mut self) {
        if let Some(entries) = take_batch(&mut self.pending_acquire) {
            self.actions.push_back(Action::Acquire {
                entries,
                ttl: self.config.lock_timeout,
            });
        }
        if let Some(entries) = take_batch(&mut self.pending_complete) {
            self.actions.push_back(Action::Complete {
                entries,
                keep_for: self.config.dedupe_window,
            });
        }
        let due =
            self.delete_due.is_some_and(|t| t <= self.now) || self.shutdown_deadline.is_some();
        while self.pending_delete.len() >= MAX_BATCH || (due && !self.pending_delete.is_empty()) {
            let n = self.pending_delete.len().min(MAX_BATCH);
            let mut entries = Vec::with_capacity(n);
            for id in self.pending_delete.drain(..n) {
                if let Some(e) = self.entries.get_mut(&id) {
                    if let State::Deleting { queued, .. } = &mut e.state {
                        *queued = false;
                        entries.push((id, e.handle.clone()));
                    }
                }
            }
            if !entries.is_empty() {
                self.actions.push_back(Action::Delete { entries });
            }
        }
        if self.pending_delete.is_empty() {
            self.delete_due = None;
        }
        while !self.pending_visibility.is_empty() {
            let n = self.pending_visibility.len().min(MAX_BATCH);
            let entries: Vec<_> = self.pending_visibility.drain(..n).collect();
            self.actions.push_back(Action::ChangeVisibility { entries });
        }
    }
}

/// The pending entries of a batch call, if any, leaving room for as many in
/// their place: the next batch is likely as large, so it gets its room at
/// once instead of by doubling.
fn take_batch<T>(pending: &mut Vec<T>) -> Option<Vec<T>> {
    if pending.is_empty() {
        return None;
    }
    let room = Vec::with_capacity(pending.len());
    Some(std::mem::replace(pending, room))
}
