//! The command line: subcommands, their flags, and the common flags that
//! override `INIESTA_*` settings.

use clap::{ArgAction, Args, Parser, Subcommand};
use iniesta_core::settings::vars;

use crate::exit;

/// Text after every `--help`: the exit codes and where settings come from.
const AFTER_HELP: &str = "\
Settings come from the INIESTA_* environment (and SERVICE_NAME, ENVIRONMENT);
a flag overrides the matching variable. AWS credentials and region come from
the standard AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION, AWS_PROFILE, ...).

Exit codes:
  0  success
  1  runtime error (AWS or Redis unreachable, a call failed)
  2  usage error (unknown flag, missing argument)
  3  verification failed (the report says what to fix)
  4  bad settings (every problem is listed, one per line)
  5  publish --file or redrive left part of the work undone (the summary
     on stderr says what)";

/// Consume domain events from an SNS topic through this service's SQS
/// queue, one Redis lock per event; check, create and feed the AWS resources
/// that takes.
#[derive(Debug, Parser)]
#[command(name = "iniesta", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Flags shared by every command.
    #[command(flatten)]
    pub common: Common,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the start-up checks of INIESTA_INITIALIZATION_TYPE (default
    /// EVENT_POLLING) and print the report. Exits 0 when every check passes
    /// (warnings allowed), 3 when one fails.
    #[command(after_help = AFTER_HELP)]
    Verify(VerifyArgs),
    /// Create (or repair) the topic named by the topic ARN, the queue, the
    /// subscription with the filter policy and the queue policy. Idempotent;
    /// meant for development and tests.
    #[command(after_help = AFTER_HELP)]
    Provision(ProvisionArgs),
    /// Print the subscription filter policy the configured filters make (no
    /// AWS needed).
    #[command(name = "filter-policies", after_help = AFTER_HELP)]
    FilterPolicies,
    /// Publish one event in the original Iniesta format and print its SNS
    /// message id; or, with --file, every event of a JSON Lines file through
    /// PublishBatch, ending with a summary on stderr (exit 5 when a line
    /// failed).
    #[command(after_help = AFTER_HELP)]
    Publish(PublishArgs),
    /// Move messages from the queue's dead-letter queue back to the queue:
    /// all of them, or at most --max. Each is sent to the queue before it is
    /// deleted from the dead-letter queue, so an interrupted move loses
    /// nothing. Prints the count; exits 5 when a message could not be moved.
    #[command(after_help = AFTER_HELP)]
    Redrive(RedriveArgs),
    /// Run the consumer with a built-in handler that prints one JSON line
    /// per handled event to stdout, until SIGINT or SIGTERM; then print the
    /// summary to stderr.
    #[command(after_help = AFTER_HELP)]
    Consume(ConsumeArgs),
}

/// Flags every command takes; each overrides a setting.
#[derive(Debug, Args, Default)]
pub struct Common {
    /// The global SNS topic (INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN).
    #[arg(long, global = true, value_name = "ARN")]
    pub topic_arn: Option<String>,
    /// This service's SQS queue (INIESTA_SQS_QUEUE_NAME).
    #[arg(long, global = true, value_name = "NAME")]
    pub queue_name: Option<String>,
    /// This service's name (SERVICE_NAME).
    #[arg(long, global = true, value_name = "NAME")]
    pub service_name: Option<String>,
    /// The events consumed, comma-separated: `Event.service` or `Event.*`
    /// (INIESTA_SQS_CONSUMER_FILTERS).
    #[arg(long, global = true, value_name = "LIST")]
    pub filters: Option<String>,
    /// One endpoint for both SQS and SNS, e.g. an emulator
    /// (INIESTA_SQS_ENDPOINT_URL and INIESTA_SNS_ENDPOINT_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The Redis servers of the lock, comma-separated URLs (INIESTA_CACHES).
    #[arg(long, global = true, value_name = "URLS")]
    pub caches: Option<String>,
    /// Skip the AWS checks at start-up (INIESTA_DRY_RUN=true).
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG
    /// takes precedence.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// `iniesta verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// How to print the report: `text` for people, `json` for CI pipelines
    /// (one JSON document on stdout; the exit code is the same).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// How `iniesta verify` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One line per check, for people.
    Text,
    /// One JSON document with every check, for CI pipelines.
    Json,
}

