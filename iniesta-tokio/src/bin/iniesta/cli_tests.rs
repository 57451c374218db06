use clap::CommandFactory;

use super::*;

#[test]
fn command_line_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn help_lists_every_exit_code() {
    let help = Cli::command().render_long_help().to_string();
    for code in EXIT_CODES {
        assert!(
            help.contains(&format!("  {code}  ")),
            "exit code {code} in --help"
        );
    }
}

#[test]
fn flags_override_settings_after_the_subcommand() {
    let cli = Cli::try_parse_from([
        "iniesta",
        "consume",
        "--endpoint-url",
        "http://127.0.0.1:5000",
        "--max-in-flight",
        "3",
        "--dry-run",
    ])
    .unwrap();
    let o = cli.overrides();
    assert!(o.contains(&(
        vars::SQS_ENDPOINT_URL,
        "http://127.0.0.1:5000".into(),
        "--endpoint-url"
    )));
    assert!(o.contains(&(
        vars::SNS_ENDPOINT_URL,
        "http://127.0.0.1:5000".into(),
        "--endpoint-url"
    )));
    assert!(o.contains(&(vars::MAX_IN_FLIGHT, "3".into(), "--max-in-flight")));
    assert!(o.contains(&(vars::DRY_RUN, "true".into(), "--dry-run")));
}

#[test]
fn publish_version_is_the_event_version() {
    let cli =
        Cli::try_parse_from(["iniesta", "publish", "-e", "Created", "--version", "3"]).unwrap();
    match cli.command {
        Command::Publish(p) => {
            assert_eq!(p.version, 3);
            assert_eq!(p.message, "{}");
        }
        other => panic!("parsed {other:?}"),
    }
}

#[test]
fn verify_prints_text_unless_json_is_asked_for() {
    let format = |args: &[&str]| match Cli::try_parse_from(args).map(|cli| cli.command) {
        Ok(Command::Verify(v)) => Ok(v.format),
        Ok(other) => panic!("parsed {other:?}"),
        Err(e) => Err(e.kind()),
    };
    assert_eq!(format(&["iniesta", "verify"]), Ok(ReportFormat::Text));
    assert_eq!(
        format(&["iniesta", "verify", "--format", "json"]),
        Ok(ReportFormat::Json)
    );
    assert_eq!(
        format(&["iniesta", "verify", "--format", "yaml"]),
        Err(clap::error::ErrorKind::InvalidValue)
    );
}
