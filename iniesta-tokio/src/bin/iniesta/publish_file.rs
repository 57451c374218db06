//! `iniesta publish --file`: many events from a JSON Lines file (or stdin)
//! through SNS PublishBatch.
//!
//! Each line is one JSON object: `event` (named as `publish -e` takes it,
//! the service suffix added the same way), `message` (a string is the body
//! as it is; any other JSON value is sent as its JSON text), and optionally
//! `version` (default: `--version`), `group_id` (the FIFO message group;
//! on a FIFO topic a line without one gets `INIESTA_SNS_FIFO_GROUP`'s) and
//! `deduplication_id`.
//! Blank lines are skipped. A line that cannot be read is reported with its
//! number and counted as failed; the others are still published.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};

use indicatif::{ProgressBar, ProgressStyle};
use iniesta_aws::{BulkEntry, BulkPublisher};
use iniesta_core::publish::event_message;
use serde_json::Value;

use crate::aws;
use crate::cli::PublishArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::publish;

/// The fields a line may have.
const FIELDS: &str = "event, message, version, group_id, deduplication_id";

/// One event as a line gives it, before the service suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineEvent {
    /// The event name as written.
    pub event: String,
    /// The message body.
    pub body: String,
    /// The `version` attribute, when the line gives one.
    pub version: Option<u32>,
    /// The message group, when the line gives one.
    pub group_id: Option<String>,
    /// The deduplication id, when the line gives one.
    pub deduplication_id: Option<String>,
}

/// The lines of an input: the events with their line numbers (from 1), and
/// the lines that could not be read, with why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `(line number, event)`, in input order.
    pub events: Vec<(usize, LineEvent)>,
    /// `(line number, reason)`, in input order.
    pub errors: Vec<(usize, String)>,
}

/// Reads one line: `None` for a blank one.
pub fn parse_line(text: &str) -> Result<Option<LineEvent>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err(format!(
            "expected a JSON object with {FIELDS}, not {}",
            kind(&value)
        ));
    };
    let event = match fields.remove("event") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) => return Err("`event` is empty".to_owned()),
        Some(other) => return Err(format!("`event` must be a string, not {}", kind(&other))),
        None => return Err("no `event`".to_owned()),
    };
    let body = match fields.remove("message") {
        Some(Value::String(s)) => s,
        Some(Value::Null) => {
            return Err("`message` is null; give a string or a JSON value".to_owned())
        }
        Some(other) => other.to_string(),
        None => return Err("no `message`".to_owned()),
    };
    let version = match fields.remove("version") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    format!(
                        "`version` must be a whole number from 0 to {}, not {v}",
                        u32::MAX
                    )
                })?,
        ),
    };
    let group_id = optional_text(&mut fields, "group_id")?;
    let deduplication_id = optional_text(&mut fields, "deduplication_id")?;
    if let Some(unknown) = fields.keys().next() {
        return Err(format!("unknown field `{unknown}` (a line has {FIELDS})"));
    }
    Ok(Some(LineEvent {
        event,
        body,
        version,
        group_id,
        deduplication_id,
    }))
}

/// The optional non-empty string field `name`.
fn optional_text(
    fields: &mut serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<String>, String> {
    match fields.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(other) => Err(format!(
            "`{name}` must be a non-empty string, not {}",
            kind(&other)
        )),
    }
}

/// What a JSON value is, for an error message.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Reads every line of `input` (split at `\n`, a trailing `\r` dropped).
pub fn parse_lines(input: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    for (i, raw) in input.split(|&b| b == b'\n').enumerate() {
        let number = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let result = std::str::from_utf8(raw)
            .map_err(|e| format!("not UTF-8 text: {e}"))
            .and_then(parse_line);
        match result {
            Ok(Some(event)) => parsed.events.push((number, event)),
            Ok(None) => {}
            Err(reason) => parsed.errors.push((number, reason)),
        }
    }
    parsed
}

/// Line numbers as a short list: `3, 7-9, 12`.
pub fn line_list(lines: &[usize]) -> String {
    let mut sorted = lines.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(match sorted[i] {
            end if end == start => start.to_string(),
            end => format!("{start}-{end}"),
        });
        i += 1;
    }
    parts.join(", ")
}

/// The whole input: the file at `path`, or stdin for `-`.
fn read_input(path: &str) -> Result<Vec<u8>, CliError> {
    let mut input = Vec::new();
    let result = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut input).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut input).map(|_| ()))
    };
    result.map_err(|e| {
        let what = if path == "-" {
            "stdin".to_owned()
        } else {
            path.to_owned()
        };
        CliError::Runtime(format!("cannot read {what}: {e}"))
    })?;
    Ok(input)
}

/// A progress bar on stderr when it is a terminal; hidden otherwise, so
/// that logs and pipes get only the summary.
fn progress_bar(len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40.cyan/blue} {pos}/{len} events published or failed ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Publishes every event of the file at `path` (`-`: stdin), prints each
/// failed line and the summary to stderr, and fails with
/// [`CliError::Incomplete`] unless every line went out.
pub async fn run(config: &Config, args: &PublishArgs, path: &str) -> Result<(), CliError> {
    let settings = &config.settings;
    let topic_arn = publish::topic_arn(config)?;
    let parsed = parse_lines(&read_input(path)?);
    // Line number -> why it failed.
    let mut failed: BTreeMap<usize, String> = parsed.errors.into_iter().collect();
    let mut lines = Vec::new();
    let mut entries = Vec::new();
    for (line, e) in parsed.events {
        let event = publish::qualify(config, &e.event, args.raw)?;
        let version = e.version.unwrap_or(args.version);
        match event_message(&settings.event_key, &event, e.body, version) {
            Ok(mut message) => {
                message.deduplication_id = e.deduplication_id;
                let mut entry = BulkEntry::new(message);
                if let Some(group) = e.group_id {
                    entry = entry.with_group_id(group);
                }
                lines.push(line);
                entries.push(entry);
            }
            Err(err) => {
                failed.insert(line, format!("cannot publish {event:?}: {err}"));
            }
        }
    }
    let published = if settings.dry_run {
        eprintln!(
            "dry run: would publish {} event(s) to {topic_arn}",
            entries.len()
        );
        0
    } else if entries.is_empty() {
        0
    } else {
        let clients = aws::clients(settings).await?;
        let bar = progress_bar(entries.len());
        let results = BulkPublisher::new(clients.sns.clone(), &topic_arn)
            .with_group_rule(settings.fifo_group.clone())
            .publish(&entries, |_, _| bar.inc(1))
            .await;
        bar.finish_and_clear();
        let mut published = 0;
        for (line, result) in lines.iter().zip(results) {
            match result {
                Ok(_) => published += 1,
                Err(e) => {
                    failed.insert(*line, e.to_string());
                }
            }
        }
        published
    };
    for (line, reason) in &failed {
        eprintln!("line {line}: {reason}");
    }
    let failed_lines: Vec<usize> = failed.keys().copied().collect();
    let summary = match failed_lines.len() {
        0 => format!("published {published}, failed 0"),
        n => format!(
            "published {published}, failed {n} (line{} {})",
            if n == 1 { "" } else { "s" },
            line_list(&failed_lines)
        ),
    };
    eprintln!("iniesta: {summary}");
    if failed_lines.is_empty() {
        Ok(())
    } else {
        Err(CliError::Incomplete(format!(
            "{} line(s) not published; the lines above say why",
            failed_lines.len()
        )))
    }
}

#[cfg(test)]
#[path = "publish_file_tests.rs"]
mod tests;
