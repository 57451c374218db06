//! `DynamoLock` against moto_server's DynamoDB: what its writes store, the
//! expiry condition every write carries, `Unavailable` when DynamoDB cannot
//! answer, and how many requests a message costs. The rules all backends
//! share are checked by the conformance suite (`conformance_backends.rs`).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use iniesta_core::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};
use iniesta_dynamodb::item::{ItemState, StoredItem, ID, TTL};
use iniesta_dynamodb::timing::{cleanup_at, epoch_ms};
use iniesta_dynamodb::{check_table, create_table, DynamoLock, TableError, DEFAULT_TABLE};
use iniesta_tests::servers::free_port;
use iniesta_tests::servers::moto::MotoServer;

use common::dynamodb::{client, config};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TTL_: Duration = Duration::from_secs(30);
const KEEP: Duration = Duration::from_secs(600);

/// moto with the lock table created; `None`: skipped (reason printed).
async fn start() -> Option<(MotoServer, Client)> {
    let moto = MotoServer::start()?;
    let client = client(&moto.endpoint());
    create_table(&client, DEFAULT_TABLE)
        .await
        .expect("create the lock table");
    Some((moto, client))
}

fn now_ms() -> u64 {
    epoch_ms(SystemTime::now())
}

async fn put_raw(client: &Client, item: &StoredItem) {
    client
        .put_item()
        .table_name(DEFAULT_TABLE)
        .set_item(Some(item.to_item()))
        .send()
        .await
        .expect("raw PutItem");
}

