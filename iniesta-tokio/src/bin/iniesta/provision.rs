//! `iniesta provision`: create what a consumer needs, for development.

use std::time::Duration;

use iniesta_aws::{provision, ProvisionRequest, TopicRef};
use iniesta_core::settings::{InitializationType, LockBackend, Settings};

use crate::aws;
use crate::cli::ProvisionArgs;
use crate::config::Config;
use crate::error::CliError;

/// Creates or repairs the topic, queue, queue policy and subscription, and
/// prints what is there.
pub async fn run(config: &Config, args: &ProvisionArgs) -> Result<(), CliError> {
    aws::validate(config, &[InitializationType::EventPolling])?;
    let settings = &config.settings;
    let topic_arn = settings.topic_arn.clone().unwrap_or_default();
    // Both were validated just above.
    let queue_name = settings.resolved_queue_name().unwrap_or_default();
    let filter_policy = settings
        .filter_policy()
        .map_err(|e| CliError::Settings(vec![e.to_string()]))?;
    let raw_delivery = args.raw_delivery || settings.raw_delivery.unwrap_or(false);
    let mut request =
        ProvisionRequest::new(TopicRef::Arn(topic_arn), &queue_name, filter_policy.clone());
    request.raw_delivery = raw_delivery;
    request.visibility_timeout = args.visibility_timeout.map(Duration::from_secs);
    request.dead_letter_after = args.dead_letter_after;

    if settings.dry_run {
        println!("dry run: would provision {request:?}");
        if settings.lock_backend == LockBackend::DynamoDb {
            println!(
                "dry run: would create DynamoDB table {}",
                settings.dynamodb_table
            );
        }
        return Ok(());
    }
    let clients = aws::clients(settings).await?;
    let made = provision(&clients, &request).await.map_err(|e| {
        CliError::Runtime(format!(
            "provisioning failed: {e}; check the endpoint, credentials and region"
        ))
    })?;
    println!("topic:         {}", made.topic_arn);
    println!(
        "kind:          {}",
        if made.fifo {
            "FIFO (content-based deduplication on)"
        } else {
            "standard"
        }
    );
    println!("queue:         {} ({})", made.queue_url, made.queue_arn);
    println!("subscription:  {}", made.subscription_arn);
    println!("filter policy: {}", filter_policy.to_json_string());
    println!(
        "delivery:      {}",
        if raw_delivery { "raw" } else { "SNS envelope" }
    );
    if let Some(v) = args.visibility_timeout {
        println!("visibility:    {v} s");
    }
    if let Some(dlq) = &made.dead_letter_queue_arn {
        println!(
            "dead letters:  {dlq} (after {} receives)",
            args.dead_letter_after.unwrap_or_default()
        );
    }
    if settings.lock_backend == LockBackend::DynamoDb {
        lock_table(settings).await?;
    }
    Ok(())
}

/// Creates the DynamoDB table of the `dynamodb` lock backend, or checks the
/// one already there.
#[cfg(feature = "dynamodb")]
async fn lock_table(settings: &Settings) -> Result<(), CliError> {
    let client = iniesta_tokio::wiring::dynamodb_client(settings).await;
    let report = iniesta_dynamodb::create_table(&client, &settings.dynamodb_table)
        .await
        .map_err(|e| {
            CliError::Runtime(format!(
                "creating the lock table failed: {e}; check INIESTA_DYNAMODB_ENDPOINT_URL, \
                 credentials and region"
            ))
        })?;
    println!("lock table:    {} ({})", report.table, report.status);
    for warning in &report.warnings {
        println!("               warning: {warning}");
    }
    Ok(())
}

/// Without the `dynamodb` feature there is no table to create.
#[cfg(not(feature = "dynamodb"))]
async fn lock_table(_settings: &Settings) -> Result<(), CliError> {
    Err(CliError::Runtime(
        "INIESTA_LOCK_BACKEND=dynamodb but this build has no DynamoDB lock backend; \
         build iniesta with the `dynamodb` feature"
            .to_owned(),
    ))
}
