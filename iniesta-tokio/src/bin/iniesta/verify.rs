//! `iniesta verify`: the start-up checks, as a report.

use iniesta_core::settings::{LockBackend, Settings};

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
    if settings.lock_backend == LockBackend::DynamoDb {
        failed += lock_table(settings).await;
    }
    if failed > 0 {
        return Err(CliError::Verification { failed });
    }
    Ok(())
}

const LOCK_TABLE_CHECK: &str = "lock table exists with partition key `id` (String)";

/// Checks the DynamoDB table of the `dynamodb` lock backend and prints the
/// check; returns the number of failed checks.
#[cfg(feature = "dynamodb")]
async fn lock_table(settings: &Settings) -> usize {
    let client = iniesta_tokio::wiring::dynamodb_client(settings).await;
    let table = &settings.dynamodb_table;
    println!("iniesta lock backend verification (INIESTA_LOCK_BACKEND=dynamodb)");
    match iniesta_dynamodb::check_table(&client, table).await {
        Ok(report) => {
            let ttl = report
                .ttl_attribute
                .as_deref()
                .map_or("off".to_owned(), |a| format!("on `{a}`"));
            println!(
                "  PASS {LOCK_TABLE_CHECK}: {} is {}, TTL clean-up {ttl}",
                report.table, report.status
            );
            for warning in &report.warnings {
                println!("  WARN {LOCK_TABLE_CHECK}: {warning}");
            }
            0
        }
        Err(e) => {
            println!(
                "  FAIL {LOCK_TABLE_CHECK}: {e}. Fix: create it with `iniesta provision`, \
                 or correct INIESTA_DYNAMODB_TABLE and INIESTA_DYNAMODB_ENDPOINT_URL"
            );
            1
        }
    }
}

/// Without the `dynamodb` feature the backend cannot run: a failed check.
#[cfg(not(feature = "dynamodb"))]
async fn lock_table(_settings: &Settings) -> usize {
    println!("iniesta lock backend verification (INIESTA_LOCK_BACKEND=dynamodb)");
    println!(
        "  FAIL {LOCK_TABLE_CHECK}: this build has no DynamoDB lock backend. \
         Fix: build iniesta with the `dynamodb` feature"
    );
    1
}
