//! A conformance suite for an SNS FIFO topic and the SQS FIFO queue
//! subscribed to it: the rules a FIFO consumer leans on, each as a named
//! check ([`FIFO_CHECKS`]).
//!
//! It runs through the core's ports only — [`Topic::publish`] with a group
//! and deduplication id, [`Queue::receive`], `delete_batch` and
//! `change_visibility_batch` — so the same checks run against
//! [`MockTopic`](crate::MockTopic) → [`MockQueue`](crate::MockQueue) and
//! against real SNS and SQS (or an emulator).
//!
//! What the suite needs:
//! - a FIFO topic with content-based deduplication on, and a FIFO queue
//!   subscribed to it (raw or envelope delivery), empty at the start;
//! - a [`ConformanceClock`]. On a virtual clock receives do not wait and
//!   the check of the deduplication window's end moves the clock five
//!   minutes; on real time, receives long-poll for
//!   [`FifoConformance::poll`] (1 s by default) and that check sleeps
//!   five minutes, so leave it out ([`Check::timed`]) unless you mean it.
//!
//! The checks run one after another. Each uses message groups and
//! deduplication ids of its own (`{prefix}{check}-…`), deletes what it
//! receives, and ignores (deletes) messages of other checks, so a failed
//! check does not spill into the next. Give each run its own
//! [`id_prefix`](FifoConformance::id_prefix) when the topic and queue
//! outlive it: deduplication ids are remembered for five minutes.
//!
//! ```
//! use iniesta_mock::conformance::fifo::FifoConformance;
//! use iniesta_mock::{Clock, MockQueue, MockTopic, QueueOptions, SubscribeOptions, TopicOptions};
//!
//! let clock = Clock::virtual_clock();
//! let topic = MockTopic::with_options(
//!     "events.fifo",
//!     &clock,
//!     TopicOptions::default().with_fifo(true).with_content_based_deduplication(true),
//! );
//! let queue = MockQueue::with_options("svc.fifo", &clock, QueueOptions::default().with_fifo(true));
//! topic.subscribe(&queue, SubscribeOptions::default());
//! let report = futures::executor::block_on(FifoConformance::new().run(&topic, &queue, &clock));
//! report.assert_passed();
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use iniesta_core::message::{ATTR_DEDUPLICATION_ID, ATTR_MESSAGE_GROUP_ID, ATTR_SEQUENCE_NUMBER};
use iniesta_core::{OutgoingMessage, Queue, ReceiveRequest, ReceivedMessage, Topic};

use super::{Check, CheckResult, ConformanceClock, Report};
use crate::DEDUPLICATION_INTERVAL;

const fn check(name: &'static str, rule: &'static str, timed: bool) -> Check {
    Check { name, rule, timed }
}

/// Every FIFO check, in the order they run.
pub const FIFO_CHECKS: &[Check] = &[
    check(
        "order_within_group",
        "the messages of a group are received in publish order, with groups interleaved",
        false,
    ),
    check(
        "group_blocked_while_in_flight",
        "no later message of a group is received while one is in flight; a delete frees it",
        false,
    ),
    check(
        "visible_again_keeps_order",
        "a message made visible again is received again before the rest of its group",
        false,
    ),
    check(
        "duplicate_delivered_once",
        "a second publish with a deduplication id seen within 5 minutes delivers nothing",
        false,
    ),
    check(
        "duplicate_answers_first_id",
        "a duplicate publish is answered with the first publish's message id",
        false,
    ),
    check(
        "duplicate_after_delete_dropped",
        "a deduplication id stays seen for 5 minutes after its message was deleted",
        false,
    ),
    check(
        "content_based_dedup",
        "without a deduplication id, the same body is delivered once and another body again",
        false,
    ),
    check(
        "group_and_dedup_ids_delivered",
        "every delivery carries its MessageGroupId and MessageDeduplicationId",
        false,
    ),
    check(
        "sequence_numbers_increase",
        "every delivery carries a decimal SequenceNumber, increasing within its group",
        false,
    ),
    check(
        "dedup_window_ends",
        "a deduplication id is delivered again once 5 minutes have passed",
        true,
    ),
];

/// A configured run of the FIFO suite.
#[derive(Debug, Clone)]
pub struct FifoConformance {
    prefix: String,
    only: Option<BTreeSet<String>>,
    poll: Option<Duration>,
}

impl Default for FifoConformance {
    fn default() -> Self {
        FifoConformance::new()
    }
}

impl FifoConformance {
    /// Every check, ids prefixed `conformance-`.
    pub fn new() -> FifoConformance {
        FifoConformance {
            prefix: "conformance-".to_owned(),
            only: None,
            poll: None,
        }
    }

