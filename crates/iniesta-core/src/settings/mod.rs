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
//! | variable | default | meaning |
//! |---|---|---|
//! | `INIESTA_INITIALIZATION_TYPE` | empty | what to set up: a list of `EVENT_POLLING`, `QUEUE_POLLING`, `SNS_PRODUCER` |
//! | `INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN` | none | the global topic (`arn:aws:sns:region:account:name`); needed for event polling and publishing |
//! | `INIESTA_SQS_CONSUMER_FILTERS` | empty | the events this service consumes (`Event.service`, or `Event.*` for a prefix); non-empty for event polling |
//! | `INIESTA_SQS_QUEUE_NAME` | none | this service's queue; when unset, the template below gives it |
//! | `INIESTA_SQS_QUEUE_NAME_TEMPLATE` | `iniesta-{env}-{service_name}` | the queue name from `ENVIRONMENT` and `SERVICE_NAME` |
//! | `INIESTA_SNS_EVENT_KEY` | `iniesta_pass` | the message attribute that names the event |
//! | `INIESTA_CACHES` | `redis://localhost:6379/1`, `/2`, `/3` | the Redis servers of the Redlock (`redis://` or `rediss://` URLs) |
//! | `INIESTA_LOCK_TIMEOUT` | `10` (s) | time to live of a lock per event (at most 12 h) |
//! | `INIESTA_LOCK_RETRY_COUNT` | `1` | attempts to acquire a lock (1 = a single attempt) |
//! | `INIESTA_SQS_RECEIVE_MESSAGE_MAX_NUMBER_OF_MESSAGES` | `10` | messages per receive, 1 to 10 |
//! | `INIESTA_SQS_RECEIVE_MESSAGE_WAIT_TIME_SECONDS` | `20` | long polling wait, 0 to 20 whole seconds |
//! | `INIESTA_ASSERT_FILTER_POLICIES` | `true` | check at start-up that the subscription's filter policy equals the configured filters |
//! | `INIESTA_DRY_RUN` | `false` | skip the AWS checks at start-up |
//! | `INIESTA_SQS_ENDPOINT_URL` | none (AWS) | another SQS endpoint (`http://` or `https://`), e.g. an emulator |
//! | `INIESTA_SNS_ENDPOINT_URL` | none (AWS) | another SNS endpoint (`http://` or `https://`) |
//! | `SERVICE_NAME` | none | this service's name; used by the queue name template and for published event names |
//! | `ENVIRONMENT` | `development` | the environment; used by the queue name template |
//! | `INIESTA_MAX_IN_FLIGHT` | `10` | messages in progress at once (at least 1); from 20 up, a receive waits until a tenth of them are free, so that it asks for a full batch |
//! | `INIESTA_CONCURRENT_RECEIVES` | derived by the consumer | receive calls outstanding at once (1 to `INIESTA_MAX_IN_FLIGHT`) |
//! | `INIESTA_DEDUPE_WINDOW` | `24h` | how long a completion record keeps a finished event from running again |
//! | `INIESTA_HEARTBEAT_INTERVAL` | 0.6 × lock timeout | how often a running handler's lock and message visibility are extended; shorter than the lock timeout |
//! | `INIESTA_VISIBILITY_EXTENSION` | the lock timeout | how far each heartbeat pushes the message's visibility (1 s to 12 h; rounded up to whole seconds, then longer than the heartbeat interval) |
//! | `INIESTA_FAILURE_BACKOFF_BASE` | none (`0`) | after a failed handler, hide the message for base × 2^(receive count − 1); rounded up to whole seconds (under 1 s becomes 1 s); unset or 0 leaves the queue's visibility timeout alone |
//! | `INIESTA_FAILURE_BACKOFF_MAX` | `15m` | the longest such backoff (at most 12 h, SQS's limit; rounded up to whole seconds) |
//! | `INIESTA_SHUTDOWN_GRACE` | `30` (s) | how long shutdown waits for running handlers |
//! | `INIESTA_DELETE_BATCH_WINDOW` | `10ms` | how long a finished message waits for others to share its `DeleteMessageBatch` call (0 = delete at once) |
//! | `INIESTA_RETURN_UNSTARTED_ON_SHUTDOWN` | `true` | at shutdown, make received but unstarted messages visible again at once |
//! | `INIESTA_LOCK_KEY_PREFIX` | `sqs:event:` | prefix of the Redis key locked per event |
//! | `INIESTA_RAW_DELIVERY` | detected at start-up | whether SNS delivers raw messages (`true`/`false`; `auto` or unset = detect) |
//! | `INIESTA_DELETE_UNMATCHED_EVENTS` | `false` | delete messages whose event does not match `INIESTA_SQS_CONSUMER_FILTERS` instead of leaving them for the dead-letter queue |
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

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::filters::{Filter, FilterError, FilterPolicy};
use crate::message::{DeliveryMode, ParseConfig};
use crate::sqs;

/// The names of the environment variables [`Settings`] reads.
pub mod vars {
    /// What to set up: `EVENT_POLLING`, `QUEUE_POLLING`, `SNS_PRODUCER`.
    pub const INITIALIZATION_TYPE: &str = "INIESTA_INITIALIZATION_TYPE";
    /// The global SNS topic's ARN.
    pub const GLOBAL_TOPIC_ARN: &str = "INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN";
    /// The consumer's filters.
    pub const CONSUMER_FILTERS: &str = "INIESTA_SQS_CONSUMER_FILTERS";
    /// An explicit queue name.
    pub const QUEUE_NAME: &str = "INIESTA_SQS_QUEUE_NAME";
    /// The queue name template.
    pub const QUEUE_NAME_TEMPLATE: &str = "INIESTA_SQS_QUEUE_NAME_TEMPLATE";
    /// The message attribute naming the event.
    pub const EVENT_KEY: &str = "INIESTA_SNS_EVENT_KEY";
    /// The Redis servers of the Redlock.
    pub const CACHES: &str = "INIESTA_CACHES";
    /// The lock's time to live.
    pub const LOCK_TIMEOUT: &str = "INIESTA_LOCK_TIMEOUT";
    /// Attempts to acquire a lock.
    pub const LOCK_RETRY_COUNT: &str = "INIESTA_LOCK_RETRY_COUNT";
    /// Messages per receive.
    pub const RECEIVE_MAX_MESSAGES: &str = "INIESTA_SQS_RECEIVE_MESSAGE_MAX_NUMBER_OF_MESSAGES";
    /// Long polling wait.
    pub const RECEIVE_WAIT_TIME: &str = "INIESTA_SQS_RECEIVE_MESSAGE_WAIT_TIME_SECONDS";
    /// Whether to check the subscription's filter policy at start-up.
    pub const ASSERT_FILTER_POLICIES: &str = "INIESTA_ASSERT_FILTER_POLICIES";
    /// Whether to skip the AWS checks at start-up.
    pub const DRY_RUN: &str = "INIESTA_DRY_RUN";
    /// Another SQS endpoint.
    pub const SQS_ENDPOINT_URL: &str = "INIESTA_SQS_ENDPOINT_URL";
    /// Another SNS endpoint.
    pub const SNS_ENDPOINT_URL: &str = "INIESTA_SNS_ENDPOINT_URL";
    /// This service's name.
    pub const SERVICE_NAME: &str = "SERVICE_NAME";
    /// The environment.
    pub const ENVIRONMENT: &str = "ENVIRONMENT";
    /// Messages in progress at once.
    pub const MAX_IN_FLIGHT: &str = "INIESTA_MAX_IN_FLIGHT";
    /// Receive calls outstanding at once.
    pub const CONCURRENT_RECEIVES: &str = "INIESTA_CONCURRENT_RECEIVES";
    /// How long a completion record lives.
    pub const DEDUPE_WINDOW: &str = "INIESTA_DEDUPE_WINDOW";
    /// How often running work is extended.
    pub const HEARTBEAT_INTERVAL: &str = "INIESTA_HEARTBEAT_INTERVAL";
    /// How far each heartbeat pushes a message's visibility.
    pub const VISIBILITY_EXTENSION: &str = "INIESTA_VISIBILITY_EXTENSION";
    /// The first backoff after a failed handler.
    pub const FAILURE_BACKOFF_BASE: &str = "INIESTA_FAILURE_BACKOFF_BASE";
    /// The longest backoff after a failed handler.
    pub const FAILURE_BACKOFF_MAX: &str = "INIESTA_FAILURE_BACKOFF_MAX";
    /// How long shutdown waits for running handlers.
    pub const SHUTDOWN_GRACE: &str = "INIESTA_SHUTDOWN_GRACE";
    /// How long a finished message waits for others to share its delete call.
    pub const DELETE_BATCH_WINDOW: &str = "INIESTA_DELETE_BATCH_WINDOW";
    /// Whether shutdown makes unstarted messages visible again.
    pub const RETURN_UNSTARTED_ON_SHUTDOWN: &str = "INIESTA_RETURN_UNSTARTED_ON_SHUTDOWN";
    /// Prefix of the lock key.
    pub const LOCK_KEY_PREFIX: &str = "INIESTA_LOCK_KEY_PREFIX";
    /// Whether SNS delivers raw messages.
    pub const RAW_DELIVERY: &str = "INIESTA_RAW_DELIVERY";
    /// Whether messages whose event matches no consumer filter are deleted.
    pub const DELETE_UNMATCHED_EVENTS: &str = "INIESTA_DELETE_UNMATCHED_EVENTS";

