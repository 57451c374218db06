//! `iniesta`: verify, provision, publish to and consume from the AWS
//! resources of an Iniesta service. See `iniesta --help` and docs/CLI.md.

mod aws;
mod cli;
mod config;
mod consume;
mod error;
mod handler;
mod logging;
mod provision;
mod publish;
mod publish_file;
mod redrive;
mod verify;

use std::process::ExitCode;

use clap::Parser;
use iniesta_core::settings::vars;
use iniesta_core::FilterError;

use crate::cli::{Cli, Command};
use crate::config::Config;
pub(crate) use crate::error::exit;
use crate::error::CliError;

/// mimalloc, not the system allocator: a consumer allocates a few small
/// blocks per message (ids, handles, task, futures) across threads, and
/// glibc's malloc spends a quarter of the consumer's time on them
/// (consolidating its bins on every receive). The core benchmark drains
/// 1.3× to 1.4× faster in raw delivery and 1.9× in envelope delivery with
/// it (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2.
    let cli = Cli::parse();
    let consuming = matches!(cli.command, Command::Consume(_));
    // A consumer is a service: it logs what it does by default.
    logging::init(cli.common.verbose, u8::from(consuming));

    let result = Config::load(cli.overrides()).and_then(|config| {
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(async {
            match &cli.command {
                Command::Verify(args) => verify::run(&config, args).await,
                Command::Provision(args) => provision::run(&config, args).await,
                Command::FilterPolicies => filter_policies(&config),
                Command::Publish(args) => match &args.file {
                    Some(path) => publish_file::run(&config, args, path).await,
                    None => publish::run(&config, args).await,
                },
                Command::Redrive(args) => redrive::run(&config, args).await,
                Command::Consume(args) => consume::run(&config, args).await,
            }
        })
    });
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            e.print();
            ExitCode::from(e.exit_code())
        }
    }
}

/// `iniesta filter-policies`: the policy the configured filters make.
fn filter_policies(config: &Config) -> Result<(), CliError> {
    let settings = &config.settings;
    let policy = settings.filter_policy().map_err(|e| {
        let value =
            (!settings.consumer_filters.is_empty()).then(|| settings.consumer_filters.join(","));
        let expected = match e {
            FilterError::NoFilters => {
                "expected at least one filter (`Event.service` or `Event.*`), or --filters"
                    .to_owned()
            }
            other => other.to_string(),
        };
        config.problem(vars::CONSUMER_FILTERS, value, expected)
    })?;
    let json = serde_json::to_string_pretty(&policy.to_json())
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    println!("{json}");
    Ok(())
}
