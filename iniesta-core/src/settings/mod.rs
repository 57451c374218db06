//! Settings from the `INIESTA_*` environment.
//!
//! [`Settings`] holds everything the consumer needs. The variables keep the
//! names and defaults of the original Python Iniesta; the settings it did not
//! have follow the same `INIESTA_` style.
//!
//! Every value is trimmed, and a variable set to an empty value counts as
//! unset (so `INIESTA_SQS_QUEUE_NAME=` in a compose file means "use the
//! template"). Every bad value is reported, not only the first: a
//! [`SettingsError`] has one line per problem, naming the variable, the value
//! it got and what was expected.
//!
// The table of variables is generated from the rows in `table.rs`, the
// same rows the struct, its parser and `vars` come from.
#![doc = table::settings_table!(doc)]
//!
//! SQS takes visibility timeouts in whole seconds and rounds nothing itself,
//! so the durations iniesta sends as visibility timeouts
//! (`INIESTA_VISIBILITY_EXTENSION`, or the lock timeout in its place, and
//! the failure backoff) are held here as SQS will apply them: rounded
//! **up** to whole seconds with [`sqs::visibility`]
//! (`500ms` becomes 1 s, `2.5` becomes 3 s). They are checked against each
//! other after that rounding, because the rounded value is how long a
//! message really stays hidden. Rounding down would be unsafe: a visibility
//! extension of 0.8 s sent as 0 makes a running message visible at once.
//!
//! Durations are a plain number of seconds (fractions allowed: `2.5`) or
//! carry a unit (`500ms`, `2m`, `1h 30m`). Booleans accept `true`/`false`,
//! `1`/`0`, `yes`/`no` and `on`/`off` in any case. Lists are comma-separated
//! (`A.x, B.*`) or a JSON list of strings (`["A.x", "B.*"]`).
//!
//! Some settings are only needed in some modes (event polling needs a topic
//! and filters, publishing does not), so reading the environment checks each
//! value alone and [`Settings::validate_for_event_polling`] and its siblings
//! check what a mode needs.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use iniesta_core::settings::{InitializationType, Settings};
//!
//! let env = HashMap::from([
//!     ("INIESTA_INITIALIZATION_TYPE", "EVENT_POLLING"),
//!     ("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:events"),
//!     ("INIESTA_SQS_CONSUMER_FILTERS", "UserCreated.users, Order.*"),
//!     ("INIESTA_LOCK_TIMEOUT", "2.5"),
//!     ("SERVICE_NAME", "billing"),
//! ]);
//! let settings = Settings::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap();
//!
//! assert!(settings.wants(InitializationType::EventPolling));
//! assert_eq!(settings.lock_timeout, Duration::from_millis(2500));
//! assert_eq!(settings.heartbeat(), Duration::from_millis(1500));
//! assert_eq!(settings.resolved_queue_name().unwrap(), "iniesta-development-billing");
//! settings.validate_for_event_polling().unwrap();
//!
//! let bad = Settings::from_lookup(|name| match name {
//!     "INIESTA_LOCK_TIMEOUT" => Some("ten".into()),
//!     "INIESTA_DRY_RUN" => Some("maybe".into()),
//!     _ => None,
//! })
//! .unwrap_err();
//! assert_eq!(bad.problems().len(), 2);
//! assert!(bad.to_string().contains(r#"INIESTA_LOCK_TIMEOUT="ten": expected a duration"#));
//! ```

mod error;
mod expand;
mod group;
mod mode;
mod parse;
mod queue_name;
mod redact;
mod table;
mod values;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::filters::{FilterError, FilterPolicy};
use crate::message::{DeliveryMode, ParseConfig};
use crate::sqs;

pub use error::{SettingsError, SettingsProblem};
pub use group::{check_fifo_id, FifoGroup, FifoGroupError, MAX_FIFO_ID_CHARS};
pub use mode::{InitializationType, LockBackend};
pub use redact::redact_url;
pub use table::{vars, Settings};

/// The longest visibility timeout SQS accepts (12 hours); backoffs and
/// visibility extensions are bounded by it.
pub use crate::sqs::MAX_VISIBILITY;

impl Settings {
    /// Whether `INIESTA_INITIALIZATION_TYPE` includes `kind`.
    pub fn wants(&self, kind: InitializationType) -> bool {
        self.initialization_types.contains(&kind)
    }

    /// The subscription filter policy built from the consumer filters on the
    /// event key.
    pub fn filter_policy(&self) -> Result<FilterPolicy, FilterError> {
        FilterPolicy::from_filters(&self.event_key, &self.consumer_filters)
    }

    /// How often a running handler's lock and message visibility are
    /// extended: `INIESTA_HEARTBEAT_INTERVAL`, else 0.6 × the lock timeout
    /// (the original's auto-extension period).
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat_interval.unwrap_or_else(|| {
            self.lock_timeout
                .checked_mul(3)
                .map_or(self.lock_timeout / 5 * 3, |d| d / 5)
        })
    }

    /// How far each heartbeat pushes the message's visibility, as SQS
    /// applies it: `INIESTA_VISIBILITY_EXTENSION`, else the lock timeout,
    /// rounded up to whole seconds and at most [`MAX_VISIBILITY`] (a lock
    /// timeout of 0.8 s gives 1 s). Always longer than [`heartbeat`]
    /// in settings read by [`Settings::from_lookup`].
    ///
    /// [`heartbeat`]: Settings::heartbeat
    pub fn visibility_extension_or_default(&self) -> Duration {
        sqs::visibility(self.visibility_extension.unwrap_or(self.lock_timeout))
    }

    /// What message parsing needs, for the delivery mode in use.
    pub fn parse_config(&self, mode: DeliveryMode) -> ParseConfig {
        ParseConfig {
            mode,
            event_key: self.event_key.clone(),
            topic_arn: self.topic_arn.clone(),
        }
    }
}