async fn get_raw(client: &Client, key: &str) -> Option<StoredItem> {
    let out = client
        .get_item()
        .table_name(DEFAULT_TABLE)
        .key(ID, AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("raw GetItem");
    out.item()
        .map(|i| StoredItem::from_item(i).expect("a lock item"))
}

fn raw(key: &str, token: &str, state: ItemState, expires_at: u64) -> StoredItem {
    StoredItem {
        id: key.to_owned(),
        token: token.to_owned(),
        state,
        expires_at,
    }
}

async fn acquire_one(lock: &DynamoLock, key: &str, ttl: Duration) -> AcquireOutcome {
    lock.acquire(vec![key.into()], ttl).await.remove(0)
}

fn token_of(outcome: AcquireOutcome) -> LockToken {
    match outcome {
        AcquireOutcome::Acquired { token, .. } => token,
        other => panic!("expected Acquired, got {other:?}"),
    }
}

async fn complete_one(lock: &DynamoLock, key: &str, token: &LockToken) -> Result<(), LockError> {
    lock.complete(vec![(LockKey::from(key), token.clone())], KEEP)
        .await
        .remove(0)
}

fn is_unavailable(outcome: &AcquireOutcome) -> bool {
    matches!(
        outcome,
        AcquireOutcome::Unavailable(LockError::Unavailable(_))
    )
}

// ---------------------------------------------------------------------------
// What the writes store, and the expiry condition

#[tokio::test]
async fn items_hold_the_lock_and_the_record() {
    let Some((_moto, client)) = start().await else {
        return;
    };
    let lock = DynamoLock::new(client.clone(), DEFAULT_TABLE);
    let before = now_ms();
    let outcome = acquire_one(&lock, "k", TTL_).await;
    let after = now_ms();
    let AcquireOutcome::Acquired { token, validity } = outcome else {
        panic!("{outcome:?}");
    };
    // 30 s less the round trip and the drift (300 + 2 ms).
    assert!(validity <= Duration::from_millis(29_698), "{validity:?}");
    assert!(validity > Duration::from_secs(25), "{validity:?}");
    assert_eq!(token.as_str().len(), 32);
    let item = get_raw(&client, "k").await.expect("stored");
    assert_eq!(
        (item.state, item.token.as_str()),
        (ItemState::Locked, token.as_str())
    );
    assert!((before + 30_000..=after + 30_000).contains(&item.expires_at));
    let stored = client
        .get_item()
        .table_name(DEFAULT_TABLE)
        .key(ID, AttributeValue::S("k".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.item().unwrap()[TTL],
        AttributeValue::N(cleanup_at(item.expires_at).to_string())
    );

    lock.extend("k".into(), token.clone(), Duration::from_secs(120))
        .await
        .expect("extend");
    let extended = get_raw(&client, "k").await.unwrap();
    assert!(extended.expires_at >= before + 120_000);

    complete_one(&lock, "k", &token).await.expect("complete");
    let record = get_raw(&client, "k").await.unwrap();
    assert_eq!(
        (record.state, record.token.as_str()),
        (ItemState::Done, token.as_str())
    );
    assert!(record.expires_at >= before + KEEP.as_millis() as u64);
}

#[tokio::test]
async fn every_write_compares_expires_at_with_now() {
    let Some((_moto, client)) = start().await else {
        return;
    };
    let lock = DynamoLock::new(client.clone(), DEFAULT_TABLE);
    let now = now_ms();
    let past = now - 50;
    let future = now + 60_000;
    put_raw(
        &client,
        &raw("expired-lock", "other", ItemState::Locked, past),
    )
    .await;
    put_raw(
        &client,
        &raw("live-lock", "other", ItemState::Locked, future),
    )
    .await;
    put_raw(
        &client,
        &raw("expired-record", "other", ItemState::Done, past),
    )
    .await;
    put_raw(
        &client,
        &raw("live-record", "other", ItemState::Done, future),
    )
    .await;
    // DynamoDB's TTL attribute says "long gone", expires_at says live: the
    // TTL attribute never decides.
    let mut stale = raw("stale-ttl", "other", ItemState::Locked, future).to_item();
    stale.insert(TTL.into(), AttributeValue::N("1".into()));
    client
        .put_item()
        .table_name(DEFAULT_TABLE)
        .set_item(Some(stale))
        .send()
        .await
        .unwrap();

    let keys = [
        "expired-lock",
        "live-lock",
        "expired-record",
        "live-record",
        "stale-ttl",
    ];
    let out = lock
        .acquire(keys.iter().map(|k| LockKey::from(*k)).collect(), TTL_)
        .await;
    let kinds: Vec<&str> = out
        .iter()
        .map(|o| match o {
            AcquireOutcome::Acquired { .. } => "Acquired",
            AcquireOutcome::Busy => "Busy",
            AcquireOutcome::Done => "Done",
            AcquireOutcome::Unavailable(_) => "Unavailable",
        })
        .collect();
    assert_eq!(kinds, ["Acquired", "Busy", "Acquired", "Done", "Busy"]);

    // Complete: an expired foreign lock is a free key; a live one refuses
    // and stays exactly as it was.
    put_raw(&client, &raw("c-expired", "other", ItemState::Locked, past)).await;
    put_raw(&client, &raw("c-live", "other", ItemState::Locked, future)).await;
    let mine = token_of(acquire_one(&lock, "mine", TTL_).await);
    assert_eq!(complete_one(&lock, "c-expired", &mine).await, Ok(()));
    let written = get_raw(&client, "c-expired").await.unwrap();
    assert_eq!(
        (written.state, written.token.as_str()),
        (ItemState::Done, mine.as_str())
    );
    assert_eq!(
        complete_one(&lock, "c-live", &mine).await,
        Err(LockError::NotHeld)
    );
    assert_eq!(
        get_raw(&client, "c-live").await,
        Some(raw("c-live", "other", ItemState::Locked, future))
    );

    // Our own lock, expired: extend and release refuse and change nothing.
    let expired_mine = raw("mine", mine.as_str(), ItemState::Locked, past);
    put_raw(&client, &expired_mine).await;
    assert_eq!(
        lock.extend("mine".into(), mine.clone(), TTL_).await,
        Err(LockError::NotHeld)
    );
    assert_eq!(
        lock.release("mine".into(), mine.clone()).await,
        Err(LockError::NotHeld)
    );
    assert_eq!(get_raw(&client, "mine").await, Some(expired_mine));
    // ... and complete still records the finished work.
    assert_eq!(complete_one(&lock, "mine", &mine).await, Ok(()));
    assert_eq!(
        get_raw(&client, "mine").await.map(|i| i.state),
        Some(ItemState::Done)
    );
}

// ---------------------------------------------------------------------------
// Unavailable, never a wrong answer

async fn assert_all_unavailable(lock: &DynamoLock, why: &str) {
    let token = LockToken::new("0123456789abcdef0123456789abcdef");
    let out = lock.acquire(vec!["a".into(), "b".into()], TTL_).await;
    assert!(out.iter().all(is_unavailable), "{why}: acquire {out:?}");
    let mut each = Vec::new();
    lock.acquire_each(vec!["a".into()], TTL_, &mut |g| each.extend(g))
        .await;
    assert!(
        each.len() == 1 && is_unavailable(&each[0].1),
        "{why}: {each:?}"
    );
    let extend = lock.extend("a".into(), token.clone(), TTL_).await;
    assert!(
        matches!(extend, Err(LockError::Unavailable(_))),
        "{why}: extend {extend:?}"
    );
    let complete = lock
        .complete(
            vec![("a".into(), token.clone()), ("b".into(), token.clone())],
            KEEP,
        )
        .await;
    assert!(
        complete
            .iter()
            .all(|r| matches!(r, Err(LockError::Unavailable(_)))),
        "{why}: complete {complete:?}"
    );
    let release = lock.release("a".into(), token).await;
    assert!(
        matches!(release, Err(LockError::Unavailable(_))),
        "{why}: release {release:?}"
    );
}

#[tokio::test]
async fn a_closed_endpoint_is_unavailable() {
    // Nothing listens on a port picked free and released.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let lock =
        DynamoLock::new(client(&endpoint), DEFAULT_TABLE).with_timeout(Duration::from_secs(3));
    let started = Instant::now();
    let out = acquire_one(&lock, "k", TTL_).await;
    let AcquireOutcome::Unavailable(LockError::Unavailable(reason)) = &out else {
        panic!("{out:?}");
    };
    assert!(
        reason.contains("PutItem") && reason.contains("`k`"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_all_unavailable(&lock, "closed endpoint").await;
    let err = check_table(lock.client(), DEFAULT_TABLE).await.unwrap_err();
    assert!(matches!(err, TableError::Request { .. }), "{err}");
}

#[tokio::test]
async fn a_missing_table_is_unavailable() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let lock = DynamoLock::new(client(&moto.endpoint()), "no-such-table");
    assert_all_unavailable(&lock, "missing table").await;
}

#[tokio::test]
async fn a_stalled_server_times_out_as_unavailable() {
    let Some((moto, client)) = start().await else {
        return;
    };
    let lock = DynamoLock::new(client, DEFAULT_TABLE).with_timeout(Duration::from_millis(500));
    let token = token_of(acquire_one(&lock, "k", TTL_).await);
    moto.process().signal("STOP");
    let started = Instant::now();
    let out = acquire_one(&lock, "other", TTL_).await;
    let extend = lock.extend("k".into(), token.clone(), TTL_).await;
    let waited = started.elapsed();
    moto.process().signal("CONT");
    assert!(is_unavailable(&out), "{out:?}");
    assert!(
        matches!(extend, Err(LockError::Unavailable(_))),
        "{extend:?}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    // Back again: the lock is still ours.
    lock.extend("k".into(), token, TTL_)
        .await
        .expect("extend after the server resumed");
}

// ---------------------------------------------------------------------------
// Requests per message

/// Counts the requests sent (each attempt), by operation.
#[derive(Debug, Clone, Default)]
struct Requests(Arc<Mutex<BTreeMap<String, usize>>>);

impl Requests {
    fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(operation).or_default() += 1;
        Ok(())
    }
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

#[tokio::test]
async fn requests_per_message() {
    let Some((moto, _)) = start().await else {
        return;
    };
    let requests = Requests::default();
    let counted = Client::from_conf(
        config(&moto.endpoint())
            .interceptor(requests.clone())
            .build(),
    );
    let lock = DynamoLock::new(counted, DEFAULT_TABLE);
    let n = 10;
    let keys: Vec<LockKey> = (0..n).map(|i| LockKey::from(format!("m-{i}"))).collect();

    // The normal path: acquire, then complete, a batch of 10 messages.
    let out = lock.acquire(keys.clone(), TTL_).await;
    let entries: Vec<(LockKey, LockToken)> = keys
        .iter()
        .cloned()
        .zip(out.into_iter().map(token_of))
        .collect();
    assert!(lock.complete(entries, KEEP).await.iter().all(Result::is_ok));
    let normal = requests.take();
    assert_eq!(normal, counts(&[("PutItem", 2 * n)]));

    // A duplicate of finished work: one refused PutItem, no read.
    let out = lock.acquire(keys.clone(), TTL_).await;
    assert!(out.iter().all(|o| *o == AcquireOutcome::Done), "{out:?}");
    assert_eq!(requests.take(), counts(&[("PutItem", n)]));

    // A failure: acquire, then release.
    let failed = LockKey::from("failed");
    let token = token_of(acquire_one(&lock, &failed, TTL_).await);
    lock.release(failed.clone(), token.clone())
        .await
        .expect("release");
    assert_eq!(
        requests.take(),
        counts(&[("DeleteItem", 1), ("PutItem", 1)])
    );

    // Busy: one refused PutItem; an extend: one UpdateItem.
    let held = LockKey::from("held");
    let token = token_of(acquire_one(&lock, &held, TTL_).await);
    requests.take();
    assert_eq!(acquire_one(&lock, &held, TTL_).await, AcquireOutcome::Busy);
    lock.extend(held, token, TTL_).await.expect("extend");
    assert_eq!(
        requests.take(),
        counts(&[("PutItem", 1), ("UpdateItem", 1)])
    );
    eprintln!(
        "DynamoDB requests per message: normal path {} (acquire 1 PutItem + complete 1 PutItem), duplicate 1, failure 2, busy 1, extend 1",
        normal.values().sum::<usize>() / n
    );
}

/// Removes the item from every condition check failure, as a
/// DynamoDB-compatible service that does not support
/// `ReturnValuesOnConditionCheckFailure` would. The body is not loaded yet
/// when this hook runs, so every 400 answer is replaced: in the test that
/// uses it, only a refused conditional write answers 400.
#[derive(Debug)]
struct DropRefusingItem;

impl Intercept for DropRefusingItem {
    fn name(&self) -> &'static str {
        "DropRefusingItem"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if response.status().as_u16() == 400 {
            let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
            response.headers_mut().remove("content-length");
            *response.body_mut() = body.to_vec().into();
        }
        Ok(())
    }
}

#[tokio::test]
async fn refusals_without_the_item_are_read_back_in_one_batch() {
    let Some((moto, client)) = start().await else {
        return;
    };
    let requests = Requests::default();
    let blind = Client::from_conf(
        config(&moto.endpoint())
            .interceptor(DropRefusingItem)
            .interceptor(requests.clone())
            .build(),
    );
    let lock = DynamoLock::new(blind, DEFAULT_TABLE);
    let other = DynamoLock::new(client, DEFAULT_TABLE);
    let busy = token_of(acquire_one(&other, "busy", TTL_).await);
    let done = token_of(acquire_one(&other, "done", TTL_).await);
    complete_one(&other, "done", &done).await.unwrap();

    let keys = ["free", "busy", "done"].map(LockKey::from).to_vec();
    let out = lock.acquire(keys, TTL_).await;
    assert!(matches!(out[0], AcquireOutcome::Acquired { .. }), "{out:?}");
    assert_eq!(out[1..], [AcquireOutcome::Busy, AcquireOutcome::Done]);
    assert_eq!(
        requests.take(),
        counts(&[("BatchGetItem", 1), ("PutItem", 3)])
    );

    let mine = token_of(out[0].clone());
    let results = lock
        .complete(
            vec![
                ("free".into(), mine.clone()),
                ("busy".into(), mine.clone()),
                ("done".into(), mine.clone()),
            ],
            KEEP,
        )
        .await;
    assert_eq!(results, [Ok(()), Err(LockError::NotHeld), Ok(())]);
    assert_eq!(
        requests.take(),
        counts(&[("BatchGetItem", 1), ("PutItem", 3)])
    );
    other
        .extend("busy".into(), busy, TTL_)
        .await
        .expect("untouched");
}
