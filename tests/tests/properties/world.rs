//! The world a schedule runs in: the services (a queue each, subscribed to
//! one topic, polled by a few consumer processes), the one lock backend they
//! share, the true clock and each process's own, and the steps that move it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use iniesta_core::machine::{Consumer, ConsumerConfig, MessageId};
use iniesta_core::publish::envelope_json;
use iniesta_core::{
    AttributeValue, Backoff, DeliveryMode, FilterPolicy, HandlerRegistry, LockKey, LockToken,
    ParseConfig, ReceiptHandle, Time,
};
use iniesta_mock::{Clock, MockQueue, QueueOptions, Redrive};
use proptest::test_runner::TestCaseError;

use crate::coverage::{saw, Seen};
use crate::lock::{self, SimLock};
use crate::ops::Pending;
use crate::oracles::Ledger;
use crate::schedule::{Params, ServiceParams, Skew, Step, EVENTS, EVENT_KEY, TOPIC};

pub type Check = Result<(), TestCaseError>;

/// One event as one service must handle it: the SNS id in envelope
/// delivery, the SQS id in raw delivery (what the design calls the
/// idempotency key), within that service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident {
    pub service: usize,
    pub id: String,
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "svc{}/{}", self.service, self.id)
    }
}

/// What the world knows about one SQS message.
pub enum Kind {
    Event(Ident),
    /// An event outside the service's filters, sent straight to its queue.
    Foreign,
    Malformed,
}

pub struct Msg {
    pub service: usize,
    pub event: &'static str,
    pub kind: Kind,
    /// Its message group, if it was sent with one.
    pub group: Option<String>,
}

pub struct Service {
    pub params: ServiceParams,
    /// The queue's name, which is also the consumers' lock scope.
    pub name: String,
    pub queue: MockQueue,
    /// The queue's dead-letter queue (its redrive policy's target).
    pub dlq: MockQueue,
    pub filters: Vec<&'static str>,
    /// Messages that stay at the end, in the queue or its dead-letter
    /// queue: malformed ones, and foreign ones not deleted.
    pub leftovers: usize,
    /// Messages of events that fail permanently in a service that leaves
    /// them for the dead-letter queue: each must end there.
    pub doomed: BTreeSet<String>,
}

impl Service {
    /// Whether SNS delivers `event` to this service: the world's own reading
    /// of the filters (exact names; `X.*` as the prefix `X.`).
    pub fn matches(&self, event: &str) -> bool {
        self.filters.iter().any(|f| match f.strip_suffix('*') {
            Some(prefix) => event.starts_with(prefix),
            None => *f == event,
        })
    }
}

/// A handler the machine asked for and the world has not finished.
pub struct Running {
    pub ident: Ident,
    pub sqs_id: String,
    /// The machine said Abort (the handler may still get to `Ok` first).
    pub aborted: bool,
    /// Every heartbeat so far went out on time and was answered at once and
    /// successfully, and the first came before the queue's visibility
    /// timeout ran out: the message must stay hidden.
    pub covered: bool,
    /// Its delivery's receipt handle.
    pub handle: Option<ReceiptHandle>,
    /// When it started, on its process's clock.
    pub started: Time,
    /// It hangs: it ends only once it is aborted.
    pub hung: bool,
    /// Its message group, if it has one.
    pub group: Option<String>,
    /// Its event had been handled before it started (a run again after a
    /// lost completion record): I8 does not judge it.
    pub rerun: bool,
}

