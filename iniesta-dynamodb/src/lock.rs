//! [`DynamoLock`]: the [`LockBackend`] on the conditional writes of
//! [`writes`](crate::writes).

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt};
use iniesta_core::ports::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};

use crate::item::{ItemState, StoredItem};
use crate::reads::{read_items, Items};
use crate::table::{check_table, TableError, TableReport};
use crate::timing::{epoch_ms, lifetime_ms, validity, DRIFT_FACTOR, DRIFT_MIN};
use crate::writes::{Write, WriteResult, Writes};

/// How long one request may take, retries included, when the client sets
/// no operation timeout of its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many requests of one batch are in flight at once.
pub const MAX_PARALLEL: usize = 32;

/// A [`LockBackend`] on one DynamoDB table, with completion records.
///
/// Each key is one item (see [`item`](crate::item)); every operation is
/// one conditional write on it, so DynamoDB alone decides who holds a key,
/// and an expired item counts as absent in every condition. The keys of a
/// batch go out as parallel single-item requests: conditional writes take
/// one item each, and a `TransactWriteItems` would fail the whole batch
/// when one key is busy (and costs twice the write capacity).
///
/// | operation | absent or expired | our lock | a record | another's live lock |
/// |---|---|---|---|---|
/// | acquire | ours | renewed | `Done` | `Busy` |
/// | extend | `NotHeld` | extended | `NotHeld` | `NotHeld` |
/// | complete | our record | our record | `Ok` (renewed if ours) | `NotHeld` |
/// | release | `NotHeld` | deleted | `NotHeld` | `NotHeld` |
///
/// Requests per message: acquire 1 (`PutItem`), complete 1 (`PutItem`),
/// so 2 in the normal path; a duplicate of finished work 1 (the refused
/// `PutItem` returns the record); a failure 2 (acquire, `DeleteItem`);
/// plus one `UpdateItem` per extend while a handler runs.
///
/// Only a condition check failure is a decided refusal. Throttling,
/// timeouts, a missing table and service errors answer
/// [`Unavailable`](AcquireOutcome::Unavailable) (the SDK's own retries
/// come first). Validities are counted from when the request was sent:
/// `ttl − elapsed − (ttl × 1 % + 2 ms)`, as Redlock's; the drift covers the
/// clients' clocks, which every condition compares with the items' expiry
/// (keep them synchronised).
///
/// Cheap to share: wrap it in an `Arc`, or clone the client into another.
#[derive(Clone)]
pub struct DynamoLock {
    client: Client,
    table: String,
    drift_factor: f64,
    drift_min: Duration,
}

impl fmt::Debug for DynamoLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoLock")
            .field("table", &self.table)
            .field("drift_factor", &self.drift_factor)
            .field("drift_min", &self.drift_min)
            .finish()
    }
}

