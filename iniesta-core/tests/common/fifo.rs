//! A hand-driven FIFO consumer for the machine's FIFO tests: messages of
//! a group, a FIFO configuration, and a harness that keeps the actions
//! nobody answered yet and every event.

use std::time::Duration;

use iniesta_core::machine::{Action, Consumer, ConsumerConfig, DispatchOutcome, Event, Input};
use iniesta_core::message::ATTR_MESSAGE_GROUP_ID;
use iniesta_core::{AcquireOutcome, LockKey, ReceiptHandle, ReceivedMessage, Stats};

use super::*;

/// A raw message `id` of group `group`.
pub fn grouped(id: &str, group: &str) -> ReceivedMessage {
    let mut m = message(id, "E.svc");
    m.attributes
        .other
        .insert(ATTR_MESSAGE_GROUP_ID.into(), group.into());
    m
}

pub fn fifo(max_in_flight: usize) -> ConsumerConfig {
    let mut c = config();
    c.fifo = true;
    c.max_in_flight = max_in_flight;
    c.prefetch = Some(10);
    c
}

/// A consumer and the actions it asked for and nobody answered yet; every
/// event is kept, in order.
pub struct Harness {
    pub c: Consumer,
    pub pending: Vec<Action>,
    pub events: Vec<Event>,
    pub now: u64,
}

impl Harness {
    pub fn new(config: ConsumerConfig) -> Self {
        let mut h = Harness {
            c: consumer(config),
            pending: Vec::new(),
            events: Vec::new(),
            now: 0,
        };
        h.drain();
        h
    }

    pub fn drain(&mut self) {
        self.pending.extend(actions(&mut self.c));
        self.events.extend(events(&mut self.c));
    }

    pub fn input(&mut self, input: Input) {
        self.now += 1;
        self.c.handle_input(t(self.now), input);
        self.drain();
    }

    /// Takes the first pending action `pick` accepts.
    pub fn take<T>(&mut self, what: &str, pick: impl Fn(&Action) -> Option<T>) -> T {
        let Some(at) = self.pending.iter().position(|a| pick(a).is_some()) else {
            panic!("expected {what}, pending: {:?}", self.pending);
        };
        pick(&self.pending.remove(at)).expect("picked")
    }

    pub fn receive(&mut self, msgs: Vec<ReceivedMessage>) {
        let id = self.take("a receive", |a| match a {
            Action::Receive { id, .. } => Some(*id),
            _ => None,
        });
        self.input(Input::Received {
            id,
            result: Ok(msgs),
        });
    }

    /// The keys of every pending acquire, in order (not answered).
    pub fn acquiring(&self) -> Vec<LockKey> {
        self.pending
            .iter()
            .flat_map(|a| match a {
                Action::Acquire { keys, .. } => keys.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Answers every pending acquire, key by key, with `outcome(key)`.
    pub fn answer_acquires(&mut self, outcome: impl Fn(&LockKey) -> AcquireOutcome) {
        while let Some(at) = self
            .pending
            .iter()
            .position(|a| matches!(a, Action::Acquire { .. }))
        {
            let Action::Acquire { batch, keys, .. } = self.pending.remove(at) else {
                unreachable!()
            };
            for (index, key) in keys.iter().enumerate() {
                let outcome = outcome(key);
                self.input(Input::Acquired {
                    batch,
                    index,
                    outcome,
                });
            }
        }
    }

    /// Finishes the running handler of SQS message `sqs_id`.
    pub fn finish(&mut self, sqs_id: &str, outcome: DispatchOutcome) {
        let id = self.take("a dispatch", |a| match a {
            Action::Dispatch { id, message, .. } if message.sqs_message_id == sqs_id => Some(*id),
            _ => None,
        });
        self.input(Input::HandlerFinished { id, outcome });
    }

    /// Answers every pending completion record, release, delete and
    /// visibility change successfully, until none is left.
    pub fn settle_all(&mut self) {
        loop {
            let Some(at) = self.pending.iter().position(|a| {
                matches!(
                    a,
                    Action::Complete { .. }
                        | Action::Release { .. }
                        | Action::Delete { .. }
                        | Action::ChangeVisibility { .. }
                )
            }) else {
                return;
            };
            match self.pending.remove(at) {
                Action::Complete { batch, entries, .. } => {
                    for index in 0..entries.len() {
                        self.input(Input::Completed {
                            batch,
                            index,
                            result: Ok(()),
                        });
                    }
                }
                Action::Release { id, .. } => self.input(Input::Released { id, result: Ok(()) }),
                Action::Delete { batch, handles } => {
                    for index in 0..handles.len() {
                        self.input(Input::Deleted {
                            batch,
                            index,
                            result: Ok(()),
                        });
                    }
                }
                Action::ChangeVisibility { batch, entries } => {
                    for index in 0..entries.len() {
                        self.input(Input::VisibilityChanged {
                            batch,
                            index,
                            result: Ok(()),
                        });
                    }
                }
                _ => unreachable!(),
            }
        }
    }

    /// Succeeds `sqs_id`'s handler and writes its record.
    pub fn succeed(&mut self, sqs_id: &str) {
        self.finish(sqs_id, DispatchOutcome::Succeeded);
        self.settle_all();
    }

    /// The SQS ids of the pending dispatches, in order.
    pub fn running(&self) -> Vec<String> {
        self.pending
            .iter()
            .filter_map(|a| match a {
                Action::Dispatch { message, .. } => Some(message.sqs_message_id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every visibility change pending, not answered.
    pub fn visibility_changes(&self) -> Vec<(ReceiptHandle, Duration)> {
        self.pending
            .iter()
            .flat_map(|a| match a {
                Action::ChangeVisibility { entries, .. } => entries.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The messages sent back for order, and whom they were behind.
    pub fn returned_for_order(&self) -> Vec<(String, String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ReturnedForOrder {
                    message,
                    group,
                    behind,
                } => Some((
                    message.sqs_message_id.clone(),
                    group.clone(),
                    behind.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        self.events.iter().for_each(|e| s.record(e));
        s
    }
}

pub fn keys(ids: &[&str]) -> Vec<LockKey> {
    ids.iter().map(|id| key(id)).collect()
}

pub fn back(ids: &[&str], behind: &str) -> Vec<(String, String, String)> {
    ids.iter()
        .map(|id| (id.to_string(), "A".to_string(), behind.to_string()))
        .collect()
}

impl Harness {
    pub fn at(&mut self, ms: u64) {
        self.now = self.now.max(ms);
        self.c.handle_timeout(t(self.now));
        self.drain();
    }

    /// Answers every pending abort with `Aborted` (the handler stops).
    pub fn answer_aborts(&mut self) {
        while let Some(at) = self
            .pending
            .iter()
            .position(|a| matches!(a, Action::Abort { .. }))
        {
            let Action::Abort { id, .. } = self.pending.remove(at) else {
                unreachable!()
            };
            // The dispatch is over too.
            self.pending
                .retain(|a| !matches!(a, Action::Dispatch { id: d, .. } if *d == id));
            self.input(Input::HandlerFinished {
                id,
                outcome: DispatchOutcome::Aborted,
            });
        }
    }

    pub fn receive_sizes(&self) -> Vec<u32> {
        self.pending
            .iter()
            .filter_map(|a| match a {
                Action::Receive { request, .. } => Some(request.max_messages),
                _ => None,
            })
            .collect()
    }
}