    /// Every variable above.
    pub const ALL: &[&str] = &[
        INITIALIZATION_TYPE,
        GLOBAL_TOPIC_ARN,
        CONSUMER_FILTERS,
        QUEUE_NAME,
        QUEUE_NAME_TEMPLATE,
        EVENT_KEY,
        CACHES,
        LOCK_TIMEOUT,
        LOCK_RETRY_COUNT,
        RECEIVE_MAX_MESSAGES,
        RECEIVE_WAIT_TIME,
        ASSERT_FILTER_POLICIES,
        DRY_RUN,
        SQS_ENDPOINT_URL,
        SNS_ENDPOINT_URL,
        SERVICE_NAME,
        ENVIRONMENT,
        MAX_IN_FLIGHT,
        CONCURRENT_RECEIVES,
        DEDUPE_WINDOW,
        HEARTBEAT_INTERVAL,
        VISIBILITY_EXTENSION,
        FAILURE_BACKOFF_BASE,
        FAILURE_BACKOFF_MAX,
        SHUTDOWN_GRACE,
        DELETE_BATCH_WINDOW,
        RETURN_UNSTARTED_ON_SHUTDOWN,
        LOCK_KEY_PREFIX,
        RAW_DELIVERY,
        DELETE_UNMATCHED_EVENTS,
    ];
}

/// The longest visibility timeout SQS accepts (12 hours); backoffs and
/// visibility extensions are bounded by it.
pub use crate::sqs::MAX_VISIBILITY;

const DEFAULT_QUEUE_NAME_TEMPLATE: &str = "iniesta-{env}-{service_name}";
const DEFAULT_EVENT_KEY: &str = "iniesta_pass";
const DEFAULT_ENVIRONMENT: &str = "development";
const DEFAULT_LOCK_KEY_PREFIX: &str = "sqs:event:";
const DEFAULT_CACHES: [&str; 3] = [
    "redis://localhost:6379/1",
    "redis://localhost:6379/2",
    "redis://localhost:6379/3",
];
const MAX_RECEIVE_MESSAGES: usize = sqs::MAX_BATCH;
const MAX_RECEIVE_WAIT: Duration = sqs::MAX_WAIT_TIME;

const DURATION_EXPECTED: &str =
    "expected a duration in seconds (e.g. 10, 2.5) or with a unit (500ms, 2m)";
const BOOL_EXPECTED: &str = "expected true or false (also 1/0, yes/no, on/off)";

/// What Iniesta sets up (`INIESTA_INITIALIZATION_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InitializationType {
    /// Consume events from the global topic through this service's queue,
    /// after checking the topic, the subscription, its filter policy and the
    /// queue policy.
    EventPolling,
    /// Poll a queue, with no topic and no subscription checks.
    QueuePolling,
    /// Publish events to the global topic.
    SnsProducer,
}

impl InitializationType {
    /// All types, in the order of their names.
    pub const ALL: [InitializationType; 3] = [
        InitializationType::EventPolling,
        InitializationType::QueuePolling,
        InitializationType::SnsProducer,
    ];

    /// The name used in `INIESTA_INITIALIZATION_TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            InitializationType::EventPolling => "EVENT_POLLING",
            InitializationType::QueuePolling => "QUEUE_POLLING",
            InitializationType::SnsProducer => "SNS_PRODUCER",
        }
    }

    /// The type with this name (any case), if there is one.
    pub fn from_name(name: &str) -> Option<InitializationType> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for InitializationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bad or missing setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    /// The environment variable at fault.
    pub variable: String,
    /// The value it got (passwords in URLs redacted); `None` when it is
    /// unset but needed.
    pub value: Option<String>,
    /// What was expected instead, as a sentence fragment ("expected …").
    pub expected: String,
}

impl SettingsProblem {
    /// A problem with `variable`.
    pub fn new(
        variable: impl Into<String>,
        value: Option<String>,
        expected: impl Into<String>,
    ) -> Self {
        SettingsProblem {
            variable: variable.into(),
            value,
            expected: expected.into(),
        }
    }
}

impl fmt::Display for SettingsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            // `{:?}` quotes the value and escapes line breaks, so that one
            // problem is always one line.
            Some(value) => write!(f, "{}={:?}: {}", self.variable, value, self.expected),
            None => write!(f, "{} is not set: {}", self.variable, self.expected),
        }
    }
}

/// Every problem found in the settings; its `Display` has one line per
/// problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    problems: Vec<SettingsProblem>,
}

impl SettingsError {
    /// An error made of these problems.
    pub fn new(problems: Vec<SettingsProblem>) -> Self {
        SettingsError { problems }
    }

    /// The problems, in the order they were found.
    pub fn problems(&self) -> &[SettingsProblem] {
        &self.problems
    }

    /// Whether some problem is about `variable`.
    pub fn mentions(&self, variable: &str) -> bool {
        self.problems.iter().any(|p| p.variable == variable)
    }

    /// Adds the problems of `other` that are not already listed.
    pub fn merge(&mut self, other: SettingsError) {
        for p in other.problems {
            if !self.problems.contains(&p) {
                self.problems.push(p);
            }
        }
    }

    fn check(problems: Vec<SettingsProblem>) -> Result<(), SettingsError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError { problems })
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