    /// Prefixes every group and deduplication id with `prefix` (ASCII
    /// letters, digits and punctuation, as SQS takes them).
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> FifoConformance {
        self.prefix = prefix.into();
        self
    }

    /// Runs only the checks named (a name that is no check fails the run).
    pub fn only<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> FifoConformance {
        self.only = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// How long each receive long-polls. Default: not at all on a virtual
    /// clock (a wait there lasts until the clock moves), 1 s on real time.
    pub fn poll(mut self, wait: Duration) -> FifoConformance {
        self.poll = Some(wait);
        self
    }

    /// Runs the checks against `topic` and the FIFO `queue` subscribed to
    /// it.
    pub async fn run<T: Topic, Q: Queue>(
        &self,
        topic: &T,
        queue: &Q,
        clock: &dyn ConformanceClock,
    ) -> Report {
        let mut results = Vec::new();
        if let Some(only) = &self.only {
            for name in only {
                if !FIFO_CHECKS.iter().any(|c| c.name == name) {
                    results.push(CheckResult {
                        name: "unknown_check",
                        failure: Some(format!("there is no FIFO check called {name:?}")),
                    });
                }
            }
        }
        let poll = self.poll.unwrap_or(if clock.is_virtual() {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        });
        for c in FIFO_CHECKS {
            if self.only.as_ref().is_some_and(|o| !o.contains(c.name)) {
                continue;
            }
            let ctx = Ctx {
                topic,
                queue,
                clock,
                prefix: &self.prefix,
                check: c.name,
                poll,
            };
            let failure = run_check(&ctx).await.err();
            // Whatever a failed check left visible goes, so the next starts
            // from an empty queue.
            let _ = ctx.collect(usize::MAX).await;
            results.push(CheckResult {
                name: c.name,
                failure,
            });
        }
        Report {
            suite: "SNS/SQS FIFO",
            results,
        }
    }
}

type Outcome = Result<(), String>;

struct Ctx<'a, T, Q> {
    topic: &'a T,
    queue: &'a Q,
    clock: &'a dyn ConformanceClock,
    prefix: &'a str,
    check: &'static str,
    poll: Duration,
}

/// A delivery of this check: the published body (out of an envelope, if
/// it came in one) and what the queue said about it.
struct Got {
    body: String,
    message: ReceivedMessage,
}

impl Got {
    fn attr(&self, name: &str) -> Option<&str> {
        self.message.attributes.other.get(name).map(String::as_str)
    }
}

/// The published body of a delivery: the `Message` of an SNS envelope, or
/// the body itself in raw delivery.
fn published_body(m: &ReceivedMessage) -> String {
    let envelope: Option<serde_json::Value> = serde_json::from_str(&m.body).ok();
    envelope
        .as_ref()
        .filter(|v| v.get("Type").and_then(|t| t.as_str()) == Some("Notification"))
        .and_then(|v| v.get("Message"))
        .and_then(|v| v.as_str())
        .map_or_else(|| m.body.clone(), str::to_owned)
}

fn bodies(got: &[Got]) -> Vec<&str> {
    got.iter().map(|g| g.body.as_str()).collect()
}

