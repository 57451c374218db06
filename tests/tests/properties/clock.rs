//! Each consumer process reads its own clock: it runs at its own rate
//! (within the drift the lock tolerates) from its own origin, while the
//! queues and the lock backend run on the true clock.

use std::time::Duration;

use iniesta_core::machine::MessageId;
use iniesta_core::Time;

use crate::schedule::Skew;
use crate::world::{Check, World};

const MILLION: u128 = 1_000_000;

impl Skew {
    /// The process's reading of the true instant `t`.
    pub fn local(&self, t: Time) -> Time {
        let t = t.since_origin().as_nanos();
        let rate = (MILLION as i128 + self.ppm as i128) as u128;
        let ns = u128::from(self.origin_ms) * 1_000_000 + t * rate / MILLION;
        Time::from_duration(nanos(ns))
    }

    /// The first true instant at which the process reads `local` or later.
    pub fn true_time(&self, local: Time) -> Time {
        let origin = u128::from(self.origin_ms) * 1_000_000;
        let l = local.since_origin().as_nanos().saturating_sub(origin);
        let rate = (MILLION as i128 + self.ppm as i128) as u128;
        let mut t = Time::from_duration(nanos((l * MILLION).div_ceil(rate)));
        while self.local(t) < local {
            t = t + Duration::from_nanos(1);
        }
        t
    }

    /// The longest true time a local span of `d` can take.
    pub fn true_span(&self, d: Duration) -> Duration {
        let rate = (MILLION as i128 + self.ppm as i128) as u128;
        nanos((d.as_nanos() * MILLION).div_ceil(rate))
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

impl World {
    /// Moves the true clock on by `by`. Paced: each process wakes at each of
    /// its deadlines on the way, as a live process does; else the whole jump
    /// passes before anyone wakes (a paused process).
    pub fn advance(&mut self, by: Duration, paced: bool, beats: bool) -> Check {
        self.beats = beats;
        if beats {
            self.answer_heartbeats()?;
        }
        let target = self.clock.now() + by;
        if paced {
            let mut wakes_here = 0;
            loop {
                let next = self
                    .procs
                    .iter()
                    .filter_map(|p| p.consumer.poll_timeout().map(|t| p.skew.true_time(t)))
                    .min();
                let Some(t) = next.filter(|t| *t <= target) else {
                    break;
                };
                if t > self.clock.now() {
                    self.time_passes();
                    self.clock.set(t);
                    wakes_here = 0;
                }
                wakes_here += 1;
                if wakes_here > 1_000 {
                    let msg = format!(
                        "liveness: a process keeps asking to be woken at {:?} and does nothing",
                        self.clock.now()
                    );
                    return Err(self.violation(msg));
                }
                self.wake(false);
                self.settle()?;
            }
        } else {
            self.uncover_all();
        }
        if target > self.clock.now() {
            self.time_passes();
            self.clock.set(target);
        }
        self.wake(true);
        self.settle()
    }

    /// Hands each process its timeout: all of them, or those due.
    fn wake(&mut self, all: bool) {
        for p in 0..self.procs.len() {
            let now = self.local(p);
            let due = self.procs[p]
                .consumer
                .poll_timeout()
                .is_some_and(|t| t <= now);
            if all || due {
                self.procs[p].consumer.handle_timeout(now);
            }
        }
    }

    /// True time is about to move: a heartbeat still unanswered is late.
    fn time_passes(&mut self) {
        for proc in &mut self.procs {
            let late: Vec<MessageId> = proc
                .pending
                .iter()
                .filter_map(|p| p.op.heartbeat_of())
                .collect();
            for id in late {
                if let Some(r) = proc.running.get_mut(&id) {
                    r.covered = false;
                }
            }
        }
    }
}