/// `iniesta provision`.
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Turn on RawMessageDelivery on the subscription (default: as
    /// INIESTA_RAW_DELIVERY says, else off).
    #[arg(long)]
    pub raw_delivery: bool,
    /// The queue's visibility timeout in whole seconds (default: leave it; 30
    /// for a new queue).
    #[arg(long, value_name = "SECS")]
    pub visibility_timeout: Option<u64>,
    /// Give the queue a dead-letter queue `{queue}-dlq` that takes a message
    /// after this many receives.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub dead_letter_after: Option<u32>,
}

/// `iniesta publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The event name; `.{SERVICE_NAME}` is appended unless it is already
    /// there or --raw is given.
    #[arg(short, long, value_name = "EVENT", required_unless_present = "file")]
    pub event: Option<String>,
    /// The message body.
    #[arg(
        short,
        long,
        value_name = "BODY",
        default_value = "{}",
        conflicts_with = "file"
    )]
    pub message: String,
    /// Publish every event of this JSON Lines file (`-`: stdin), one object
    /// per line: `{"event": "...", "message": ...}`, optionally `"version"`,
    /// `"group_id"` and `"deduplication_id"`. --raw and --version apply to
    /// every line (a line's own version wins); on a FIFO topic a line
    /// without a group gets INIESTA_SNS_FIFO_GROUP's.
    #[arg(short, long, value_name = "PATH", conflicts_with = "event")]
    pub file: Option<String>,
    /// The message group (MessageGroupId): a FIFO topic (name ending in
    /// .fifo) delivers the events of one group in order. Without it, a FIFO
    /// topic takes the group INIESTA_SNS_FIFO_GROUP picks.
    #[arg(long, value_name = "GROUP", conflicts_with = "file")]
    pub group_id: Option<String>,
    /// The deduplication id (MessageDeduplicationId) on a FIFO topic: a
    /// second event with the same id within five minutes is dropped.
    /// Without it, the topic's content-based deduplication hashes the body.
    #[arg(long, value_name = "ID", conflicts_with = "file")]
    pub deduplication_id: Option<String>,
    /// Publish the event name exactly as given (no service suffix).
    #[arg(long)]
    pub raw: bool,
    /// The `version` attribute.
    #[arg(
        long = "version",
        id = "event_version",
        value_name = "N",
        default_value_t = 1
    )]
    pub version: u32,
}

/// `iniesta redrive`.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// Move at most this many messages (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max: Option<u64>,
}

/// `iniesta consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Sleep this long inside the handler, per message.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub sleep_ms: u64,
    /// Make every Nth handler call fail (counting all calls), to try
    /// redelivery.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub fail_every: Option<u64>,
    /// Messages in progress at once (INIESTA_MAX_IN_FLIGHT).
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<String>,
    /// Serve /metrics (Prometheus text), /healthz and /readyz on this
    /// address, e.g. 127.0.0.1:9090 (port 0 picks a free one, logged at
    /// start-up); the metrics are recorded only with it.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

impl Cli {
    /// The settings the flags override: `(variable, value, flag)`.
    pub fn overrides(&self) -> Vec<(&'static str, String, &'static str)> {
        let c = &self.common;
        let mut out = Vec::new();
        let mut put = |var: &'static str, value: &Option<String>, flag: &'static str| {
            if let Some(v) = value {
                out.push((var, v.clone(), flag));
            }
        };
        put(vars::GLOBAL_TOPIC_ARN, &c.topic_arn, "--topic-arn");
        put(vars::QUEUE_NAME, &c.queue_name, "--queue-name");
        put(vars::SERVICE_NAME, &c.service_name, "--service-name");
        put(vars::CONSUMER_FILTERS, &c.filters, "--filters");
        put(vars::SQS_ENDPOINT_URL, &c.endpoint_url, "--endpoint-url");
        put(vars::SNS_ENDPOINT_URL, &c.endpoint_url, "--endpoint-url");
        put(vars::CACHES, &c.caches, "--caches");
        if let Command::Consume(args) = &self.command {
            put(vars::MAX_IN_FLIGHT, &args.max_in_flight, "--max-in-flight");
        }
        if c.dry_run {
            out.push((vars::DRY_RUN, "true".to_owned(), "--dry-run"));
        }
        out
    }
}

/// The exit codes, which `--help` must list (the tests check it).
#[allow(dead_code)]
pub const EXIT_CODES: [u8; 6] = [
    exit::OK,
    exit::RUNTIME,
    exit::USAGE,
    exit::VERIFICATION,
    exit::SETTINGS,
    exit::INCOMPLETE,
];

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