/// Every setting of the consumer. See the [module docs](self) for the
/// variables, their defaults and their meaning.
///
/// `Debug` redacts passwords in URLs, so settings can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// What to set up (`INIESTA_INITIALIZATION_TYPE`).
    pub initialization_types: BTreeSet<InitializationType>,
    /// The global topic (`INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN`).
    pub topic_arn: Option<String>,
    /// The consumer's filters, as given (`INIESTA_SQS_CONSUMER_FILTERS`);
    /// each one parses with [`Filter::parse`].
    pub consumer_filters: Vec<String>,
    /// An explicit queue name (`INIESTA_SQS_QUEUE_NAME`).
    pub queue_name: Option<String>,
    /// The queue name template (`INIESTA_SQS_QUEUE_NAME_TEMPLATE`), with
    /// `{env}` and `{service_name}` placeholders.
    pub queue_name_template: String,
    /// The message attribute naming the event (`INIESTA_SNS_EVENT_KEY`).
    pub event_key: String,
    /// Redis URLs of the Redlock nodes (`INIESTA_CACHES`).
    pub caches: Vec<String>,
    /// Time to live of a lock (`INIESTA_LOCK_TIMEOUT`).
    pub lock_timeout: Duration,
    /// Attempts to acquire a lock, at least 1 (`INIESTA_LOCK_RETRY_COUNT`).
    pub lock_retry_count: u32,
    /// Messages per receive, 1 to 10
    /// (`INIESTA_SQS_RECEIVE_MESSAGE_MAX_NUMBER_OF_MESSAGES`).
    pub receive_max_messages: usize,
    /// Long polling wait, 0 to 20 whole seconds
    /// (`INIESTA_SQS_RECEIVE_MESSAGE_WAIT_TIME_SECONDS`).
    pub receive_wait_time: Duration,
    /// Check the subscription's filter policy at start-up
    /// (`INIESTA_ASSERT_FILTER_POLICIES`).
    pub assert_filter_policies: bool,
    /// Skip the AWS checks at start-up (`INIESTA_DRY_RUN`).
    pub dry_run: bool,
    /// Another SQS endpoint (`INIESTA_SQS_ENDPOINT_URL`).
    pub sqs_endpoint_url: Option<String>,
    /// Another SNS endpoint (`INIESTA_SNS_ENDPOINT_URL`).
    pub sns_endpoint_url: Option<String>,
    /// This service's name (`SERVICE_NAME`).
    pub service_name: Option<String>,
    /// The environment (`ENVIRONMENT`).
    pub environment: String,
    /// Messages in progress at once, at least 1 (`INIESTA_MAX_IN_FLIGHT`).
    pub max_in_flight: usize,
    /// Receive calls outstanding at once (`INIESTA_CONCURRENT_RECEIVES`);
    /// `None` lets the consumer derive it from `max_in_flight`.
    pub concurrent_receives: Option<usize>,
    /// How long a completion record keeps a finished event from running
    /// again (`INIESTA_DEDUPE_WINDOW`).
    pub dedupe_window: Duration,
    /// How often a running handler's lock and message visibility are
    /// extended (`INIESTA_HEARTBEAT_INTERVAL`); `None` means 0.6 × the lock
    /// timeout. See [`Settings::heartbeat`].
    pub heartbeat_interval: Option<Duration>,
    /// How far each heartbeat pushes the message's visibility
    /// (`INIESTA_VISIBILITY_EXTENSION`), rounded up to whole seconds as SQS
    /// applies it; `None` means the lock timeout. See
    /// [`Settings::visibility_extension_or_default`].
    pub visibility_extension: Option<Duration>,
    /// The backoff after a first failed delivery
    /// (`INIESTA_FAILURE_BACKOFF_BASE`), rounded up to whole seconds as SQS
    /// applies it (under 1 s becomes 1 s); `None` (unset or 0) means no
    /// backoff. See [`Settings::failure_backoff`].
    pub failure_backoff_base: Option<Duration>,
    /// The longest backoff, at most [`MAX_VISIBILITY`], rounded up to whole
    /// seconds (`INIESTA_FAILURE_BACKOFF_MAX`).
    pub failure_backoff_max: Duration,
    /// How long shutdown waits for running handlers
    /// (`INIESTA_SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// How long a finished message waits for others to share its
    /// `DeleteMessageBatch` call (`INIESTA_DELETE_BATCH_WINDOW`; fewer
    /// calls, at the price of that much delay before the delete).
    pub delete_batch_window: Duration,
    /// At shutdown, make received but unstarted messages visible again at
    /// once (`INIESTA_RETURN_UNSTARTED_ON_SHUTDOWN`).
    pub return_unstarted_on_shutdown: bool,
    /// Prefix of the Redis key locked per event (`INIESTA_LOCK_KEY_PREFIX`).
    pub lock_key_prefix: String,
    /// Whether SNS delivers raw messages (`INIESTA_RAW_DELIVERY`); `None`
    /// means detect it from the subscription at start-up.
    pub raw_delivery: Option<bool>,
    /// Delete messages whose event does not match the consumer filters
    /// instead of leaving them for the dead-letter queue
    /// (`INIESTA_DELETE_UNMATCHED_EVENTS`). Off by default so that nothing
    /// is lost: an event the subscription lets through but no filter takes
    /// usually means the filters and the subscription disagree, and the
    /// dead-letter queue keeps those events for a look.
    pub delete_unmatched_events: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            initialization_types: BTreeSet::new(),
            topic_arn: None,
            consumer_filters: Vec::new(),
            queue_name: None,
            queue_name_template: DEFAULT_QUEUE_NAME_TEMPLATE.to_owned(),
            event_key: DEFAULT_EVENT_KEY.to_owned(),
            caches: DEFAULT_CACHES.iter().map(|c| c.to_string()).collect(),
            lock_timeout: Duration::from_secs(10),
            lock_retry_count: 1,
            receive_max_messages: MAX_RECEIVE_MESSAGES,
            receive_wait_time: MAX_RECEIVE_WAIT,
            assert_filter_policies: true,
            dry_run: false,
            sqs_endpoint_url: None,
            sns_endpoint_url: None,
            service_name: None,
            environment: DEFAULT_ENVIRONMENT.to_owned(),
            max_in_flight: 10,
            concurrent_receives: None,
            dedupe_window: Duration::from_secs(24 * 60 * 60),
            heartbeat_interval: None,
            visibility_extension: None,
            failure_backoff_base: None,
            failure_backoff_max: Duration::from_secs(15 * 60),
            shutdown_grace: Duration::from_secs(30),
            delete_batch_window: Duration::from_millis(10),
            return_unstarted_on_shutdown: true,
            lock_key_prefix: DEFAULT_LOCK_KEY_PREFIX.to_owned(),
            raw_delivery: None,
            delete_unmatched_events: false,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let caches: Vec<String> = self.caches.iter().map(|c| redact_url(c)).collect();
        let redact = |u: &Option<String>| u.as_deref().map(redact_url);
        f.debug_struct("Settings")
            .field("initialization_types", &self.initialization_types)
            .field("topic_arn", &self.topic_arn)
            .field("consumer_filters", &self.consumer_filters)
            .field("queue_name", &self.queue_name)
            .field("queue_name_template", &self.queue_name_template)
            .field("event_key", &self.event_key)
            .field("caches", &caches)
            .field("lock_timeout", &self.lock_timeout)
            .field("lock_retry_count", &self.lock_retry_count)
            .field("receive_max_messages", &self.receive_max_messages)
            .field("receive_wait_time", &self.receive_wait_time)
            .field("assert_filter_policies", &self.assert_filter_policies)
            .field("dry_run", &self.dry_run)
            .field("sqs_endpoint_url", &redact(&self.sqs_endpoint_url))
            .field("sns_endpoint_url", &redact(&self.sns_endpoint_url))
            .field("service_name", &self.service_name)
            .field("environment", &self.environment)
            .field("max_in_flight", &self.max_in_flight)
            .field("concurrent_receives", &self.concurrent_receives)
            .field("dedupe_window", &self.dedupe_window)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("visibility_extension", &self.visibility_extension)
            .field("failure_backoff_base", &self.failure_backoff_base)
            .field("failure_backoff_max", &self.failure_backoff_max)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("delete_batch_window", &self.delete_batch_window)
            .field(
                "return_unstarted_on_shutdown",
                &self.return_unstarted_on_shutdown,
            )
            .field("lock_key_prefix", &self.lock_key_prefix)
            .field("raw_delivery", &self.raw_delivery)
            .field("delete_unmatched_events", &self.delete_unmatched_events)
            .finish()
    }
}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// A variable whose value is not valid UTF-8 is a problem too.
    pub fn from_env() -> Result<Settings, SettingsError> {
        let not_unicode: Vec<SettingsProblem> = vars::ALL
            .iter()
            .filter_map(|name| {
                let value = std::env::var_os(name)?;
                value.to_str().is_none().then(|| {
                    SettingsProblem::new(
                        *name,
                        Some(redact_text(&value.to_string_lossy())),
                        "expected valid UTF-8 text",
                    )
                })
            })
            .collect();
        let result = Settings::from_lookup(|name| std::env::var(name).ok());
        if not_unicode.is_empty() {
            return result;
        }
        let mut error = SettingsError::new(not_unicode);
        if let Err(e) = result {
            error.merge(e);
        }
        Err(error)
    }

    /// Reads the settings through `lookup`, which returns a variable's value
    /// or `None` when it is unset. Every bad value is reported.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let mut r = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let d = Settings::default();

        let initialization_types = r
            .list(vars::INITIALIZATION_TYPE, false, |name| {
                InitializationType::from_name(name).ok_or_else(|| {
                    "expected EVENT_POLLING, QUEUE_POLLING or SNS_PRODUCER".to_owned()
                })
            })
            .map(|types| types.into_iter().collect())
            .unwrap_or_default();
        let topic_arn = r.value(vars::GLOBAL_TOPIC_ARN, false, parse_topic_arn);
        let consumer_filters = r
            .list(vars::CONSUMER_FILTERS, false, |f| {
                Filter::parse(f)
                    .map(|_| f.to_owned())
                    .map_err(|e| format!("{e}; expected `Event.service` or `Event.*`"))
            })
            .unwrap_or_default();
        let queue_name = r.value(vars::QUEUE_NAME, false, |name| {
            check_queue_name(name).map(|()| name.to_owned())
        });
        let queue_name_template = r
            .value(vars::QUEUE_NAME_TEMPLATE, false, |t| {
                template_segments(t).map(|_| t.to_owned())
            })
            .unwrap_or(d.queue_name_template);
        let event_key = r
            .value(vars::EVENT_KEY, false, parse_event_key)
            .unwrap_or(d.event_key);
        let caches = r.list(vars::CACHES, true, parse_cache_url);
        if let Some(caches) = &caches {
            r.check_caches(caches);
        }
        let caches = caches.unwrap_or(d.caches);
        let lock_timeout = r
            .value(vars::LOCK_TIMEOUT, false, |v| {
                parse_duration_in(v, Duration::from_millis(1), MAX_VISIBILITY)
            })
            .unwrap_or(d.lock_timeout);
        let lock_retry_count = r
            .value(vars::LOCK_RETRY_COUNT, false, |v| {
                parse_count(v, 1, u32::MAX as usize).map(|n| n as u32)
            })
            .unwrap_or(d.lock_retry_count);
        let receive_max_messages = r
            .value(vars::RECEIVE_MAX_MESSAGES, false, |v| {
                parse_count(v, 1, MAX_RECEIVE_MESSAGES)
            })
            .unwrap_or(d.receive_max_messages);
        let receive_wait_time = r
            .value(vars::RECEIVE_WAIT_TIME, false, parse_wait_time)
            .unwrap_or(d.receive_wait_time);
        let assert_filter_policies = r
            .value(vars::ASSERT_FILTER_POLICIES, false, parse_bool)
            .unwrap_or(d.assert_filter_policies);
        let dry_run = r
            .value(vars::DRY_RUN, false, parse_bool)
            .unwrap_or(d.dry_run);
        let sqs_endpoint_url = r.value(vars::SQS_ENDPOINT_URL, true, parse_endpoint_url);
        let sns_endpoint_url = r.value(vars::SNS_ENDPOINT_URL, true, parse_endpoint_url);
        let service_name = r.value(vars::SERVICE_NAME, false, |v| Ok(v.to_owned()));
        let environment = r
            .value(vars::ENVIRONMENT, false, |v| Ok(v.to_owned()))
            .unwrap_or(d.environment);
        let max_in_flight = r
            .value(vars::MAX_IN_FLIGHT, false, |v| {
                parse_count(v, 1, usize::MAX)
            })
            .unwrap_or(d.max_in_flight);
        let concurrent_receives = r.value(vars::CONCURRENT_RECEIVES, false, |v| {
            parse_count(v, 1, usize::MAX)
        });
        let dedupe_window = r
            .value(vars::DEDUPE_WINDOW, false, |v| {
                parse_duration_in(v, Duration::from_millis(1), Duration::MAX)
            })
            .unwrap_or(d.dedupe_window);
        let heartbeat_interval = r.value(vars::HEARTBEAT_INTERVAL, false, |v| {
            parse_duration_in(v, Duration::from_millis(1), Duration::MAX)
        });
        // Visibility timeouts are kept as SQS will apply them (see the
        // module docs): the range is checked on the value as written, the
        // rounding comes after.
        let visibility_extension = r
            .value(vars::VISIBILITY_EXTENSION, false, |v| {
                parse_duration_in(v, Duration::from_secs(1), MAX_VISIBILITY)
            })
            .map(sqs::visibility);
        let failure_backoff_base = r
            .value(vars::FAILURE_BACKOFF_BASE, false, |v| {
                parse_duration_in(v, Duration::ZERO, MAX_VISIBILITY)
            })
            .filter(|b| !b.is_zero())
            .map(sqs::visibility);
        let failure_backoff_max = r
            .value(vars::FAILURE_BACKOFF_MAX, false, |v| {
                parse_duration_in(v, Duration::ZERO, MAX_VISIBILITY)
            })
            .map_or(d.failure_backoff_max, sqs::visibility);
        let shutdown_grace = r
            .value(vars::SHUTDOWN_GRACE, false, |v| {
                parse_duration_in(v, Duration::ZERO, Duration::MAX)
            })
            .unwrap_or(d.shutdown_grace);
        let delete_batch_window = r
            .value(vars::DELETE_BATCH_WINDOW, false, |v| {
                parse_duration_in(v, Duration::ZERO, Duration::from_secs(10))
            })
            .unwrap_or(d.delete_batch_window);
        let return_unstarted_on_shutdown = r
            .value(vars::RETURN_UNSTARTED_ON_SHUTDOWN, false, parse_bool)
            .unwrap_or(d.return_unstarted_on_shutdown);
        let lock_key_prefix = r
            .value(vars::LOCK_KEY_PREFIX, false, |v| Ok(v.to_owned()))
            .unwrap_or(d.lock_key_prefix);
        let raw_delivery = r
            .value(vars::RAW_DELIVERY, false, |v| {
                if v.eq_ignore_ascii_case("auto") {
                    Ok(None)
                } else {
                    parse_bool(v)
                        .map(Some)
                        .map_err(|_| format!("{BOOL_EXPECTED}, or auto to detect it at start-up"))
                }
            })
            .flatten();
        let delete_unmatched_events = r
            .value(vars::DELETE_UNMATCHED_EVENTS, false, parse_bool)
            .unwrap_or(d.delete_unmatched_events);

        let settings = Settings {
            initialization_types,
            topic_arn,
            consumer_filters,
            queue_name,
            queue_name_template,
            event_key,
            caches,
            lock_timeout,
            lock_retry_count,
            receive_max_messages,
            receive_wait_time,
            assert_filter_policies,
            dry_run,
            sqs_endpoint_url,
            sns_endpoint_url,
            service_name,
            environment,
            max_in_flight,
            concurrent_receives,
            dedupe_window,
            heartbeat_interval,
            visibility_extension,
            failure_backoff_base,
            failure_backoff_max,
            shutdown_grace,
            delete_batch_window,
            return_unstarted_on_shutdown,
            lock_key_prefix,
            raw_delivery,
            delete_unmatched_events,
        };
        r.cross_check(&settings);
        SettingsError::check(r.problems).map(|()| settings)
    }

    /// Whether `INIESTA_INITIALIZATION_TYPE` includes `kind`.
    pub fn wants(&self, kind: InitializationType) -> bool {
        self.initialization_types.contains(&kind)
    }

    /// The queue to poll: `INIESTA_SQS_QUEUE_NAME`, else the template with
    /// `{env}` replaced by `ENVIRONMENT` and `{service_name}` by
    /// `SERVICE_NAME`. An error when `SERVICE_NAME` is unset but the template
    /// needs it, or when the result is not a valid SQS queue name.
    pub fn resolved_queue_name(&self) -> Result<String, SettingsError> {
        if let Some(name) = &self.queue_name {
            return match check_queue_name(name) {
                Ok(()) => Ok(name.clone()),
                Err(expected) => Err(SettingsError::new(vec![SettingsProblem::new(
                    vars::QUEUE_NAME,
                    Some(name.clone()),
                    expected,
                )])),
            };
        }
        let template = &self.queue_name_template;
        let template_problem = |expected: String| {
            SettingsError::new(vec![SettingsProblem::new(
                vars::QUEUE_NAME_TEMPLATE,
                Some(template.clone()),
                expected,
            )])
        };
        let segments = template_segments(template).map_err(template_problem)?;
        let mut name = String::new();
        for segment in segments {
            match segment {
                Segment::Text(text) => name.push_str(text),
                Segment::Env => name.push_str(&self.environment),
                Segment::ServiceName => match &self.service_name {
                    Some(service) => name.push_str(service),
                    None => {
                        return Err(SettingsError::new(vec![SettingsProblem::new(
                            vars::SERVICE_NAME,
                            None,
                            format!(
                                "expected the service's name: {}={:?} needs it \
                                 (or set {} instead)",
                                vars::QUEUE_NAME_TEMPLATE,
                                template,
                                vars::QUEUE_NAME
                            ),
                        )]))
                    }
                },
            }
        }
        check_queue_name(&name).map_err(|expected| {
            template_problem(format!(
                "gives the queue name {name:?} (with {}={:?}, {}={:?}); {expected}",
                vars::ENVIRONMENT,
                self.environment,
                vars::SERVICE_NAME,
                self.service_name.as_deref().unwrap_or(""),
            ))
        })?;
        Ok(name)
    }

    /// Checks what event polling needs beyond valid values: a topic, at
    /// least one filter (150 at most, SNS's limit) and a queue name.
    pub fn validate_for_event_polling(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        if self.topic_arn.is_none() {
            problems.push(SettingsProblem::new(
                vars::GLOBAL_TOPIC_ARN,
                None,
                "expected the global topic's ARN (arn:aws:sns:region:account:name); \
                 event polling needs it",
            ));
        }
        if let Err(e) = self.filter_policy() {
            let value =
                (!self.consumer_filters.is_empty()).then(|| self.consumer_filters.join(","));
            let expected = match e {
                FilterError::NoFilters => {
                    "expected at least one filter (`Event.service` or `Event.*`); \
                     event polling needs them"
                        .to_owned()
                }
                other => format!("{other}"),
            };
            problems.push(SettingsProblem::new(
                vars::CONSUMER_FILTERS,
                value,
                expected,
            ));
        }
        let mut error = SettingsError::new(problems);
        if let Err(e) = self.resolved_queue_name() {
            error.merge(e);
        }
        SettingsError::check(error.problems)
    }

    /// Checks what queue polling needs beyond valid values: a queue name.
    pub fn validate_for_queue_polling(&self) -> Result<(), SettingsError> {
        self.resolved_queue_name().map(|_| ())
    }

    /// Checks what publishing needs beyond valid values: a topic, and
    /// `SERVICE_NAME` to qualify event names (`Event.service`).
    pub fn validate_for_sns_producer(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        if self.topic_arn.is_none() {
            problems.push(SettingsProblem::new(
                vars::GLOBAL_TOPIC_ARN,
                None,
                "expected the global topic's ARN (arn:aws:sns:region:account:name); \
                 publishing needs it",
            ));
        }
        if self.service_name.is_none() {
            problems.push(SettingsProblem::new(
                vars::SERVICE_NAME,
                None,
                "expected the service's name; published event names end with it",
            ));
        }
        SettingsError::check(problems)
    }

    /// Runs the checks of every mode in `INIESTA_INITIALIZATION_TYPE`, and
    /// reports all their problems together.
    pub fn validate_initialization_types(&self) -> Result<(), SettingsError> {
        let mut error = SettingsError::new(Vec::new());
        for kind in &self.initialization_types {
            let result = match kind {
                InitializationType::EventPolling => self.validate_for_event_polling(),
                InitializationType::QueuePolling => self.validate_for_queue_polling(),
                InitializationType::SnsProducer => self.validate_for_sns_producer(),
            };
            if let Err(e) = result {
                error.merge(e);
            }
        }
        SettingsError::check(error.problems)
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

    /// How long to hide a message whose handler failed on its
    /// `receive_count`-th delivery (SQS counts from 1): base ×
    /// 2^(receive_count − 1), at most `failure_backoff_max` and
    /// [`MAX_VISIBILITY`], in whole seconds (the base and the maximum are
    /// rounded up first, as SQS applies them, so the doublings stay whole).
    /// `None` when no backoff is configured.
    pub fn failure_backoff(&self, receive_count: u32) -> Option<Duration> {
        let base = sqs::visibility(self.failure_backoff_base.filter(|b| !b.is_zero())?);
        let cap = sqs::visibility(self.failure_backoff_max);
        let doublings = receive_count.saturating_sub(1);
        let backoff = if doublings >= 32 {
            cap
        } else {
            base.checked_mul(1u32 << doublings).unwrap_or(cap)
        };
        Some(backoff.min(cap))
    }

    /// The Redis key locked for an event with this idempotency key.
    pub fn lock_key(&self, idempotency_key: &str) -> String {
        format!("{}{}", self.lock_key_prefix, idempotency_key)
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

/// `url` with the password of its user information replaced by `***`:
/// `redis://:secret@host:6379/1` becomes `redis://:***@host:6379/1`. Text
/// without `://` or without a password comes back unchanged.
///
/// The user information is taken to end at the last `@`, so that a password
/// with unescaped `/` or `@` in it is still hidden.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    if colon + 1 == userinfo.len() {
        // An empty password: nothing to hide.
        return url.to_owned();
    }
    format!(
        "{}{}:***{}",
        &url[..rest_start],
        &userinfo[..colon],
        &rest[at..]
    )
}

