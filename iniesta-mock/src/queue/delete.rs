//! Deleting a delivery by its receipt handle: only the latest handle of a
//! message deletes it.

use iniesta_core::{BackendError, ReceiptHandle};

use super::fifo::expired_handle;
use super::handles::{injected, invalid_handle, parse_handle};
use super::store::{take, Gone};
use super::MockQueue;

impl MockQueue {
    /// Deletes the delivery named by `handle`, with SQS's semantics:
    /// - the latest handle of a message deletes it;
    /// - a stale handle (the message was received again since) returns `Ok`
    ///   and deletes nothing;
    /// - a handle of an already deleted message returns `Ok`;
    /// - a handle of a message the redrive policy moved to the dead-letter
    ///   queue returns `Ok` and deletes nothing (counted as a stale delete);
    /// - a handle this queue never issued is `Err` with code
    ///   [`ReceiptHandleIsInvalid`](crate::codes::RECEIPT_HANDLE_IS_INVALID).
    ///
    /// A FIFO queue is stricter, as SQS documents it ("How do I troubleshoot
    /// ReceiptHandleIsInvalid and InvalidParameterValue errors when I use
    /// the Amazon SQS DeleteMessage API call?", AWS knowledge center: a
    /// receipt handle expires when its visibility timeout does, and only
    /// standard queues may accept older handles): a handle whose visibility
    /// timeout ended — the message is visible again, was received again, or
    /// was moved to the dead-letter queue — is `Err` with
    /// [`InvalidParameterValue`](crate::codes::INVALID_PARAMETER_VALUE) ("The
    /// receipt handle has expired") and deletes nothing. The handle that
    /// deleted a message may delete it again (`Ok`), as on a standard queue.
    /// A delete unblocks the message's group.
    ///
    /// Injected faults are applied first, before the handle is looked at:
    /// [`fail_deletes`](Self::fail_deletes) answers `Err`
    /// ([`InternalError`](crate::codes::INTERNAL_ERROR)),
    /// [`lose_deletes`](Self::lose_deletes) answers `Ok`; neither deletes.
    pub fn delete_now(&self, handle: &ReceiptHandle) -> Result<(), BackendError> {
        let now = self.inner.clock.now();
        let mut st = self.state();
        if take(&mut st.faults.fail_deletes) {
            st.stats.injected_faults += 1;
            return Err(injected("DeleteMessage"));
        }
        if take(&mut st.faults.lose_deletes) {
            st.stats.injected_faults += 1;
            return Ok(());
        }
        let fifo = self.inner.options.fifo;
        let (n, k) = parse_handle(handle).ok_or_else(|| invalid_handle(handle))?;
        if let Some(gone) = st.gone.get(&n) {
            let issued = gone.issued();
            if !issued.contains(k) {
                return Err(invalid_handle(handle));
            }
            if fifo && (matches!(gone, Gone::Moved { .. }) || k < issued.count) {
                return Err(expired_handle(handle));
            }
            if matches!(gone, Gone::Moved { .. }) {
                st.stats.stale_deletes += 1;
            }
            return Ok(());
        }
        let Some(m) = st.messages.get(&n) else {
            return Err(invalid_handle(handle));
        };
        if !m.issued().contains(k) {
            return Err(invalid_handle(handle));
        }
        if fifo && (k < m.receive_count || m.visible_at <= now) {
            return Err(expired_handle(handle));
        }
        if k < m.receive_count {
            st.stats.stale_deletes += 1;
            return Ok(());
        }
        let Some(m) = st.messages.remove(&n) else {
            return Err(invalid_handle(handle));
        };
        if let (true, Some(group)) = (fifo, &m.group_id) {
            st.fifo.remove(n, group);
        }
        let gone = if self.inner.options.retain_deleted {
            Gone::Kept {
                message: m,
                deleted_at: now,
            }
        } else {
            Gone::Dropped { issued: m.issued() }
        };
        st.gone.insert(n, gone);
        st.stats.deleted += 1;
        drop(st);
        if fifo {
            // The group may hold messages waiting for this one: waiting
            // long polls look again.
            self.inner.arrived.notify(usize::MAX);
        }
        Ok(())
    }
}