impl DynamoLock {
    /// A backend on `table` through `client`. Nothing is sent yet (see
    /// [`check`](Self::check)).
    ///
    /// When the client's configuration sets no operation timeout, the
    /// backend's requests get [`DEFAULT_TIMEOUT`]: a request that never
    /// answers must not hold a message forever.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoLock {
        let has_timeout = client
            .config()
            .timeout_config()
            .and_then(TimeoutConfig::operation_timeout)
            .is_some();
        let lock = DynamoLock {
            client,
            table: table.into(),
            drift_factor: DRIFT_FACTOR,
            drift_min: DRIFT_MIN,
        };
        if has_timeout {
            lock
        } else {
            lock.with_timeout(DEFAULT_TIMEOUT)
        }
    }

    /// This backend with each request bounded by `timeout`, the SDK's
    /// retries included (a request over it answers `Unavailable`).
    pub fn with_timeout(self, timeout: Duration) -> DynamoLock {
        let config = self
            .client
            .config()
            .to_builder()
            .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build())
            .build();
        DynamoLock {
            client: Client::from_conf(config),
            ..self
        }
    }

    /// This backend with another allowed clock drift: `ttl × factor + min`
    /// is subtracted from every validity.
    pub fn with_drift(self, factor: f64, min: Duration) -> DynamoLock {
        DynamoLock {
            drift_factor: factor,
            drift_min: min,
            ..self
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client the backend sends with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Checks that the table exists with the right key (see
    /// [`check_table`]).
    pub async fn check(&self) -> Result<TableReport, TableError> {
        check_table(&self.client, &self.table).await
    }

    fn writes(&self) -> Writes<'_> {
        Writes {
            client: &self.client,
            table: &self.table,
        }
    }

    fn validity(&self, ttl: Duration, elapsed: Duration) -> Option<Duration> {
        validity(ttl, elapsed, self.drift_factor, self.drift_min)
    }

    /// Refuses a TTL no lock could be held for (not longer than the drift).
    fn check_ttl(&self, ttl: Duration) -> Result<(), LockError> {
        match self.validity(ttl, Duration::ZERO) {
            Some(_) => Ok(()),
            None => Err(LockError::Unavailable(format!(
                "lock TTL {ttl:?} is not longer than the allowed clock drift; use a TTL of seconds"
            ))),
        }
    }

    /// Reads the items behind refusals that came without them.
    async fn read_refusers(&self, keys: &[&str]) -> Result<Items, String> {
        read_items(&self.client, &self.table, keys).await
    }
}

/// A fresh token: 128 bits from the thread's CSPRNG, as 32 hex digits.
pub(crate) fn new_token() -> LockToken {
    LockToken::new(format!("{:032x}", rand::random::<u128>()))
}

fn unavailable(reason: String) -> AcquireOutcome {
    AcquireOutcome::Unavailable(LockError::Unavailable(reason))
}

/// What a refused acquire means: the item that refused it is live (the
/// condition takes expired ones), and not our lock (the condition takes
/// that too).
fn refused_acquire(item: &StoredItem) -> AcquireOutcome {
    match item.state {
        ItemState::Done => AcquireOutcome::Done,
        ItemState::Locked => AcquireOutcome::Busy,
    }
}

/// What a refused complete means: another owner's record is the work
/// recorded (`Ok`, left as it is); another owner's live lock refuses.
fn refused_complete(item: &StoredItem) -> Result<(), LockError> {
    match item.state {
        ItemState::Done => Ok(()),
        ItemState::Locked => Err(LockError::NotHeld),
    }
}

/// The item that refused a write, as read back at `now_ms`. Gone or
/// expired since is undecided: the key may be free now, and a later try
/// decides.
fn read_back<'a>(items: &'a Items, key: &str, now_ms: u64) -> Result<&'a StoredItem, String> {
    match items.get(key) {
        Some(Ok(item)) if item.live_at(now_ms) => Ok(item),
        Some(Err(e)) => Err(e.clone()),
        _ => Err(format!(
            "the item that refused the write on `{key}` was gone when read back (released or expired meanwhile); try again"
        )),
    }
}

