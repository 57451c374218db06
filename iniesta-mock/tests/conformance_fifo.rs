//! The FIFO conformance suite against the mocks (raw and envelope
//! delivery, virtual and real time), and proof that each kind of check can
//! fail: wrappers that break one rule each must fail the checks of that
//! rule.

use std::time::Duration;

use async_trait::async_trait;
use futures::executor::block_on;
use iniesta_core::{
    BackendError, EntryResult, OutgoingMessage, Queue, ReceiptHandle, ReceiveRequest,
    ReceivedMessage, Topic,
};
use iniesta_mock::conformance::fifo::{FifoConformance, FIFO_CHECKS};
use iniesta_mock::conformance::Report;
use iniesta_mock::{Clock, MockQueue, MockTopic, QueueOptions, SubscribeOptions, TopicOptions};

fn setup(clock: &Clock, raw: bool) -> (MockTopic, MockQueue) {
    let topic = MockTopic::with_options(
        "events.fifo",
        clock,
        TopicOptions::default()
            .with_fifo(true)
            .with_content_based_deduplication(true),
    );
    let queue = MockQueue::with_options("svc.fifo", clock, QueueOptions::default().with_fifo(true));
    topic.subscribe(&queue, SubscribeOptions::default().with_raw_delivery(raw));
    (topic, queue)
}

fn failed(report: &Report) -> Vec<&'static str> {
    report.failures().map(|r| r.name).collect()
}

#[test]
fn the_mocks_conform_in_raw_and_envelope_delivery() {
    for raw in [true, false] {
        let clock = Clock::virtual_clock();
        let (topic, queue) = setup(&clock, raw);
        let report = block_on(FifoConformance::new().run(&topic, &queue, &clock));
        report.assert_passed();
        assert_eq!(report.results().len(), FIFO_CHECKS.len());
        assert!(queue.is_empty(), "the suite leaves the queue empty");
    }
}

#[test]
fn the_mocks_conform_on_real_time() {
    let clock = Clock::real();
    let (topic, queue) = setup(&clock, true);
    let untimed = FIFO_CHECKS.iter().filter(|c| !c.timed).map(|c| c.name);
    let report = block_on(
        FifoConformance::new()
            .only(untimed)
            .poll(Duration::from_millis(50))
            .run(&topic, &queue, &clock),
    );
    report.assert_passed();
}

#[test]
fn an_unknown_check_fails_the_run() {
    let clock = Clock::virtual_clock();
    let (topic, queue) = setup(&clock, true);
    let report = block_on(
        FifoConformance::new()
            .only(["no_such_check"])
            .run(&topic, &queue, &clock),
    );
    assert_eq!(failed(&report), ["unknown_check"]);
}

/// A queue that breaks one rule on the way out.
struct Broken {
    queue: MockQueue,
    rule: Rule,
}

#[derive(Clone, Copy, PartialEq)]
enum Rule {
    /// Receives come back in reverse order.
    Reversed,
    /// Everything received is visible again at once: nothing blocks.
    NeverInFlight,
    /// The FIFO system attributes are dropped.
    NoAttributes,
}

#[async_trait]
impl Queue for Broken {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        let mut got = self.queue.receive(request).await?;
        match self.rule {
            Rule::Reversed => got.reverse(),
            Rule::NeverInFlight => {
                for m in &got {
                    self.queue
                        .change_visibility_now(&m.receipt_handle, Duration::ZERO)
                        .unwrap();
                }
            }
            Rule::NoAttributes => {
                for m in &mut got {
                    m.attributes.other.clear();
                }
            }
        }
        Ok(got)
    }

    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        // A handle made visible again has expired; the cleanup of the
        // never-in-flight queue ignores that.
        self.queue.delete_batch(handles).await
    }

    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        self.queue.change_visibility_batch(entries).await
    }
}

/// A topic that never deduplicates: every publish gets a fresh id.
struct NoDedup {
    topic: MockTopic,
    n: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl Topic for NoDedup {
    async fn publish(&self, mut message: OutgoingMessage) -> Result<String, BackendError> {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = message
            .deduplication_id
            .take()
            .unwrap_or_else(|| "content".into());
        message.deduplication_id = Some(format!("{base}-{n}"));
        self.topic.publish(message).await
    }

    async fn publish_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<String, BackendError>> {
        let mut out = Vec::new();
        for m in messages {
            out.push(self.publish(m).await);
        }
        out
    }
}

fn run_broken(rule: Rule) -> Vec<&'static str> {
    let clock = Clock::virtual_clock();
    let (topic, queue) = setup(&clock, true);
    let broken = Broken { queue, rule };
    failed(&block_on(
        FifoConformance::new().run(&topic, &broken, &clock),
    ))
}

#[test]
fn reordered_receives_fail_the_order_checks() {
    let failed = run_broken(Rule::Reversed);
    assert!(failed.contains(&"order_within_group"), "{failed:?}");
    assert!(failed.contains(&"sequence_numbers_increase"), "{failed:?}");
}

#[test]
fn a_group_that_is_never_blocked_fails_the_blocking_check() {
    let failed = run_broken(Rule::NeverInFlight);
    assert!(
        failed.contains(&"group_blocked_while_in_flight"),
        "{failed:?}"
    );
}

#[test]
fn missing_fifo_attributes_fail_the_attribute_checks() {
    let failed = run_broken(Rule::NoAttributes);
    for check in [
        "group_and_dedup_ids_delivered",
        "sequence_numbers_increase",
        "content_based_dedup",
    ] {
        assert!(failed.contains(&check), "{check} passed: {failed:?}");
    }
}

#[test]
fn a_topic_that_never_deduplicates_fails_the_dedup_checks() {
    let clock = Clock::virtual_clock();
    let (topic, queue) = setup(&clock, true);
    let topic = NoDedup {
        topic,
        n: Default::default(),
    };
    let failed = failed(&block_on(
        FifoConformance::new().run(&topic, &queue, &clock),
    ));
    for check in [
        "duplicate_delivered_once",
        "duplicate_answers_first_id",
        "duplicate_after_delete_dropped",
        "content_based_dedup",
    ] {
        assert!(failed.contains(&check), "{check} passed: {failed:?}");
    }
    assert!(!failed.contains(&"order_within_group"), "{failed:?}");
}

#[test]
fn a_topic_without_content_deduplication_fails_that_check_by_name() {
    // A FIFO topic without content-based deduplication: the check that
    // publishes without an id fails with SNS's error, by name.
    let clock = Clock::virtual_clock();
    let topic = MockTopic::with_options("t.fifo", &clock, TopicOptions::default().with_fifo(true));
    let queue = MockQueue::with_options("q.fifo", &clock, QueueOptions::default().with_fifo(true));
    topic.subscribe(&queue, SubscribeOptions::default());
    let report = block_on(FifoConformance::new().run(&topic, &queue, &clock));
    assert_eq!(failed(&report), ["content_based_dedup"]);
    assert!(
        report
            .to_string()
            .contains("SNS/SQS FIFO conformance: 1 of"),
        "{report}"
    );
}
