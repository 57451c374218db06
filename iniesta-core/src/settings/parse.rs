//! Reading the environment: every variable of the table through its
//! parser, then the checks between settings, with every problem collected.

use super::error::{SettingsError, SettingsProblem};
use super::redact::redact_text;
use super::table::{vars, Settings};

/// Why a value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rejection {
    /// The value as a whole, with what was expected instead.
    Value(String),
    /// Parts of it (the items of a list at fault), each with what was
    /// expected instead.
    Items(Vec<(String, String)>),
}

impl From<String> for Rejection {
    fn from(expected: String) -> Self {
        Rejection::Value(expected)
    }
}

/// A comma-separated or JSON list, each item trimmed and parsed; one
/// rejected item per bad one, naming its place when there are several.
pub(super) fn list<T>(
    text: &str,
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<T>, Rejection> {
    let items: Vec<String> = if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text)
            .map_err(|_| "expected a JSON list of strings or a comma-separated list".to_owned())?
            .into_iter()
            .map(|i| i.trim().to_owned())
            .collect()
    } else {
        text.split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let count = items.len();
    let mut parsed = Vec::with_capacity(count);
    let mut rejected = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match parse(&item) {
            Ok(v) => parsed.push(v),
            Err(expected) if count > 1 => {
                rejected.push((item, format!("{expected} (item {} of {count})", i + 1)))
            }
            Err(expected) => rejected.push((item, expected)),
        }
    }
    if rejected.is_empty() {
        Ok(parsed)
    } else {
        Err(Rejection::Items(rejected))
    }
}

/// Reads variables and collects problems.
pub(super) struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<SettingsProblem>,
}

impl Reader<'_> {
    /// The trimmed value, or `None` when unset or empty.
    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn bad(&mut self, var: &str, value: &str, secret: bool, expected: String) {
        let value = if secret {
            redact_text(value)
        } else {
            value.to_owned()
        };
        self.problems
            .push(SettingsProblem::new(var, Some(value), expected));
    }

    fn failed(&self, var: &str) -> bool {
        self.problems.iter().any(|p| p.variable == var)
    }

    /// The value of `var` through `parse`; `None` when unset or rejected
    /// (then a problem is recorded for each part at fault, with URLs
    /// redacted when the value is `secret`).
    pub(super) fn read<T, E: Into<Rejection>>(
        &mut self,
        var: &str,
        secret: bool,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let raw = self.get(var)?;
        match parse(&raw).map_err(Into::into) {
            Ok(v) => Some(v),
            Err(Rejection::Value(expected)) => {
                self.bad(var, &raw, secret, expected);
                None
            }
            Err(Rejection::Items(items)) => {
                for (item, expected) in items {
                    self.bad(var, &item, secret, expected);
                }
                None
            }
        }
    }

    /// Checks between settings, skipped for variables that already failed.
    fn cross_check(&mut self, s: &Settings) {
        let lock_ok = !self.failed(vars::LOCK_TIMEOUT);
        if let Some(hb) = s.heartbeat_interval {
            if lock_ok && hb >= s.lock_timeout {
                let raw = self.get(vars::HEARTBEAT_INTERVAL).unwrap_or_default();
                self.bad(
                    vars::HEARTBEAT_INTERVAL,
                    &raw,
                    false,
                    format!(
                        "expected a duration shorter than the lock timeout ({})",
                        humantime::format_duration(s.lock_timeout)
                    ),
                );
            }
        }
        // The extension is compared as SQS applies it (rounded up to whole
        // seconds). Without INIESTA_VISIBILITY_EXTENSION it is the lock
        // timeout rounded up, which the heartbeat is already shorter than.
        if s.visibility_extension.is_some() {
            let hb_ok = lock_ok && !self.failed(vars::HEARTBEAT_INTERVAL);
            let applied = s.visibility_extension_or_default();
            if hb_ok && applied <= s.heartbeat() {
                let raw = self.get(vars::VISIBILITY_EXTENSION).unwrap_or_default();
                self.bad(
                    vars::VISIBILITY_EXTENSION,
                    &raw,
                    false,
                    format!(
                        "expected a duration longer than the heartbeat interval ({}) \
                         once rounded up to whole seconds as SQS applies it (this one \
                         applies as {}), or the message becomes visible between heartbeats",
                        humantime::format_duration(s.heartbeat()),
                        humantime::format_duration(applied)
                    ),
                );
            }
        }
        if let Some(receives) = s.concurrent_receives {
            if !self.failed(vars::MAX_IN_FLIGHT) && receives > s.max_in_flight {
                let raw = self.get(vars::CONCURRENT_RECEIVES).unwrap_or_default();
                self.bad(
                    vars::CONCURRENT_RECEIVES,
                    &raw,
                    false,
                    format!(
                        "expected a whole number from 1 to {} ({})",
                        s.max_in_flight,
                        vars::MAX_IN_FLIGHT
                    ),
                );
            }
        }
    }
}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// A variable whose value is not valid UTF-8 is a problem too.
    pub fn from_env() -> Result<Settings, SettingsError> {
        let not_unicode: Vec<SettingsProblem> = vars::ALL
            .iter()
            .filter_map(|name| {
                let value = std::env::var_os(name)?;
                value.to_str().is_none().then(|| {
                    SettingsProblem::new(
                        *name,
                        Some(redact_text(&value.to_string_lossy())),
                        "expected valid UTF-8 text",
                    )
                })
            })
            .collect();
        let result = Settings::from_lookup(|name| std::env::var(name).ok());
        if not_unicode.is_empty() {
            return result;
        }
        let mut error = SettingsError::new(not_unicode);
        if let Err(e) = result {
            error.merge(e);
        }
        Err(error)
    }

    /// Reads the settings through `lookup`, which returns a variable's value
    /// or `None` when it is unset. Every bad value is reported.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let mut r = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let settings = Settings::read(&mut r);
        r.cross_check(&settings);
        SettingsError::check(r.problems).map(|()| settings)
    }
}
