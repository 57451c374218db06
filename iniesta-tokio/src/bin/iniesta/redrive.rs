//! `iniesta redrive`: messages from the queue's dead-letter queue back to
//! the queue (see [`iniesta_aws::redrive`](mod@iniesta_aws::redrive) for
//! how nothing is lost).

use iniesta_aws::{redrive, resolve_queue_url, RedriveOptions};

use crate::aws;
use crate::cli::RedriveArgs;
use crate::config::Config;
use crate::error::CliError;

/// Moves the messages, prints the count to stdout and every message that
/// could not be moved to stderr; fails with [`CliError::Incomplete`] when
/// there was one.
pub async fn run(config: &Config, args: &RedriveArgs) -> Result<(), CliError> {
    let settings = &config.settings;
    let queue_name = settings
        .resolved_queue_name()
        .map_err(|e| config.error(e))?;
    let how_many = args.max.map_or_else(
        || "every message".to_owned(),
        |n| format!("at most {n} message(s)"),
    );
    if settings.dry_run {
        println!(
            "dry run: would move {how_many} from the dead-letter queue of {queue_name} back to it"
        );
        return Ok(());
    }
    let clients = aws::clients(settings).await?;
    let queue_url = resolve_queue_url(&clients.sqs, &queue_name)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let options = RedriveOptions::default().with_max(args.max);
    let report = redrive(&clients.sqs, &queue_url, &options)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot redrive {queue_name}: {e}")))?;
    for f in &report.not_sent {
        eprintln!(
            "not moved: message {}: {} (it stays in the dead-letter queue)",
            f.message_id, f.error
        );
    }
    for f in &report.not_deleted {
        eprintln!(
            "copied but not deleted: message {}: {} (it is in both queues; the next redrive \
             sends it again, which the completion records make harmless)",
            f.message_id, f.error
        );
    }
    println!(
        "moved {} message(s) from {} to {}",
        report.moved, report.dead_letter_queue_url, queue_url
    );
    if report.is_complete() {
        return Ok(());
    }
    eprintln!(
        "iniesta: moved {}, not moved {}, copied but not deleted {}",
        report.moved,
        report.not_sent.len(),
        report.not_deleted.len()
    );
    Err(CliError::Incomplete(format!(
        "{} message(s) not fully moved; the lines above say why",
        report.not_sent.len() + report.not_deleted.len()
    )))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn redrive_takes_an_optional_positive_max() {
        let cli = Cli::try_parse_from(["iniesta", "redrive", "--max", "3"]).unwrap();
        assert!(matches!(cli.command, Command::Redrive(ref r) if r.max == Some(3)));
        let cli = Cli::try_parse_from(["iniesta", "redrive"]).unwrap();
        assert!(matches!(cli.command, Command::Redrive(ref r) if r.max.is_none()));
        assert!(Cli::try_parse_from(["iniesta", "redrive", "--max", "0"]).is_err());
    }
}
