//! The lock backend `INIESTA_LOCK_BACKEND` names: the Redlock over
//! `INIESTA_CACHES`, or a [`DynamoLock`] on `INIESTA_DYNAMODB_TABLE`.

use std::sync::Arc;

use iniesta_core::settings::{LockBackend as LockBackendKind, Settings};
use iniesta_core::LockBackend;
#[cfg(feature = "dynamodb")]
use iniesta_dynamodb::DynamoLock;
#[cfg(feature = "redlock")]
use iniesta_redlock::{Redlock, RedlockError};

/// The lock backend of the settings, before it is shared.
pub enum ChosenLock {
    /// The Redlock over `INIESTA_CACHES`.
    #[cfg(feature = "redlock")]
    Redlock(Redlock),
    /// The DynamoDB table of `INIESTA_DYNAMODB_TABLE`.
    #[cfg(feature = "dynamodb")]
    DynamoDb(DynamoLock),
}

impl ChosenLock {
    /// What it is, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "redlock")]
            ChosenLock::Redlock(r) => format!("Redlock over {} Redis node(s)", r.node_count()),
            #[cfg(feature = "dynamodb")]
            ChosenLock::DynamoDb(d) => format!("DynamoDB table {}", d.table()),
        }
    }

    /// The backend, shared.
    pub fn into_shared(self) -> Arc<dyn LockBackend> {
        match self {
            #[cfg(feature = "redlock")]
            ChosenLock::Redlock(r) => Arc::new(r),
            #[cfg(feature = "dynamodb")]
            ChosenLock::DynamoDb(d) => Arc::new(d),
        }
    }
}

/// Why the lock backend of the settings could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The Redlock refused a URL of `INIESTA_CACHES`.
    #[cfg(feature = "redlock")]
    #[error(transparent)]
    Redlock(#[from] RedlockError),
    /// `INIESTA_LOCK_BACKEND` names a backend whose feature is off.
    #[error(
        "INIESTA_LOCK_BACKEND={0} but this build has no `{0}` lock backend: \
         enable the iniesta-tokio `{0}` feature"
    )]
    NotBuilt(LockBackendKind),
}

/// The lock backend `INIESTA_LOCK_BACKEND` names: the Redlock of
/// `wiring::redlock`, or a [`DynamoLock`] on
/// `INIESTA_DYNAMODB_TABLE` with the client of [`dynamodb_client`].
pub async fn lock_backend(settings: &Settings) -> Result<ChosenLock, LockError> {
    match settings.lock_backend {
        #[cfg(feature = "redlock")]
        LockBackendKind::Redlock => Ok(ChosenLock::Redlock(super::redlock(settings)?)),
        #[cfg(feature = "dynamodb")]
        LockBackendKind::DynamoDb => Ok(ChosenLock::DynamoDb(dynamodb_lock(settings).await)),
        #[allow(unreachable_patterns)]
        other => Err(LockError::NotBuilt(other)),
    }
}

/// The DynamoDB client for `INIESTA_DYNAMODB_ENDPOINT_URL` (AWS when
/// unset), with credentials and region from the standard AWS environment.
#[cfg(feature = "dynamodb")]
pub async fn dynamodb_client(settings: &Settings) -> aws_sdk_dynamodb::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let mut config = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(url) = settings
        .dynamodb_endpoint_url
        .as_ref()
        .filter(|u| !u.trim().is_empty())
    {
        config = config.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// A [`DynamoLock`] on `INIESTA_DYNAMODB_TABLE`.
#[cfg(feature = "dynamodb")]
pub async fn dynamodb_lock(settings: &Settings) -> DynamoLock {
    DynamoLock::new(
        dynamodb_client(settings).await,
        settings.dynamodb_table.clone(),
    )
}
