use std::sync::Mutex;

use iniesta_core::publish::event_message;

use super::*;

/// What a fake call answers, given the call's number (from 0) and the
/// bodies it carries.
type Respond = dyn Fn(usize, &[&str]) -> Result<Vec<Result<String, Fault>>, Fault> + Sync;

/// A PublishBatch stand-in that records every call and every wait.
struct Fake {
    respond: Box<Respond>,
    calls: Mutex<Vec<Vec<String>>>,
    sleeps: Mutex<Vec<Duration>>,
}

impl Fake {
    fn new(
        respond: impl Fn(usize, &[&str]) -> Result<Vec<Result<String, Fault>>, Fault> + Sync + 'static,
    ) -> Self {
        Fake {
            respond: Box::new(respond),
            calls: Mutex::new(Vec::new()),
            sleeps: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

#[async_trait]
impl BatchCall for Fake {
    async fn call(&self, entries: &[&BulkEntry]) -> Result<Vec<Result<String, Fault>>, Fault> {
        assert!(
            entries.len() <= MAX_PUBLISH_BATCH,
            "a call of {}",
            entries.len()
        );
        let bodies: Vec<&str> = entries.iter().map(|e| e.message.body.as_str()).collect();
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(bodies.iter().map(|b| b.to_string()).collect());
            calls.len() - 1
        };
        (self.respond)(n, &bodies)
    }

    async fn sleep(&self, duration: Duration) {
        self.sleeps.lock().unwrap().push(duration);
    }
}

fn entry(body: impl Into<String>) -> BulkEntry {
    BulkEntry::new(event_message("iniesta_pass", "Created.orders", body, 1).unwrap())
}

/// An entry whose body is `size` bytes of `fill`, built directly (
/// `event_message` refuses one over the limit).
fn sized(fill: char, size: usize) -> BulkEntry {
    BulkEntry::new(OutgoingMessage {
        body: fill.to_string().repeat(size),
        attributes: Default::default(),
        ..Default::default()
    })
}

fn retryable(text: &str) -> Fault {
    Fault {
        error: BackendError::new("InternalError", text),
        sender_fault: false,
    }
}

fn rejected(text: &str) -> Fault {
    Fault {
        error: BackendError::new("InvalidParameter", text),
        sender_fault: true,
    }
}

/// Every entry published, its id `id-{body}`.
fn all_ok(_: usize, bodies: &[&str]) -> Result<Vec<Result<String, Fault>>, Fault> {
    Ok(bodies.iter().map(|b| Ok(format!("id-{b}"))).collect())
}

async fn publish(fake: &Fake, entries: &[BulkEntry], retry: BulkRetry) -> Vec<BulkResult> {
    publish_all(fake, entries, &retry, |_, _| {}).await
}

#[test]
fn plan_caps_entries_per_call_and_bytes_per_call() {
    assert_eq!(
        plan_batches(&[1; 25], 10, MAX_MESSAGE_BYTES),
        vec![0..10, 10..20, 20..25]
    );
    // Exactly 256 KiB in total still fits one call; one byte more does not.
    let half = MAX_MESSAGE_BYTES / 2;
    assert_eq!(
        plan_batches(&[half, half], 10, MAX_MESSAGE_BYTES),
        vec![0..2]
    );
    assert_eq!(
        plan_batches(&[half, half + 1, 1], 10, MAX_MESSAGE_BYTES),
        vec![0..1, 1..3]
    );
    // Something larger than the limit goes alone rather than never.
    assert_eq!(
        plan_batches(&[10, 300_000, 10], 10, 1000),
        vec![0..1, 1..2, 2..3]
    );
    assert!(plan_batches(&[], 10, 1000).is_empty());
}

#[tokio::test]
async fn publishes_in_calls_of_ten_with_results_in_entry_order() {
    let fake = Fake::new(all_ok);
    let entries: Vec<_> = (0..25).map(|n| entry(n.to_string())).collect();
    let mut done = Vec::new();
    let results = publish_all(&fake, &entries, &BulkRetry::default(), |i, r| {
        done.push((i, r.is_ok()))
    })
    .await;
    let ids: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let expected: Vec<_> = (0..25).map(|n| format!("id-{n}")).collect();
    assert_eq!(ids, expected);
    let sizes: Vec<_> = fake.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    done.sort();
    assert_eq!(done, (0..25).map(|i| (i, true)).collect::<Vec<_>>());
    assert!(fake.sleeps().is_empty(), "no retry, no wait");
}

#[tokio::test]
async fn large_entries_are_grouped_by_their_total_size() {
    let fake = Fake::new(all_ok);
    let entries = vec![
        sized('a', 100 * 1024),
        sized('b', 100 * 1024),
        sized('c', 100 * 1024),
    ];
    let results = publish(&fake, &entries, BulkRetry::default()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let sizes: Vec<_> = fake.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 1], "300 KiB do not fit one call");
}

#[tokio::test]
async fn an_entry_over_the_limit_fails_without_a_call() {
    let fake = Fake::new(all_ok);
    let entries = vec![entry("small"), sized('x', MAX_MESSAGE_BYTES + 1)];
    let results = publish(&fake, &entries, BulkRetry::default()).await;
    assert_eq!(results[0].as_deref(), Ok("id-small"));
    let failure = results[1].clone().unwrap_err();
    assert_eq!(failure.attempts, 0);
    assert!(failure.sender_fault);
    assert!(failure.to_string().contains("262145 bytes"), "{failure}");
    assert_eq!(fake.calls(), vec![vec!["small".to_owned()]]);
}

#[tokio::test]
async fn failed_entries_are_retried_after_a_backoff_but_sender_faults_are_not() {
    // "a" fails once, "b" is refused every time, "c" goes through.
    let fake = Fake::new(|n, bodies| {
        Ok(bodies
            .iter()
            .map(|&b| match (b, n) {
                ("a", 0) => Err(retryable("try again")),
                ("b", _) => Err(rejected("bad attribute")),
                _ => Ok(format!("id-{b}")),
            })
            .collect())
    });
    let entries = vec![entry("a"), entry("b"), entry("c")];
    let results = publish(&fake, &entries, BulkRetry::default()).await;
    assert_eq!(results[0].as_deref(), Ok("id-a"));
    assert_eq!(results[2].as_deref(), Ok("id-c"));
    let b = results[1].clone().unwrap_err();
    assert_eq!((b.attempts, b.sender_fault), (1, true));
    assert!(
        b.to_string().contains("InvalidParameter: bad attribute"),
        "{b}"
    );
    assert!(b.to_string().contains("not retried"), "{b}");
    assert_eq!(fake.calls(), vec![vec!["a", "b", "c"], vec!["a"]]);
    assert_eq!(fake.sleeps(), vec![Duration::from_millis(200)]);
}

#[tokio::test]
async fn an_entry_that_keeps_failing_is_given_up_after_max_attempts() {
    let fake = Fake::new(|_, bodies| Ok(vec![Err(retryable("busy")); bodies.len()]));
    let retry = BulkRetry::new(3, Duration::from_millis(10));
    let results = publish(&fake, &[entry("a")], retry).await;
    let failure = results[0].clone().unwrap_err();
    assert_eq!((failure.attempts, failure.sender_fault), (3, false));
    assert!(
        failure.to_string().ends_with("(after 3 attempts)"),
        "{failure}"
    );
    assert_eq!(fake.calls().len(), 3);
    assert_eq!(
        fake.sleeps(),
        vec![Duration::from_millis(10), Duration::from_millis(20)]
    );
}

#[tokio::test]
async fn a_call_that_failed_as_a_whole_is_sent_again() {
    let fake = Fake::new(|n, bodies| match n {
        0 => Err(retryable("connection reset")),
        _ => all_ok(n, bodies),
    });
    let entries = vec![entry("a"), entry("b")];
    let results = publish(&fake, &entries, BulkRetry::default()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fake.calls(), vec![vec!["a", "b"], vec!["a", "b"]]);
}

#[tokio::test]
async fn a_call_rejected_as_a_whole_is_split_so_one_bad_entry_fails_alone() {
    let fake = Fake::new(|n, bodies| {
        if bodies.contains(&"bad") {
            Err(rejected("MessageGroupId is not valid for this topic"))
        } else {
            all_ok(n, bodies)
        }
    });
    let entries = vec![entry("x"), entry("bad"), entry("y")];
    let results = publish(&fake, &entries, BulkRetry::default()).await;
    assert_eq!(results[0].as_deref(), Ok("id-x"));
    assert_eq!(results[2].as_deref(), Ok("id-y"));
    let bad = results[1].clone().unwrap_err();
    assert_eq!((bad.attempts, bad.sender_fault), (2, true));
    assert_eq!(
        fake.calls(),
        vec![vec!["x", "bad", "y"], vec!["x"], vec!["bad"], vec!["y"]]
    );
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let retry = BulkRetry::default();
    let waits: Vec<_> = (1..=7).map(|n| retry.backoff(n).as_millis()).collect();
    assert_eq!(waits, vec![200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(BulkRetry::new(0, Duration::ZERO).max_attempts, 1);
    assert_eq!(retry.backoff(u32::MAX), Duration::from_secs(5));
}

#[test]
fn request_entries_carry_the_attributes_and_a_group_id_only_when_given() {
    let plain = entry("a");
    let grouped = entry("b").with_group_id("g-1");
    let built = request_entries(&[&plain, &grouped]).unwrap();
    assert_eq!(built[0].id(), "0");
    assert_eq!(built[1].id(), "1");
    assert_eq!(built[0].message(), "a");
    assert_eq!(built[0].message_group_id(), None);
    assert_eq!(built[1].message_group_id(), Some("g-1"));
    let attrs = built[0].message_attributes().unwrap();
    assert_eq!(attrs["iniesta_pass"].data_type(), "String");
    assert_eq!(attrs["iniesta_pass"].string_value(), Some("Created.orders"));
    assert_eq!(attrs["version"].data_type(), "Number");
    assert_eq!(attrs["version"].string_value(), Some("1"));
}

#[test]
fn answers_map_ids_back_to_request_order() {
    let out = answers(
        4,
        [
            (Some("2"), Some("m-2")),
            (Some("0"), Some("m-0")),
            (Some("9"), Some("m-9")),
        ],
        [("1", "InvalidParameter", Some("bad"), true)],
    );
    assert_eq!(out[0].as_deref(), Ok("m-0"));
    assert_eq!(out[2].as_deref(), Ok("m-2"));
    let refused = out[1].clone().unwrap_err();
    assert!(refused.sender_fault);
    assert_eq!(refused.error, BackendError::new("InvalidParameter", "bad"));
    // Not mentioned: retried, as it may not have been published.
    let unmentioned = out[3].clone().unwrap_err();
    assert!(!unmentioned.sender_fault);
    assert!(unmentioned.error.message.contains("did not mention"));
}

#[test]
fn only_a_4xx_answer_that_is_not_throttling_blames_the_request() {
    assert!(is_sender_fault(Some(400), Some("InvalidParameter")));
    assert!(is_sender_fault(Some(404), Some("NotFound")));
    assert!(!is_sender_fault(Some(400), Some("Throttling")));
    assert!(!is_sender_fault(Some(429), None));
    assert!(!is_sender_fault(Some(500), Some("InternalError")));
    assert!(!is_sender_fault(None, None), "no answer: the network");
}

#[tokio::test]
async fn a_call_that_failed_as_a_whole_ends_the_round_and_the_rest_follows_it() {
    let fake = Fake::new(|n, bodies| match n {
        0 => Err(retryable("connection reset")),
        _ => all_ok(n, bodies),
    });
    let entries: Vec<_> = (0..25).map(|n| entry(n.to_string())).collect();
    let results = publish(&fake, &entries, BulkRetry::default()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let calls = fake.calls();
    let sizes: Vec<_> = calls.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        vec![10, 10, 10, 5],
        "nothing more was sent after the failure"
    );
    assert_eq!(calls[0], calls[1], "the failed call first, after the wait");
    assert_eq!(fake.sleeps(), vec![Duration::from_millis(200)]);
}

#[tokio::test]
async fn an_unreachable_topic_fails_everything_after_one_call_used_up_its_attempts() {
    let fake = Fake::new(|_, _| Err(retryable("connection refused")));
    let entries: Vec<_> = (0..25).map(|n| entry(n.to_string())).collect();
    let mut done = 0;
    let retry = BulkRetry::new(3, Duration::from_millis(1));
    let results = publish_all(&fake, &entries, &retry, |_, _| done += 1).await;
    assert_eq!(done, 25, "every entry is reported");
    assert_eq!(
        fake.calls().len(),
        3,
        "not one call per batch against a dead topic"
    );
    for (i, result) in results.into_iter().enumerate() {
        let failure = result.unwrap_err();
        assert!(!failure.sender_fault);
        if i < 10 {
            assert_eq!(failure.attempts, 3, "entry {i}");
            assert!(
                failure.to_string().contains("connection refused"),
                "{failure}"
            );
        } else {
            assert_eq!(failure.attempts, 0, "entry {i}");
            assert!(
                failure
                    .to_string()
                    .contains("publishing stopped after a call failed 3 times"),
                "{failure}"
            );
        }
    }
}

/// A publisher to `topic_arn` whose client is never reached: the entries of
/// these tests fail before any call.
fn offline_publisher(topic_arn: &str) -> BulkPublisher {
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
        .region(aws_sdk_sns::config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    BulkPublisher::new(aws_sdk_sns::Client::from_conf(config), topic_arn)
}

const FIFO_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders.fifo";

#[test]
fn an_entry_takes_its_group_from_itself_then_its_message_then_the_rule() {
    let rule = Some(FifoGroup::Fixed("by-rule".into()));
    let publisher = offline_publisher(FIFO_TOPIC).with_group_rule(rule);
    let group = |e: BulkEntry| publisher.prepare(&e).map(|e| e.group_id);
    assert_eq!(
        group(entry("a").with_group_id("own")),
        Ok(Some("own".into()))
    );
    let mut from_message = entry("a");
    from_message.message = from_message.message.with_group_id("message's");
    assert_eq!(group(from_message), Ok(Some("message's".into())));
    assert_eq!(group(entry("a")), Ok(Some("by-rule".into())));

    // The deduplication id goes out with the entry.
    let mut deduplicated = entry("a").with_group_id("g");
    deduplicated.message.deduplication_id = Some("d-1".into());
    let prepared = publisher.prepare(&deduplicated).unwrap();
    let request = request_entries(&[&prepared]).unwrap();
    assert_eq!(request[0].message_group_id(), Some("g"));
    assert_eq!(request[0].message_deduplication_id(), Some("d-1"));
}

#[tokio::test]
async fn entries_without_a_group_for_a_fifo_topic_fail_before_any_call() {
    let publisher = offline_publisher(FIFO_TOPIC);
    let mut done = Vec::new();
    let mut long = entry("b");
    long.group_id = Some("g".repeat(129));
    let results = publisher
        .publish(&[entry("a"), long], |i, r| done.push((i, r.is_ok())))
        .await;
    assert_eq!(done, [(0, false), (1, false)]);
    let first = results[0].clone().unwrap_err();
    assert_eq!((first.attempts, first.sender_fault), (0, true));
    assert!(
        first
            .error
            .message
            .contains("is a FIFO topic and the message has no message group"),
        "{first}"
    );
    assert!(first.to_string().ends_with("(not sent)"), "{first}");
    let second = results[1].clone().unwrap_err();
    assert!(
        second.error.message.contains("has 129 characters"),
        "{second}"
    );
}
