//! Locking and dispatch: the lock's answer, the handler's run, heartbeats
//! and aborts.

use std::time::Duration;

use crate::handler::Retry;
use crate::ports::{AcquireOutcome, LockError};

use super::*;

impl Consumer {
    pub(super) fn on_acquired(&mut self, id: MessageId, outcome: AcquireOutcome) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let State::Acquiring { sent_at } = entry.state else {
            return;
        };
        let message = entry.msg();
        match outcome {
            AcquireOutcome::Busy => {
                self.events.push_back(Event::Skipped { message });
                self.settle(id);
            }
            AcquireOutcome::Done => {
                self.events.push_back(Event::Duplicate { message });
                self.start_delete(id);
            }
            AcquireOutcome::Unavailable(error) => {
                self.events
                    .push_back(Event::LockUnavailable { message, error });
                if self.shutting_down() {
                    self.return_or_forget(id, Duration::ZERO);
                } else {
                    self.settle(id);
                }
            }
            AcquireOutcome::Acquired { token, validity } => {
                let valid_until = sent_at + validity;
                if self.timers.shutdown_grace.is_some() {
                    self.release(id, token, self.shutdown_return());
                    return;
                }
                if self.given_up.contains(&message.sqs_message_id) {
                    // Received again while the delivery that failed
                    // permanently still ran, and given up on while this
                    // receipt waited for its lock: handed back as any
                    // later receipt is, never dispatched again.
                    self.events.push_back(Event::HandedBack { message });
                    self.release(id, token, Some(Duration::ZERO));
                    return;
                }
                if valid_until <= self.now {
                    // Acquired too late to use: treat as unavailable.
                    self.events.push_back(Event::LockUnavailable {
                        message,
                        error: LockError::Unavailable(
                            "lock validity ran out before it arrived".into(),
                        ),
                    });
                    self.release(id, token, None);
                    return;
                }
                let Some((handler, route)) = self.routes.lookup(&message.event) else {
                    self.events.push_back(Event::NoHandler {
                        message: message.clone(),
                    });
                    let back = self
                        .config
                        .failure_backoff
                        .map(|b| b.delay(message.receive_count));
                    self.release(id, token, back);
                    return;
                };
                let next_heartbeat = self.now + self.config.heartbeat_interval;
                entry.state = State::Running(Running {
                    token: token.clone(),
                    valid_until,
                    started: self.now,
                    next_heartbeat,
                    timeout_at: self.config.handler_timeout.map(|t| self.now + t),
                    aborting: false,
                    lock_expired: false,
                });
                self.events.push_back(Event::HandlerStarted {
                    message: message.clone(),
                });
                self.actions.push_back(Action::Dispatch {
                    id,
                    route,
                    handler,
                    message,
                    token,
                });
                self.timers.update(id, entry);
            }
        }
    }

    pub(super) fn on_handler_finished(&mut self, id: MessageId, outcome: DispatchOutcome) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let State::Running(run) = &entry.state else {
            return;
        };
        let message = entry.msg();
        let elapsed = self.now.saturating_duration_since(run.started);
        let token = run.token.clone();
        let valid_until = run.valid_until;
        match outcome {
            DispatchOutcome::Succeeded => {
                self.events.push_back(Event::Succeeded { message, elapsed });
                self.start_complete(id, token, valid_until);
            }
            outcome => {
                let retry = match &outcome {
                    DispatchOutcome::Failed { retry, .. } => *retry,
                    _ => Retry::Backoff,
                };
                self.events.push_back(Event::Failed {
                    message: message.clone(),
                    elapsed,
                    outcome,
                });
                match retry {
                    Retry::Never => self.give_up(id, token, valid_until),
                    Retry::After(delay) => self.release(id, token, Some(delay)),
                    _ if self.shutting_down() => {
                        let back = self.shutdown_return();
                        self.release(id, token, back)
                    }
                    _ => {
                        let back = self
                            .config
                            .failure_backoff
                            .map(|b| b.delay(message.receive_count));
                        self.release(id, token, back)
                    }
                }
            }
        }
    }

    pub(super) fn on_extended(&mut self, id: MessageId, result: Result<Duration, LockError>) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let Some(sent_at) = entry.extend_sent_at.take() else {
            return;
        };
        let message = entry.msg();
        let State::Running(run) = &mut entry.state else {
            self.forget_if_quiet(id);
            return;
        };
        match result {
            Ok(validity) => {
                if !run.lock_expired {
                    run.valid_until = run.valid_until.max(sent_at + validity);
                }
            }
            Err(LockError::NotHeld) => {
                self.events.push_back(Event::ExtendFailed {
                    message,
                    error: LockError::NotHeld,
                });
                self.abort(id, AbortReason::LockLost);
            }
            Err(error) => {
                // Try again soon, while the lock is still valid.
                let soon = self.now + self.config.heartbeat_interval / 4;
                run.next_heartbeat = run.next_heartbeat.min(soon);
                self.events
                    .push_back(Event::ExtendFailed { message, error });
            }
        }
        self.reschedule(id);
    }

    pub(super) fn abort(&mut self, id: MessageId, reason: AbortReason) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let State::Running(run) = &mut entry.state else {
            return;
        };
        if matches!(reason, AbortReason::LockExpired | AbortReason::LockLost) {
            run.lock_expired = true;
        }
        if run.aborting {
            return;
        }
        run.aborting = true;
        let message = entry.msg();
        self.events.push_back(Event::Aborting { message, reason });
        self.actions.push_back(Action::Abort { id, reason });
        self.reschedule(id);
    }
}
