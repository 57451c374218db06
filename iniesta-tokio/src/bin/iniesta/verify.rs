//! `iniesta verify`: the start-up checks, as a report in text for people or
//! in JSON for CI pipelines.

use iniesta_aws::VerificationReport;
use iniesta_core::settings::{LockBackend, Settings};
use serde_json::{json, Value};

use crate::aws;
use crate::cli::{ReportFormat, VerifyArgs};
use crate::config::Config;
use crate::error::CliError;

/// Runs the checks of every configured initialization type and prints the
/// reports to stdout, in the format asked for. Fails when a check failed;
/// the exit code does not depend on the format.
pub async fn run(config: &Config, args: &VerifyArgs) -> Result<(), CliError> {
    let kinds = aws::initialization_types(&config.settings);
    aws::validate(config, &kinds)?;
    let settings = &config.settings;
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    if settings.dry_run {
        match args.format {
            ReportFormat::Text => println!(
                "dry run: settings for {} are valid; AWS checks skipped",
                names.join(", ")
            ),
            ReportFormat::Json => print_json(&json!({
                "status": "skip",
                "dry_run": true,
                "failed": 0,
                "warnings": 0,
                "reports": [],
            }))?,
        }
        return Ok(());
    }
    let clients = aws::clients(settings).await?;
    let mut reports = Vec::new();
    for scope in aws::scopes(&kinds) {
        reports.push(aws::run_verify(&clients, settings, scope).await);
    }
    let lock = if settings.lock_backend == LockBackend::DynamoDb {
        Some(lock_table(settings).await)
    } else {
        None
    };
    let failed = reports.iter().map(|r| r.failures().len()).sum::<usize>()
        + lock.as_ref().map_or(0, LockTableCheck::failed);
    match args.format {
        ReportFormat::Text => print_text(&reports, lock.as_ref()),
        ReportFormat::Json => print_json(&to_json(&reports, lock.as_ref())?)?,
    }
    if failed > 0 {
        return Err(CliError::Verification { failed });
    }
    Ok(())
}

fn print_text(reports: &[VerificationReport], lock: Option<&LockTableCheck>) {
    for report in reports {
        println!("{} ({})", report, report.scope().as_setting());
    }
    if let Some(lock) = lock {
        lock.print_text();
    }
}

/// The JSON document `--format json` prints: the overall `status` (`fail`
/// when a check failed, else `warn` when one warned, else `pass`; `skip`
/// for a dry run), the counts, and one report per scope, each with its
/// checks (see `iniesta_aws::VerificationReport`'s `Serialize`). The lock
/// table of the DynamoDB backend is one more report, of scope
/// `LOCK_BACKEND`.
fn to_json(
    reports: &[VerificationReport],
    lock: Option<&LockTableCheck>,
) -> Result<Value, CliError> {
    let mut list = Vec::new();
    for report in reports {
        list.push(
            serde_json::to_value(report)
                .map_err(|e| CliError::Runtime(format!("cannot write the report as JSON: {e}")))?,
        );
    }
    list.extend(lock.map(LockTableCheck::to_json));
    let count = |status: &str| {
        list.iter()
            .flat_map(|r| r["checks"].as_array().into_iter().flatten())
            .filter(|c| c["status"] == status)
            .count()
    };
    let (failed, warnings) = (count("fail"), count("warn"));
    Ok(json!({
        "status": overall_status(failed, warnings),
        "dry_run": false,
        "failed": failed,
        "warnings": warnings,
        "reports": list,
    }))
}

fn overall_status(failed: usize, warnings: usize) -> &'static str {
    if failed > 0 {
        "fail"
    } else if warnings > 0 {
        "warn"
    } else {
        "pass"
    }
}

fn print_json(value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Runtime(format!("cannot write the report as JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

const LOCK_TABLE_CHECK: &str = "lock table exists with partition key `id` (String)";
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
const LOCK_TABLE_FIX: &str = "create it with `iniesta provision`, or correct \
     INIESTA_DYNAMODB_TABLE and INIESTA_DYNAMODB_ENDPOINT_URL";

/// The check of the DynamoDB lock table: what was found and the warnings,
/// or why it cannot be used and the fix.
struct LockTableCheck {
    outcome: Result<(String, Vec<String>), (String, &'static str)>,
}

impl LockTableCheck {
    fn failed(&self) -> usize {
        usize::from(self.outcome.is_err())
    }

    fn print_text(&self) {
        println!("iniesta lock backend verification (INIESTA_LOCK_BACKEND=dynamodb)");
        match &self.outcome {
            Ok((detail, warnings)) => {
                println!("  PASS {LOCK_TABLE_CHECK}: {detail}");
                for warning in warnings {
                    println!("  WARN {LOCK_TABLE_CHECK}: {warning}");
                }
            }
            Err((reason, fix)) => println!("  FAIL {LOCK_TABLE_CHECK}: {reason}. Fix: {fix}"),
        }
    }

    /// A report of scope `LOCK_BACKEND` with the fields of the AWS reports
    /// that apply: the check, then one `warn` entry per warning.
    fn to_json(&self) -> Value {
        let check = |status: &str, message: &str, fix: Option<&str>| {
            json!({
                "name": "lock_table",
                "title": LOCK_TABLE_CHECK,
                "status": status,
                "message": message,
                "fix": fix,
            })
        };
        let checks: Vec<Value> = match &self.outcome {
            Ok((detail, warnings)) => std::iter::once(check("pass", detail, None))
                .chain(warnings.iter().map(|w| check("warn", w, None)))
                .collect(),
            Err((reason, fix)) => vec![check("fail", reason, Some(fix))],
        };
        let warnings = self.outcome.as_ref().map_or(0, |(_, w)| w.len());
        json!({
            "scope": "LOCK_BACKEND",
            "status": overall_status(self.failed(), warnings),
            "failed": self.failed(),
            "warnings": warnings,
            "checks": checks,
        })
    }
}

/// Checks the DynamoDB table of the `dynamodb` lock backend.
#[cfg(feature = "dynamodb")]
async fn lock_table(settings: &Settings) -> LockTableCheck {
    let client = iniesta_tokio::wiring::dynamodb_client(settings).await;
    let outcome = match iniesta_dynamodb::check_table(&client, &settings.dynamodb_table).await {
        Ok(report) => {
            let ttl = report
                .ttl_attribute
                .as_deref()
                .map_or("off".to_owned(), |a| format!("on `{a}`"));
            let detail = format!("{} is {}, TTL clean-up {ttl}", report.table, report.status);
            Ok((detail, report.warnings))
        }
        Err(e) => Err((e.to_string(), LOCK_TABLE_FIX)),
    };
    LockTableCheck { outcome }
}

/// Without the `dynamodb` feature the backend cannot run: a failed check.
#[cfg(not(feature = "dynamodb"))]
async fn lock_table(_settings: &Settings) -> LockTableCheck {
    LockTableCheck {
        outcome: Err((
            "this build has no DynamoDB lock backend".to_owned(),
            "build iniesta with the `dynamodb` feature",
        )),
    }
}