/// Redacts every URL in a list's text (comma-separated or JSON).
fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if matches!(c, ',' | '"' | '[' | ']') || c.is_whitespace() {
            out.push_str(&redact_url(&token));
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    out.push_str(&redact_url(&token));
    out
}

/// Reads variables and collects problems.
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<SettingsProblem>,
}

impl Reader<'_> {
    /// The trimmed value, or `None` when unset or empty.
    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn bad(&mut self, var: &str, value: &str, secret: bool, expected: String) {
        let value = if secret {
            redact_text(value)
        } else {
            value.to_owned()
        };
        self.problems
            .push(SettingsProblem::new(var, Some(value), expected));
    }

    fn failed(&self, var: &str) -> bool {
        self.problems.iter().any(|p| p.variable == var)
    }

    /// The parsed value; `None` when unset or bad (then a problem is
    /// recorded).
    fn value<T>(
        &mut self,
        var: &str,
        secret: bool,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.get(var)?;
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(expected) => {
                self.bad(var, &raw, secret, expected);
                None
            }
        }
    }

    /// A comma-separated or JSON list, each item parsed; `None` when unset
    /// or when some item is bad (one problem per bad item, naming it).
    fn list<T>(
        &mut self,
        var: &str,
        secret: bool,
        mut parse: impl FnMut(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let raw = self.get(var)?;
        let items: Vec<String> = if raw.starts_with('[') {
            match serde_json::from_str::<Vec<String>>(&raw) {
                Ok(items) => items.into_iter().map(|i| i.trim().to_owned()).collect(),
                Err(_) => {
                    self.bad(
                        var,
                        &raw,
                        secret,
                        "expected a JSON list of strings or a comma-separated list".to_owned(),
                    );
                    return None;
                }
            }
        } else {
            raw.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let count = items.len();
        let mut parsed = Vec::with_capacity(count);
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match parse(item) {
                Ok(v) => parsed.push(v),
                Err(expected) => {
                    ok = false;
                    let expected = if count > 1 {
                        format!("{expected} (item {} of {count})", i + 1)
                    } else {
                        expected
                    };
                    self.bad(var, item, secret, expected);
                }
            }
        }
        ok.then_some(parsed)
    }

    fn check_caches(&mut self, caches: &[String]) {
        if caches.is_empty() {
            self.problems.push(SettingsProblem::new(
                vars::CACHES,
                self.get(vars::CACHES),
                "expected at least one redis:// or rediss:// URL",
            ));
        }
        let mut seen = BTreeSet::new();
        for cache in caches {
            if !seen.insert(cache.as_str()) {
                self.bad(
                    vars::CACHES,
                    cache,
                    true,
                    "listed twice; expected each Redlock node once (a repeated node \
                     would count twice towards the majority)"
                        .to_owned(),
                );
            }
        }
    }

    /// Checks between settings, skipped for variables that already failed.
    fn cross_check(&mut self, s: &Settings) {
        let lock_ok = !self.failed(vars::LOCK_TIMEOUT);
        if let Some(hb) = s.heartbeat_interval {
            if lock_ok && hb >= s.lock_timeout {
                let raw = self.get(vars::HEARTBEAT_INTERVAL).unwrap_or_default();
                self.bad(
                    vars::HEARTBEAT_INTERVAL,
                    &raw,
                    false,
                    format!(
                        "expected a duration shorter than the lock timeout ({})",
                        humantime::format_duration(s.lock_timeout)
                    ),
                );
            }
        }
        // The extension is compared as SQS applies it (rounded up to whole
        // seconds). Without INIESTA_VISIBILITY_EXTENSION it is the lock
        // timeout rounded up, which the heartbeat is already shorter than.
        if s.visibility_extension.is_some() {
            let hb_ok = lock_ok && !self.failed(vars::HEARTBEAT_INTERVAL);
            let applied = s.visibility_extension_or_default();
            if hb_ok && applied <= s.heartbeat() {
                let raw = self.get(vars::VISIBILITY_EXTENSION).unwrap_or_default();
                self.bad(
                    vars::VISIBILITY_EXTENSION,
                    &raw,
                    false,
                    format!(
                        "expected a duration longer than the heartbeat interval ({}) \
                         once rounded up to whole seconds as SQS applies it (this one \
                         applies as {}), or the message becomes visible between heartbeats",
                        humantime::format_duration(s.heartbeat()),
                        humantime::format_duration(applied)
                    ),
                );
            }
        }
        if let Some(receives) = s.concurrent_receives {
            if !self.failed(vars::MAX_IN_FLIGHT) && receives > s.max_in_flight {
                let raw = self.get(vars::CONCURRENT_RECEIVES).unwrap_or_default();
                self.bad(
                    vars::CONCURRENT_RECEIVES,
                    &raw,
                    false,
                    format!(
                        "expected a whole number from 1 to {} ({})",
                        s.max_in_flight,
                        vars::MAX_IN_FLIGHT
                    ),
                );
            }
        }
    }
}

