//! The ways a handler ends besides a success and a plain failure — a retry
//! after a delay it asks for, a permanent failure, a hang that only the
//! handler timeout ends — and the checks of what the machine makes of them:
//!
//! - retry-after: the failed dispatch is released and its message returned
//!   with the delay (as SQS applies it: whole seconds, at most 12 hours),
//!   and the queue does not show it again before the delay is over;
//! - permanent, in a service that deletes permanent failures: a completion
//!   record is asked for (never a release) before the delete;
//! - permanent, in a service that leaves them for the dead-letter queue:
//!   the lock is released and the message handed back at once; the process
//!   never dispatches that SQS message again, hands back every later
//!   receipt of it at once and never deletes it; an event whose handler
//!   fails on every delivery ends in the dead-letter queue;
//! - timeout: a handler still running once the handler timeout has passed
//!   on its process's clock has been told to abort, and none is aborted as
//!   timed out before that.

use std::time::Duration;

use iniesta_core::machine::{DispatchOutcome, MessageId};
use iniesta_core::{sqs, ErrorChain, ReceiptHandle, ReceivedMessage, Retry};

use crate::coverage::{saw, Seen};
use crate::schedule::{Delay, Fault};
use crate::world::{note, Check, Ident, Running, World};

/// A return to the queue the machine owes after a failed dispatch.
#[derive(Debug)]
pub struct Owed {
    /// The visibility it must set, as SQS applies it.
    pub want: Duration,
    /// A retry-after (the queue must keep the message hidden that long),
    /// else a permanent failure handed back.
    pub retry_after: bool,
    /// The delivery's receipt handle.
    pub handle: Option<ReceiptHandle>,
    /// The release was answered: the return is due.
    pub released: bool,
}

/// The SQS id and receive count a receipt handle of the mock queue names
/// (`msg-{n}/{count}`).
pub fn delivery_of(handle: &ReceiptHandle) -> (&str, u32) {
    let (id, count) = handle.as_str().rsplit_once('/').unwrap_or_default();
    (id, count.parse().unwrap_or(0))
}

/// FNV-1a: a hash that stays the same from run to run.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Up to this receive count the consumer hands a message it gave up on
/// back at once (past it the queue may have no redrive policy, and it waits
/// as after any failure instead); every `maxReceiveCount` of the model is
/// below it.
const HAND_BACK_AT_ONCE_UP_TO: u32 = 10;

fn failed(retry: Retry, text: &str) -> DispatchOutcome {
    DispatchOutcome::Failed {
        error: ErrorChain::message(text),
        retry,
    }
}

impl World {
    /// Whether `ident`'s handler fails permanently on every delivery.
    pub fn fails_permanently(&self, ident: &Ident) -> bool {
        let pct = u64::from(self.params.permanent_pct);
        let service = u8::try_from(ident.service).unwrap_or(u8::MAX);
        pct > 0 && fnv(std::iter::once(service).chain(ident.id.bytes())) % 100 < pct
    }

    /// The duration a handler of service `s` asks for.
    pub fn delay(&self, s: usize, d: Delay) -> Duration {
        let around = |base: Duration, ms: i16| {
            let off = Duration::from_millis(u64::from(ms.unsigned_abs()));
            if ms < 0 {
                base.saturating_sub(off)
            } else {
                base + off
            }
        };
        match d {
            Delay::Ms(ms) => Duration::from_millis(u64::from(ms)),
            Delay::Lock(ms) => around(self.params.lock_timeout, ms),
            Delay::Visibility(ms) => around(self.services[s].params.visibility_timeout, ms),
            Delay::Minutes(m) => Duration::from_secs(60 * u64::from(m)),
            Delay::OverCap => sqs::MAX_VISIBILITY + Duration::from_secs(3600),
        }
    }

