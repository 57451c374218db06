//! AWS configuration and clients a service brings itself (an assumed role,
//! a custom HTTP client, a credentials provider of its own), used by
//! [`start`](Iniesta::start) instead of the ones it would build from the
//! standard AWS environment. The start-up verification runs with them.

use aws_config::SdkConfig;
#[cfg(feature = "dynamodb")]
use iniesta_core::settings::{LockBackend as LockBackendKind, Settings};

use super::Iniesta;

/// What [`Iniesta`] was given; empty by default.
#[derive(Debug, Clone, Default)]
pub(super) struct GivenAws {
    /// The base of every client not given below.
    pub(super) config: Option<SdkConfig>,
    #[cfg(feature = "aws")]
    pub(super) sqs: Option<aws_sdk_sqs::Client>,
    #[cfg(feature = "aws")]
    pub(super) sns: Option<aws_sdk_sns::Client>,
    #[cfg(feature = "dynamodb")]
    pub(super) dynamodb: Option<aws_sdk_dynamodb::Client>,
}

impl Iniesta {
    /// Builds the AWS clients (SQS and SNS with the `aws` feature, DynamoDB
    /// for the `dynamodb` lock backend) from this configuration instead of
    /// the standard AWS environment: its credentials, region, HTTP client,
    /// retry and timeout settings. The endpoint overrides of the settings
    /// (`INIESTA_SQS_ENDPOINT_URL`, `INIESTA_SNS_ENDPOINT_URL`,
    /// `INIESTA_DYNAMODB_ENDPOINT_URL`) still apply when set; otherwise the
    /// configuration's own endpoint does. A client given with
    /// `.sqs_client(..)`, `.sns_client(..)` or `.dynamodb_client(..)` wins
    /// over it.
    ///
    /// The start-up verification runs with these clients, so a role that
    /// cannot read the queue or the subscription fails the start with
    /// `Error::Verification`.
    ///
    /// ```no_run
    /// use iniesta_tokio::Iniesta;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// // The service's own configuration: here the default chain, with a
    /// // role assumed through a custom provider, a proxy-aware HTTP
    /// // client, … set on the loader.
    /// let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    /// let stats = Iniesta::new()
    ///     .aws_config(sdk_config)
    ///     .on("OrderPlaced.orders", || async {})
    ///     .run_until_signal()
    ///     .await?;
    /// # let _ = stats;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(any(feature = "aws", feature = "dynamodb"))))]
    pub fn aws_config(mut self, config: SdkConfig) -> Self {
        self.aws.config = Some(config);
        self
    }

    /// Polls and verifies with this SQS client, used as it is (the
    /// `INIESTA_SQS_ENDPOINT_URL` setting does not apply to it).
    #[cfg(feature = "aws")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
    pub fn sqs_client(mut self, client: aws_sdk_sqs::Client) -> Self {
        self.aws.sqs = Some(client);
        self
    }

    /// Verifies the topic and subscription with this SNS client, used as it
    /// is (the `INIESTA_SNS_ENDPOINT_URL` setting does not apply to it).
    #[cfg(feature = "aws")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
    pub fn sns_client(mut self, client: aws_sdk_sns::Client) -> Self {
        self.aws.sns = Some(client);
        self
    }

    /// Locks in the table of `INIESTA_DYNAMODB_TABLE` with this DynamoDB
    /// client, used as it is, when `INIESTA_LOCK_BACKEND=dynamodb` (and no
    /// [`lock`](Self::lock) is given). The `INIESTA_DYNAMODB_ENDPOINT_URL`
    /// setting does not apply to it.
    #[cfg(feature = "dynamodb")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
    pub fn dynamodb_client(mut self, client: aws_sdk_dynamodb::Client) -> Self {
        self.aws.dynamodb = Some(client);
        self
    }
}

/// The DynamoDB lock on the given client, or on one built from the given
/// configuration; `None` when the settings name another backend or nothing
/// was given (the lock is then built from the environment).
#[cfg(feature = "dynamodb")]
pub(super) fn given_dynamodb_lock(
    settings: &Settings,
    given: &GivenAws,
) -> Option<crate::wiring::ChosenLock> {
    if settings.lock_backend != LockBackendKind::DynamoDb {
        return None;
    }
    let client = match (&given.dynamodb, &given.config) {
        (Some(client), _) => client.clone(),
        (None, Some(config)) => {
            let mut builder = aws_sdk_dynamodb::config::Builder::from(config);
            if let Some(url) = settings
                .dynamodb_endpoint_url
                .as_ref()
                .filter(|u| !u.trim().is_empty())
            {
                builder = builder.endpoint_url(url);
            }
            aws_sdk_dynamodb::Client::from_conf(builder.build())
        }
        (None, None) => return None,
    };
    Some(crate::wiring::ChosenLock::DynamoDb(
        iniesta_dynamodb::DynamoLock::new(client, settings.dynamodb_table.clone()),
    ))
}
