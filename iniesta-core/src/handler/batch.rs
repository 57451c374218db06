//! Batch handlers: one call for up to `max_size` deliveries of a route,
//! and an outcome per delivery.
//!
//! ```
//! use iniesta_core::handler::{Batch, BatchOutcome, HandlerError, State};
//! use iniesta_core::HandlerRegistry;
//!
//! #[derive(serde::Deserialize)]
//! struct Welcome { email: String }
//!
//! #[derive(Clone)]
//! struct Mailer;
//! impl Mailer {
//!     /// Sends many mails in one request; says which were refused.
//!     async fn send_all(&self, to: &[&str]) -> Vec<bool> { to.iter().map(|t| !t.is_empty()).collect() }
//! }
//!
//! let mut handlers = HandlerRegistry::new();
//! handlers.state(Mailer);
//! handlers
//!     .on_batch("UserCreated.users", |batch: Batch<Welcome>, State(mailer): State<Mailer>| async move {
//!         let to: Vec<&str> = batch.iter().map(|item| item.payload.email.as_str()).collect();
//!         let sent = mailer.send_all(&to).await;
//!         let mut outcome = BatchOutcome::all_ok();
//!         for (item, sent) in batch.iter().zip(sent) {
//!             if !sent {
//!                 outcome.fail(item, HandlerError::permanent("no address"));
//!             }
//!         }
//!         outcome
//!     })
//!     .unwrap();
//! ```
//!
//! Each delivery of a batch is still locked, deduplicated, heartbeaten and
//! settled on its own: the batch is only how the handler is called. The
//! items that succeed are completed and deleted; the ones that fail are
//! released and retried (or given up on) exactly as a failed delivery of a
//! single handler is, each with its own [`Retry`].

use std::fmt;
use std::time::Duration;

use super::{Delivery, ErrorChain, HandlerError, Retry};

/// How a batch route gathers its deliveries: at most `max_size` at once,
/// and at most `max_wait` after the first arrived.
///
/// Each delivery of a batch holds its own handler slot
/// (`max_in_flight`, `INIESTA_MAX_IN_FLIGHT`) from the moment it is
/// gathered, so a batch never holds more than `max_in_flight` deliveries:
/// a `max_size` above it is cut to it, and deliveries of other routes
/// running at the same time make batches smaller. The wait counts against
/// each delivery's handler timeout, so it is cut to half of it; on shutdown
/// a gathering batch runs at once.
///
/// ```
/// use std::time::Duration;
/// use iniesta_core::handler::BatchOptions;
///
/// let options = BatchOptions { max_size: 25, ..BatchOptions::default() };
/// assert_eq!(options.max_wait, Duration::from_millis(100));
/// let options = BatchOptions::new().max_size(50).max_wait(Duration::from_millis(20));
/// assert_eq!((options.max_size, options.max_wait), (50, Duration::from_millis(20)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// The most deliveries one call gets (at least 1; default 10, SQS's
    /// receive batch).
    pub max_size: usize,
    /// How long to wait for a batch to fill, counted from its first
    /// delivery (default 100 ms). Zero gathers only what is dispatched
    /// together, from one receive.
    pub max_wait: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_size: 10,
            max_wait: Duration::from_millis(100),
        }
    }
}

impl BatchOptions {
    /// The defaults: batches of up to 10, gathered for up to 100 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most deliveries one call gets.
    pub fn max_size(mut self, n: usize) -> Self {
        self.max_size = n;
        self
    }

    /// How long to wait for a batch to fill.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Why these options cannot gather a batch, if they cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        (self.max_size == 0).then(|| "max_size must be at least 1".to_owned())
    }
}

/// One delivery of a [`Batch`]: its payload decoded, and the delivery
/// itself (the key, the receive count, the lock-lost signal, …).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchItem<T> {
    /// The payload, decoded from JSON.
    pub payload: T,
    /// The delivery it came in.
    pub delivery: Delivery,
    index: usize,
}

impl<T> BatchItem<T> {
    /// Its place in the [`Batch`] the handler got (what
    /// [`BatchOutcome::fail`] takes).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The idempotency key ([`Message::key`](crate::Message::key)).
    pub fn key(&self) -> &str {
        self.delivery.message.key()
    }

    /// How many times SQS has delivered this message, this time included.
    pub fn receive_count(&self) -> u32 {
        self.delivery.message.receive_count
    }
}

/// The deliveries a batch handler gets, each with its payload decoded into
/// `T`, in the order they were dispatched.
///
/// A delivery whose payload does not decode into `T` is a permanent failure
/// of that delivery alone ([`Retry::Never`], as for
/// [`Json`](super::Json)) and is not in the batch; a batch of which no
/// delivery decodes is not handed to the handler at all.
#[derive(Debug, Clone)]
pub struct Batch<T> {
    items: Vec<BatchItem<T>>,
}