impl<T: Topic, Q: Queue> Ctx<'_, T, Q> {
    /// This check's id for `name` (a group or deduplication id).
    fn id(&self, name: &str) -> String {
        format!("{}{}-{name}", self.prefix, self.check)
    }

    /// Publishes `body` in this check's group `group`, with this check's
    /// deduplication id `dedup` (or none: content-based).
    async fn publish(
        &self,
        body: &str,
        group: &str,
        dedup: Option<&str>,
    ) -> Result<String, String> {
        let mut m = OutgoingMessage::new(body, Default::default()).with_group_id(self.id(group));
        if let Some(d) = dedup {
            m = m.with_deduplication_id(self.id(d));
        }
        self.topic
            .publish(m)
            .await
            .map_err(|e| format!("publish of {body:?} failed: {e}"))
    }

    /// One receive of up to `max` messages, hidden for 60 s; messages of
    /// other checks are deleted and left out.
    async fn receive(&self, max: u32) -> Result<Vec<Got>, String> {
        let request = ReceiveRequest {
            max_messages: max,
            wait_time: self.poll,
            visibility_timeout: Some(Duration::from_secs(60)),
        };
        let got = self
            .queue
            .receive(request)
            .await
            .map_err(|e| format!("receive failed: {e}"))?;
        let mine = self.id("");
        let (own, foreign): (Vec<_>, Vec<_>) = got.into_iter().partition(|m| {
            m.attributes
                .message_group_id()
                .is_some_and(|g| g.starts_with(&mine))
        });
        if !foreign.is_empty() {
            let handles = foreign.into_iter().map(|m| m.receipt_handle).collect();
            let _ = self.queue.delete_batch(handles).await;
        }
        Ok(own
            .into_iter()
            .map(|message| Got {
                body: published_body(&message),
                message,
            })
            .collect())
    }

    async fn delete(&self, got: &[Got]) -> Outcome {
        if got.is_empty() {
            return Ok(());
        }
        let handles = got
            .iter()
            .map(|g| g.message.receipt_handle.clone())
            .collect();
        for (g, r) in got.iter().zip(self.queue.delete_batch(handles).await) {
            r.map_err(|e| format!("delete of {:?} failed: {e}", g.body))?;
        }
        Ok(())
    }

    /// Receives and deletes until `want` messages of this check came or a
    /// receive finds nothing; returns them in the order received.
    async fn collect(&self, want: usize) -> Result<Vec<Got>, String> {
        let mut all = Vec::new();
        for _ in 0..50 {
            let got = self.receive(10).await?;
            if got.is_empty() {
                break;
            }
            self.delete(&got).await?;
            all.extend(got);
            if all.len() >= want {
                break;
            }
        }
        Ok(all)
    }

    /// Fails if a receive (two, on real time) returns a message of this
    /// check; `why` says what was expected.
    async fn expect_nothing(&self, why: &str) -> Outcome {
        let rounds = if self.clock.is_virtual() { 1 } else { 2 };
        for _ in 0..rounds {
            let got = self.receive(10).await?;
            if !got.is_empty() {
                return Err(format!(
                    "received {:?}; expected nothing: {why}",
                    bodies(&got)
                ));
            }
        }
        Ok(())
    }
}

async fn run_check<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    match c.check {
        "order_within_group" => order_within_group(c).await,
        "group_blocked_while_in_flight" => group_blocked_while_in_flight(c).await,
        "visible_again_keeps_order" => visible_again_keeps_order(c).await,
        "duplicate_delivered_once" => duplicate_delivered_once(c).await,
        "duplicate_answers_first_id" => duplicate_answers_first_id(c).await,
        "duplicate_after_delete_dropped" => duplicate_after_delete_dropped(c).await,
        "content_based_dedup" => content_based_dedup(c).await,
        "group_and_dedup_ids_delivered" => group_and_dedup_ids_delivered(c).await,
        "sequence_numbers_increase" => sequence_numbers_increase(c).await,
        "dedup_window_ends" => dedup_window_ends(c).await,
        other => Err(format!("there is no FIFO check called {other:?}")),
    }
}

async fn order_within_group<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    let sent = ["a1", "b1", "a2", "a3", "b2", "a4", "b3", "a5"];
    for body in sent {
        c.publish(body, &body[..1], Some(body)).await?;
    }
    let got = c.collect(sent.len()).await?;
    for group in ["a", "b"] {
        let want: Vec<&str> = sent
            .iter()
            .copied()
            .filter(|b| b.starts_with(group))
            .collect();
        let order: Vec<&str> = bodies(&got)
            .into_iter()
            .filter(|b| b.starts_with(group))
            .collect();
        if order != want {
            return Err(format!(
                "group {group} was received as {order:?}; expected {want:?} (all: {:?})",
                bodies(&got)
            ));
        }
    }
    Ok(())
}

async fn group_blocked_while_in_flight<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    c.publish("a1", "a", Some("a1")).await?;
    c.publish("a2", "a", Some("a2")).await?;
    let first = c.receive(1).await?;
    if bodies(&first) != ["a1"] {
        return Err(format!(
            "the first receive gave {:?}; expected [\"a1\"]",
            bodies(&first)
        ));
    }
    c.expect_nothing("a1 is in flight, so a2 waits").await?;
    c.delete(&first).await?;
    let next = c.collect(1).await?;
    if bodies(&next).first() != Some(&"a2") {
        return Err(format!(
            "after a1's delete got {:?}; expected a2",
            bodies(&next)
        ));
    }
    Ok(())
}

async fn visible_again_keeps_order<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    c.publish("b1", "b", Some("b1")).await?;
    c.publish("b2", "b", Some("b2")).await?;
    let first = c.receive(1).await?;
    if bodies(&first) != ["b1"] {
        return Err(format!(
            "the first receive gave {:?}; expected [\"b1\"]",
            bodies(&first)
        ));
    }
    let handle = first[0].message.receipt_handle.clone();
    let changed = c
        .queue
        .change_visibility_batch(vec![(handle, Duration::ZERO)])
        .await;
    if let Some(Err(e)) = changed.first() {
        return Err(format!("making b1 visible again failed: {e}"));
    }
    let again = c.receive(1).await?;
    if bodies(&again) != ["b1"] || again[0].message.receive_count() != 2 {
        return Err(format!(
            "after b1 was made visible again got {:?} (receive counts {:?}); expected b1, \
             received twice",
            bodies(&again),
            again
                .iter()
                .map(|g| g.message.receive_count())
                .collect::<Vec<_>>()
        ));
    }
    c.delete(&again).await?;
    let rest = c.collect(1).await?;
    if bodies(&rest) != ["b2"] {
        return Err(format!("then got {:?}; expected [\"b2\"]", bodies(&rest)));
    }
    Ok(())
}

