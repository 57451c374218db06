//! What a bad setting looks like: one [`SettingsProblem`] per variable
//! at fault, all of them together in a [`SettingsError`].

use std::fmt;

/// One bad or missing setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    /// The environment variable at fault.
    pub variable: String,
    /// The value it got (passwords in URLs redacted); `None` when it is
    /// unset but needed.
    pub value: Option<String>,
    /// What was expected instead, as a sentence fragment ("expected …").
    pub expected: String,
}

impl SettingsProblem {
    /// A problem with `variable`.
    pub fn new(
        variable: impl Into<String>,
        value: Option<String>,
        expected: impl Into<String>,
    ) -> Self {
        SettingsProblem {
            variable: variable.into(),
            value,
            expected: expected.into(),
        }
    }
}

impl fmt::Display for SettingsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            // `{:?}` quotes the value and escapes line breaks, so that one
            // problem is always one line.
            Some(value) => write!(f, "{}={:?}: {}", self.variable, value, self.expected),
            None => write!(f, "{} is not set: {}", self.variable, self.expected),
        }
    }
}

/// Every problem found in the settings; its `Display` has one line per
/// problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    problems: Vec<SettingsProblem>,
}

impl SettingsError {
    /// An error made of these problems.
    pub fn new(problems: Vec<SettingsProblem>) -> Self {
        SettingsError { problems }
    }

    /// The problems, in the order they were found.
    pub fn problems(&self) -> &[SettingsProblem] {
        &self.problems
    }

    /// Whether some problem is about `variable`.
    pub fn mentions(&self, variable: &str) -> bool {
        self.problems.iter().any(|p| p.variable == variable)
    }

    /// Adds the problems of `other` that are not already listed.
    pub fn merge(&mut self, other: SettingsError) {
        for p in other.problems {
            if !self.problems.contains(&p) {
                self.problems.push(p);
            }
        }
    }

    /// `Ok` when there are no problems, else this error.
    pub(super) fn into_result(self) -> Result<(), SettingsError> {
        SettingsError::check(self.problems)
    }

    /// `Ok` when there are no problems.
    pub(super) fn check(problems: Vec<SettingsProblem>) -> Result<(), SettingsError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError { problems })
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}