/// One consumer process.
pub struct Proc {
    pub slot: usize,
    pub service: usize,
    pub generation: u64,
    pub consumer: Consumer,
    pub skew: Skew,
    pub pending: Vec<Pending>,
    /// The lock key of each token the lock backend gave this process.
    pub acquired: HashMap<LockToken, LockKey>,
    /// Dispatched messages, by the token they run under and by the
    /// receipt handle of their delivery: how the world finds the message a
    /// batch entry stands for.
    pub by_token: HashMap<LockToken, MessageId>,
    pub by_handle: HashMap<ReceiptHandle, MessageId>,
    pub running: BTreeMap<MessageId, Running>,
    /// Messages that were dispatched, by the event they carry.
    pub dispatched: HashMap<MessageId, Ident>,
    /// Failed dispatches whose release the machine owes.
    pub owed_release: BTreeSet<MessageId>,
    /// Successful dispatches (and permanent failures the service deletes)
    /// whose completion record the machine owes before it deletes their
    /// message.
    pub owed_complete: BTreeSet<MessageId>,
    /// Failed dispatches whose return to the queue (a visibility change)
    /// the machine owes: after a retry-after, and after a permanent
    /// failure left for the dead-letter queue.
    pub owed_return: BTreeMap<MessageId, crate::outcomes::Owed>,
    /// The SQS ids this process gave up on (permanent failures left for
    /// the dead-letter queue), with the latest receive of each at that
    /// moment: never dispatched by it again, and every later receipt handed
    /// back, never deleted.
    pub given_up: HashMap<String, u32>,
    /// Later receipts of those, handed to the machine: each owes its hand
    /// back.
    pub owed_hand_back: BTreeSet<ReceiptHandle>,
    /// A shutdown was asked for.
    pub shutting: bool,
}

pub struct World {
    pub params: Params,
    pub clock: Clock,
    pub services: Vec<Service>,
    pub lock: Box<dyn SimLock>,
    pub procs: Vec<Proc>,
    generations: u64,
    /// Each publish: its SNS id and the services it went to.
    pub published: Vec<(String, &'static str, Vec<usize>)>,
    next_sns: u64,
    pub msgs: HashMap<String, Msg>,
    /// Every event some service must handle, with the services its publish
    /// went to.
    pub expected: BTreeMap<Ident, Vec<usize>>,
    /// When each delivery (SQS id, receive count) was received, and its
    /// receipt handle.
    pub received_at: HashMap<(String, u32), (Time, ReceiptHandle)>,
    pub ledger: Ledger,
    /// The SQS ids sent to each service's queue in each message group, in
    /// the order they were sent (the order a FIFO queue keeps).
    pub group_order: HashMap<(usize, String), Vec<String>>,
    /// Messages sent so far (they take the groups in turn).
    pub sends: u64,
    /// Deduplication ids given so far.
    pub dedups: u64,
    /// Heartbeat calls are answered as soon as they go out.
    pub beats: bool,
    pub tracing: bool,
    pub trace: Vec<String>,
}

/// Adds a line to the trace, formatted only when tracing.
macro_rules! note {
    ($world:expr, $($arg:tt)*) => {
        if $world.tracing {
            let line = format!($($arg)*);
            $world.trace.push(line);
        }
    };
}
pub(crate) use note;

impl World {
    pub fn new(params: Params, tracing: bool) -> World {
        let clock = Clock::virtual_clock();
        let services = params
            .services
            .iter()
            .enumerate()
            .map(|(i, sp)| {
                // SQS names a FIFO queue `….fifo`, and its dead-letter
                // queue must be FIFO too.
                let fifo = params.fifo;
                let suffix = if fifo { ".fifo" } else { "" };
                let name = format!("iniesta-test-svc{i}{suffix}");
                let dlq = MockQueue::with_options(
                    format!("iniesta-test-svc{i}-dlq{suffix}"),
                    &clock,
                    QueueOptions::default()
                        .with_retain_deleted(false)
                        .with_fifo(fifo),
                );
                let options = QueueOptions::default()
                    .with_fifo(fifo)
                    .with_visibility_timeout(sp.visibility_timeout)
                    .with_retain_deleted(false)
                    .with_redrive(Redrive::new(&dlq, sp.max_receive_count));
                Service {
                    queue: MockQueue::with_options(name.clone(), &clock, options),
                    dlq,
                    name,
                    filters: sp.filters.clone(),
                    params: sp.clone(),
                    leftovers: 0,
                    doomed: BTreeSet::new(),
                }
            })
            .collect();
        let lock = lock::backend(params.backend, &clock);
        let mut world = World {
            params,
            clock,
            services,
            lock,
            procs: Vec::new(),
            generations: 0,
            published: Vec::new(),
            next_sns: 0,
            msgs: HashMap::new(),
            expected: BTreeMap::new(),
            received_at: HashMap::new(),
            ledger: Ledger::default(),
            group_order: HashMap::new(),
            sends: 0,
            dedups: 0,
            beats: true,
            tracing,
            trace: Vec::new(),
        };
        let mut slot = 0;
        for s in 0..world.services.len() {
            for _ in 0..world.services[s].params.consumers {
                let p = world.fresh_proc(slot, s);
                world.procs.push(p);
                slot += 1;
            }
        }
        world
    }

