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
    let Some(topic_arn) = settings.topic_arn.clone() else {
        return Err(config.problem(
            vars::GLOBAL_TOPIC_ARN,
            None,
            "expected the global topic's ARN (arn:aws:sns:region:account:name), or --topic-arn; \
             publishing needs it",
        ));
    };
    let event = qualify_event(&args.event, settings.service_name.as_deref(), args.raw).map_err(
        |e| match e {
            PublishError::NoServiceName(_) => config.problem(
                vars::SERVICE_NAME,
                None,
                format!(
                    "expected the service's name (or --service-name) to publish {:?} as \
                     {:?}.SERVICE_NAME; or give --raw to publish the name as it is",
                    args.event, args.event
                ),
            ),
            other => CliError::Runtime(format!("cannot publish: {other}")),
        },
    )?;
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
