//! Consumer filters and the SNS subscription filter policy built from them.
//!
//! A filter `"Event.svc"` matches that event exactly; `"Event.*"` matches
//! every event whose name starts with `"Event."`. The policy puts them under
//! the event-name attribute: `{"iniesta_pass": ["Event.svc", {"prefix":
//! "Event."}]}`. Policies read back from AWS are compared as sets: SNS may
//! return the list in another order or with other white space.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::message::AttributeValue;

/// One consumer filter, validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    /// The event name must equal this.
    Exact(String),
    /// The event name must start with this (the filter without its `*`).
    Prefix(String),
}

/// Why a filter or a policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// An empty filter.
    #[error("empty filter: a filter names an event (`Event.service`) or a prefix (`Event.*`)")]
    Empty,
    /// White space or control characters in a filter.
    #[error("filter {0:?} contains white space or control characters")]
    Whitespace(String),
    /// A `*` somewhere but at the end.
    #[error("filter {0:?}: `*` is only allowed as the last character, after a dot (`Event.*`)")]
    MisplacedWildcard(String),
    /// No filters at all.
    #[error("no filters: event polling needs at least one filter in INIESTA_SQS_CONSUMER_FILTERS")]
    NoFilters,
    /// A policy that is not JSON of the expected shape.
    #[error("filter policy is not valid: {0}")]
    BadPolicy(String),
    /// Too many values for SNS (150 values per policy at most).
    #[error("{0} filters: an SNS filter policy takes at most 150 values")]
    TooMany(usize),
}

impl Filter {
    /// Parses one filter.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.is_empty() {
            return Err(FilterError::Empty);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FilterError::Whitespace(text.to_owned()));
        }
        match text.find('*') {
            None => Ok(Filter::Exact(text.to_owned())),
            Some(i) if i == text.len() - 1 && text.ends_with(".*") && text.len() > 2 => {
                Ok(Filter::Prefix(text[..i].to_owned()))
            }
            Some(_) => Err(FilterError::MisplacedWildcard(text.to_owned())),
        }
    }

    /// Whether an event name passes this filter.
    pub fn matches(&self, event: &str) -> bool {
        match self {
            Filter::Exact(e) => e == event,
            Filter::Prefix(p) => event.starts_with(p.as_str()),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Filter::Exact(e) => Value::String(e.clone()),
            Filter::Prefix(p) => serde_json::json!({ "prefix": p }),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Exact(e) => f.write_str(e),
            Filter::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// A subscription filter policy on one attribute: a set of exact names and
/// prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPolicy {
    /// The attribute the policy looks at (`INIESTA_SNS_EVENT_KEY`).
    pub key: String,
    /// The filters, as a set.
    pub filters: BTreeSet<Filter>,
}

impl FilterPolicy {
    /// Builds the policy from filter texts. At least one filter is needed.
    pub fn from_filters<S: AsRef<str>>(
        key: &str,
        filters: impl IntoIterator<Item = S>,
    ) -> Result<FilterPolicy, FilterError> {
        let filters = filters
            .into_iter()
            .map(|f| Filter::parse(f.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if filters.is_empty() {
            return Err(FilterError::NoFilters);
        }
        if filters.len() > 150 {
            return Err(FilterError::TooMany(filters.len()));
        }
        Ok(FilterPolicy {
            key: key.to_owned(),
            filters,
        })
    }

    /// The policy as SNS takes it.
    pub fn to_json(&self) -> Value {
        let list: Vec<Value> = self.filters.iter().map(Filter::to_json).collect();
        let mut map = serde_json::Map::new();
        map.insert(self.key.clone(), Value::Array(list));
        Value::Object(map)
    }

    /// The policy as SNS takes it, as text.
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }

    /// Reads a policy as SNS returns it. Only policies of this crate's shape
    /// (one attribute; exact strings and `{"prefix": …}`) are understood;
    /// anything else is [`FilterError::BadPolicy`].
    pub fn from_json(text: &str) -> Result<FilterPolicy, FilterError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| FilterError::BadPolicy(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| FilterError::BadPolicy("not a JSON object".into()))?;
        if obj.len() != 1 {
            return Err(FilterError::BadPolicy(format!(
                "expected one attribute, found {}",
                obj.len()
            )));
        }
        let (key, list) = obj.iter().next().expect("one entry");
        let list = list
            .as_array()
            .ok_or_else(|| FilterError::BadPolicy(format!("{key:?} is not a list")))?;
        let mut filters = BTreeSet::new();
        for item in list {
            let f = match item {
                Value::String(s) => Filter::Exact(s.clone()),
                Value::Object(o) if o.len() == 1 => match o.get("prefix") {
                    Some(Value::String(p)) => Filter::Prefix(p.clone()),
                    _ => return Err(FilterError::BadPolicy(format!("unsupported rule {item}"))),
                },
                _ => return Err(FilterError::BadPolicy(format!("unsupported rule {item}"))),
            };
            filters.insert(f);
        }
        Ok(FilterPolicy {
            key: key.clone(),
            filters,
        })
    }

    /// Whether a policy text read back from AWS is this policy, ignoring
    /// order, duplicates and white space.
    pub fn same_as_json(&self, text: &str) -> bool {
        FilterPolicy::from_json(text).is_ok_and(|other| &other == self)
    }

    /// Whether a message with these attributes passes the policy (SNS
    /// semantics for this shape: the attribute must be a String that matches
    /// one rule).
    pub fn matches(&self, attributes: &BTreeMap<String, AttributeValue>) -> bool {
        match attributes.get(&self.key) {
            Some(AttributeValue::String(event)) => self.filters.iter().any(|f| f.matches(event)),
            _ => false,
        }
    }
}

#[cfg(test)]
#[path = "filters_tests.rs"]
mod tests;
