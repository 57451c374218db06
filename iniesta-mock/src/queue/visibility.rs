//! Changing the visibility of a delivery in flight, in whole seconds.

use std::cmp::Reverse;
use std::time::Duration;

use iniesta_core::{BackendError, ReceiptHandle};

use super::fifo::expired_handle;
use super::handles::{injected, invalid_handle, not_in_flight, parse_handle};
use super::options::applied_visibility;
use super::store::{take, Gone};
use super::MockQueue;

impl MockQueue {
    /// Changes the visibility of the delivery named by `handle`: the message
    /// becomes visible `timeout` from now, rounded up to whole seconds as
    /// SQS applies it (zero: at once; 0.8 s: after 1 s).
    ///
    /// Only the latest handle of a message that is in flight (received and
    /// still hidden) may do this; a stale handle, or a message that is
    /// visible, deleted or moved to the dead-letter queue, is `Err` with
    /// code [`MessageNotInflight`](crate::codes::MESSAGE_NOT_INFLIGHT). A `timeout`
    /// over 12 hours is
    /// [`InvalidParameterValue`](crate::codes::INVALID_PARAMETER_VALUE); a handle
    /// never issued is
    /// [`ReceiptHandleIsInvalid`](crate::codes::RECEIPT_HANDLE_IS_INVALID). An
    /// injected fault ([`fail_visibility_changes`](Self::fail_visibility_changes))
    /// is applied first and changes nothing.
    ///
    /// On a FIFO queue a handle expires with its visibility timeout (see
    /// [`delete_now`](Self::delete_now) for the rule and its source): a
    /// stale handle, or one of a message that is visible again or was moved
    /// to the dead-letter queue, is `Err` with
    /// [`InvalidParameterValue`](crate::codes::INVALID_PARAMETER_VALUE) ("The
    /// receipt handle has expired") instead. Making a FIFO message visible
    /// again unblocks its group, with this message first.
    pub fn change_visibility_now(
        &self,
        handle: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        let now = self.inner.clock.now();
        {
            let mut st = self.state();
            if take(&mut st.faults.fail_visibility_changes) {
                st.stats.injected_faults += 1;
                return Err(injected("ChangeMessageVisibility"));
            }
            let timeout = applied_visibility(timeout)?;
            let fifo = self.inner.options.fifo;
            let (n, k) = parse_handle(handle).ok_or_else(|| invalid_handle(handle))?;
            if let Some(gone) = st.gone.get(&n) {
                return Err(if !gone.issued().contains(k) {
                    invalid_handle(handle)
                } else if fifo && (matches!(gone, Gone::Moved { .. }) || k < gone.issued().count) {
                    expired_handle(handle)
                } else if matches!(gone, Gone::Moved { .. }) {
                    not_in_flight(handle, "the message was moved to the dead-letter queue")
                } else {
                    not_in_flight(handle, "the message was deleted")
                });
            }
            let Some(m) = st.messages.get_mut(&n) else {
                return Err(invalid_handle(handle));
            };
            if !m.issued().contains(k) {
                return Err(invalid_handle(handle));
            }
            if fifo && (k < m.receive_count || m.visible_at <= now) {
                return Err(expired_handle(handle));
            }
            if k < m.receive_count {
                return Err(not_in_flight(
                    handle,
                    "the handle is stale: the message was received again since",
                ));
            }
            if m.visible_at <= now {
                return Err(not_in_flight(
                    handle,
                    "the message is visible: its visibility timeout ended",
                ));
            }
            let new = now + timeout;
            if new != m.visible_at {
                m.visible_at = new;
                if !fifo {
                    st.ready.push(Reverse((new, n)));
                }
            }
            st.stats.visibility_changes += 1;
        }
        // Waiting long polls re-check: on a real clock they sleep until the
        // earliest visibility, which may just have moved closer.
        self.inner.arrived.notify(usize::MAX);
        Ok(())
    }
}
