//! Batching: per-message wishes gathered into batch calls, and the answers
//! to those calls mapped back to their messages.
//!
//! The machine owns the identity of every batch call ([`BatchId`]), as it
//! does for receives: a batch action carries only what the backend needs
//! (keys, handles), and each entry's answer comes back as `(batch, index)`.
//! The machine remembers which message each entry stands for until the
//! entry is answered.

use std::collections::VecDeque;
use std::time::Duration;

use crate::message::ReceiptHandle;
use crate::ports::{LockKey, LockToken};

use super::*;

/// The kinds of batch call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BatchKind {
    Acquire,
    Complete,
    Delete,
    ChangeVisibility,
}

/// Per-message wishes waiting for the next batch call of their kind: the
/// messages, and what the backend gets for each, side by side. The
/// backend's list goes out as it is; the messages go to the [`Table`].
#[derive(Debug)]
pub(super) struct Pending<T> {
    messages: Vec<MessageId>,
    entries: Vec<T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            messages: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl<T> Pending<T> {
    pub(super) fn push(&mut self, id: MessageId, entry: T) {
        self.messages.push(id);
        self.entries.push(entry);
    }

    /// Sends at most `max` of the oldest wishes as one call of `kind`, if
    /// there are any: their messages go to `table`, which names the call,
    /// and the backend's list is returned. (Asked on every poll, and most
    /// often there is nothing to send: that answer stays cheap.)
    #[inline]
    fn send(
        &mut self,
        table: &mut Table,
        kind: BatchKind,
        max: usize,
    ) -> Option<(BatchId, Vec<T>)> {
        if self.entries.is_empty() {
            return None;
        }
        Some(self.send_some(table, kind, max))
    }

    /// [`send`](Self::send) when there is something to send. When all of it
    /// goes, its place is left with room for as many: the next batch is
    /// likely as large, so it gets its room at once instead of by doubling.
    fn send_some(&mut self, table: &mut Table, kind: BatchKind, max: usize) -> (BatchId, Vec<T>) {
        let n = self.entries.len().min(max);
        let batch = table.insert(kind, self.messages.drain(..n));
        let entries = if n == self.entries.len() {
            std::mem::replace(&mut self.entries, Vec::with_capacity(n))
        } else {
            self.entries.drain(..n).collect()
        };
        (batch, entries)
    }
}

/// One batch call out: its kind and where its entries' messages are.
#[derive(Debug)]
struct Out {
    kind: BatchKind,
    /// The number of its first entry in [`Table::messages`].
    start: u64,
    len: usize,
    /// Entries not answered yet.
    left: usize,
}

/// A call that stayed out too long for the window: its messages with it.
#[derive(Debug)]
struct Stuck {
    kind: BatchKind,
    messages: Vec<Option<MessageId>>,
    left: usize,
}

/// The batch calls out, by [`BatchId`], numbered 0, 1, 2, … as they go
/// out. Answers come back roughly in that order, so the calls live in a
/// window that starts at the oldest one still out, and the messages of
/// their entries, one call after another, in a second one beside it:
/// finding an entry's message is a subtraction, not a hash, and a call
/// costs no allocation of its own. A call that stays out while [`WINDOW`]
/// younger ones go out (a backend call that hangs) moves to `overflow`
/// with its messages, so one stuck call does not stretch the windows
/// forever.
#[derive(Debug, Default)]
struct Table {
    /// The number of the first call of `calls`.
    base: u64,
    calls: VecDeque<Option<Out>>,
    /// The number of the first entry of `messages`.
    first: u64,
    /// By entry; `None` once answered.
    messages: VecDeque<Option<MessageId>>,
    overflow: IdMap<BatchId, Stuck>,
}

/// How many calls the window spans at most.
const WINDOW: usize = 4096;

impl Table {
    fn insert(
        &mut self,
        kind: BatchKind,
        messages: impl ExactSizeIterator<Item = MessageId>,
    ) -> BatchId {
        let id = BatchId(self.base + self.calls.len() as u64);
        let len = messages.len();
        let start = self.first + self.messages.len() as u64;
        self.messages.extend(messages.map(Some));
        self.calls.push_back(Some(Out {
            kind,
            start,
            len,
            left: len,
        }));
        while self.calls.len() > WINDOW {
            if let Some(Some(out)) = self.calls.pop_front() {
                let messages = self.messages.drain(..out.len).collect();
                self.first += out.len as u64;
                let stuck = Stuck {
                    kind: out.kind,
                    messages,
                    left: out.left,
                };
                self.overflow.insert(BatchId(self.base), stuck);
            }
            self.base += 1;
            self.trim();
        }
        id
    }

