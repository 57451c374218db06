use super::*;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

fn client(timeout: Option<Duration>) -> Client {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "test"))
        .endpoint_url("http://127.0.0.1:1");
    if let Some(t) = timeout {
        config = config.timeout_config(TimeoutConfig::builder().operation_timeout(t).build());
    }
    Client::from_conf(config.build())
}

fn operation_timeout(lock: &DynamoLock) -> Option<Duration> {
    lock.client()
        .config()
        .timeout_config()
        .and_then(TimeoutConfig::operation_timeout)
}

#[test]
fn tokens_are_128_bit_hex_and_differ() {
    let a = new_token();
    let b = new_token();
    assert_eq!(a.as_str().len(), 32);
    assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn refusals_tell_busy_from_done() {
    let item = |state| StoredItem {
        id: "k".into(),
        token: "t".into(),
        state,
        expires_at: 1,
    };
    assert_eq!(
        refused_acquire(&item(ItemState::Locked)),
        AcquireOutcome::Busy
    );
    assert_eq!(
        refused_acquire(&item(ItemState::Done)),
        AcquireOutcome::Done
    );
    assert_eq!(refused_complete(&item(ItemState::Done)), Ok(()));
    assert_eq!(
        refused_complete(&item(ItemState::Locked)),
        Err(LockError::NotHeld)
    );
}

#[test]
fn a_client_without_an_operation_timeout_gets_one() {
    let lock = DynamoLock::new(client(None), "t");
    assert_eq!(operation_timeout(&lock), Some(DEFAULT_TIMEOUT));
    let lock = DynamoLock::new(client(Some(Duration::from_secs(1))), "t");
    assert_eq!(operation_timeout(&lock), Some(Duration::from_secs(1)));
    let lock = lock.with_timeout(Duration::from_millis(300));
    assert_eq!(operation_timeout(&lock), Some(Duration::from_millis(300)));
    assert_eq!(lock.table(), "t");
}

#[test]
fn ttls_within_the_drift_are_refused_without_a_request() {
    let lock = DynamoLock::new(client(None), "t");
    assert!(lock.check_ttl(Duration::from_millis(2)).is_err());
    assert!(lock.check_ttl(Duration::from_millis(100)).is_ok());
    let strict = lock.with_drift(0.5, Duration::from_millis(10));
    assert!(strict.check_ttl(Duration::from_millis(20)).is_err());
    assert_eq!(
        strict.validity(Duration::from_millis(100), Duration::ZERO),
        Some(Duration::from_millis(40))
    );
}

#[tokio::test]
async fn tiny_ttls_and_empty_batches_answer_at_once() {
    // The endpoint is closed: any request would fail, so these answers
    // prove no request was sent.
    let lock = DynamoLock::new(client(None), "t");
    assert!(lock
        .acquire(Vec::new(), Duration::from_secs(1))
        .await
        .is_empty());
    assert!(lock
        .complete(Vec::new(), Duration::from_secs(1))
        .await
        .is_empty());
    let out = lock
        .acquire(vec!["a".into(), "b".into()], Duration::from_millis(1))
        .await;
    assert_eq!(out.len(), 2);
    for o in out {
        assert!(
            matches!(&o, AcquireOutcome::Unavailable(LockError::Unavailable(m)) if m.contains("drift")),
            "{o:?}"
        );
    }
}

#[test]
fn refusers_read_back_must_still_be_live() {
    let lock = StoredItem {
        id: "k".into(),
        token: "t".into(),
        state: ItemState::Locked,
        expires_at: 1_000,
    };
    let items: Items = [
        ("k".to_owned(), Ok(lock.clone())),
        (
            "odd".to_owned(),
            Err("attribute `state` is missing".to_owned()),
        ),
    ]
    .into();
    assert_eq!(read_back(&items, "k", 1_000), Ok(&lock));
    assert!(read_back(&items, "k", 1_001).unwrap_err().contains("gone"));
    assert!(read_back(&items, "gone", 0).unwrap_err().contains("`gone`"));
    assert!(read_back(&items, "odd", 0).unwrap_err().contains("`state`"));
}
