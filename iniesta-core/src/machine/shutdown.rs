//! Graceful shutdown.

use std::time::Duration;

use super::*;

impl Consumer {
    pub(super) fn begin_shutdown(&mut self) {
        if self.shutting_down() {
            return;
        }
        self.timers.shutdown_grace = Some(self.now + self.config.shutdown_grace);
        self.timers.receive_resume = None;
        self.events.push_back(Event::ShutdownStarted {
            in_flight: self.entries.len(),
        });
        let mut ids: Vec<ReceiveId> = self.receives.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.actions.push_back(Action::CancelReceive { id });
        }
        // Messages received ahead never start: back to the queue.
        let mut waiting: Vec<MessageId> = self.waiting.drain(..).collect();
        waiting.extend(self.drain_parked());
        for id in waiting {
            if matches!(
                self.entries.get(&id).map(|e| &e.state),
                Some(State::Waiting { .. })
            ) {
                self.return_or_forget(id, Duration::ZERO);
            }
        }
        // The grace is a deadline of every running handler from now on.
        let running: Vec<MessageId> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(&e.state, State::Running(r) if !r.aborting))
            .map(|(id, _)| *id)
            .collect();
        for id in running {
            self.reschedule(id);
        }
        if self.entries.is_empty() && self.receives.is_empty() {
            self.stopped_reported = true;
            self.events.push_back(Event::Stopped);
        }
    }

    pub(super) fn shutting_down(&self) -> bool {
        self.timers.shutdown_grace.is_some()
    }
}
