//! What a valid value of each kind is: the parsers the table's rows name.
//!
//! Each parser takes the trimmed, non-empty text of one variable (or of one
//! item of a list) and returns the value or what was expected instead, as a
//! sentence fragment ("expected …") that the error line puts after the
//! variable and its value.

use std::collections::BTreeSet;
use std::time::Duration;

use super::mode::{InitializationType, LockBackend};
use super::parse::{list, Rejection};
use super::queue_name::{check_queue_name, template_segments};
use crate::filters::Filter;
use crate::sqs;

pub(super) const DURATION_EXPECTED: &str =
    "expected a duration in seconds (e.g. 10, 2.5) or with a unit (500ms, 2m)";
const BOOL_EXPECTED: &str = "expected true or false (also 1/0, yes/no, on/off)";

/// A parser of an optional setting: `parse`'s value, as present.
pub(super) fn some<T, E>(
    parse: impl Fn(&str) -> Result<T, E>,
) -> impl Fn(&str) -> Result<Option<T>, E> {
    move |text| parse(text).map(Some)
}

/// Any text.
pub(super) fn text(text: &str) -> Result<String, String> {
    Ok(text.to_owned())
}

/// A list of `EVENT_POLLING`, `QUEUE_POLLING` and `SNS_PRODUCER`, in any
/// case.
pub(super) fn initialization_types(text: &str) -> Result<BTreeSet<InitializationType>, Rejection> {
    let types = list(text, |name| {
        InitializationType::from_name(name)
            .ok_or_else(|| "expected EVENT_POLLING, QUEUE_POLLING or SNS_PRODUCER".to_owned())
    })?;
    Ok(types.into_iter().collect())
}

/// `redlock` or `dynamodb`, in any case.
pub(super) fn lock_backend(text: &str) -> Result<LockBackend, String> {
    LockBackend::from_name(text).ok_or_else(|| "expected redlock or dynamodb".to_owned())
}

/// A valid DynamoDB table name: 3 to 255 letters, digits, `_`, `-` and `.`.
pub(super) fn dynamodb_table(name: &str) -> Result<String, String> {
    let valid = (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err("expected a DynamoDB table name: 3 to 255 letters, digits, `_`, `-` and `.`".to_owned())
    }
}

/// A list of filters, each kept as given once it parses with
/// [`Filter::parse`].
pub(super) fn consumer_filters(text: &str) -> Result<Vec<String>, Rejection> {
    list(text, |f| {
        Filter::parse(f)
            .map(|_| f.to_owned())
            .map_err(|e| format!("{e}; expected `Event.service` or `Event.*`"))
    })
}

/// A valid SQS queue name.
pub(super) fn queue_name(name: &str) -> Result<String, String> {
    check_queue_name(name).map(|()| name.to_owned())
}

/// Text with the placeholders `{env}` and `{service_name}` only.
pub(super) fn queue_name_template(template: &str) -> Result<String, String> {
    template_segments(template).map(|_| template.to_owned())
}

/// A list of Redlock nodes: distinct `redis://` or `rediss://` URLs, at
/// least one.
pub(super) fn caches(text: &str) -> Result<Vec<String>, Rejection> {
    let caches = list(text, cache_url)?;
    if caches.is_empty() {
        return Err("expected at least one redis:// or rediss:// URL"
            .to_owned()
            .into());
    }
    let mut seen = BTreeSet::new();
    let repeated: Vec<(String, String)> = caches
        .iter()
        .filter(|cache| !seen.insert(cache.as_str()))
        .map(|cache| {
            (
                cache.clone(),
                "listed twice; expected each Redlock node once (a repeated node \
                 would count twice towards the majority)"
                    .to_owned(),
            )
        })
        .collect();
    if repeated.is_empty() {
        Ok(caches)
    } else {
        Err(Rejection::Items(repeated))
    }
}

/// A plain number of seconds, fractions allowed (`10`, `2.5`, `.5`); `None`
/// when the text is not of that shape.
fn decimal_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Nanoseconds from the first nine fraction digits; finer is dropped.
    let mut nanos: u32 = 0;
    for i in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(Duration::new(secs, nanos))
}

fn duration(text: &str) -> Result<Duration, String> {
    decimal_seconds(text)
        .or_else(|| humantime::parse_duration(text).ok())
        .ok_or_else(|| DURATION_EXPECTED.to_owned())
}