impl<T> Batch<T> {
    /// A batch of `(payload, delivery)` pairs, numbered in order.
    pub(crate) fn new(items: impl IntoIterator<Item = (T, Delivery)>) -> Self {
        let items = items
            .into_iter()
            .enumerate()
            .map(|(index, (payload, delivery))| BatchItem {
                payload,
                delivery,
                index,
            })
            .collect();
        Batch { items }
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none (never, for a batch a handler gets).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, BatchItem<T>> {
        self.items.iter()
    }

    /// The items, in order.
    pub fn items(&self) -> &[BatchItem<T>] {
        &self.items
    }

    /// The items, owned.
    pub fn into_items(self) -> Vec<BatchItem<T>> {
        self.items
    }

    /// The payloads alone, in order.
    pub fn payloads(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|item| &item.payload)
    }
}

impl<T> std::ops::Index<usize> for Batch<T> {
    type Output = BatchItem<T>;
    fn index(&self, index: usize) -> &BatchItem<T> {
        &self.items[index]
    }
}

impl<'a, T> IntoIterator for &'a Batch<T> {
    type Item = &'a BatchItem<T>;
    type IntoIter = std::slice::Iter<'a, BatchItem<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> IntoIterator for Batch<T> {
    type Item = BatchItem<T>;
    type IntoIter = std::vec::IntoIter<BatchItem<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// Names an item of a batch in [`BatchOutcome::fail`]: its index in the
/// [`Batch`] (a `usize`, or the [`BatchItem`] itself) or its idempotency
/// key (a `&str`, a `String`, a [`Key`](super::Key)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRef {
    /// The item's [`index`](BatchItem::index).
    Index(usize),
    /// The item's [`key`](BatchItem::key).
    Key(String),
}

impl From<usize> for ItemRef {
    fn from(index: usize) -> Self {
        ItemRef::Index(index)
    }
}
impl<T> From<&BatchItem<T>> for ItemRef {
    fn from(item: &BatchItem<T>) -> Self {
        ItemRef::Index(item.index)
    }
}
impl From<&str> for ItemRef {
    fn from(key: &str) -> Self {
        ItemRef::Key(key.to_owned())
    }
}
impl From<String> for ItemRef {
    fn from(key: String) -> Self {
        ItemRef::Key(key)
    }
}
impl From<super::Key> for ItemRef {
    fn from(key: super::Key) -> Self {
        ItemRef::Key(key.0)
    }
}
impl From<&super::Key> for ItemRef {
    fn from(key: &super::Key) -> Self {
        ItemRef::Key(key.0.clone())
    }
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemRef::Index(i) => write!(f, "index {i}"),
            ItemRef::Key(k) => write!(f, "key {k:?}"),
        }
    }
}

/// What a batch handler returns: the items that failed, each with its
/// [`HandlerError`] (and so its [`Retry`]); every other item succeeded.
/// The shape of a partial batch response (`batchItemFailures`).
///
/// ```
/// use std::time::Duration;
/// use iniesta_core::handler::{BatchOutcome, HandlerError};
///
/// let mut outcome = BatchOutcome::all_ok();
/// outcome
///     .fail(0, "the database is down")                       // retried after the backoff
///     .fail("key-7", HandlerError::permanent("no such user")) // never retried
///     .fail(2, HandlerError::retry_after(Duration::from_secs(60), "rate limited"));
/// assert_eq!(outcome.failures(), 3);
///
/// // One result per item, in the batch's order:
/// let outcome: BatchOutcome = vec![Ok(()), Err("no")].into_iter().collect();
/// assert_eq!(outcome.failures(), 1);
/// ```
///
/// What is not an item's own outcome:
/// - [`all_failed`](Self::all_failed) (or an `Err` returned instead of an
///   outcome) fails every item that has no failure of its own, with that
///   error;
/// - a failure that names no item of the batch (an index past its end, a
///   key not in it) makes every item fail and be retried, since the handler
///   meant some item and it cannot be known which: a success is never
///   guessed, and an item's own failure does not stand either (a permanent
///   one meant for another item would give it up);
/// - an outcome made of a list of results ([`FromIterator`]) shorter than
///   the batch fails (and retries) the items it misses; a longer one cannot
///   be matched to the items, and every item fails and is retried, its own
///   entry ignored.
///
/// The first failure given for an item is the one kept.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    failures: Vec<(ItemRef, HandlerError)>,
    whole: Option<HandlerError>,
    /// The number of results, for an outcome built from a list of them.
    listed: Option<usize>,
}

impl BatchOutcome {
    /// Every item succeeded.
    pub fn all_ok() -> Self {
        Self::default()
    }

    /// Every item failed with `error` (and its [`Retry`]).
    pub fn all_failed(error: impl Into<HandlerError>) -> Self {
        BatchOutcome {
            whole: Some(error.into()),
            ..Self::default()
        }
    }

    /// Marks the item `which` names as failed with `error`.
    pub fn fail(&mut self, which: impl Into<ItemRef>, error: impl Into<HandlerError>) -> &mut Self {
        self.failures.push((which.into(), error.into()));
        self
    }

    /// The number of failures given item by item.
    pub fn failures(&self) -> usize {
        self.failures.len()
    }

    /// Whether nothing failed.
    pub fn is_all_ok(&self) -> bool {
        self.failures.is_empty() && self.whole.is_none()
    }

