//! `iniesta verify`: the start-up checks, as a report.

use crate::aws;
use crate::config::Config;
use crate::error::CliError;

/// Runs the checks of every configured initialization type and prints the
/// reports to stdout. Fails when a check failed.
pub async fn run(config: &Config) -> Result<(), CliError> {
    let kinds = aws::initialization_types(&config.settings);
    aws::validate(config, &kinds)?;
    let settings = &config.settings;
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    if settings.dry_run {
        println!(
            "dry run: settings for {} are valid; AWS checks skipped",
            names.join(", ")
        );
        return Ok(());
    }
    let clients = aws::clients(settings).await?;
    let mut failed = 0;
    for scope in aws::scopes(&kinds) {
        let report = aws::run_verify(&clients, settings, scope).await;
        println!("{} ({})", report, scope.as_setting());
        failed += report.failures().len();
    }
    if failed > 0 {
        return Err(CliError::Verification { failed });
    }
    Ok(())
}
