//! `iniesta publish`: one event in the original wire format.

use iniesta_aws::{AwsError, SnsTopic};
use iniesta_core::publish::{qualify_event, PublishError};
use iniesta_core::settings::vars;

use crate::aws;
use crate::cli::PublishArgs;
use crate::config::Config;
use crate::error::CliError;

/// Publishes the event and prints its SNS message id.
pub async fn run(config: &Config, args: &PublishArgs) -> Result<(), CliError> {
    let settings = &config.settings;
    let topic_arn = topic_arn(config)?;
    // clap requires --event without --file.
    let Some(name) = args.event.as_deref() else {
        return Err(CliError::Runtime(
            "expected --event EVENT, or --file PATH".into(),
        ));
    };
    let event = qualify(config, name, args.raw)?;
    if settings.dry_run {
        println!("dry run: would publish {event:?} to {topic_arn}");
        return Ok(());
    }
    let clients = aws::clients(settings).await?;
    let topic = SnsTopic::new(clients.sns.clone(), &topic_arn).with_event_key(&settings.event_key);
    let id = topic
        .publish_event(&event, args.message.clone(), args.version)
        .await
        .map_err(|e| match e {
            AwsError::Publish(e) => CliError::Runtime(format!("cannot publish {event:?}: {e}")),
            e => CliError::Runtime(format!(
                "publishing {event:?} failed: {e}; check the topic, endpoint, credentials and region"
            )),
        })?;
    println!("{id}");
    Ok(())
}

/// The global topic's ARN, which publishing needs.
pub fn topic_arn(config: &Config) -> Result<String, CliError> {
    config.settings.topic_arn.clone().ok_or_else(|| {
        config.problem(
            vars::GLOBAL_TOPIC_ARN,
            None,
            "expected the global topic's ARN (arn:aws:sns:region:account:name), or --topic-arn; \
             publishing needs it",
        )
    })
}

/// The event name as published: `.{SERVICE_NAME}` appended (see
/// [`qualify_event`]) unless `raw`. Without a service name that is a
/// settings error, whatever the event.
pub fn qualify(config: &Config, event: &str, raw: bool) -> Result<String, CliError> {
    qualify_event(event, config.settings.service_name.as_deref(), raw).map_err(|e| match e {
        PublishError::NoServiceName(_) => config.problem(
            vars::SERVICE_NAME,
            None,
            format!(
                "expected the service's name (or --service-name) to publish {event:?} as \
                 {event:?}.SERVICE_NAME; or give --raw to publish the name as it is"
            ),
        ),
        other => CliError::Runtime(format!("cannot publish {event:?}: {other}")),
    })
}