/// A duration from `min` to `max` (`Duration::MAX`: no upper bound).
pub(super) fn duration_in(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = duration(text)?;
    if d < min || d > max {
        let range = if max == Duration::MAX {
            format!("of at least {}", humantime::format_duration(min))
        } else {
            format!(
                "from {} to {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            )
        };
        return Err(format!("expected a duration {range}"));
    }
    Ok(d)
}

/// A visibility timeout of at least `min`, held as SQS will apply it: the
/// range is checked on the value as written, then it is rounded up to
/// whole seconds (see the [module docs](super)).
pub(super) fn visibility_timeout(text: &str, min: Duration) -> Result<Duration, String> {
    duration_in(text, min, sqs::MAX_VISIBILITY).map(sqs::visibility)
}

/// The first failure backoff; 0 means none.
pub(super) fn failure_backoff_base(text: &str) -> Result<Option<Duration>, String> {
    let base = visibility_timeout(text, Duration::ZERO)?;
    Ok(Some(base).filter(|b| !b.is_zero()))
}

/// A long polling wait: whole seconds from 0 to 20.
pub(super) fn wait_time(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected whole seconds from 0 to 20 (e.g. 20 or 20s)";
    let d = duration(text).map_err(|_| EXPECTED.to_owned())?;
    if d.subsec_nanos() != 0 || d > sqs::MAX_WAIT_TIME {
        return Err(EXPECTED.to_owned());
    }
    Ok(d)
}

/// A whole number from `min` to `max` (`usize::MAX`: no upper bound).
pub(super) fn count(text: &str, min: usize, max: usize) -> Result<usize, String> {
    let expected = || {
        if max == usize::MAX {
            format!("expected a whole number of at least {min}")
        } else {
            format!("expected a whole number from {min} to {max}")
        }
    };
    let n: usize = text.parse().map_err(|_| expected())?;
    if n < min || n > max {
        return Err(expected());
    }
    Ok(n)
}

/// Attempts to acquire a lock: a whole number, at least 1.
pub(super) fn attempts(text: &str) -> Result<u32, String> {
    let n = count(text, 1, u32::MAX as usize)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in any case.
pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(BOOL_EXPECTED.to_owned()),
    }
}

/// A boolean, or `auto` (`None`) to detect it at start-up.
pub(super) fn raw_delivery(text: &str) -> Result<Option<bool>, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    boolean(text)
        .map(Some)
        .map_err(|_| format!("{BOOL_EXPECTED}, or auto to detect it at start-up"))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// An SQS queue (or SNS topic) name: letters, digits, `-` and `_`, with an
/// optional `.fifo` suffix, at most `max` characters in all.
pub(super) fn valid_resource_name(name: &str, max: usize) -> bool {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    !stem.is_empty() && name.len() <= max && stem.chars().all(is_name_char)
}

/// An SNS topic ARN, in any partition.
pub(super) fn topic_arn(arn: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected an SNS topic ARN (arn:aws:sns:region:account-id:topic-name)";
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "sns", region, account, name] => {
            !partition.is_empty()
                && partition
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !account.is_empty()
                && account.bytes().all(|b| b.is_ascii_digit())
                && valid_resource_name(name, 256)
        }
        _ => false,
    };
    if ok {
        Ok(arn.to_owned())
    } else {
        Err(EXPECTED.to_owned())
    }
}

/// A message attribute name, by SNS's rules.
pub(super) fn event_key(key: &str) -> Result<String, String> {
    let lower = key.to_ascii_lowercase();
    let ok = key.len() <= 256
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if ok {
        Ok(key.to_owned())
    } else {
        Err(
            "expected a message attribute name: up to 256 letters, digits, `_`, `-` \
             or `.` (no leading, trailing or double dot; not starting with AWS. or Amazon.)"
                .to_owned(),
        )
    }
}

/// The host part of a URL: after the scheme and any user information, up to
/// the path, query or fragment.
fn url_host(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let rest = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn url_with_scheme(url: &str, schemes: &[&str]) -> bool {
    let scheme_ok = url
        .find("://")
        .is_some_and(|i| schemes.iter().any(|s| url[..i].eq_ignore_ascii_case(s)));
    scheme_ok
        && url_host(url).is_some_and(|h| !h.is_empty() && !h.starts_with(':'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A `redis://` or `rediss://` URL with a host.
fn cache_url(url: &str) -> Result<String, String> {
    if url_with_scheme(url, &["redis", "rediss"]) {
        Ok(url.to_owned())
    } else {
        Err("expected a redis:// or rediss:// URL with a host".to_owned())
    }
}

/// An `http://` or `https://` URL with a host.
pub(super) fn endpoint_url(url: &str) -> Result<String, String> {
    if url_with_scheme(url, &["http", "https"]) {
        Ok(url.to_owned())
    } else {
        Err("expected an http:// or https:// URL with a host".to_owned())
    }
}