    /// Whether running handler `id` of process `p` goes on running instead
    /// of ending with `fault`: a hung one until it is aborted, a slow one
    /// this once.
    pub fn keeps_running(&mut self, p: usize, id: MessageId, fault: Fault) -> bool {
        let timeout = self.services[self.procs[p].service].params.handler_timeout;
        let Some(r) = self.procs[p].running.get_mut(&id) else {
            return false;
        };
        if r.aborted {
            return false;
        }
        if fault == Fault::Hang && timeout.is_some() && !r.hung {
            saw(Seen::Hung);
            r.hung = true;
        }
        r.hung || fault == Fault::Hang
    }

    /// How handler `r` of process `p` ends with `fault`.
    pub fn handler_outcome(&self, p: usize, r: &Running, fault: Fault) -> DispatchOutcome {
        let permanent = self.ledger.permanent.contains(&r.ident);
        match (r.aborted, fault) {
            // A hung handler never gets to its end; an aborted one usually
            // stops, and now and then it got to its end first.
            (true, _) if r.hung => DispatchOutcome::Aborted,
            (true, Fault::None | Fault::Hang) => DispatchOutcome::Aborted,
            (_, Fault::Panic) => DispatchOutcome::Panicked("injected panic".into()),
            (_, _) if permanent => failed(Retry::Never, "injected: undecodable"),
            (_, Fault::None | Fault::Lose | Fault::Hang) => DispatchOutcome::Succeeded,
            (_, Fault::Fail) => DispatchOutcome::failed_with("injected"),
            (_, Fault::RetryAfter(d)) => {
                let delay = self.delay(self.procs[p].service, d);
                failed(Retry::After(delay), "injected: try later")
            }
            (_, Fault::Permanent) => failed(Retry::Never, "injected: never"),
        }
    }

    /// Notes what dispatch `id` of process `p` (handler `r`) owes after
    /// ending with `outcome`.
    pub fn on_handler_outcome(&mut self, p: usize, id: MessageId, r: Running, o: &DispatchOutcome) {
        let s = self.procs[p].service;
        let deletes = self.services[s].params.delete_permanent_failures;
        let latest = self.ledger.latest_receive.get(&r.sqs_id).copied();
        let proc = &mut self.procs[p];
        let mut owe_return = |want: Duration, retry_after: bool| {
            let handle = r.handle.clone();
            let owed = Owed {
                want: sqs::visibility(want),
                retry_after,
                handle,
                released: false,
            };
            proc.owed_return.insert(id, owed);
        };
        match o {
            DispatchOutcome::Succeeded => {
                saw(if r.aborted {
                    Seen::SucceededAfterAbort
                } else {
                    Seen::Handled
                });
                self.ledger.succeeded.insert(r.ident);
                proc.owed_complete.insert(id);
            }
            DispatchOutcome::Failed {
                retry: Retry::Never,
                ..
            } if deletes => {
                saw(Seen::GivenUpDeleted);
                self.ledger.given_up.insert(r.ident);
                proc.owed_complete.insert(id);
            }
            DispatchOutcome::Failed {
                retry: Retry::Never,
                ..
            } => {
                saw(Seen::GivenUpReturned);
                owe_return(Duration::ZERO, false);
                proc.owed_release.insert(id);
                let count = latest.unwrap_or(0);
                proc.given_up.entry(r.sqs_id).or_insert(count);
            }
            DispatchOutcome::Failed {
                retry: Retry::After(d),
                ..
            } => {
                saw(Seen::RetryAfter);
                owe_return(*d, true);
                proc.owed_release.insert(id);
            }
            _ => {
                proc.owed_release.insert(id);
            }
        }
    }

    /// A dispatch by process `p` of SQS message `sqs_id`: never one it gave
    /// up on.
    pub fn check_not_given_up(&self, p: usize, sqs_id: &str, count: u32) -> Check {
        if let Some(at) = self.procs[p].given_up.get(sqs_id) {
            let msg = format!(
                "permanent: proc {p} dispatched {sqs_id} (receive #{count}) again after its \
                 handler failed permanently (latest receive then #{at}): it must hand it back \
                 for the dead-letter queue"
            );
            return Err(self.violation(msg));
        }
        Ok(())
    }

