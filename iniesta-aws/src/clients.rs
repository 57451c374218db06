//! SQS and SNS clients, built once and shared by the queue, the topic, the
//! verification and the provisioning.

use std::fmt;

use aws_config::BehaviorVersion;
use aws_sdk_sqs::config::{Credentials, Region};

/// Endpoint overrides, from `INIESTA_SQS_ENDPOINT_URL` and
/// `INIESTA_SNS_ENDPOINT_URL` (read by the caller's settings). `None` keeps
/// the AWS endpoint for the region.
///
/// `#[non_exhaustive]`, so that another service's endpoint can join: start
/// from [`AwsEndpoints::default`] and name the overrides you need.
///
/// ```
/// use iniesta_aws::AwsEndpoints;
///
/// let local = AwsEndpoints::default()
///     .with_sqs("http://localhost:4566")
///     .with_sns("http://localhost:4566");
/// assert_eq!(local.sqs.as_deref(), Some("http://localhost:4566"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsEndpoints {
    /// The SQS endpoint URL (`http://localhost:4566`, …).
    pub sqs: Option<String>,
    /// The SNS endpoint URL.
    pub sns: Option<String>,
}

impl AwsEndpoints {
    /// These overrides with SQS at `url`.
    pub fn with_sqs(mut self, url: impl Into<String>) -> Self {
        self.sqs = Some(url.into());
        self
    }

    /// These overrides with SNS at `url`.
    pub fn with_sns(mut self, url: impl Into<String>) -> Self {
        self.sns = Some(url.into());
        self
    }
}

/// The SQS and SNS clients.
///
/// Cloning is cheap (the SDK clients are reference counted). `Debug` shows
/// the region and endpoints only, never credentials.
#[derive(Clone)]
pub struct AwsClients {
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The SNS client.
    pub sns: aws_sdk_sns::Client,
    region: Option<String>,
    endpoints: AwsEndpoints,
}

impl fmt::Debug for AwsClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsClients")
            .field("region", &self.region)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl AwsClients {
    /// Builds the clients from the standard AWS configuration chain
    /// (environment, profile, web identity, instance metadata, …) for
    /// credentials and region, with the given endpoint overrides.
    ///
    /// Loading never fails here: missing credentials or region show up as an
    /// error on the first call (and so in the start-up
    /// [verification](crate::verify())).
    pub async fn from_env(endpoints: AwsEndpoints) -> AwsClients {
        // An empty override (`INIESTA_SQS_ENDPOINT_URL=`) means "not set".
        let endpoints = AwsEndpoints {
            sqs: endpoints.sqs.filter(|u| !u.trim().is_empty()),
            sns: endpoints.sns.filter(|u| !u.trim().is_empty()),
        };
        let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let region = shared.region().map(|r| r.to_string());
        let mut sqs = aws_sdk_sqs::config::Builder::from(&shared);
        if let Some(url) = &endpoints.sqs {
            sqs = sqs.endpoint_url(url);
        }
        let mut sns = aws_sdk_sns::config::Builder::from(&shared);
        if let Some(url) = &endpoints.sns {
            sns = sns.endpoint_url(url);
        }
        tracing::debug!(
            ?region,
            ?endpoints,
            "AWS clients configured from the environment"
        );
        AwsClients {
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            sns: aws_sdk_sns::Client::from_conf(sns.build()),
            region,
            endpoints,
        }
    }

    /// Builds the clients from explicit static credentials, region and one
    /// endpoint for both services, ignoring the environment. Meant for tests
    /// against an emulator (moto, LocalStack), where any credentials do.
    pub fn with_static_credentials(
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
        endpoint: Option<&str>,
    ) -> AwsClients {
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "iniesta-static",
        );
        let region_value = Region::new(region.to_owned());
        let mut sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region_value.clone())
            .credentials_provider(credentials.clone());
        let mut sns = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region_value)
            .credentials_provider(credentials);
        if let Some(url) = endpoint {
            sqs = sqs.endpoint_url(url);
            sns = sns.endpoint_url(url);
        }
        let endpoints = AwsEndpoints {
            sqs: endpoint.map(str::to_owned),
            sns: endpoint.map(str::to_owned),
        };
        tracing::debug!(
            region,
            ?endpoints,
            "AWS clients configured with static credentials"
        );
        AwsClients {
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            sns: aws_sdk_sns::Client::from_conf(sns.build()),
            region: Some(region.to_owned()),
            endpoints,
        }
    }

    /// Wraps clients the caller built (from its own `SdkConfig`: an assumed
    /// role, a custom HTTP client, …), used as they are. The region is the
    /// SQS client's; [`endpoints`](Self::endpoints) reports no override, as
    /// the clients' own configuration decides.
    pub fn from_clients(sqs: aws_sdk_sqs::Client, sns: aws_sdk_sns::Client) -> AwsClients {
        let region = sqs.config().region().map(|r| r.to_string());
        AwsClients {
            sqs,
            sns,
            region,
            endpoints: AwsEndpoints::default(),
        }
    }

    /// The configured region, when one was found.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The endpoint overrides in use.
    pub fn endpoints(&self) -> &AwsEndpoints {
        &self.endpoints
    }
}
