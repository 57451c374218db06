//! What a failed handler says: its error, and whether and when to try
//! again.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Any error that can cross threads: what [`HandlerError`] wraps.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What becomes of a message whose handler failed.
///
/// A handler chooses with [`HandlerError::retry`],
/// [`HandlerError::retry_after`] or [`HandlerError::permanent`]; an error
/// converted with `?` or `into()` retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Retry {
    /// Try again: the message comes back after the configured failure
    /// backoff (`INIESTA_FAILURE_BACKOFF_*`), or when its visibility
    /// timeout ends if there is none. The default.
    Backoff,
    /// Try again after this long: the message is hidden for it
    /// (ChangeMessageVisibility), rounded up to whole seconds and cut to
    /// 12 hours. SQS counts its 12-hour limit from the receive, so a delay
    /// near 12 hours on a message held long may be refused; the message
    /// then comes back when its visibility timeout ends.
    After(Duration),
    /// Never try again. By default the message is left for the queue's
    /// dead-letter queue: it is made visible at once and, each time this
    /// consumer receives it again, handed back unhandled, so its receive
    /// count passes the redrive policy's `maxReceiveCount` within a few
    /// receives (past a receive count of 10 it is handed back after the
    /// failure backoff instead, so a queue without a redrive policy does
    /// not spin). With `INIESTA_DELETE_PERMANENT_FAILURES` it is recorded
    /// as done and deleted instead. Either way it is logged and counted.
    Never,
}

/// The error a handler returns: the error itself (with its whole
/// [`source`](std::error::Error::source) chain) and whether to try again.
///
/// Anything that converts into a [`BoxError`] converts into a
/// `HandlerError` that retries (`std::io::Error`, `String`, `&str`,
/// `anyhow::Error`, any `std::error::Error + Send + Sync`), so `?` works in
/// a handler that returns `Result<(), HandlerError>`. Say more with the
/// constructors:
///
/// ```
/// use std::time::Duration;
/// use iniesta_core::handler::{HandlerError, Retry};
///
/// let e: HandlerError = "database is down".into();
/// assert_eq!(e.retry(), Retry::Backoff);
///
/// let e = HandlerError::retry_after(Duration::from_secs(300), "rate limited by the mail API");
/// assert_eq!(e.retry(), Retry::After(Duration::from_secs(300)));
///
/// let e = HandlerError::permanent("order 7 does not exist");
/// assert_eq!(e.retry(), Retry::Never);
/// assert_eq!(e.to_string(), "order 7 does not exist");
/// ```
///
/// `HandlerError` does not implement `std::error::Error` itself (as
/// `anyhow::Error` does not): that is what lets every error convert into
/// it.
pub struct HandlerError {
    retry: Retry,
    error: BoxError,
}

impl HandlerError {
    /// `error`, to be retried after the configured backoff (the same as
    /// `error.into()`).
    pub fn new(error: impl Into<BoxError>) -> Self {
        HandlerError {
            retry: Retry::Backoff,
            error: error.into(),
        }
    }

    /// `error`, to be retried after `delay` (rounded up to whole seconds,
    /// at most 12 hours: see [`Retry::After`]).
    pub fn retry_after(delay: Duration, error: impl Into<BoxError>) -> Self {
        HandlerError {
            retry: Retry::After(delay),
            error: error.into(),
        }
    }

    /// `error`, never to be retried: see [`Retry::Never`].
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        HandlerError {
            retry: Retry::Never,
            error: error.into(),
        }
    }

    /// Whether and when the message is tried again.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// The same error with another [`Retry`].
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The error itself.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The error itself, owned.
    pub fn into_error(self) -> BoxError {
        self.error
    }

    /// The error and each of its sources, as text, outermost first.
    pub fn chain(&self) -> ErrorChain {
        ErrorChain::of(self.error())
    }
}

impl<E: Into<BoxError>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        HandlerError::new(error)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("retry", &self.retry)
            .field("error", &self.error)
            .finish()
    }
}

/// The error's own text; `{:#}` gives the whole chain
/// (`outer: cause: root cause`).
impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{}", self.chain())
        } else {
            write!(f, "{}", self.error)
        }
    }
}

/// An error and its [`source`](std::error::Error::source)s, as text,
/// outermost first: what reaches logs and observers of a failed handler, so
/// that "query failed" comes with "connection refused" behind it.
///
/// Cheap to clone. Shown as the texts joined by `": "`.
///
/// ```
/// use iniesta_core::handler::ErrorChain;
///
/// #[derive(Debug)]
/// struct QueryFailed(std::io::Error);
/// impl std::fmt::Display for QueryFailed {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("query failed")
///     }
/// }
/// impl std::error::Error for QueryFailed {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let e = QueryFailed(std::io::Error::other("connection refused"));
/// let chain = ErrorChain::of(&e);
/// assert_eq!(chain.first(), "query failed");
/// assert_eq!(chain.to_string(), "query failed: connection refused");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ErrorChain(Arc<[String]>);

impl ErrorChain {
    /// The texts of `error` and of each of its sources.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut texts = Vec::new();
        let mut next = Some(error);
        while let Some(e) = next {
            texts.push(e.to_string());
            next = e.source();
        }
        ErrorChain(texts.into())
    }

    /// A chain of one text (a panic's message, a driver's own failure).
    pub fn message(text: impl Into<String>) -> Self {
        ErrorChain(Arc::from([text.into()]))
    }

    /// The texts, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The outermost text alone.
    pub fn first(&self) -> &str {
        self.0.first().map_or("", String::as_str)
    }
}

impl fmt::Display for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, text) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(": ")?;
            }
            f.write_str(text)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl From<&str> for ErrorChain {
    fn from(text: &str) -> Self {
        ErrorChain::message(text)
    }
}