    /// A delete by process `p` of the delivery `handle`: never of a receipt
    /// it got after giving the message up (those it hands back).
    pub fn check_given_up_delete(&self, p: usize, handle: &ReceiptHandle) -> Check {
        let (sqs_id, count) = delivery_of(handle);
        if let Some(&at) = self.procs[p].given_up.get(sqs_id) {
            if count > at {
                let msg = format!(
                    "permanent: proc {p} deletes {handle}, received after it gave {sqs_id} up \
                     (at receive #{at}), instead of handing it back for the dead-letter queue"
                );
                return Err(self.violation(msg));
            }
        }
        Ok(())
    }

    /// A visibility change (not a heartbeat's) of process `p`: the return
    /// owed after a retry-after or a permanent failure sets what it must,
    /// and a receipt of a message given up is handed back at once. The
    /// delay the queue must then keep the message hidden for, if any.
    pub fn check_return(
        &mut self,
        p: usize,
        handle: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<Option<Duration>, proptest::test_runner::TestCaseError> {
        let proc = &mut self.procs[p];
        let owed = proc
            .by_handle
            .get(handle)
            .copied()
            .and_then(|id| proc.owed_return.remove(&id));
        let (sqs_id, count) = delivery_of(handle);
        let handed_back = proc.given_up.get(sqs_id).is_some_and(|&at| count > at)
            && count <= HAND_BACK_AT_ONCE_UP_TO;
        let (want, why) = match &owed {
            Some(o) if o.retry_after => (o.want, "retry-after: the return after the delay"),
            Some(o) => (o.want, "permanent: the hand-back after the failure"),
            None if handed_back => (
                Duration::ZERO,
                "permanent: the hand-back of a later receipt",
            ),
            None => return Ok(None),
        };
        if sqs::visibility(timeout) != want {
            let msg = format!(
                "{why} of {handle} on proc {p} sets the visibility to {timeout:?} (SQS applies \
                 {:?}), not {want:?}",
                sqs::visibility(timeout)
            );
            return Err(self.violation(msg));
        }
        if handed_back {
            saw(Seen::HandedBack);
            self.procs[p].owed_hand_back.remove(handle);
        }
        Ok(owed
            .filter(|o| o.retry_after && !o.want.is_zero())
            .map(|o| o.want))
    }

    /// Process `p`'s machine got the receipts `got`: those of messages it
    /// gave up on, received since, owe a hand-back at once.
    pub fn owe_hand_backs(&mut self, p: usize, got: &[ReceivedMessage]) {
        let proc = &mut self.procs[p];
        for m in got {
            let count = m.receive_count();
            let at = proc.given_up.get(&m.sqs_message_id);
            if at.is_some_and(|&at| count > at) && count <= HAND_BACK_AT_ONCE_UP_TO {
                proc.owed_hand_back.insert(m.receipt_handle.clone());
            }
        }
    }

    /// The queue applied a retry-after's return of `sqs_id`: it stays
    /// hidden for `delay` from now.
    pub fn returned(&mut self, sqs_id: &str, delay: Duration) {
        let until = self.clock.now() + delay;
        note!(
            self,
            "    {sqs_id} hidden until {until:?} (retry after {delay:?})"
        );
        self.ledger
            .hidden_until
            .insert(sqs_id.to_owned(), (until, delay));
    }

    /// A receive of `sqs_id` (receive #`count`) now: not before the delay
    /// its handler asked for is over.
    pub fn on_receipt(&mut self, sqs_id: &str, count: u32) -> Check {
        let now = self.clock.now();
        if let Some((until, delay)) = self.ledger.hidden_until.remove(sqs_id) {
            if now < until {
                let msg = format!(
                    "retry-after: {sqs_id} was received again (receive #{count}) at {now:?}, \
                     before the {delay:?} its handler asked for were over (at {until:?})"
                );
                return Err(self.violation(msg));
            }
            saw(Seen::RetryAfterHeld);
        }
        self.ledger.latest_receive.insert(sqs_id.to_owned(), count);
        Ok(())
    }

    /// Once process `p`'s machine has nothing more to say: every later
    /// receipt of a message it gave up on was handed back, and every return
    /// it owes after an answered release went out (unless its heartbeats'
    /// visibility changes are still out). A return to visibility zero may be
    /// skipped during a shutdown that does not return messages.
    pub fn check_owed(&mut self, p: usize) -> Check {
        let s = self.procs[p].service;
        let skip_zero = self.procs[p].shutting && !self.services[s].params.return_unstarted;
        let proc = &mut self.procs[p];
        if proc.owed_return.is_empty() && proc.owed_hand_back.is_empty() {
            return Ok(());
        }
        if skip_zero {
            proc.owed_return
                .retain(|_, o| !(o.released && o.want.is_zero()));
            proc.owed_hand_back.clear();
        }
        if let Some(handle) = proc.owed_hand_back.first() {
            let msg = format!(
                "permanent: proc {p} got {handle}, a later receipt of a message it gave up on, \
                 and did not hand it back at once"
            );
            return Err(self.violation(msg));
        }
        let pending = &proc.pending;
        let late = proc.owed_return.iter().find(|(_, o)| {
            o.released
                && !pending.iter().any(|c| match &c.op {
                    crate::ops::Op::Visibility { handle, .. } => Some(handle) == o.handle.as_ref(),
                    _ => false,
                })
        });
        if let Some((id, o)) = late {
            let msg = format!(
                "{}: {id:?} on proc {p} was released but its message was not returned with \
                 visibility {:?}",
                if o.retry_after {
                    "retry-after"
                } else {
                    "permanent"
                },
                o.want
            );
            return Err(self.violation(msg));
        }
        Ok(())
    }

    /// Once every machine has nothing more to say: no handler runs past
    /// its process's handler timeout without having been told to abort.
    pub fn check_timeouts(&self) -> Check {
        for (p, proc) in self.procs.iter().enumerate() {
            let Some(timeout) = self.services[proc.service].params.handler_timeout else {
                continue;
            };
            let now = self.local(p);
            let over = proc
                .running
                .iter()
                .find(|(_, r)| !r.aborted && now >= r.started + timeout);
            if let Some((id, r)) = over {
                let msg = format!(
                    "timeout: {} ({id:?}{}) has run for {:?} on proc {p}, past its handler \
                     timeout {timeout:?}, and was not aborted",
                    r.ident,
                    if r.hung { ", hung" } else { "" },
                    now.saturating_duration_since(r.started)
                );
                return Err(self.violation(msg));
            }
        }
        Ok(())
    }

    /// Process `p` aborts handler `id` as timed out: not before its timeout.
    pub fn check_timed_out(&self, p: usize, id: MessageId) -> Check {
        let Some(r) = self.procs[p].running.get(&id) else {
            return Ok(());
        };
        saw(Seen::TimedOut);
        let ran = self.local(p).saturating_duration_since(r.started);
        let timeout = self.services[self.procs[p].service].params.handler_timeout;
        if !timeout.is_some_and(|t| ran >= t) {
            let msg = format!(
                "timeout: {} ({id:?}) on proc {p} was aborted as timed out after {ran:?}, \
                 under its handler timeout {timeout:?}",
                r.ident
            );
            return Err(self.violation(msg));
        }
        Ok(())
    }

    /// At quiescence: every message of an event that fails permanently in
    /// a service that leaves such messages for the dead-letter queue got
    /// there.
    pub fn check_doomed(&self) -> Check {
        for (s, service) in self.services.iter().enumerate() {
            if let Some(id) = service
                .doomed
                .iter()
                .find(|id| !self.ledger.dead.contains(*id))
            {
                let msg = format!(
                    "permanent: {id} of svc{s} fails on every delivery, but it never reached \
                     the dead-letter queue (maxReceiveCount {})",
                    service.params.max_receive_count
                );
                return Err(self.violation(msg));
            }
        }
        Ok(())
    }
}
