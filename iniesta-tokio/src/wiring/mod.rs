//! From settings to adapters, written once for the [`Iniesta`] builder and
//! the `iniesta` command-line tool: what a consumer polls ([`Polling`]), the
//! delivery mode the settings ask for, the AWS clients and the start-up
//! verification request (`aws`), the lock backend `INIESTA_LOCK_BACKEND`
//! names (`lock`: the Redlock over `INIESTA_CACHES` or a DynamoDB table),
//! and the shutdown signals.
//!
//! Not meant for services: they use [`Iniesta`], which applies all of this.
//!
//! [`Iniesta`]: crate::Iniesta

use std::collections::BTreeSet;

use iniesta_core::settings::{vars, InitializationType, Settings, SettingsError, SettingsProblem};
use iniesta_core::DeliveryMode;

#[cfg(feature = "aws")]
mod aws;
#[cfg(any(feature = "redlock", feature = "dynamodb"))]
mod lock;
#[cfg(feature = "redlock")]
mod redlock;
mod signal;

#[cfg(feature = "aws")]
pub use aws::{aws_clients, verify_request, verify_scope};
#[cfg(feature = "aws")]
pub use aws::{aws_clients_with, sdk_config_clients};
#[cfg(feature = "dynamodb")]
pub use lock::{dynamodb_client, dynamodb_lock};
#[cfg(any(feature = "redlock", feature = "dynamodb"))]
pub use lock::{lock_backend, ChosenLock, LockError};
#[cfg(feature = "redlock")]
pub use redlock::{redlock, redlock_config};
pub use signal::{shutdown_signal, Signal, Signals};

/// What a consumer polls, as `INIESTA_INITIALIZATION_TYPE` says:
/// `EVENT_POLLING` (the global topic's events, through this service's queue)
/// wins over `QUEUE_POLLING` (the queue alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polling {
    /// `EVENT_POLLING` or `QUEUE_POLLING`.
    pub kind: InitializationType,
    /// The queue polled: `INIESTA_SQS_QUEUE_NAME`, else the template. Lock
    /// keys are scoped to it, so services on one topic may share lock
    /// servers.
    pub queue_name: String,
}

impl Polling {
    /// What `settings` poll. Fails with every problem at once: no polling
    /// type named, and whatever the configured types need and lack.
    pub fn from_settings(settings: &Settings) -> Result<Polling, SettingsError> {
        let types = &settings.initialization_types;
        let Some(kind) = polling_kind(types) else {
            let mut error = no_polling_type(types);
            if let Err(e) = settings.validate_initialization_types() {
                error.merge(e);
            }
            return Err(error);
        };
        settings.validate_initialization_types()?;
        let queue_name = settings.resolved_queue_name()?;
        Ok(Polling { kind, queue_name })
    }

    /// The delivery mode to parse with when neither the settings nor the
    /// subscription tell: messages sent to a queue directly carry the event
    /// as a message attribute, as raw delivery does.
    pub fn default_delivery_mode(&self) -> DeliveryMode {
        match self.kind {
            InitializationType::QueuePolling => DeliveryMode::Raw,
            _ => DeliveryMode::Envelope,
        }
    }
}

/// The type to poll among `types`: `EVENT_POLLING` when named, else
/// `QUEUE_POLLING` when named, else none (a producer only).
pub fn polling_kind(types: &BTreeSet<InitializationType>) -> Option<InitializationType> {
    [
        InitializationType::EventPolling,
        InitializationType::QueuePolling,
    ]
    .into_iter()
    .find(|kind| types.contains(kind))
}

/// The settings problem of a consumer whose `types` name no polling type.
pub fn no_polling_type(types: &BTreeSet<InitializationType>) -> SettingsError {
    let value = (!types.is_empty()).then(|| {
        types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    SettingsError::new(vec![SettingsProblem::new(
        vars::INITIALIZATION_TYPE,
        value,
        "expected EVENT_POLLING (consume the events of the global topic) or \
         QUEUE_POLLING (consume the queue alone) to run a consumer",
    )])
}

/// The delivery mode `INIESTA_RAW_DELIVERY` asks for, if it is set.
pub fn delivery_mode(settings: &Settings) -> Option<DeliveryMode> {
    settings.raw_delivery.map(|raw| {
        if raw {
            DeliveryMode::Raw
        } else {
            DeliveryMode::Envelope
        }
    })
}

#[cfg(test)]
mod tests;
