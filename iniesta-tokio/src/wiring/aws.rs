//! The AWS clients of the settings' endpoints (from the standard AWS
//! environment or from a service's own configuration), and what the
//! start-up verification checks.

use aws_config::SdkConfig;
use iniesta_aws::{AwsClients, AwsEndpoints, VerifyRequest, VerifyScope};
use iniesta_core::settings::{InitializationType, Settings};
use iniesta_core::DeliveryMode;

/// The SQS and SNS clients for `INIESTA_SQS_ENDPOINT_URL` and
/// `INIESTA_SNS_ENDPOINT_URL` (AWS when unset), with credentials and region
/// from the standard AWS environment.
pub async fn aws_clients(settings: &Settings) -> AwsClients {
    let mut endpoints = AwsEndpoints::default();
    endpoints.sqs = settings.sqs_endpoint_url.clone();
    endpoints.sns = settings.sns_endpoint_url.clone();
    AwsClients::from_env(endpoints).await
}

/// The SQS and SNS clients of a consumer that may bring its own: a client
/// given is used as it is; a missing one is built from `config` when given,
/// else from the standard AWS environment as [`aws_clients`] does, with the
/// endpoint overrides of the settings either way.
pub async fn aws_clients_with(
    settings: &Settings,
    config: Option<&SdkConfig>,
    sqs: Option<aws_sdk_sqs::Client>,
    sns: Option<aws_sdk_sns::Client>,
) -> AwsClients {
    let built = match (&sqs, &sns, config) {
        (Some(sqs), Some(sns), _) => return AwsClients::from_clients(sqs.clone(), sns.clone()),
        (_, _, Some(config)) => sdk_config_clients(settings, config),
        (_, _, None) => aws_clients(settings).await,
    };
    if sqs.is_none() && sns.is_none() {
        return built;
    }
    AwsClients::from_clients(sqs.unwrap_or(built.sqs), sns.unwrap_or(built.sns))
}

/// The SQS and SNS clients of `config` (credentials, region, HTTP client,
/// retries, …), pointed at `INIESTA_SQS_ENDPOINT_URL` and
/// `INIESTA_SNS_ENDPOINT_URL` when they are set.
pub fn sdk_config_clients(settings: &Settings, config: &SdkConfig) -> AwsClients {
    let mut sqs = aws_sdk_sqs::config::Builder::from(config);
    if let Some(url) = endpoint_override(&settings.sqs_endpoint_url) {
        sqs = sqs.endpoint_url(url);
    }
    let mut sns = aws_sdk_sns::config::Builder::from(config);
    if let Some(url) = endpoint_override(&settings.sns_endpoint_url) {
        sns = sns.endpoint_url(url);
    }
    AwsClients::from_clients(
        aws_sdk_sqs::Client::from_conf(sqs.build()),
        aws_sdk_sns::Client::from_conf(sns.build()),
    )
}

/// An endpoint URL setting, when set to something (`INIESTA_…_ENDPOINT_URL=`
/// means "not set", as for [`aws_clients`]).
fn endpoint_override(url: &Option<String>) -> Option<&str> {
    url.as_deref().filter(|u| !u.trim().is_empty())
}

/// The checks of an initialization type.
pub fn verify_scope(kind: InitializationType) -> VerifyScope {
    match kind {
        InitializationType::EventPolling => VerifyScope::EventPolling,
        InitializationType::QueuePolling => VerifyScope::QueuePolling,
        InitializationType::SnsProducer => VerifyScope::SnsProducer,
    }
}

/// What to verify for `scope` under `settings` (validated for it), with the
/// delivery mode the consumer expects (`None`: detect it).
pub fn verify_request(
    settings: &Settings,
    scope: VerifyScope,
    expected_delivery_mode: Option<DeliveryMode>,
) -> VerifyRequest {
    // A producer has no queue; its checks do not read the name.
    let mut request = VerifyRequest::new(scope, settings.resolved_queue_name().unwrap_or_default());
    request.topic_arn = settings.topic_arn.clone();
    // Only event polling compares the filter policy.
    request.filter_policy = settings.filter_policy().ok();
    request.assert_filter_policies = settings.assert_filter_policies;
    request.lock_timeout = Some(settings.lock_timeout);
    request.expected_delivery_mode = expected_delivery_mode;
    request
}