/// A plain number of seconds, fractions allowed (`10`, `2.5`, `.5`); `None`
/// when the text is not of that shape.
fn parse_decimal_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Nanoseconds from the first nine fraction digits; finer is dropped.
    let mut nanos: u32 = 0;
    for i in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(Duration::new(secs, nanos))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_decimal_seconds(text)
        .or_else(|| humantime::parse_duration(text).ok())
        .ok_or_else(|| DURATION_EXPECTED.to_owned())
}

fn parse_duration_in(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < min || d > max {
        let range = if max == Duration::MAX {
            format!("of at least {}", humantime::format_duration(min))
        } else {
            format!(
                "from {} to {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            )
        };
        return Err(format!("expected a duration {range}"));
    }
    Ok(d)
}

fn parse_wait_time(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected whole seconds from 0 to 20 (e.g. 20 or 20s)";
    let d = parse_duration(text).map_err(|_| EXPECTED.to_owned())?;
    if d.subsec_nanos() != 0 || d > MAX_RECEIVE_WAIT {
        return Err(EXPECTED.to_owned());
    }
    Ok(d)
}

fn parse_count(text: &str, min: usize, max: usize) -> Result<usize, String> {
    let expected = || {
        if max == usize::MAX {
            format!("expected a whole number of at least {min}")
        } else {
            format!("expected a whole number from {min} to {max}")
        }
    };
    let n: usize = text.parse().map_err(|_| expected())?;
    if n < min || n > max {
        return Err(expected());
    }
    Ok(n)
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(BOOL_EXPECTED.to_owned()),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// An SQS queue (or SNS topic) name: letters, digits, `-` and `_`, with an
/// optional `.fifo` suffix, at most `max` characters in all.
fn valid_resource_name(name: &str, max: usize) -> bool {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    !stem.is_empty() && name.len() <= max && stem.chars().all(is_name_char)
}

fn check_queue_name(name: &str) -> Result<(), String> {
    if valid_resource_name(name, 80) {
        Ok(())
    } else {
        Err(
            "expected a queue name of 1 to 80 letters, digits, `-` or `_` \
             (optionally ending in .fifo)"
                .to_owned(),
        )
    }
}

fn parse_topic_arn(arn: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected an SNS topic ARN (arn:aws:sns:region:account-id:topic-name)";
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "sns", region, account, name] => {
            !partition.is_empty()
                && partition
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !account.is_empty()
                && account.bytes().all(|b| b.is_ascii_digit())
                && valid_resource_name(name, 256)
        }
        _ => false,
    };
    if ok {
        Ok(arn.to_owned())
    } else {
        Err(EXPECTED.to_owned())
    }
}

/// SNS's rules for message attribute names.
fn parse_event_key(key: &str) -> Result<String, String> {
    let lower = key.to_ascii_lowercase();
    let ok = key.len() <= 256
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if ok {
        Ok(key.to_owned())
    } else {
        Err(
            "expected a message attribute name: up to 256 letters, digits, `_`, `-` \
             or `.` (no leading, trailing or double dot; not starting with AWS. or Amazon.)"
                .to_owned(),
        )
    }
}

