//! The end of a message's journey: completion record, delete, release,
//! return to the queue, settling and forgetting it.

use std::time::Duration;

use crate::ports::{EntryResult, LockError, LockToken};
use crate::time::Time;

use super::*;

impl Consumer {
    pub(super) fn on_completed(&mut self, id: MessageId, result: Result<(), LockError>) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let State::Completing {
            valid_until,
            attempts,
            retry_at,
            ..
        } = &mut entry.state
        else {
            return;
        };
        if retry_at.is_some() {
            return;
        }
        match result {
            Ok(()) => self.start_delete(id),
            // A transient failure: try again while the lock is still ours.
            Err(LockError::Unavailable(_))
                if *attempts < self.config.complete_retries
                    && self.now + self.config.retry_delay < *valid_until =>
            {
                *attempts += 1;
                *retry_at = Some(self.now + self.config.retry_delay * *attempts);
                self.reschedule(id);
            }
            Err(error) => {
                // The handler succeeded: delete anyway. Without the record a
                // redelivery after a failed delete would run it again.
                let message = entry.msg();
                self.events
                    .push_back(Event::CompleteFailed { message, error });
                self.start_delete(id);
            }
        }
    }

    /// Turns message `id`'s lock (held with `token`, valid until
    /// `valid_until`) into its completion record; the delete follows.
    pub(super) fn start_complete(&mut self, id: MessageId, token: LockToken, valid_until: Time) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.state = State::Completing {
            token: token.clone(),
            valid_until,
            attempts: 0,
            retry_at: None,
        };
        self.batches
            .complete
            .push(id, (entry.lock_key.clone(), token));
        self.timers.update(id, entry);
    }

    pub(super) fn start_delete(&mut self, id: MessageId) {
        self.free_slot(id);
        // Its record is written (or it was done already): the next of its
        // group may run.
        self.end_group_hold(id, true);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.state = State::Deleting {
                attempts: 0,
                retry_at: None,
                queued: true,
            };
            self.timers.update(id, entry);
            self.queue_delete(id);
        }
    }

    pub(super) fn on_deleted(&mut self, id: MessageId, result: EntryResult) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let message = entry.msg();
        let State::Deleting {
            attempts,
            retry_at,
            queued,
        } = &mut entry.state
        else {
            return;
        };
        if *queued || retry_at.is_some() {
            return;
        }
        match result {
            Ok(()) => {
                self.events.push_back(Event::Deleted { message });
                self.settle(id);
            }
            Err(error) => {
                let will_retry = *attempts < self.config.delete_retries;
                if will_retry {
                    let delay = self
                        .config
                        .retry_delay
                        .checked_mul(1 << (*attempts).min(16))
                        .unwrap_or(MAX_VISIBILITY);
                    *attempts += 1;
                    *retry_at = Some(self.now + delay);
                }
                self.events.push_back(Event::DeleteFailed {
                    message,
                    error,
                    will_retry,
                });
                if will_retry {
                    self.reschedule(id);
                } else {
                    self.settle(id);
                }
            }
        }
    }

    pub(super) fn release(
        &mut self,
        id: MessageId,
        token: LockToken,
        return_after: Option<Duration>,
    ) {
        self.free_slot(id);
        self.fail_group(id);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.state = State::Releasing { return_after };
        self.actions.push_back(Action::Release {
            id,
            key: entry.lock_key.clone(),
            token,
        });
        self.reschedule(id);
    }

    pub(super) fn on_released(&mut self, id: MessageId, result: Result<(), LockError>) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let State::Releasing { return_after } = entry.state else {
            return;
        };
        if let Err(error) = result {
            if error != LockError::NotHeld {
                let message = entry.msg();
                self.events
                    .push_back(Event::ReleaseFailed { message, error });
            }
        }
        match return_after {
            Some(delay) => self.return_or_forget(id, delay),
            None => self.settle(id),
        }
    }

    pub(super) fn shutdown_return(&self) -> Option<Duration> {
        self.config
            .return_unstarted_on_shutdown
            .then_some(Duration::ZERO)
    }

    /// Hides (or shows) the message for `delay` and ends its journey, or
    /// just ends it when returning is off during shutdown.
    pub(super) fn return_or_forget(&mut self, id: MessageId, delay: Duration) {
        self.free_slot(id);
        self.fail_group(id);
        if self.shutting_down() && !self.config.return_unstarted_on_shutdown && delay.is_zero() {
            self.settle(id);
            return;
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let delay = delay.min(MAX_VISIBILITY);
        let sent = entry.heartbeat_vis == 0;
        entry.state = State::Returning { delay, sent };
        if sent {
            self.batches
                .visibility
                .push(id, (entry.handle.clone(), delay));
        }
        self.reschedule(id);
    }

    pub(super) fn on_visibility_changed(&mut self, id: MessageId, result: EntryResult) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if let State::Returning { delay, sent: true } = entry.state {
            let sqs_message_id = entry.sqs_message_id().to_owned();
            match result {
                Ok(()) => self.events.push_back(Event::Returned {
                    sqs_message_id,
                    delay,
                }),
                Err(error) => self.events.push_back(Event::VisibilityChangeFailed {
                    sqs_message_id,
                    error,
                }),
            }
            self.settle(id);
            return;
        }
        // A heartbeat's visibility extension.
        let Some(left) = entry.heartbeat_vis.checked_sub(1) else {
            return;
        };
        entry.heartbeat_vis = left;
        if let (Err(error), State::Running(_)) = (result, &entry.state) {
            let sqs_message_id = entry.sqs_message_id().to_owned();
            self.events.push_back(Event::VisibilityChangeFailed {
                sqs_message_id,
                error,
            });
        }
        match entry.state {
            State::Returning { delay, sent: false } if left == 0 => {
                entry.state = State::Returning { delay, sent: true };
                self.batches
                    .visibility
                    .push(id, (entry.handle.clone(), delay));
            }
            State::Settling => self.forget_if_quiet(id),
            _ => {}
        }
    }

    /// Ends a message's journey: forgets it, or lets it settle until the
    /// heartbeat calls still out are answered (so that nothing is in flight
    /// when a shutdown is over).
    pub(super) fn settle(&mut self, id: MessageId) {
        self.free_slot(id);
        self.end_group_hold(id, false);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.state = State::Settling;
        if entry.extend_sent_at.is_none() && entry.heartbeat_vis == 0 {
            self.forget(id);
        } else {
            self.timers.update(id, entry);
        }
    }

    pub(super) fn forget_if_quiet(&mut self, id: MessageId) {
        if let Some(e) = self.entries.get(&id) {
            if matches!(e.state, State::Settling)
                && e.extend_sent_at.is_none()
                && e.heartbeat_vis == 0
            {
                self.forget(id);
            }
        }
    }

    pub(super) fn forget(&mut self, id: MessageId) {
        self.free_slot(id);
        self.end_group_hold(id, false);
        if let Some(e) = self.entries.remove(&id) {
            // Its deadline, if any, is stale from now on.
            self.timers.forget(e.timer);
        }
        self.report_if_stopped();
    }

    /// Reports [`Event::Stopped`] once, when a shutdown has nothing left.
    pub(super) fn report_if_stopped(&mut self) {
        if self.shutting_down()
            && self.entries.is_empty()
            && self.receives.is_empty()
            && !self.stopped_reported
        {
            self.stopped_reported = true;
            self.events.push_back(Event::Stopped);
        }
    }
}
