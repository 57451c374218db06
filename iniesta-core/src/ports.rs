//! The ports: what the consumer needs from a queue, a topic and a lock
//! backend. Adapters (`iniesta-aws`, `iniesta-redlock`, `iniesta-mock`)
//! implement them; the [driver](crate::driver) calls them.
//!
//! Every method reports failure as a value. Implementations MUST NOT panic on
//! a backend error, and MUST return batch results in the order of the request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::message::{AttributeValue, ReceiptHandle, ReceivedMessage};

/// An error reported by a queue or topic backend, keeping the backend's own
/// error code (`AWS.SimpleQueueService.NonExistentQueue`, `NotFound`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct BackendError {
    /// The backend's error code, when it gave one.
    pub code: Option<String>,
    /// What went wrong, in the backend's words.
    pub message: String,
}

impl BackendError {
    /// An error with a code.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        BackendError {
            code: Some(code.into()),
            message: message.into(),
        }
    }

    /// An error without a code.
    pub fn message(message: impl Into<String>) -> Self {
        BackendError {
            code: None,
            message: message.into(),
        }
    }
}

/// One receive call's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// At most this many messages (1..=10 for SQS).
    pub max_messages: u32,
    /// Long-poll wait (0..=20 s for SQS).
    pub wait_time: Duration,
    /// A visibility timeout for the received messages; `None` keeps the
    /// queue's.
    pub visibility_timeout: Option<Duration>,
}

/// The outcome of one entry of a batch call.
pub type EntryResult = Result<(), BackendError>;

/// An SQS-like queue.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Receives up to `request.max_messages` messages, waiting up to
    /// `request.wait_time` for the first one. The result MUST carry the SQS
    /// system attributes (at least `ApproximateReceiveCount`) and all message
    /// attributes.
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError>;

    /// Deletes the deliveries named by `handles` (at most 10). Returns one
    /// result per handle, in order; a failure of the whole call is reported
    /// as that failure on every entry.
    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult>;

    /// Sets the visibility timeout of each delivery (at most 10), counted
    /// from now. Returns one result per entry, in order.
    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult>;
}

/// A message to publish: the text, its message attributes and, for a FIFO
/// topic, its group and deduplication id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The message text.
    pub body: String,
    /// The message attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// The message group (`MessageGroupId`). A FIFO topic requires one and
    /// delivers the messages of one group in order; a standard topic passes
    /// it on to SQS fair queues, where it orders nothing.
    pub group_id: Option<String>,
    /// The deduplication id (`MessageDeduplicationId`) of a FIFO topic:
    /// messages with the same id within five minutes are delivered once.
    /// `None` on a topic with content-based deduplication uses a hash of
    /// the body.
    pub deduplication_id: Option<String>,
}

impl OutgoingMessage {
    /// A message with `body` and `attributes`, for a standard topic.
    pub fn new(body: impl Into<String>, attributes: BTreeMap<String, AttributeValue>) -> Self {
        OutgoingMessage {
            body: body.into(),
            attributes,
            group_id: None,
            deduplication_id: None,
        }
    }

    /// The same message in FIFO group `group_id`.
    pub fn with_group_id(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// The same message with deduplication id `id`.
    pub fn with_deduplication_id(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }
}

/// An SNS-like topic.
#[async_trait]
pub trait Topic: Send + Sync + 'static {
    /// Publishes one message; returns the topic's message id.
    async fn publish(&self, message: OutgoingMessage) -> Result<String, BackendError>;

    /// Publishes several messages; one result per message, in order. The
    /// default publishes them one by one.
    async fn publish_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<String, BackendError>> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            out.push(self.publish(m).await);
        }
        out
    }
}

/// A full lock key: the consumer's prefix and the message's idempotency key
/// (`sqs:event:<key>`). Cheap to clone (shared text): the consumer builds it
/// once per message and hands the same text to acquire, extend, complete and
/// release, and a backend may keep it without copying.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey(Arc<str>);

shared_text!(LockKey);

impl std::ops::Deref for LockKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for LockKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for LockKey {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for LockKey {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl From<&str> for LockKey {
    fn from(key: &str) -> Self {
        LockKey(Arc::from(key))
    }
}

impl From<String> for LockKey {
    fn from(key: String) -> Self {
        LockKey(Arc::from(key))
    }
}

/// Proof of holding a lock, chosen by the backend (random, unguessable).
/// Every write after acquire is checked against it.
///
/// Opaque shared text, cheap to clone: a backend makes one with
/// [`LockToken::new`] and reads it back with [`as_str`](LockToken::as_str)
/// (or `Display`); what it holds is the backend's business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockToken(Arc<str>);

shared_text!(LockToken);

/// The answer to an acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// The lock is ours for `validity`, counted from when the acquire was
    /// sent (the backend has already subtracted its elapsed time and drift).
    Acquired {
        /// Our token.
        token: LockToken,
        /// How long the lock is safely ours, from when the request was sent.
        validity: Duration,
    },
    /// Someone else holds the lock.
    Busy,
    /// A completion record exists: this key's work is done.
    Done,
    /// The backend could not decide (errors, no quorum).
    Unavailable(LockError),
}

/// A lock backend failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock is not held with this token (expired, or taken by another).
    #[error("lock is not held with this token")]
    NotHeld,
    /// The backend could not answer (connection errors, no quorum).
    #[error("lock backend unavailable: {0}")]
    Unavailable(String),
}

