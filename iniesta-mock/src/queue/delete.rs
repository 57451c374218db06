//! Deleting a delivery by its receipt handle: only the latest handle of a
//! message deletes it.

use iniesta_core::{BackendError, ReceiptHandle};

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
        let (n, k) = parse_handle(handle).ok_or_else(|| invalid_handle(handle))?;
        if let Some(gone) = st.gone.get(&n) {
            if !gone.issued().contains(k) {
                return Err(invalid_handle(handle));
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
        if k < m.receive_count {
            st.stats.stale_deletes += 1;
            return Ok(());
        }
        let Some(m) = st.messages.remove(&n) else {
            return Err(invalid_handle(handle));
        };
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
        Ok(())
    }
}
