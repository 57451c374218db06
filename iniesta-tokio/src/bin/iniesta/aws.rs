//! AWS clients and start-up verification, shared by the commands.

use iniesta_aws::{verify, AwsClients, VerificationReport, VerifyScope};
use iniesta_core::settings::{InitializationType, Settings};
use iniesta_tokio::wiring;

use crate::config::Config;
use crate::error::CliError;

/// The SQS and SNS clients for the settings' endpoints, with credentials and
/// region from the standard AWS environment.
pub async fn clients(settings: &Settings) -> Result<AwsClients, CliError> {
    let clients = wiring::aws_clients(settings).await;
    if clients.region().is_none() {
        return Err(CliError::Runtime(
            "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile \
             with a region)"
                .into(),
        ));
    }
    Ok(clients)
}

/// The initialization types to verify: the configured ones, or
/// `EVENT_POLLING` when none is.
pub fn initialization_types(settings: &Settings) -> Vec<InitializationType> {
    if settings.initialization_types.is_empty() {
        vec![InitializationType::EventPolling]
    } else {
        settings.initialization_types.iter().copied().collect()
    }
}

/// Checks the settings the `kinds` need, reporting every problem.
pub fn validate(config: &Config, kinds: &[InitializationType]) -> Result<(), CliError> {
    let mut settings = config.settings.clone();
    settings.initialization_types = kinds.iter().copied().collect();
    config.check(settings.validate_initialization_types())
}

/// The verification scopes for `kinds`: event polling covers the other two.
pub fn scopes(kinds: &[InitializationType]) -> Vec<VerifyScope> {
    if kinds.contains(&InitializationType::EventPolling) {
        return vec![VerifyScope::EventPolling];
    }
    kinds.iter().map(|k| wiring::verify_scope(*k)).collect()
}

/// Runs the checks of `scope` and returns the report.
pub async fn run_verify(
    clients: &AwsClients,
    settings: &Settings,
    scope: VerifyScope,
) -> VerificationReport {
    let expected = wiring::delivery_mode(settings);
    verify(clients, &wiring::verify_request(settings, scope, expected)).await
}
