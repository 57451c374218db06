//! The AWS clients of the settings' endpoints, and what the start-up
//! verification checks.

use iniesta_aws::{AwsClients, AwsEndpoints, VerifyRequest, VerifyScope};
use iniesta_core::settings::{InitializationType, Settings};
use iniesta_core::DeliveryMode;

/// The SQS and SNS clients for `INIESTA_SQS_ENDPOINT_URL` and
/// `INIESTA_SNS_ENDPOINT_URL` (AWS when unset), with credentials and region
/// from the standard AWS environment.
pub async fn aws_clients(settings: &Settings) -> AwsClients {
    AwsClients::from_env(AwsEndpoints {
        sqs: settings.sqs_endpoint_url.clone(),
        sns: settings.sns_endpoint_url.clone(),
    })
    .await
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
    VerifyRequest {
        scope,
        topic_arn: settings.topic_arn.clone(),
        // A producer has no queue; its checks do not read the name.
        queue_name: settings.resolved_queue_name().unwrap_or_default(),
        // Only event polling compares the filter policy.
        filter_policy: settings.filter_policy().ok(),
        assert_filter_policies: settings.assert_filter_policies,
        lock_timeout: Some(settings.lock_timeout),
        expected_delivery_mode,
    }
}