    /// A failed check, with the end of the trace when tracing.
    pub fn violation(&self, msg: String) -> TestCaseError {
        if !self.tracing {
            return TestCaseError::fail(msg);
        }
        let from = self.trace.len().saturating_sub(60);
        TestCaseError::fail(format!(
            "{msg}\n--- trace (last {}) ---\n{}",
            self.trace.len() - from,
            self.trace[from..].join("\n")
        ))
    }

    pub fn config(&self, s: usize) -> ConsumerConfig {
        let service = &self.services[s];
        let sp = &service.params;
        let lock = self.params.lock_timeout;
        let mode = if sp.raw {
            DeliveryMode::Raw
        } else {
            DeliveryMode::Envelope
        };
        let parse = ParseConfig {
            mode,
            event_key: EVENT_KEY.into(),
            topic_arn: Some(TOPIC.into()),
        };
        let mut c = ConsumerConfig::new(parse, service.name.clone());
        c.filters =
            Some(FilterPolicy::from_filters(EVENT_KEY, &service.filters).expect("valid filters"));
        c.delete_unmatched = sp.delete_unmatched;
        c.max_in_flight = sp.max_in_flight;
        c.receive_batch = sp.receive_batch;
        c.concurrent_receives = sp.concurrent_receives;
        c.wait_time = Duration::ZERO;
        c.lock_timeout = lock;
        c.heartbeat_interval = lock.mul_f64(0.6);
        c.visibility_extension = Some(lock);
        c.dedupe_window = crate::schedule::DEDUPE;
        c.failure_backoff = sp.backoff.then_some(Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        });
        c.shutdown_grace = Duration::from_secs(5);
        c.return_unstarted_on_shutdown = sp.return_unstarted;
        c.delete_batch_window = sp.delete_batch_window;
        c.handler_timeout = sp.handler_timeout;
        c.delete_permanent_failures = sp.delete_permanent_failures;
        c.fifo = self.params.fifo;
        c
    }

    /// Handlers for each filter (exact names, and prefixes routed as
    /// prefixes), and a default handler if the service has one. The world
    /// decides outcomes itself; they are never called.
    fn handlers(&self, s: usize) -> HandlerRegistry {
        let service = &self.services[s];
        let mut r = HandlerRegistry::new();
        for f in &service.filters {
            r.on_sync(*f, |_d| Ok::<_, String>(()))
                .expect("a filter is a route");
        }
        if service.params.default_handler {
            r.on_default(|| async {}).expect("one default");
        }
        r
    }

    pub fn fresh_proc(&mut self, slot: usize, service: usize) -> Proc {
        self.generations += 1;
        let skew = self.params.skews[slot % self.params.skews.len()];
        let now = skew.local(self.clock.now());
        Proc {
            slot,
            service,
            generation: self.generations,
            consumer: Consumer::new(self.config(service), &self.handlers(service), now)
                .expect("valid config"),
            skew,
            pending: Vec::new(),
            acquired: HashMap::new(),
            by_token: HashMap::new(),
            by_handle: HashMap::new(),
            running: BTreeMap::new(),
            dispatched: HashMap::new(),
            owed_release: BTreeSet::new(),
            owed_complete: BTreeSet::new(),
            owed_return: BTreeMap::new(),
            given_up: HashMap::new(),
            owed_hand_back: BTreeSet::new(),
            shutting: false,
        }
    }

    /// Process `p`'s reading of the true clock.
    pub fn local(&self, p: usize) -> Time {
        self.procs[p].skew.local(self.clock.now())
    }

