//! Graceful shutdown.

use super::*;

impl Consumer {
    pub(super) fn on_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(self.now + self.config.shutdown_grace);
        self.receive_resume_at = None;
        self.events.push_back(Event::ShutdownStarted {
            in_flight: self.entries.len(),
        });
        let mut ids: Vec<ReceiveId> = self.receives.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.actions.push_back(Action::CancelReceive { id });
        }
        if self.entries.is_empty() && self.receives.is_empty() {
            self.stopped_reported = true;
            self.events.push_back(Event::Stopped);
        }
    }
}