    /// The message entry `index` of `id` stands for, if `id` is a call of
    /// `kind` still out and that entry was not answered before; the call is
    /// forgotten with its last answer.
    fn answer(&mut self, id: BatchId, index: usize, kind: BatchKind) -> Option<MessageId> {
        let Some(slot) = id.0.checked_sub(self.base) else {
            let stuck = self.overflow.get_mut(&id).filter(|s| s.kind == kind)?;
            let message = stuck.messages.get_mut(index)?.take()?;
            stuck.left -= 1;
            if stuck.left == 0 {
                self.overflow.remove(&id);
            }
            return Some(message);
        };
        let slot = usize::try_from(slot).ok()?;
        let out = self.calls.get_mut(slot)?.as_mut()?;
        if out.kind != kind || index >= out.len {
            return None;
        }
        let at = usize::try_from(out.start + index as u64 - self.first).ok()?;
        let message = self.messages.get_mut(at)?.take()?;
        out.left -= 1;
        if out.left == 0 {
            self.calls[slot] = None;
            self.trim();
        }
        Some(message)
    }

    /// Forgets the answered calls at the front, and their messages.
    fn trim(&mut self) {
        while let Some(None) = self.calls.front() {
            self.calls.pop_front();
            self.base += 1;
        }
        let first = match self.calls.front() {
            Some(Some(out)) => out.start,
            _ => self.first + self.messages.len() as u64,
        };
        let done = (first - self.first) as usize;
        if done == self.messages.len() {
            self.messages.clear();
        } else {
            self.messages.drain(..done);
        }
        self.first = first;
    }
}

/// The batch calls being gathered, and those out.
#[derive(Debug, Default)]
pub(super) struct Batches {
    out: Table,
    pub(super) acquire: Pending<LockKey>,
    /// Completion records to write, sent as one batch per round.
    pub(super) complete: Pending<(LockKey, LockToken)>,
    /// Messages waiting for a delete; checked again when the batch goes
    /// out (a message may have moved on meanwhile).
    pub(super) delete: VecDeque<MessageId>,
    /// The deletes of the batch being put together.
    deleting: Pending<ReceiptHandle>,
    pub(super) visibility: Pending<(ReceiptHandle, Duration)>,
}

impl Batches {
    /// The message entry `index` of `batch` stands for, if `batch` is a
    /// call of `kind` and that entry was not answered before. Each entry is
    /// answered once; the batch is forgotten with its last answer.
    pub(super) fn answered(
        &mut self,
        batch: BatchId,
        index: usize,
        kind: BatchKind,
    ) -> Option<MessageId> {
        self.out.answer(batch, index, kind)
    }
}

impl Consumer {
    /// Queues a delete for the next batch.
    pub(super) fn queue_delete(&mut self, id: MessageId) {
        self.batches.delete.push_back(id);
        if self.timers.delete_due.is_none() {
            self.timers.delete_due = Some(self.now + self.config.delete_batch_window);
        }
    }

    /// Turns pending per-message wishes into batch actions. Deletes go out
    /// in full batches at once, and the rest when the oldest has waited the
    /// batch window (at once while shutting down).
    pub(super) fn flush(&mut self) {
        let b = &mut self.batches;
        if let Some((batch, keys)) = b.acquire.send(&mut b.out, BatchKind::Acquire, usize::MAX) {
            self.actions.push_back(Action::Acquire {
                batch,
                keys,
                ttl: self.config.lock_timeout,
            });
        }
        if let Some((batch, entries)) = b.complete.send(&mut b.out, BatchKind::Complete, usize::MAX)
        {
            self.actions.push_back(Action::Complete {
                batch,
                entries,
                keep_for: self.config.dedupe_window,
            });
        }
        let due = self.timers.delete_due.is_some_and(|t| t <= self.now)
            || self.timers.shutdown_grace.is_some();
        while b.delete.len() >= MAX_BATCH || (due && !b.delete.is_empty()) {
            let n = b.delete.len().min(MAX_BATCH);
            for id in b.delete.drain(..n) {
                if let Some(e) = self.entries.get_mut(&id) {
                    if let State::Deleting { queued, .. } = &mut e.state {
                        *queued = false;
                        b.deleting.push(id, e.handle.clone());
                    }
                }
            }
            if let Some((batch, handles)) = b.deleting.send(&mut b.out, BatchKind::Delete, n) {
                self.actions.push_back(Action::Delete { batch, handles });
            }
        }
        if b.delete.is_empty() {
            self.timers.delete_due = None;
        }
        let kind = BatchKind::ChangeVisibility;
        while let Some((batch, entries)) = b.visibility.send(&mut b.out, kind, MAX_BATCH) {
            self.actions
                .push_back(Action::ChangeVisibility { batch, entries });
        }
    }
}

#[cfg(test)]
#[path = "batches_tests.rs"]
mod tests;
