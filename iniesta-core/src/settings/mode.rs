//! What to set up (`INIESTA_INITIALIZATION_TYPE`), and what each mode
//! needs beyond valid values.

use std::fmt;

use super::error::{SettingsError, SettingsProblem};
use super::table::{vars, Settings};
use crate::filters::FilterError;

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

/// Where the locks and completion records live (`INIESTA_LOCK_BACKEND`).
/// More backends may come, so a `match` needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LockBackend {
    /// A Redlock over the Redis servers of `INIESTA_CACHES`.
    #[default]
    Redlock,
    /// Conditional writes to the DynamoDB table of `INIESTA_DYNAMODB_TABLE`.
    DynamoDb,
}

impl LockBackend {
    /// All backends.
    pub const ALL: [LockBackend; 2] = [LockBackend::Redlock, LockBackend::DynamoDb];

    /// The name used in `INIESTA_LOCK_BACKEND`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockBackend::Redlock => "redlock",
            LockBackend::DynamoDb => "dynamodb",
        }
    }

    /// The backend with this name (any case), if there is one.
    pub fn from_name(name: &str) -> Option<LockBackend> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for LockBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Settings {
    /// Checks what event polling needs beyond valid values: a topic, at
    /// least one filter (150 at most, SNS's limit) and a queue name.
    pub fn validate_for_event_polling(&self) -> Result<(), SettingsError> {
        let mut problems: Vec<SettingsProblem> =
            self.missing_topic("event polling").into_iter().collect();
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
        error.into_result()
    }

    /// Checks what queue polling needs beyond valid values: a queue name.
    pub fn validate_for_queue_polling(&self) -> Result<(), SettingsError> {
        self.resolved_queue_name().map(|_| ())
    }

    /// Checks what publishing needs beyond valid values: a topic, and
    /// `SERVICE_NAME` to qualify event names (`Event.service`).
    pub fn validate_for_sns_producer(&self) -> Result<(), SettingsError> {
        let mut problems: Vec<SettingsProblem> =
            self.missing_topic("publishing").into_iter().collect();
        if self.service_name.is_none() {
            problems.push(SettingsProblem::new(
                vars::SERVICE_NAME,
                None,
                "expected the service's name; published event names end with it",
            ));
        }
        SettingsError::check(problems)
    }

    /// The problem of an unset `INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN`, for
    /// a mode (`needed_by`) that needs the topic.
    fn missing_topic(&self, needed_by: &str) -> Option<SettingsProblem> {
        self.topic_arn.is_none().then(|| {
            SettingsProblem::new(
                vars::GLOBAL_TOPIC_ARN,
                None,
                format!(
                    "expected the global topic's ARN (arn:aws:sns:region:account:name); \
                     {needed_by} needs it"
                ),
            )
        })
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
        error.into_result()
    }
}