#[async_trait]
impl LockBackend for DynamoLock {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        iniesta_core::ports::acquire_from_each(self, keys, ttl).await
    }

    /// One conditional `PutItem` per key, in parallel; each key is answered
    /// as soon as its request returns. Nothing is retried here (the SDK
    /// retries what failed in transit; a `Busy` key is final).
    async fn acquire_each(
        &self,
        keys: Vec<LockKey>,
        ttl: Duration,
        answer: &mut (dyn FnMut(Vec<(usize, AcquireOutcome)>) + Send),
    ) {
        if keys.is_empty() {
            return;
        }
        if let Err(e) = self.check_ttl(ttl) {
            answer(
                (0..keys.len())
                    .map(|i| (i, AcquireOutcome::Unavailable(e.clone())))
                    .collect(),
            );
            return;
        }
        let ttl_ms = lifetime_ms(ttl);
        let held_for = Duration::from_millis(ttl_ms);
        let tokens: Vec<LockToken> = keys.iter().map(|_| new_token()).collect();
        let writes = self.writes();
        let start = Instant::now();
        let now_ms = epoch_ms(SystemTime::now());
        // Indices, not references, go through the stream: its closure
        // then borrows nothing per item (which keeps the future `Send`).
        let (keys_ref, tokens_ref) = (&keys, &tokens);
        let mut replies = stream::iter(0..keys.len())
            .map(|i| async move {
                let reply = writes
                    .lock(&keys_ref[i], tokens_ref[i].as_str(), now_ms, ttl_ms)
                    .await;
                (i, reply)
            })
            .buffer_unordered(MAX_PARALLEL);
        let mut unread = Vec::new();
        let mut undo = Vec::new();
        while let Some((i, reply)) = replies.next().await {
            let elapsed = start.elapsed();
            let key = &keys[i];
            let outcome = match reply {
                Ok(Write::Applied) => match self.validity(held_for, elapsed) {
                    Some(validity) => {
                        tracing::debug!(%key, ?validity, "lock acquired");
                        AcquireOutcome::Acquired {
                            token: tokens[i].clone(),
                            validity,
                        }
                    }
                    None => {
                        undo.push(i);
                        unavailable(format!(
                            "lock `{key}` was granted but took {elapsed:?}, too long for a TTL of {held_for:?}"
                        ))
                    }
                },
                Ok(Write::Refused(Some(item))) => refused_acquire(&item),
                Ok(Write::Refused(None)) => {
                    unread.push(i);
                    continue;
                }
                Err(reason) => {
                    tracing::warn!(%key, error = %reason, "DynamoDB acquire failed");
                    unavailable(reason)
                }
            };
            answer(vec![(i, outcome)]);
        }
        drop(replies);
        if !unread.is_empty() {
            let names: Vec<&str> = unread.iter().map(|&i| &*keys[i]).collect();
            let decided = match self.read_refusers(&names).await {
                Ok(items) => {
                    let now_ms = epoch_ms(SystemTime::now());
                    unread
                        .iter()
                        .map(|&i| {
                            let outcome = match read_back(&items, &keys[i], now_ms) {
                                Ok(item) => refused_acquire(item),
                                Err(e) => unavailable(e),
                            };
                            (i, outcome)
                        })
                        .collect()
                }
                Err(reason) => unread
                    .iter()
                    .map(|&i| (i, unavailable(reason.clone())))
                    .collect(),
            };
            answer(decided);
        }
        for i in undo {
            // Best effort: what stays expires with its TTL.
            let _ = writes
                .release(&keys[i], tokens[i].as_str(), epoch_ms(SystemTime::now()))
                .await;
        }
    }

    /// One conditional `UpdateItem`.
    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        self.check_ttl(ttl)?;
        let ttl_ms = lifetime_ms(ttl);
        let start = Instant::now();
        let now_ms = epoch_ms(SystemTime::now());
        match self
            .writes()
            .extend(&key, token.as_str(), now_ms, ttl_ms)
            .await
        {
            Ok(Write::Applied) => {
                let elapsed = start.elapsed();
                self.validity(Duration::from_millis(ttl_ms), elapsed)
                    .ok_or_else(|| {
                        LockError::Unavailable(format!(
                            "extending `{key}` took {elapsed:?}, too long for a TTL of {ttl:?}; the lock may be lost"
                        ))
                    })
            }
            Ok(Write::Refused(_)) => Err(LockError::NotHeld),
            Err(reason) => {
                tracing::warn!(%key, error = %reason, "DynamoDB extend failed");
                Err(LockError::Unavailable(reason))
            }
        }
    }

    /// One conditional `PutItem` per entry, in parallel.
    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        let keep_ms = lifetime_ms(keep_for);
        let writes = self.writes();
        let now_ms = epoch_ms(SystemTime::now());
        let entries_ref = &entries;
        let mut replies: Vec<(usize, WriteResult)> = stream::iter(0..entries.len())
            .map(|i| async move {
                let (key, token) = &entries_ref[i];
                (i, writes.record(key, token.as_str(), now_ms, keep_ms).await)
            })
            .buffer_unordered(MAX_PARALLEL)
            .collect()
            .await;
        replies.sort_unstable_by_key(|(i, _)| *i);
        let unread: Vec<&str> = replies
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Write::Refused(None))))
            .map(|(i, _)| &*entries[*i].0)
            .collect();
        let items = if unread.is_empty() {
            Ok(Default::default())
        } else {
            self.read_refusers(&unread).await
        };
        let read_at = epoch_ms(SystemTime::now());
        replies
            .into_iter()
            .map(|(i, reply)| {
                let key = &entries[i].0;
                let result = match reply {
                    Ok(Write::Applied) => Ok(()),
                    Ok(Write::Refused(Some(item))) => refused_complete(&item),
                    Ok(Write::Refused(None)) => match &items {
                        Ok(items) => read_back(items, key, read_at)
                            .map_err(LockError::Unavailable)
                            .and_then(refused_complete),
                        Err(reason) => Err(LockError::Unavailable(reason.clone())),
                    },
                    Err(reason) => {
                        tracing::warn!(%key, error = %reason, "DynamoDB complete failed");
                        Err(LockError::Unavailable(reason))
                    }
                };
                match &result {
                    Ok(()) => tracing::debug!(%key, "completion recorded"),
                    Err(LockError::NotHeld) => {
                        tracing::debug!(%key, "another holder's lock; completion not recorded")
                    }
                    Err(_) => {}
                }
                result
            })
            .collect()
    }

    /// One conditional `DeleteItem`.
    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        let now_ms = epoch_ms(SystemTime::now());
        match self.writes().release(&key, token.as_str(), now_ms).await {
            Ok(Write::Applied) => Ok(()),
            Ok(Write::Refused(_)) => Err(LockError::NotHeld),
            Err(reason) => {
                tracing::warn!(%key, error = %reason, "DynamoDB release failed");
                Err(LockError::Unavailable(reason))
            }
        }
    }
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;
