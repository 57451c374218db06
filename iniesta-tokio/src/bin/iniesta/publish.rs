//! `iniesta publish`: one event in the original wire format, in a message
//! group on a FIFO topic.

use iniesta_aws::fifo::{self, FifoError};
use iniesta_aws::{AwsError, SnsTopic};
use iniesta_core::publish::{event_message, qualify_event, PublishError};
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
    let group = fifo_group(config, args, &topic_arn, &event)?;
    if settings.dry_run {
        match &group {
            Some(group) => {
                println!("dry run: would publish {event:?} to {topic_arn} in group {group:?}")
            }
            None => println!("dry run: would publish {event:?} to {topic_arn}"),
        }
        return Ok(());
    }
    let clients = aws::clients(settings).await?;
    let topic = SnsTopic::new(clients.sns.clone(), &topic_arn).with_event_key(&settings.event_key);
    let body = args.message.clone();
    let dedup = args.deduplication_id.as_deref();
    let sent = match group {
        Some(group) => {
            topic
                .publish_event_in_group(&event, body, args.version, group, dedup)
                .await
        }
        None => topic.publish_event(&event, body, args.version).await,
    };
    let id = sent.map_err(|e| match e {
        AwsError::Publish(e) => CliError::Runtime(format!("cannot publish {event:?}: {e}")),
        AwsError::Fifo(e) => CliError::Runtime(format!("cannot publish {event:?}: {e}")),
        e => CliError::Runtime(format!(
            "publishing {event:?} failed: {e}; check the topic, endpoint, credentials and region"
        )),
    })?;
    println!("{id}");
    Ok(())
}

/// The message group to publish in: `--group-id`, else on a FIFO topic the
/// one INIESTA_SNS_FIFO_GROUP picks for this very message. Checked before
/// any call, with the deduplication id: a FIFO topic without any group is a
/// settings error naming both ways to give one, a bad id a usage error.
fn fifo_group(
    config: &Config,
    args: &PublishArgs,
    topic_arn: &str,
    event: &str,
) -> Result<Option<String>, CliError> {
    let settings = &config.settings;
    let mut message = event_message(
        &settings.event_key,
        event,
        args.message.clone(),
        args.version,
    )
    .map_err(|e| CliError::Runtime(format!("cannot publish {event:?}: {e}")))?;
    message.group_id.clone_from(&args.group_id);
    message.deduplication_id.clone_from(&args.deduplication_id);
    match fifo::prepare(topic_arn, settings.fifo_group.as_ref(), message) {
        Ok(message) => Ok(message.group_id),
        Err(FifoError::NoGroup { .. }) => Err(config.problem(
            vars::SNS_FIFO_GROUP,
            None,
            format!(
                "expected --group-id GROUP, or a rule (fixed:GROUP, attribute:NAME or \
                 json:/POINTER): {topic_arn} is a FIFO topic, and each event published to it \
                 needs a message group"
            ),
        )),
        Err(FifoError::Rule { reason, .. }) => Err(config.problem(
            vars::SNS_FIFO_GROUP,
            Some(reason.rule.clone()),
            format!(
                "expected a rule that gives {event:?} a group, or --group-id GROUP: {}",
                reason.reason
            ),
        )),
        Err(e) => Err(CliError::Runtime(format!("cannot publish {event:?}: {e}"))),
    }
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