    /// The outcome of each of the `keys.len()` items of the batch (their
    /// keys, in order), by the rules of the type's docs.
    pub(crate) fn resolve(self, keys: &[&str]) -> Vec<Result<(), ItemFailure>> {
        let n = keys.len();
        let mut out: Vec<Option<Result<(), ItemFailure>>> = vec![None; n];
        let mut stray: Option<String> = None;
        for (which, error) in &self.failures {
            let index = match which {
                ItemRef::Index(i) if *i < n => Some(*i),
                ItemRef::Index(_) => None,
                ItemRef::Key(k) => keys.iter().position(|key| key == k),
            };
            match index {
                Some(i) => {
                    out[i].get_or_insert_with(|| Err(ItemFailure::from(error)));
                }
                None => {
                    stray.get_or_insert_with(|| {
                        format!(
                            "the batch handler failed an item that is not in its batch of {n} \
                             ({which}: {error:#}); it cannot be known which item it meant, so \
                             every item is retried"
                        )
                    });
                }
            }
        }
        let listed = self.listed.filter(|&l| l != n);
        if let Some(l) = listed.filter(|&l| l > n) {
            stray.get_or_insert_with(|| {
                format!(
                    "the batch handler returned {l} outcomes for a batch of {n}: they cannot be \
                     matched to the items, so every item is retried"
                )
            });
        }
        // Outcomes that cannot be matched to the items say nothing sure
        // about any item: not even an item's own failure may stand (a
        // permanent one meant for another item would give it up), so every
        // item is retried.
        if let Some(text) = stray {
            return (0..n)
                .map(|_| Err(ItemFailure::retried(text.clone())))
                .collect();
        }
        let whole = self.whole.as_ref().map(ItemFailure::from);
        out.into_iter()
            .enumerate()
            .map(|(i, own)| match own {
                Some(own) => own,
                None => match (&whole, listed) {
                    (Some(whole), _) => Err(whole.clone()),
                    (None, Some(l)) if i >= l => Err(ItemFailure::retried(format!(
                        "the batch handler returned {l} outcomes for a batch of {n}; item {i} \
                         got none, so it is retried"
                    ))),
                    _ => Ok(()),
                },
            })
            .collect()
    }
}

/// One result per item, in the batch's order.
impl<E: Into<HandlerError>> FromIterator<Result<(), E>> for BatchOutcome {
    fn from_iter<I: IntoIterator<Item = Result<(), E>>>(iter: I) -> Self {
        let mut outcome = BatchOutcome::all_ok();
        let mut n = 0;
        for (i, result) in iter.into_iter().enumerate() {
            if let Err(e) = result {
                outcome.fail(i, e);
            }
            n = i + 1;
        }
        outcome.listed = Some(n);
        outcome
    }
}

/// What a batch handler function may return: a [`BatchOutcome`], `()`
/// (every item succeeded), or either in a `Result` whose `Err` fails every
/// item (so `?` works).
pub trait IntoBatchOutcome {
    /// The outcome.
    fn into_batch_outcome(self) -> BatchOutcome;
}

impl IntoBatchOutcome for BatchOutcome {
    fn into_batch_outcome(self) -> BatchOutcome {
        self
    }
}

impl IntoBatchOutcome for () {
    fn into_batch_outcome(self) -> BatchOutcome {
        BatchOutcome::all_ok()
    }
}

impl<O: IntoBatchOutcome, E: Into<HandlerError>> IntoBatchOutcome for Result<O, E> {
    fn into_batch_outcome(self) -> BatchOutcome {
        match self {
            Ok(o) => o.into_batch_outcome(),
            Err(e) => BatchOutcome::all_failed(e),
        }
    }
}

/// How one item of a batch failed: the error's text (with its sources) and
/// whether and when to try again. What a batch handler answers per item,
/// and what [`HandlerRegistry::run_batch`](crate::HandlerRegistry::run_batch)
/// gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFailure {
    error: ErrorChain,
    retry: Retry,
}

impl ItemFailure {
    /// A failure with this error text and retry kind.
    pub fn new(error: ErrorChain, retry: Retry) -> Self {
        ItemFailure { error, retry }
    }

    /// A failure of one text, retried after the backoff.
    pub fn retried(text: impl Into<String>) -> Self {
        ItemFailure::new(ErrorChain::message(text), Retry::Backoff)
    }

    /// The error and its sources, as text.
    pub fn chain(&self) -> &ErrorChain {
        &self.error
    }

    /// Whether and when the item is tried again.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// The same failure as a [`HandlerError`] (its text, not its type).
    pub fn into_handler_error(self) -> HandlerError {
        HandlerError::new(ChainText(self.error)).with_retry(self.retry)
    }
}

impl From<&HandlerError> for ItemFailure {
    fn from(error: &HandlerError) -> Self {
        ItemFailure::new(error.chain(), error.retry())
    }
}

impl From<HandlerError> for ItemFailure {
    fn from(error: HandlerError) -> Self {
        ItemFailure::from(&error)
    }
}

impl fmt::Display for ItemFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)
    }
}

/// An error chain's text as an error.
#[derive(Debug)]
struct ChainText(ErrorChain);

impl fmt::Display for ChainText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for ChainText {}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
