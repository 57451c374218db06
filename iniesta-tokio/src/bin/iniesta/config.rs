//! Settings from the environment, with the command-line flags on top.

use std::collections::HashMap;

use iniesta_core::settings::{vars, Settings, SettingsError, SettingsProblem};

use crate::error::CliError;

/// The settings, and which flags set which variables (to name the flag in
/// an error about its value).
#[derive(Debug)]
pub struct Config {
    /// The settings in effect.
    pub settings: Settings,
    flags: HashMap<&'static str, &'static str>,
}

impl Config {
    /// Reads the `INIESTA_*` environment with `overrides` (`variable, value,
    /// flag`) taking precedence. Every bad value is reported.
    pub fn load(overrides: Vec<(&'static str, String, &'static str)>) -> Result<Config, CliError> {
        let flags: HashMap<&'static str, &'static str> = overrides
            .iter()
            .map(|(var, _, flag)| (*var, *flag))
            .collect();
        let values: HashMap<&'static str, String> = overrides
            .into_iter()
            .map(|(var, value, _)| (var, value))
            .collect();
        // A variable that is not UTF-8 is a problem of its own; the lookup
        // below would see it as unset.
        let mut problems: Vec<SettingsProblem> = vars::ALL
            .iter()
            .filter(|name| !values.contains_key(*name))
            .filter_map(|name| {
                let value = std::env::var_os(name)?;
                value
                    .to_str()
                    .is_none()
                    .then(|| SettingsProblem::new(*name, None, "expected valid UTF-8 text"))
            })
            .collect();
        let result = Settings::from_lookup(|name| {
            values
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        });
        match result {
            Ok(settings) if problems.is_empty() => Ok(Config { settings, flags }),
            Ok(_) => Err(settings_error(&flags, SettingsError::new(problems))),
            Err(e) => {
                problems.extend(e.problems().iter().cloned());
                Err(settings_error(&flags, SettingsError::new(problems)))
            }
        }
    }

    /// `Ok` or the settings error, with the flags that gave a bad value
    /// named.
    pub fn check(&self, result: Result<(), SettingsError>) -> Result<(), CliError> {
        result.map_err(|e| self.error(e))
    }

    /// One problem about `variable`, as a settings error.
    pub fn problem(
        &self,
        variable: &str,
        value: Option<String>,
        expected: impl Into<String>,
    ) -> CliError {
        self.error(SettingsError::new(vec![SettingsProblem::new(
            variable, value, expected,
        )]))
    }

    /// The settings error `e`, with the flags that gave a bad value named.
    pub fn error(&self, e: SettingsError) -> CliError {
        settings_error(&self.flags, e)
    }
}

/// A settings error, naming the flag that gave a value where one did.
fn settings_error(flags: &HashMap<&'static str, &'static str>, e: SettingsError) -> CliError {
    CliError::Settings(
        e.problems()
            .iter()
            .map(|p| match flags.get(p.variable.as_str()) {
                Some(flag) => format!("{p} (given by {flag})"),
                None => p.to_string(),
            })
            .collect(),
    )
}
