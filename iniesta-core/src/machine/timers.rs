//! Deadlines: heartbeats, lock validity and retries, per message.

use std::cmp::Reverse;

use crate::time::Time;

use super::*;

impl Consumer {
    pub(super) fn deadline_of(&self, entry: &Entry) -> Option<Time> {
        match &entry.state {
            State::Running(r) if !r.aborting => {
                let hb = if entry.extend_sent_at.is_none() {
                    Some(r.next_heartbeat)
                } else {
                    None
                };
                Some(hb.map_or(r.valid_until, |h| h.min(r.valid_until)))
            }
            State::Completing { retry_at, .. } | State::Deleting { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    pub(super) fn reschedule(&mut self, id: MessageId) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let new = self.deadline_of(entry);
        if new == entry.timer {
            return;
        }
        // The old entry (if any) goes stale: `timer` no longer names it.
        self.timers_stale |= entry.timer.is_some();
        if let Some(t) = new {
            self.timers.push(Reverse((t, id)));
        }
        self.entries.get_mut(&id).expect("entry exists").timer = new;
    }

    /// Drops stale entries from the top of the timer heap (see
    /// [`Consumer::timers`]), and all of them when they outnumber the live
    /// ones, so the heap stays in proportion to the messages in progress.
    pub(super) fn drop_stale_timers(&mut self) {
        if !std::mem::take(&mut self.timers_stale) {
            return;
        }
        let entries = &self.entries;
        let live = |&Reverse((t, id)): &Reverse<(Time, MessageId)>| {
            entries.get(&id).is_some_and(|e| e.timer == Some(t))
        };
        if self.timers.len() > 2 * entries.len() + 64 {
            self.timers.retain(live);
        }
        while let Some(top) = self.timers.peek() {
            if live(top) {
                break;
            }
            self.timers.pop();
        }
    }

    pub(super) fn on_deadline(&mut self, id: MessageId) {
        let now = self.now;
        let hb = self.config.heartbeat_interval;
        let ttl = self.config.lock_timeout;
        let vis = self.config.visibility_extension;
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        match &mut entry.state {
            State::Running(run) if !run.aborting => {
                if run.valid_until <= now {
                    self.abort(id, AbortReason::LockExpired);
                    return;
                }
                if entry.extend_sent_at.is_none() && run.next_heartbeat <= now {
                    entry.extend_sent_at = Some(now);
                    run.next_heartbeat = now + hb;
                    self.actions.push_back(Action::Extend {
                        id,
                        key: entry.lock_key.clone(),
                        token: run.token.clone(),
                        ttl,
                    });
                    if let Some(v) = vis {
                        entry.heartbeat_vis += 1;
                        self.pending_visibility.push((id, entry.handle.clone(), v));
                    }
                }
            }
            State::Completing {
                token, retry_at, ..
            } if retry_at.is_some_and(|t| t <= now) => {
                *retry_at = None;
                self.pending_complete
                    .push((id, entry.lock_key.clone(), token.clone()));
            }
            State::Deleting {
                retry_at, queued, ..
            } if retry_at.is_some_and(|t| t <= now) => {
                *retry_at = None;
                *queued = true;
                self.queue_delete(id);
            }
            _ => {}
        }
        self.reschedule(id);
    }
}