/// A lock service with completion records.
///
/// `key`s are full lock keys (the consumer adds its prefix). A key is in one
/// of three states: free, locked (with a token, until its TTL), or done (a
/// completion record, until the dedupe window ends).
#[async_trait]
pub trait LockBackend: Send + Sync + 'static {
    /// Tries to lock each key for `ttl`. One outcome per key, in order.
    /// Several keys let a backend batch its round trips.
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome>;

    /// [`acquire`](Self::acquire), answering each key as soon as it is
    /// decided: `answer` gets `(index in keys, outcome)` pairs, a group at a
    /// time. The driver calls this one, so that a key decided in a first
    /// round is dispatched at once instead of waiting (its validity running
    /// out) while another key of the batch is retried.
    ///
    /// An implementation MUST answer every key exactly once, and MUST NOT
    /// retry a key that is [`Busy`](AcquireOutcome::Busy) (it means: someone
    /// else works on it, skip). The default answers everything at once from
    /// [`acquire`](Self::acquire).
    async fn acquire_each(
        &self,
        keys: Vec<LockKey>,
        ttl: Duration,
        answer: &mut (dyn FnMut(Vec<(usize, AcquireOutcome)>) + Send),
    ) {
        let outcomes = self.acquire(keys, ttl).await;
        answer(outcomes.into_iter().enumerate().collect());
    }

    /// Extends a lock we hold to `ttl` from now; returns the new validity,
    /// counted from when the request was sent.
    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError>;

    /// Writes completion records kept for `keep_for`. One result per
    /// `(key, token)`, in order. Several entries let a backend batch its
    /// round trips, as for [`acquire`](Self::acquire).
    ///
    /// For each key, an implementation MUST:
    /// - turn our own lock (held with `token`) into the record;
    /// - write the record on a free key (our lock expired while the handler
    ///   finished: the work is done, and without a record a later duplicate
    ///   would run it again);
    /// - answer `Ok` when a completion record is there already (a retry after
    ///   a lost reply, or another owner's finished work), without replacing
    ///   another owner's record;
    /// - answer `Err(NotHeld)` and change nothing only when another owner's
    ///   lock holds the key.
    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>>;

    /// Releases a lock we hold (compare-and-delete on the token). Releasing a
    /// lock that is no longer ours is `Err(NotHeld)` and changes nothing.
    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError>;
}

/// [`LockBackend::acquire`] for a backend whose own method is
/// [`acquire_each`](LockBackend::acquire_each): the answers gathered in
/// request order, a key left unanswered as `Unavailable`. A backend MUST NOT
/// use this while it keeps the default `acquire_each` (each would call the
/// other).
pub async fn acquire_from_each<L: LockBackend + ?Sized>(
    lock: &L,
    keys: Vec<LockKey>,
    ttl: Duration,
) -> Vec<AcquireOutcome> {
    let mut outcomes: Vec<Option<AcquireOutcome>> = vec![None; keys.len()];
    lock.acquire_each(keys, ttl, &mut |decided| {
        for (i, outcome) in decided {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(outcome);
            }
        }
    })
    .await;
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                AcquireOutcome::Unavailable(LockError::Unavailable(
                    "no outcome was decided for this key".into(),
                ))
            })
        })
        .collect()
}

#[async_trait]
impl<T: Queue + ?Sized> Queue for Arc<T> {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        (**self).receive(request).await
    }
    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        (**self).delete_batch(handles).await
    }
    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        (**self).change_visibility_batch(entries).await
    }
}

#[async_trait]
impl<T: Topic + ?Sized> Topic for Arc<T> {
    async fn publish(&self, message: OutgoingMessage) -> Result<String, BackendError> {
        (**self).publish(message).await
    }
    async fn publish_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<String, BackendError>> {
        (**self).publish_batch(messages).await
    }
}

#[async_trait]
impl<T: LockBackend + ?Sized> LockBackend for Arc<T> {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        (**self).acquire(keys, ttl).await
    }
    async fn acquire_each(
        &self,
        keys: Vec<LockKey>,
        ttl: Duration,
        answer: &mut (dyn FnMut(Vec<(usize, AcquireOutcome)>) + Send),
    ) {
        (**self).acquire_each(keys, ttl, answer).await
    }
    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        (**self).extend(key, token, ttl).await
    }
    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        (**self).complete(entries, keep_for).await
    }
    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        (**self).release(key, token).await
    }
}
