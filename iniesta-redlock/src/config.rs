//! Configuration of a [`Redlock`](crate::Redlock) and its validation. URLs
//! in its `Debug` and in its errors go through [`redact_url`], so a password
//! in `INIESTA_CACHES` never reaches a log line or an error message.

use std::fmt;
use std::time::Duration;

pub(crate) use iniesta_core::settings::redact_url;

/// How a [`Redlock`](crate::Redlock) talks to its nodes.
///
/// Build one from [`RedlockConfig::default`] or [`RedlockConfig::with_urls`]
/// and change the fields you need; [`Redlock::new`](crate::Redlock::new)
/// checks the whole of it.
///
/// The `Debug` output redacts passwords in the URLs.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct RedlockConfig {
    /// One URL per independent Redis server
    /// (`redis://[user:password@]host[:port][/db]`). The lock is held only
    /// with a majority (`N/2 + 1`) of them, so use an odd number, ideally at
    /// least three, on machines that fail independently. Each is a
    /// standalone server, not a Redis Cluster (a batch's keys go to a node
    /// in one script call, whatever their hash slots).
    pub urls: Vec<String>,
    /// How many times a key that came back `Unavailable` (no majority
    /// either way, because nodes failed or answered too slowly) is tried
    /// again after the first attempt (default 1). Only those keys are
    /// retried; the others are answered at once, and a `Busy` key is never
    /// retried (someone else works on it). `INIESTA_LOCK_RETRY_COUNT`
    /// counts *attempts* (the original's meaning, default 1: no retry), so
    /// it maps to `retry_count = attempts - 1`; the `Iniesta` builder and
    /// the CLI do that.
    pub retry_count: u32,
    /// The shortest random pause before a retry (default 50 ms). A random
    /// pause keeps competing consumers from retrying in lock step.
    pub retry_delay_min: Duration,
    /// The longest random pause before a retry (default 150 ms).
    pub retry_delay_max: Duration,
    /// How long one call to one node may take, connecting included
    /// (default 100 ms). A node that is down or stalled costs at most this
    /// much per call, and is then counted as failed for that call. Keep it
    /// small against the lock TTL (the Redlock validity shrinks by the time
    /// acquisition takes) but above a node's normal round trip; 100 ms is
    /// two orders of magnitude above a same-datacenter round trip and 1 %
    /// of the default 10 s lock TTL.
    pub node_timeout: Duration,
    /// Clock drift allowed between nodes, as a fraction of the TTL
    /// (default 0.01): a lock's validity is shortened by `ttl × drift_factor
    /// + drift_min`. Must be finite and in `0.0..1.0`.
    pub drift_factor: f64,
    /// Clock drift allowed regardless of the TTL (default 2 ms).
    pub drift_min: Duration,
}

impl RedlockConfig {
    /// The defaults with these URLs.
    pub fn with_urls<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedlockConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            ..RedlockConfig::default()
        }
    }

    /// Checks everything but the URLs' syntax (which needs the Redis
    /// client to parse them).
    pub(crate) fn validate_settings(&self) -> Result<(), RedlockError> {
        if self.urls.is_empty() {
            return Err(RedlockError::NoUrls);
        }
        for (i, url) in self.urls.iter().enumerate() {
            if self.urls[..i].contains(url) {
                return Err(RedlockError::InvalidUrl {
                    url: redact_url(url),
                    reason: "listed twice; a node counted twice would break the majority rule"
                        .into(),
                });
            }
        }
        if self.retry_delay_min > self.retry_delay_max {
            return Err(RedlockError::InvalidConfig(format!(
                "retry_delay_min ({:?}) is longer than retry_delay_max ({:?}); make min <= max",
                self.retry_delay_min, self.retry_delay_max
            )));
        }
        if self.node_timeout.is_zero() {
            return Err(RedlockError::InvalidConfig(
                "node_timeout is zero; no node could ever answer (give e.g. 100ms)".into(),
            ));
        }
        if !(self.drift_factor.is_finite() && (0.0..1.0).contains(&self.drift_factor)) {
            return Err(RedlockError::InvalidConfig(format!(
                "drift_factor {} is not a fraction in 0.0..1.0 (the usual value is 0.01)",
                self.drift_factor
            )));
        }
        Ok(())
    }
}

impl Default for RedlockConfig {
    /// The original's three databases on one local server
    /// (`redis://localhost:6379/1`, `/2`, `/3`), one retry after 50–150 ms,
    /// 100 ms per node call, drift `ttl/100 + 2 ms`.
    ///
    /// Three databases of one server are not independent: they suit
    /// development only. Production deployments list independent servers.
    fn default() -> Self {
        RedlockConfig {
            urls: vec![
                "redis://localhost:6379/1".into(),
                "redis://localhost:6379/2".into(),
                "redis://localhost:6379/3".into(),
            ],
            retry_count: 1,
            retry_delay_min: Duration::from_millis(50),
            retry_delay_max: Duration::from_millis(150),
            node_timeout: Duration::from_millis(100),
            drift_factor: 0.01,
            drift_min: Duration::from_millis(2),
        }
    }
}

impl fmt::Debug for RedlockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RedlockConfig")
            .field("urls", &urls)
            .field("retry_count", &self.retry_count)
            .field("retry_delay_min", &self.retry_delay_min)
            .field("retry_delay_max", &self.retry_delay_max)
            .field("node_timeout", &self.node_timeout)
            .field("drift_factor", &self.drift_factor)
            .field("drift_min", &self.drift_min)
            .finish()
    }
}

/// Why a [`Redlock`](crate::Redlock) could not be built. Every message says
/// what to change; URLs in it are redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedlockError {
    /// No URL was given.
    #[error("no Redis URLs configured: give at least one (INIESTA_CACHES), ideally three or more independent servers")]
    NoUrls,
    /// A URL is malformed or unusable.
    #[error(
        "invalid Redis URL `{url}`: {reason} (expected redis://[user:password@]host[:port][/db])"
    )]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting other than the URLs is out of range.
    #[error("invalid Redlock configuration: {0}")]
    InvalidConfig(String),
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
