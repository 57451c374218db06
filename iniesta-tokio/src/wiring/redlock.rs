//! The Redlock over `INIESTA_CACHES`.

use iniesta_core::settings::Settings;
use iniesta_redlock::{Redlock, RedlockConfig, RedlockError};

/// The Redlock configuration of the settings: the servers of
/// `INIESTA_CACHES`, and `INIESTA_LOCK_RETRY_COUNT` attempts per lock.
pub fn redlock_config(settings: &Settings) -> RedlockConfig {
    let mut config = RedlockConfig::with_urls(settings.caches.iter().cloned());
    // The setting counts attempts; the Redlock counts retries after the
    // first attempt.
    config.retry_count = settings.lock_retry_count.saturating_sub(1);
    config
}

/// The Redlock of [`redlock_config`]. Fails on URLs the Redis client
/// refuses.
pub fn redlock(settings: &Settings) -> Result<Redlock, RedlockError> {
    Redlock::new(redlock_config(settings))
}
