//! `iniesta`: verify, provision, publish to and consume from the AWS
//! resources of an Iniesta service. See `iniesta --help` and docs/CLI.md.

#[cfg(all(feature = "aws", feature = "redlock"))]
mod aws;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod cli;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod config;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod consume;
mod error;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod handler;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod logging;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod provision;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod publish;
#[cfg(all(feature = "aws", feature = "redlock"))]
mod verify;

use std::process::ExitCode;

pub(crate) use error::exit;

#[cfg(all(feature = "aws", feature = "redlock"))]
fn main() -> ExitCode {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use crate::config::Config;
    use crate::error::CliError;

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
                Command::Verify => verify::run(&config).await,
                Command::Provision(args) => provision::run(&config, args).await,
                Command::FilterPolicies => filter_policies(&config),
                Command::Publish(args) => publish::run(&config, args).await,
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
#[cfg(all(feature = "aws", feature = "redlock"))]
fn filter_policies(config: &config::Config) -> Result<(), error::CliError> {
    use iniesta_core::settings::vars;
    use iniesta_core::FilterError;

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
        .map_err(|e| error::CliError::Runtime(e.to_string()))?;
    println!("{json}");
    Ok(())
}

#[cfg(not(all(feature = "aws", feature = "redlock")))]
fn main() -> ExitCode {
    eprintln!(
        "error: this iniesta was built without the `aws` and `redlock` features; \
         rebuild with `cargo build -p iniesta-tokio --features aws,redlock --bin iniesta`"
    );
    ExitCode::from(exit::RUNTIME)
}
