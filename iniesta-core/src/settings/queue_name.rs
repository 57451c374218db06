//! The queue's name: `INIESTA_SQS_QUEUE_NAME`, or the template filled in
//! with `ENVIRONMENT` and `SERVICE_NAME`.

use super::error::{SettingsError, SettingsProblem};
use super::table::{vars, Settings};
use super::values::valid_resource_name;

impl Settings {
    /// The queue to poll: `INIESTA_SQS_QUEUE_NAME`, else the template with
    /// `{env}` replaced by `ENVIRONMENT` and `{service_name}` by
    /// `SERVICE_NAME`. An error when `SERVICE_NAME` is unset but the template
    /// needs it, or when the result is not a valid SQS queue name.
    pub fn resolved_queue_name(&self) -> Result<String, SettingsError> {
        if let Some(name) = &self.queue_name {
            return match check_queue_name(name) {
                Ok(()) => Ok(name.clone()),
                Err(expected) => Err(SettingsError::new(vec![SettingsProblem::new(
                    vars::QUEUE_NAME,
                    Some(name.clone()),
                    expected,
                )])),
            };
        }
        let template = &self.queue_name_template;
        let template_problem = |expected: String| {
            SettingsError::new(vec![SettingsProblem::new(
                vars::QUEUE_NAME_TEMPLATE,
                Some(template.clone()),
                expected,
            )])
        };
        let segments = template_segments(template).map_err(template_problem)?;
        let mut name = String::new();
        for segment in segments {
            match segment {
                Segment::Text(text) => name.push_str(text),
                Segment::Env => name.push_str(&self.environment),
                Segment::ServiceName => match &self.service_name {
                    Some(service) => name.push_str(service),
                    None => {
                        return Err(SettingsError::new(vec![SettingsProblem::new(
                            vars::SERVICE_NAME,
                            None,
                            format!(
                                "expected the service's name: {}={:?} needs it \
                                 (or set {} instead)",
                                vars::QUEUE_NAME_TEMPLATE,
                                template,
                                vars::QUEUE_NAME
                            ),
                        )]))
                    }
                },
            }
        }
        check_queue_name(&name).map_err(|expected| {
            template_problem(format!(
                "gives the queue name {name:?} (with {}={:?}, {}={:?}); {expected}",
                vars::ENVIRONMENT,
                self.environment,
                vars::SERVICE_NAME,
                self.service_name.as_deref().unwrap_or(""),
            ))
        })?;
        Ok(name)
    }
}

/// A valid SQS queue name: 1 to 80 letters, digits, `-` or `_`, with an
/// optional `.fifo` suffix.
pub(super) fn check_queue_name(name: &str) -> Result<(), String> {
    if valid_resource_name(name, 80) {
        Ok(())
    } else {
        Err(
            "expected a queue name of 1 to 80 letters, digits, `-` or `_` \
             (optionally ending in .fifo)"
                .to_owned(),
        )
    }
}

/// A piece of the queue name template.
pub(super) enum Segment<'a> {
    Text(&'a str),
    Env,
    ServiceName,
}

/// The template cut at its placeholders; an error for an unknown or
/// unmatched one.
pub(super) fn template_segments(template: &str) -> Result<Vec<Segment<'_>>, String> {
    const EXPECTED: &str = "expected text with the placeholders {env} and {service_name} only";
    let mut segments = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                segments.push(Segment::Text(rest));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err(format!("unmatched `}}`; {EXPECTED}"));
            }
            Some(i) => {
                if i > 0 {
                    segments.push(Segment::Text(&rest[..i]));
                }
                let after = &rest[i + 1..];
                let close = after
                    .find('}')
                    .ok_or_else(|| format!("unmatched `{{`; {EXPECTED}"))?;
                segments.push(match &after[..close] {
                    "env" => Segment::Env,
                    "service_name" => Segment::ServiceName,
                    other => return Err(format!("unknown placeholder {{{other}}}; {EXPECTED}")),
                });
                rest = &after[close + 1..];
            }
        }
    }
    Ok(segments)
}