/// The host part of a URL: after the scheme and any user information, up to
/// the path, query or fragment.
fn url_host(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let rest = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn url_with_scheme(url: &str, schemes: &[&str]) -> bool {
    let scheme_ok = url
        .find("://")
        .is_some_and(|i| schemes.iter().any(|s| url[..i].eq_ignore_ascii_case(s)));
    scheme_ok
        && url_host(url).is_some_and(|h| !h.is_empty() && !h.starts_with(':'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn parse_cache_url(url: &str) -> Result<String, String> {
    if url_with_scheme(url, &["redis", "rediss"]) {
        Ok(url.to_owned())
    } else {
        Err("expected a redis:// or rediss:// URL with a host".to_owned())
    }
}

fn parse_endpoint_url(url: &str) -> Result<String, String> {
    if url_with_scheme(url, &["http", "https"]) {
        Ok(url.to_owned())
    } else {
        Err("expected an http:// or https:// URL with a host".to_owned())
    }
}

/// A piece of the queue name template.
enum Segment<'a> {
    Text(&'a str),
    Env,
    ServiceName,
}

fn template_segments(template: &str) -> Result<Vec<Segment<'_>>, String> {
    const EXPECTED: &str = "expected text with the placeholders {env} and {service_name} only";
    let mut segments = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                segments.push(Segment::Text(rest));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err(format!("unmatched `}}`; {EXPECTED}"));
            }
            Some(i) => {
                if i > 0 {
                    segments.push(Segment::Text(&rest[..i]));
                }
                let after = &rest[i + 1..];
                let close = after
                    .find('}')
                    .ok_or_else(|| format!("unmatched `{{`; {EXPECTED}"))?;
                segments.push(match &after[..close] {
                    "env" => Segment::Env,
                    "service_name" => Segment::ServiceName,
                    other => return Err(format!("unknown placeholder {{{other}}}; {EXPECTED}")),
                });
                rest = &after[close + 1..];
            }
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        move |name| map.get(name).map(|v| v.to_string())
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_lookup(lookup(pairs))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:global-events";

    #[test]
    fn defaults_are_the_originals() {
        let s = load(&[]).unwrap();
        assert_eq!(s, Settings::default());
        assert!(s.initialization_types.is_empty());
        assert_eq!(s.topic_arn, None);
        assert!(s.consumer_filters.is_empty());
        assert_eq!(s.queue_name, None);
        assert_eq!(s.queue_name_template, "iniesta-{env}-{service_name}");
        assert_eq!(s.event_key, "iniesta_pass");
        assert_eq!(
            s.caches,
            [
                "redis://localhost:6379/1",
                "redis://localhost:6379/2",
                "redis://localhost:6379/3"
            ]
        );
        assert_eq!(s.lock_timeout, secs(10));
        assert_eq!(s.lock_retry_count, 1);
        assert_eq!(s.receive_max_messages, 10);
        assert_eq!(s.receive_wait_time, secs(20));
        assert!(s.assert_filter_policies);
        assert!(!s.dry_run);
        assert_eq!(s.sqs_endpoint_url, None);
        assert_eq!(s.sns_endpoint_url, None);
        assert_eq!(s.service_name, None);
        assert_eq!(s.environment, "development");
        assert_eq!(s.max_in_flight, 10);
        assert_eq!(s.concurrent_receives, None);
        assert_eq!(s.dedupe_window, secs(24 * 3600));
        assert_eq!(s.heartbeat_interval, None);
        assert_eq!(s.visibility_extension, None);
        assert_eq!(s.failure_backoff_base, None);
        assert_eq!(s.failure_backoff_max, secs(15 * 60));
        assert_eq!(s.shutdown_grace, secs(30));
        assert!(s.return_unstarted_on_shutdown);
        assert_eq!(s.lock_key_prefix, "sqs:event:");
        assert_eq!(s.raw_delivery, None);
        assert!(!s.delete_unmatched_events);
        assert_eq!(s.heartbeat(), secs(6));
        assert_eq!(s.visibility_extension_or_default(), secs(10));
        assert_eq!(s.failure_backoff(3), None);
    }

    #[test]
    fn empty_and_blank_values_mean_unset() {
        let pairs: Vec<(&str, &str)> = vars::ALL.iter().map(|v| (*v, "  ")).collect();
        assert_eq!(load(&pairs).unwrap(), Settings::default());
        let pairs: Vec<(&str, &str)> = vars::ALL.iter().map(|v| (*v, "")).collect();
        assert_eq!(load(&pairs).unwrap(), Settings::default());
    }

    #[test]
    fn every_variable_is_read() {
        let s = load(&[
            (vars::INITIALIZATION_TYPE, "EVENT_POLLING,SNS_PRODUCER"),
            (vars::GLOBAL_TOPIC_ARN, TOPIC),
            (vars::CONSUMER_FILTERS, "UserCreated.users, Order.*"),
            (vars::QUEUE_NAME, "my-queue"),
            (vars::QUEUE_NAME_TEMPLATE, "q-{service_name}-{env}"),
            (vars::EVENT_KEY, "event_name"),
            (vars::CACHES, "redis://a:6379/0,rediss://:pw@b:6380"),
            (vars::LOCK_TIMEOUT, "30"),
            (vars::LOCK_RETRY_COUNT, "3"),
            (vars::RECEIVE_MAX_MESSAGES, "5"),
            (vars::RECEIVE_WAIT_TIME, "0"),
            (vars::ASSERT_FILTER_POLICIES, "false"),
            (vars::DRY_RUN, "yes"),
            (vars::SQS_ENDPOINT_URL, "http://localhost:5000"),
            (vars::SNS_ENDPOINT_URL, "https://sns.example"),
            (vars::SERVICE_NAME, "billing"),
            (vars::ENVIRONMENT, "production"),
            (vars::MAX_IN_FLIGHT, "64"),
            (vars::CONCURRENT_RECEIVES, "4"),
            (vars::DEDUPE_WINDOW, "2h"),
            (vars::HEARTBEAT_INTERVAL, "5s"),
            (vars::VISIBILITY_EXTENSION, "1m"),
            (vars::FAILURE_BACKOFF_BASE, "500ms"),
            (vars::FAILURE_BACKOFF_MAX, "1h 30m"),
            (vars::SHUTDOWN_GRACE, "0"),
            (vars::RETURN_UNSTARTED_ON_SHUTDOWN, "OFF"),
            (vars::LOCK_KEY_PREFIX, "app:lock:"),
            (vars::RAW_DELIVERY, "True"),
            (vars::DELETE_UNMATCHED_EVENTS, "on"),
        ])
        .unwrap();
        assert_eq!(
            s.initialization_types,
            BTreeSet::from([
                InitializationType::EventPolling,
                InitializationType::SnsProducer
            ])
        );
        assert!(s.wants(InitializationType::SnsProducer));
        assert!(!s.wants(InitializationType::QueuePolling));
        assert_eq!(s.topic_arn.as_deref(), Some(TOPIC));
        assert_eq!(s.consumer_filters, ["UserCreated.users", "Order.*"]);
        assert_eq!(s.queue_name.as_deref(), Some("my-queue"));
        assert_eq!(s.queue_name_template, "q-{service_name}-{env}");
        assert_eq!(s.event_key, "event_name");
        assert_eq!(s.caches, ["redis://a:6379/0", "rediss://:pw@b:6380"]);
        assert_eq!(s.lock_timeout, secs(30));
        assert_eq!(s.lock_retry_count, 3);
        assert_eq!(s.receive_max_messages, 5);
        assert_eq!(s.receive_wait_time, Duration::ZERO);
        assert!(!s.assert_filter_policies);
        assert!(s.dry_run);
        assert_eq!(s.sqs_endpoint_url.as_deref(), Some("http://localhost:5000"));
        assert_eq!(s.sns_endpoint_url.as_deref(), Some("https://sns.example"));
        assert_eq!(s.service_name.as_deref(), Some("billing"));
        assert_eq!(s.environment, "production");
        assert_eq!(s.max_in_flight, 64);
        assert_eq!(s.concurrent_receives, Some(4));
        assert_eq!(s.dedupe_window, secs(7200));
        assert_eq!(s.heartbeat_interval, Some(secs(5)));
        assert_eq!(s.heartbeat(), secs(5));
        assert_eq!(s.visibility_extension, Some(secs(60)));
        assert_eq!(s.visibility_extension_or_default(), secs(60));
        // 500ms as SQS applies it: whole seconds, rounded up.
        assert_eq!(s.failure_backoff_base, Some(secs(1)));
        assert_eq!(s.failure_backoff_max, secs(5400));
        assert_eq!(s.shutdown_grace, Duration::ZERO);
        assert!(!s.return_unstarted_on_shutdown);
        assert_eq!(s.lock_key_prefix, "app:lock:");
        assert_eq!(s.lock_key("m-1"), "app:lock:m-1");
        assert_eq!(s.raw_delivery, Some(true));
        assert!(s.delete_unmatched_events);
        assert_eq!(s.resolved_queue_name().unwrap(), "my-queue");
    }

    #[test]
    fn lists_are_comma_separated_or_json() {
        let comma = load(&[
            (
                vars::INITIALIZATION_TYPE,
                " event_polling , QUEUE_POLLING, ",
            ),
            (vars::CONSUMER_FILTERS, "A.x,B.*,,"),
            (vars::CACHES, "redis://h1, redis://h2"),
        ])
        .unwrap();
        let json = load(&[
            (
                vars::INITIALIZATION_TYPE,
                r#"["EVENT_POLLING", "QUEUE_POLLING"]"#,
            ),
            (vars::CONSUMER_FILTERS, r#"["A.x", "B.*"]"#),
            (vars::CACHES, r#"[ "redis://h1", "redis://h2" ]"#),
        ])
        .unwrap();
        assert_eq!(comma, json);
        assert_eq!(
            json.initialization_types,
            BTreeSet::from([
                InitializationType::EventPolling,
                InitializationType::QueuePolling
            ])
        );
        assert_eq!(json.consumer_filters, ["A.x", "B.*"]);
        assert_eq!(json.caches, ["redis://h1", "redis://h2"]);

        let empty_json = load(&[(vars::CONSUMER_FILTERS, "[]")]).unwrap();
        assert!(empty_json.consumer_filters.is_empty());
    }

    #[test]
    fn durations() {
        let d = |v: &str| load(&[(vars::SHUTDOWN_GRACE, v)]).map(|s| s.shutdown_grace);
        assert_eq!(d("10").unwrap(), secs(10));
        assert_eq!(d("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(d(".5").unwrap(), Duration::from_millis(500));
        assert_eq!(d("0.1").unwrap(), Duration::from_millis(100));
        assert_eq!(d("3.").unwrap(), secs(3));
        assert_eq!(d("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(d("2m").unwrap(), secs(120));
        assert_eq!(d("1h 30m").unwrap(), secs(5400));
        for bad in [
            "-1",
            "-0.5",
            "NaN",
            "inf",
            "ten",
            ".",
            "1.2.3",
            "5 parsecs",
            "1e3",
        ] {
            let e = d(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("INIESTA_SHUTDOWN_GRACE={bad:?}: {DURATION_EXPECTED}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_documented_error_line() {
        let e = load(&[(vars::LOCK_TIMEOUT, "ten")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"INIESTA_LOCK_TIMEOUT="ten": expected a duration in seconds (e.g. 10, 2.5) or with a unit (500ms, 2m)"#
        );
    }

    #[test]
    fn booleans_accept_every_spelling() {
        for (text, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("Yes", true),
            ("on", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("NO", false),
            ("off", false),
        ] {
            let s = load(&[(vars::DRY_RUN, text)]).unwrap();
            assert_eq!(s.dry_run, expected, "{text}");
        }
        assert_eq!(
            load(&[(vars::RAW_DELIVERY, "auto")]).unwrap().raw_delivery,
            None
        );
        assert_eq!(
            load(&[(vars::RAW_DELIVERY, "0")]).unwrap().raw_delivery,
            Some(false)
        );
    }

    /// Every variable with a value it must reject.
    const BAD_VALUES: &[(&str, &str)] = &[
        (vars::INITIALIZATION_TYPE, "EVENT_POLING"),
        (vars::INITIALIZATION_TYPE, "[\"EVENT_POLLING\""),
        (vars::GLOBAL_TOPIC_ARN, "global-events"),
        (
            vars::GLOBAL_TOPIC_ARN,
            "arn:aws:sqs:eu-west-1:123456789012:q",
        ),
        (vars::GLOBAL_TOPIC_ARN, "arn:aws:sns:eu-west-1:acct:topic"),
        (
            vars::GLOBAL_TOPIC_ARN,
            "arn:aws:sns:eu-west-1:123456789012:",
        ),
        (vars::CONSUMER_FILTERS, "A*"),
        (vars::CONSUMER_FILTERS, "[1, 2]"),
        (vars::QUEUE_NAME, "my queue"),
        (vars::QUEUE_NAME, "a.b"),
        (vars::QUEUE_NAME_TEMPLATE, "iniesta-{stage}"),
        (vars::QUEUE_NAME_TEMPLATE, "iniesta-{env"),
        (vars::QUEUE_NAME_TEMPLATE, "iniesta-env}"),
        (vars::EVENT_KEY, "AWS.event"),
        (vars::EVENT_KEY, "event key"),
        (vars::EVENT_KEY, "a..b"),
        (vars::CACHES, "http://localhost:6379"),
        (vars::CACHES, "redis://"),
        (vars::CACHES, "[]"),
        (vars::LOCK_TIMEOUT, "ten"),
        (vars::LOCK_TIMEOUT, "0"),
        (vars::LOCK_TIMEOUT, "13h"),
        (vars::LOCK_RETRY_COUNT, "0"),
        (vars::LOCK_RETRY_COUNT, "-1"),
        (vars::LOCK_RETRY_COUNT, "two"),
        (vars::RECEIVE_MAX_MESSAGES, "0"),
        (vars::RECEIVE_MAX_MESSAGES, "11"),
        (vars::RECEIVE_WAIT_TIME, "21"),
        (vars::RECEIVE_WAIT_TIME, "2.5"),
        (vars::RECEIVE_WAIT_TIME, "soon"),
        (vars::ASSERT_FILTER_POLICIES, "maybe"),
        (vars::DRY_RUN, "2"),
        (vars::SQS_ENDPOINT_URL, "localhost:4566"),
        (vars::SNS_ENDPOINT_URL, "ftp://localhost"),
        (vars::SNS_ENDPOINT_URL, "http://"),
        (vars::MAX_IN_FLIGHT, "0"),
        (vars::MAX_IN_FLIGHT, "many"),
        (vars::CONCURRENT_RECEIVES, "0"),
        (vars::CONCURRENT_RECEIVES, "11"),
        (vars::DEDUPE_WINDOW, "0"),
        (vars::DEDUPE_WINDOW, "a day"),
        (vars::HEARTBEAT_INTERVAL, "10"),
        (vars::HEARTBEAT_INTERVAL, "0"),
        (vars::VISIBILITY_EXTENSION, "0.5"),
        (vars::VISIBILITY_EXTENSION, "6"),
        (vars::VISIBILITY_EXTENSION, "13h"),
        (vars::FAILURE_BACKOFF_BASE, "-1"),
        (vars::FAILURE_BACKOFF_MAX, "13h"),
        (vars::FAILURE_BACKOFF_MAX, "forever"),
        (vars::SHUTDOWN_GRACE, "NaN"),
        (vars::DELETE_BATCH_WINDOW, "11s"),
        (vars::DELETE_BATCH_WINDOW, "-5ms"),
        (vars::RETURN_UNSTARTED_ON_SHUTDOWN, "sometimes"),
        (vars::RAW_DELIVERY, "raw"),
        (vars::DELETE_UNMATCHED_EVENTS, "sometimes"),
    ];

    #[test]
    fn every_bad_value_is_named_with_its_value() {
        let mut rejected = BTreeSet::new();
        for &(var, value) in BAD_VALUES {
            let e = load(&[(var, value)]).expect_err(&format!("{var}={value:?} was accepted"));
            assert_eq!(e.problems().len(), 1, "{var}={value:?}: {e}");
            let p = &e.problems()[0];
            assert_eq!(p.variable, var);
            assert!(p.expected.contains("expected"), "{}", p.expected);
            let line = e.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(line.starts_with(var), "{line}");
            if value != "[]" {
                let shown = p.value.as_deref().unwrap();
                assert!(value.contains(shown), "{line}");
                assert!(line.contains(&format!("{shown:?}")), "{line}");
            }
            rejected.insert(var);
        }
        // Every variable that can be wrong has a bad value above.
        let free_text = [vars::SERVICE_NAME, vars::ENVIRONMENT, vars::LOCK_KEY_PREFIX];
        for var in vars::ALL {
            assert!(
                rejected.contains(var) || free_text.contains(var),
                "no bad value tested for {var}"
            );
        }
    }

    #[test]
    fn several_bad_values_are_reported_together() {
        let e = load(&[
            (vars::LOCK_TIMEOUT, "ten"),
            (vars::DRY_RUN, "maybe"),
            (vars::CONSUMER_FILTERS, "Good.x, bad filter, C*"),
            (vars::RECEIVE_MAX_MESSAGES, "50"),
            (vars::SERVICE_NAME, "fine"),
        ])
        .unwrap_err();
        let lines: Vec<String> = e.to_string().lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 5, "{e}");
        assert!(lines
            .iter()
            .any(|l| l.starts_with(r#"INIESTA_LOCK_TIMEOUT="ten": "#)));
        assert!(lines
            .iter()
            .any(|l| l.starts_with(r#"INIESTA_DRY_RUN="maybe": "#)));
        assert!(lines.iter().any(|l| l
            .starts_with(r#"INIESTA_SQS_CONSUMER_FILTERS="bad filter": "#)
            && l.ends_with("(item 2 of 3)")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with(r#"INIESTA_SQS_CONSUMER_FILTERS="C*": "#)));
        assert!(lines.iter().any(|l| l.starts_with(
            r#"INIESTA_SQS_RECEIVE_MESSAGE_MAX_NUMBER_OF_MESSAGES="50": expected a whole number from 1 to 10"#
        )));
        assert!(e.mentions(vars::DRY_RUN));
        assert!(!e.mentions(vars::SERVICE_NAME));
    }

    #[test]
    fn cross_checks_use_the_lock_timeout() {
        // Shorter than a longer lock timeout is fine.
        let s = load(&[(vars::LOCK_TIMEOUT, "30"), (vars::HEARTBEAT_INTERVAL, "10")]).unwrap();
        assert_eq!(s.heartbeat(), secs(10));
        // The derived heartbeat is 0.6 × the lock timeout.
        let s = load(&[(vars::LOCK_TIMEOUT, "2.5")]).unwrap();
        assert_eq!(s.heartbeat(), Duration::from_millis(1500));
        let e = load(&[(vars::HEARTBEAT_INTERVAL, "10s")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"INIESTA_HEARTBEAT_INTERVAL="10s": expected a duration shorter than the lock timeout (10s)"#
        );
        // A bad lock timeout is reported alone, not as a heartbeat problem too.
        let e = load(&[(vars::LOCK_TIMEOUT, "x"), (vars::HEARTBEAT_INTERVAL, "20")]).unwrap_err();
        assert_eq!(e.problems().len(), 1);
        // Visibility extension must outlast the derived heartbeat (6s).
        assert!(load(&[(vars::VISIBILITY_EXTENSION, "7")]).is_ok());
        assert!(load(&[(vars::VISIBILITY_EXTENSION, "6")])
            .unwrap_err()
            .to_string()
            .contains("heartbeat interval (6s)"));
        // Concurrent receives up to max in flight.
        assert!(load(&[
            (vars::MAX_IN_FLIGHT, "20"),
            (vars::CONCURRENT_RECEIVES, "11")
        ])
        .is_ok());
    }

    #[test]
    fn sub_second_lock_timeout_extends_visibility_by_a_whole_second() {
        let s = load(&[
            (vars::LOCK_TIMEOUT, "0.8"),
            (vars::GLOBAL_TOPIC_ARN, TOPIC),
            (vars::CONSUMER_FILTERS, "A.x"),
            (vars::QUEUE_NAME, "q"),
        ])
        .unwrap();
        assert_eq!(s.lock_timeout, Duration::from_millis(800));
        assert_eq!(s.heartbeat(), Duration::from_millis(480));
        // 0.8 s as SQS applies it; truncated it would be 0, and the message
        // would be visible again while its handler runs.
        assert_eq!(s.visibility_extension_or_default(), secs(1));
        assert!(s.visibility_extension_or_default() > s.heartbeat());
        s.validate_for_event_polling().unwrap();
    }

    #[test]
    fn visibility_extension_is_checked_as_sqs_applies_it() {
        // 1.5 s applies as 2 s, which outlasts a 1.8 s heartbeat: accepted,
        // and held as the 2 s SQS will apply.
        let s = load(&[
            (vars::LOCK_TIMEOUT, "3"),
            (vars::HEARTBEAT_INTERVAL, "1.8"),
            (vars::VISIBILITY_EXTENSION, "1.5"),
        ])
        .unwrap();
        assert_eq!(s.visibility_extension, Some(secs(2)));
        assert_eq!(s.visibility_extension_or_default(), secs(2));

        // 1.5 s applies as 2 s, which does not outlast a 2 s heartbeat. The
        // error names the variable and the value as written.
        let e = load(&[
            (vars::LOCK_TIMEOUT, "3"),
            (vars::HEARTBEAT_INTERVAL, "2"),
            (vars::VISIBILITY_EXTENSION, "1.5"),
        ])
        .unwrap_err();
        assert_eq!(e.problems().len(), 1, "{e}");
        assert_eq!(
            e.to_string(),
            "INIESTA_VISIBILITY_EXTENSION=\"1.5\": expected a duration longer than the \
             heartbeat interval (2s) once rounded up to whole seconds as SQS applies it \
             (this one applies as 2s), or the message becomes visible between heartbeats"
        );

        // A whole-second extension is kept as it is.
        let s = load(&[(vars::VISIBILITY_EXTENSION, "7")]).unwrap();
        assert_eq!(s.visibility_extension, Some(secs(7)));
    }

    #[test]
    fn failure_backoff_is_in_whole_seconds() {
        // A base under 1 s becomes 1 s; the doublings stay whole.
        let s = load(&[
            (vars::FAILURE_BACKOFF_BASE, "300ms"),
            (vars::FAILURE_BACKOFF_MAX, "2.5"),
        ])
        .unwrap();
        assert_eq!(s.failure_backoff_base, Some(secs(1)));
        assert_eq!(s.failure_backoff_max, secs(3));
        assert_eq!(s.failure_backoff(1), Some(secs(1)));
        assert_eq!(s.failure_backoff(2), Some(secs(2)));
        assert_eq!(s.failure_backoff(3), Some(secs(3)));
        assert_eq!(s.failure_backoff(9), Some(secs(3)));

        // Set in code, unrounded values give what SQS would apply too.
        let s = Settings {
            failure_backoff_base: Some(Duration::from_millis(1500)),
            failure_backoff_max: Duration::from_millis(4100),
            ..Settings::default()
        };
        assert_eq!(s.failure_backoff(1), Some(secs(2)));
        assert_eq!(s.failure_backoff(2), Some(secs(4)));
        assert_eq!(s.failure_backoff(3), Some(secs(5)));
    }

    #[test]
    fn delete_unmatched_events_is_a_boolean_shown_in_debug() {
        let s = load(&[(vars::DELETE_UNMATCHED_EVENTS, "TRUE")]).unwrap();
        assert!(s.delete_unmatched_events);
        assert!(format!("{s:?}").contains("delete_unmatched_events: true"));
        let e = load(&[(vars::DELETE_UNMATCHED_EVENTS, "delete")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"INIESTA_DELETE_UNMATCHED_EVENTS="delete": expected true or false (also 1/0, yes/no, on/off)"#
        );
    }

    #[test]
    fn backoff_max_is_bounded_by_sqs() {
        let ok = load(&[(vars::FAILURE_BACKOFF_MAX, "12h")]).unwrap();
        assert_eq!(ok.failure_backoff_max, MAX_VISIBILITY);
        let e = load(&[(vars::FAILURE_BACKOFF_MAX, "43201")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"INIESTA_FAILURE_BACKOFF_MAX="43201": expected a duration from 0s to 12h"#
        );
    }

    #[test]
    fn failure_backoff_doubles_up_to_the_maximum() {
        let zero = load(&[(vars::FAILURE_BACKOFF_BASE, "0")]).unwrap();
        assert_eq!(zero.failure_backoff_base, None);
        assert_eq!(zero.failure_backoff(1), None);
        let s = load(&[
            (vars::FAILURE_BACKOFF_BASE, "2"),
            (vars::FAILURE_BACKOFF_MAX, "30"),
        ])
        .unwrap();
        assert_eq!(s.failure_backoff(0), Some(secs(2)));
        assert_eq!(s.failure_backoff(1), Some(secs(2)));
        assert_eq!(s.failure_backoff(2), Some(secs(4)));
        assert_eq!(s.failure_backoff(4), Some(secs(16)));
        assert_eq!(s.failure_backoff(5), Some(secs(30)));
        assert_eq!(s.failure_backoff(40), Some(secs(30)));
        assert_eq!(s.failure_backoff(u32::MAX), Some(secs(30)));
        let huge = Settings {
            failure_backoff_base: Some(Duration::MAX),
            failure_backoff_max: Duration::MAX,
            ..Settings::default()
        };
        assert_eq!(huge.failure_backoff(3), Some(MAX_VISIBILITY));
    }

    #[test]
    fn queue_name_template_resolution() {
        let s = load(&[(vars::SERVICE_NAME, "billing")]).unwrap();
        assert_eq!(
            s.resolved_queue_name().unwrap(),
            "iniesta-development-billing"
        );

        let s = load(&[(vars::SERVICE_NAME, "billing"), (vars::ENVIRONMENT, "prod")]).unwrap();
        assert_eq!(s.resolved_queue_name().unwrap(), "iniesta-prod-billing");

        let s = load(&[
            (vars::QUEUE_NAME, "explicit"),
            (vars::ENVIRONMENT, "prod"),
            (vars::SERVICE_NAME, "billing"),
        ])
        .unwrap();
        assert_eq!(s.resolved_queue_name().unwrap(), "explicit");

        // A template without {service_name} needs no SERVICE_NAME.
        let s = load(&[(vars::QUEUE_NAME_TEMPLATE, "{env}_events_{env}")]).unwrap();
        assert_eq!(
            s.resolved_queue_name().unwrap(),
            "development_events_development"
        );

        // Missing SERVICE_NAME names the variable.
        let e = load(&[]).unwrap().resolved_queue_name().unwrap_err();
        assert_eq!(e.problems().len(), 1);
        assert_eq!(e.problems()[0].variable, vars::SERVICE_NAME);
        assert!(
            e.to_string().starts_with("SERVICE_NAME is not set: "),
            "{e}"
        );
        assert!(e.to_string().contains(vars::QUEUE_NAME), "{e}");

        // A service name that makes an invalid queue name.
        let e = load(&[(vars::SERVICE_NAME, "my.service")])
            .unwrap()
            .resolved_queue_name()
            .unwrap_err();
        assert_eq!(e.problems()[0].variable, vars::QUEUE_NAME_TEMPLATE);
        assert!(
            e.to_string().contains("\"iniesta-development-my.service\""),
            "{e}"
        );

        // Too long for SQS.
        let long = "s".repeat(80);
        let e = load(&[(vars::SERVICE_NAME, &long)])
            .unwrap()
            .resolved_queue_name()
            .unwrap_err();
        assert!(e.mentions(vars::QUEUE_NAME_TEMPLATE));

        // Set in code, the explicit name is still checked.
        let s = Settings {
            queue_name: Some("bad name".into()),
            ..Settings::default()
        };
        assert!(s
            .resolved_queue_name()
            .unwrap_err()
            .mentions(vars::QUEUE_NAME));
        assert!(check_queue_name("events.fifo").is_ok());
        assert!(check_queue_name(".fifo").is_err());
    }

    #[test]
    fn topic_arn_partition_may_be_anything() {
        for arn in [
            TOPIC,
            "arn:aws-cn:sns:cn-north-1:123456789012:t",
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t_1.fifo",
        ] {
            assert_eq!(
                load(&[(vars::GLOBAL_TOPIC_ARN, arn)])
                    .unwrap()
                    .topic_arn
                    .as_deref(),
                Some(arn)
            );
        }
    }

    #[test]
    fn event_polling_needs_topic_filters_and_queue() {
        let e = load(&[]).unwrap().validate_for_event_polling().unwrap_err();
        let vars_named: Vec<&str> = e.problems().iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            vars_named,
            [
                vars::GLOBAL_TOPIC_ARN,
                vars::CONSUMER_FILTERS,
                vars::SERVICE_NAME
            ]
        );
        assert_eq!(e.to_string().lines().count(), 3);

        // Other modes do not need them.
        let producer_only = load(&[
            (vars::INITIALIZATION_TYPE, "SNS_PRODUCER"),
            (vars::GLOBAL_TOPIC_ARN, TOPIC),
            (vars::SERVICE_NAME, "svc"),
        ])
        .unwrap();
        producer_only.validate_initialization_types().unwrap();
        let e = load(&[(vars::INITIALIZATION_TYPE, "SNS_PRODUCER,QUEUE_POLLING")])
            .unwrap()
            .validate_initialization_types()
            .unwrap_err();
        // SERVICE_NAME is reported once although both modes need it.
        assert_eq!(e.problems().len(), 3, "{e}");
        assert!(e.mentions(vars::GLOBAL_TOPIC_ARN));

        let s = load(&[
            (vars::GLOBAL_TOPIC_ARN, TOPIC),
            (vars::CONSUMER_FILTERS, "A.x,B.*"),
            (vars::QUEUE_NAME, "q"),
        ])
        .unwrap();
        s.validate_for_event_polling().unwrap();
        s.validate_for_queue_polling().unwrap();
        assert!(s
            .validate_for_sns_producer()
            .unwrap_err()
            .mentions(vars::SERVICE_NAME));

        // More filters than SNS takes.
        let mut many = s.clone();
        many.consumer_filters = (0..151).map(|i| format!("E{i}.x")).collect();
        let e = many.validate_for_event_polling().unwrap_err();
        assert!(e.mentions(vars::CONSUMER_FILTERS));
        assert!(e.to_string().contains("150"), "{e}");
    }

    #[test]
    fn filter_policy_uses_the_event_key() {
        let s = load(&[
            (vars::CONSUMER_FILTERS, r#"["A.x", "B.*"]"#),
            (vars::EVENT_KEY, "kind"),
        ])
        .unwrap();
        let p = s.filter_policy().unwrap();
        assert_eq!(p.key, "kind");
        assert!(p.same_as_json(r#"{"kind": [{"prefix": "B."}, "A.x"]}"#));
        assert_eq!(
            Settings::default().filter_policy(),
            Err(FilterError::NoFilters)
        );
        let config = s.parse_config(DeliveryMode::Raw);
        assert_eq!(config.event_key, "kind");
        assert_eq!(config.mode, DeliveryMode::Raw);
    }

    #[test]
    fn caches_must_be_distinct() {
        let e = load(&[(vars::CACHES, "redis://a/1, redis://b/1, redis://a/1")]).unwrap_err();
        assert_eq!(e.problems().len(), 1);
        assert!(e
            .to_string()
            .starts_with(r#"INIESTA_CACHES="redis://a/1": listed twice"#));
    }

    #[test]
    fn redact_url_hides_passwords_only() {
        assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(
            redact_url("rediss://user:secret@host:6380/2"),
            "rediss://user:***@host:6380/2"
        );
        assert_eq!(
            redact_url("redis://:p@ss/w@rd@host/1"),
            "redis://:***@host/1"
        );
        assert_eq!(
            redact_url("redis://localhost:6379/1"),
            "redis://localhost:6379/1"
        );
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
        assert_eq!(redact_url("redis://user:@host"), "redis://user:@host");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_text(r#"["redis://:a@h1", "redis://:b@h2"]"#),
            r#"["redis://:***@h1", "redis://:***@h2"]"#
        );
    }

    #[test]
    fn secrets_never_reach_debug_or_errors() {
        let s = load(&[
            (
                vars::CACHES,
                "redis://:hunter2@a/1,rediss://admin:hunter2@b/1",
            ),
            (vars::SQS_ENDPOINT_URL, "http://key:hunter2@localhost:4566"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redis://:***@a/1"), "{debug}");
        assert!(debug.contains("http://key:***@localhost:4566"), "{debug}");
        // The real URLs are kept for connecting.
        assert_eq!(s.caches[0], "redis://:hunter2@a/1");

        for (var, value) in [
            (vars::CACHES, "http://:hunter2@a/1"),
            (vars::CACHES, "redis://:hunter2@a/1, redis://:hunter2@a/1"),
            (vars::CACHES, r#"["redis://:hunter2@a/1""#),
            (vars::SQS_ENDPOINT_URL, "ftp://:hunter2@a"),
        ] {
            let e = load(&[(var, value)]).unwrap_err();
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
            assert!(e.to_string().contains(":***@"), "{e}");
        }
    }

    #[test]
    fn problems_stay_on_one_line() {
        // A line break inside a value is escaped; only the ends are trimmed.
        let e = load(&[(vars::DRY_RUN, "\ta\nb\n")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"INIESTA_DRY_RUN="a\nb": expected true or false (also 1/0, yes/no, on/off)"#
        );
    }

    #[test]
    fn initialization_type_names_round_trip() {
        for t in InitializationType::ALL {
            assert_eq!(InitializationType::from_name(t.as_str()), Some(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(
            InitializationType::from_name("sns_producer"),
            Some(InitializationType::SnsProducer)
        );
        assert_eq!(InitializationType::from_name("POLLING"), None);
    }
}