    /// Sends one copy of `event` to service `s`'s queue, as SNS delivers it
    /// (`targets`: the services its publish went to), or straight to the
    /// queue as `kind`.
    fn send(
        &mut self,
        s: usize,
        sns: &str,
        event: &'static str,
        targets: Option<&[usize]>,
        kind: Option<Kind>,
    ) {
        let attrs = BTreeMap::from([(
            EVENT_KEY.to_string(),
            AttributeValue::String(event.to_string()),
        )]);
        let group = self.next_group();
        let (id, group) = if self.services[s].params.raw {
            self.enqueue(s, r#"{"n":1}"#.into(), attrs, group)
        } else {
            let body = envelope_json(TOPIC, sns, r#"{"n":1}"#, &attrs);
            self.enqueue(s, body, BTreeMap::new(), group)
        };
        let kind = kind.unwrap_or_else(|| {
            let ident = Ident {
                service: s,
                id: if self.services[s].params.raw {
                    id.clone()
                } else {
                    sns.to_string()
                },
            };
            let targets = targets.unwrap_or_default().to_vec();
            self.expected.entry(ident.clone()).or_insert(targets);
            if self.fails_permanently(&ident) {
                saw(Seen::PermanentEvent);
                self.ledger.permanent.insert(ident.clone());
                if !self.services[s].params.delete_permanent_failures {
                    self.services[s].doomed.insert(id.clone());
                }
            }
            Kind::Event(ident)
        });
        if !matches!(kind, Kind::Event(_)) {
            self.services[s].leftovers += 1;
        }
        note!(self, "  sent {id} to svc{s}: {event} ({sns})");
        self.msgs.insert(
            id,
            Msg {
                service: s,
                event,
                kind,
                group,
            },
        );
    }

    fn fresh_sns(&mut self) -> String {
        self.next_sns += 1;
        format!("sns-{}", self.next_sns)
    }

    pub fn apply(&mut self, step: &Step) -> Check {
        note!(self, "t={:?} {:?}", self.clock.now().since_origin(), step);
        let services = self.services.len();
        match *step {
            Step::Publish { event, dup } => {
                let sns = self.fresh_sns();
                let event = EVENTS[event as usize % EVENTS.len()];
                let targets: Vec<usize> = (0..services)
                    .filter(|&s| self.services[s].matches(event))
                    .collect();
                if targets.len() > 1 {
                    saw(Seen::FanOut);
                }
                self.published.push((sns.clone(), event, targets.clone()));
                for &s in &targets {
                    let copies = 1 + ((dup >> s) & 1);
                    for _ in 0..copies {
                        self.send(s, &sns, event, Some(&targets), None);
                    }
                }
            }
            Step::Duplicate { nth, service } => {
                if !self.published.is_empty() {
                    let n = nth as usize % self.published.len();
                    let (sns, event, targets) = self.published[n].clone();
                    if !targets.is_empty() {
                        let s = targets[service as usize % targets.len()];
                        self.send(s, &sns, event, Some(&targets), None);
                    }
                }
            }
            Step::Foreign { service, event } => {
                let s = service as usize % services;
                let outside = (0..EVENTS.len())
                    .map(|i| EVENTS[(event as usize + i) % EVENTS.len()])
                    .find(|e| !self.services[s].matches(e));
                if let Some(e) = outside {
                    saw(Seen::Foreign);
                    let sns = self.fresh_sns();
                    self.send(s, &sns, e, None, Some(Kind::Foreign));
                }
            }
            Step::Garbage { service } => {
                let s = service as usize % services;
                let group = self.next_group();
                let (id, group) = self.enqueue(s, "not an envelope".into(), BTreeMap::new(), group);
                self.services[s].leftovers += 1;
                self.msgs.insert(
                    id,
                    Msg {
                        service: s,
                        event: "",
                        kind: Kind::Malformed,
                        group,
                    },
                );
            }
            Step::Run {
                proc,
                op,
                fault,
                nodes,
            } => {
                let p = proc as usize % self.procs.len();
                if !self.procs[p].pending.is_empty() {
                    let i = op as usize % self.procs[p].pending.len();
                    let pending = self.procs[p].pending.remove(i);
                    self.run_op(p, pending, crate::lock::Faults { fault, nodes })?;
                }
            }
            Step::Advance { ms, paced, beats } => {
                self.advance(Duration::from_millis(u64::from(ms)), paced, beats)?;
            }
            Step::Crash { proc } => {
                let p = proc as usize % self.procs.len();
                self.crash(p);
            }
            Step::Shutdown { proc } => {
                let p = proc as usize % self.procs.len();
                let now = self.local(p);
                self.procs[p].shutting = true;
                self.procs[p].consumer.shutdown(now);
            }
            Step::LoseKey { nth, all } => self.lose_key(nth as usize, all),
        }
        self.settle()
    }

    /// The process dies with everything it was doing; a fresh one takes its
    /// slot.
    fn crash(&mut self, p: usize) {
        saw(Seen::Crash);
        let generation = self.procs[p].generation;
        for (id, r) in &self.procs[p].running {
            if !r.aborted {
                self.ledger.end_active(&r.ident, generation, *id);
            }
        }
        self.ledger.orphan(generation);
        let (slot, service) = (self.procs[p].slot, self.procs[p].service);
        self.procs[p] = self.fresh_proc(slot, service);
    }

    /// The backend loses a key that holds something: on one node or all.
    fn lose_key(&mut self, nth: usize, all: bool) {
        let live: Vec<LockKey> = self
            .ledger
            .keys
            .iter()
            .filter(|k| !self.lock.holders(k).is_empty() || self.lock.records(k) > 0)
            .cloned()
            .collect();
        if live.is_empty() {
            return;
        }
        let key = live[nth % live.len()].clone();
        let needed = self.lock.needed();
        let holders = self.lock.holders(&key);
        let records = self.lock.records(&key);
        self.lock.lose(&key, nth, all);
        note!(self, "  lost {key} (all nodes: {all})");
        // A lock that lost a node may still be on a majority now, but a node
        // that missed an extend expires earlier: any loss takes the lock
        // away from its holder.
        for (token, nodes) in holders {
            if self.lock.held_by(&key, &token) < nodes {
                self.ledger.lock_lost(&token);
            }
        }
        if records >= needed && self.lock.records(&key) < needed {
            self.ledger.record_lost(&key);
        }
    }

    /// Carries out what every machine asks for (recording pending calls)
    /// and checks the invariants, until no machine has anything more to say.
    pub fn settle(&mut self) -> Check {
        loop {
            let mut progressed = false;
            for p in 0..self.procs.len() {
                let mut deferred = Vec::new();
                let mut prompt = Vec::new();
                while let Some(action) = self.procs[p].consumer.poll_action() {
                    progressed = true;
                    self.on_action(p, action, &mut deferred, &mut prompt)?;
                }
                let mut stopped = false;
                while let Some(event) = self.procs[p].consumer.poll_event() {
                    stopped |= self.on_event(p, event)?;
                }
                if stopped && !(prompt.is_empty() && self.procs[p].pending.is_empty()) {
                    let msg = format!(
                        "I6: proc {p} reported Stopped with IO outstanding: {:?}",
                        self.procs[p].pending
                    );
                    return Err(self.violation(msg));
                }
                let now = self.local(p);
                for input in deferred {
                    progressed = true;
                    self.procs[p].consumer.handle_input(now, input);
                }
                for pending in prompt {
                    progressed = true;
                    self.run_op(p, pending, crate::lock::Faults::NONE)?;
                }
                self.check_shutdown(p)?;
            }
            if !progressed {
                for p in 0..self.procs.len() {
                    if let Some(id) = self.procs[p].owed_release.first() {
                        let msg = format!(
                            "I4: failed dispatch {id:?} on proc {p} was not followed by a release"
                        );
                        return Err(self.violation(msg));
                    }
                    self.check_owed(p)?;
                }
                return self.check_timeouts();
            }
        }
    }
}