async fn duplicate_delivered_once<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    c.publish("first", "g", Some("d")).await?;
    c.publish("second", "g", Some("d")).await?;
    let got = c.collect(2).await?;
    if bodies(&got) != ["first"] {
        return Err(format!(
            "two publishes with one deduplication id delivered {:?}; expected [\"first\"]",
            bodies(&got)
        ));
    }
    Ok(())
}

async fn duplicate_answers_first_id<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    let first = c.publish("first", "g", Some("d")).await?;
    let second = c.publish("second", "g", Some("d")).await?;
    c.collect(2).await?;
    if first != second {
        return Err(format!(
            "the duplicate publish answered message id {second:?}; expected the first's, {first:?}"
        ));
    }
    Ok(())
}

async fn duplicate_after_delete_dropped<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    c.publish("first", "g", Some("d")).await?;
    let got = c.collect(1).await?;
    if bodies(&got) != ["first"] {
        return Err(format!("got {:?}; expected [\"first\"]", bodies(&got)));
    }
    c.publish("again", "g", Some("d")).await?;
    c.expect_nothing("the deduplication id was seen less than 5 minutes ago")
        .await
}

async fn content_based_dedup<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    let same = format!("same body of {}", c.id(""));
    c.publish(&same, "g", None).await?;
    c.publish(&same, "g", None).await?;
    let other = format!("another body of {}", c.id(""));
    c.publish(&other, "g", None).await?;
    let got = c.collect(3).await?;
    if bodies(&got) != [same.as_str(), other.as_str()] {
        return Err(format!(
            "publishing a body twice and another once delivered {:?}; expected [{same:?}, \
             {other:?}]",
            bodies(&got)
        ));
    }
    if got.iter().any(|g| g.attr(ATTR_DEDUPLICATION_ID).is_none()) {
        return Err("a content-deduplicated delivery has no MessageDeduplicationId".into());
    }
    Ok(())
}

async fn group_and_dedup_ids_delivered<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    c.publish("m1", "g", Some("d1")).await?;
    let got = c.collect(1).await?;
    let Some(m) = got.first() else {
        return Err("the message was not delivered".into());
    };
    let want = [
        (ATTR_MESSAGE_GROUP_ID, c.id("g")),
        (ATTR_DEDUPLICATION_ID, c.id("d1")),
    ];
    for (name, value) in want {
        if m.attr(name) != Some(value.as_str()) {
            return Err(format!("{name} was {:?}; expected {value:?}", m.attr(name)));
        }
    }
    Ok(())
}

async fn sequence_numbers_increase<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    for body in ["s1", "s2", "s3"] {
        c.publish(body, "g", Some(body)).await?;
    }
    let got = c.collect(3).await?;
    let mut seqs = Vec::new();
    for g in &got {
        match g.attr(ATTR_SEQUENCE_NUMBER) {
            Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => seqs.push(s),
            other => return Err(format!("{} has SequenceNumber {other:?}", g.body)),
        }
    }
    if bodies(&got) != ["s1", "s2", "s3"] {
        return Err(format!("got {:?}; expected s1, s2, s3", bodies(&got)));
    }
    // Unpadded decimals: compare by length, then text.
    let increasing = seqs
        .windows(2)
        .all(|w| (w[0].len(), w[0]) < (w[1].len(), w[1]));
    if !increasing {
        return Err(format!("sequence numbers {seqs:?} do not increase"));
    }
    Ok(())
}

async fn dedup_window_ends<T: Topic, Q: Queue>(c: &Ctx<'_, T, Q>) -> Outcome {
    c.publish("first", "g", Some("d")).await?;
    c.collect(1).await?;
    c.clock
        .pass(DEDUPLICATION_INTERVAL + Duration::from_secs(1))
        .await;
    c.publish("after the window", "g", Some("d")).await?;
    let got = c.collect(1).await?;
    if bodies(&got) != ["after the window"] {
        return Err(format!(
            "a publish 5 minutes after its duplicate delivered {:?}; expected it",
            bodies(&got)
        ));
    }
    Ok(())
}
