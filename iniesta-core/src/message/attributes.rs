//! Attribute values: the typed values of SQS and SNS message attributes,
//! and the shared map a message carries them in.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use super::ParseError;

/// A typed SQS/SNS message attribute value.
///
/// SQS and SNS allow custom type labels after a dot (`Number.float`,
/// `String.uuid`); the label is kept in `custom` so that a value read from one
/// side can be sent again unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `String` (or `String.label`).
    String(String),
    /// `Number` (or `Number.label`), kept as the decimal text SQS carries.
    Number(String),
    /// `Binary` (or `Binary.label`): raw bytes (base64 on the wire in SNS
    /// envelopes).
    Binary(Vec<u8>),
    /// `String.Array`: a JSON array of strings, numbers, booleans or null,
    /// kept as the JSON text SNS carries.
    StringArray(String),
}

impl AttributeValue {
    /// The value as text, when it is a string or a number.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::String(s) | AttributeValue::Number(s) => Some(s),
            _ => None,
        }
    }

    /// The SQS/SNS `DataType` / `Type` name of this value.
    pub fn data_type(&self) -> &'static str {
        match self {
            AttributeValue::String(_) => "String",
            AttributeValue::Number(_) => "Number",
            AttributeValue::Binary(_) => "Binary",
            AttributeValue::StringArray(_) => "String.Array",
        }
    }

    /// Builds a value from an SNS/SQS type name and its text form, as found in
    /// an SNS envelope (`Binary` values are base64 there).
    pub fn from_wire(data_type: &str, value: &str) -> Result<Self, ParseError> {
        let base = data_type.split('.').next().unwrap_or(data_type);
        match (base, data_type) {
            (_, "String.Array") => Ok(AttributeValue::StringArray(value.to_owned())),
            ("String", _) => Ok(AttributeValue::String(value.to_owned())),
            ("Number", _) => Ok(AttributeValue::Number(value.to_owned())),
            ("Binary", _) => base64::engine::general_purpose::STANDARD
                .decode(value)
                .map(AttributeValue::Binary)
                .map_err(|e| ParseError::BadAttribute {
                    name: String::new(),
                    reason: format!("binary value is not base64: {e}"),
                }),
            _ => Err(ParseError::BadAttribute {
                name: String::new(),
                reason: format!("unknown attribute type {data_type:?}"),
            }),
        }
    }
}

/// Message attributes: name → typed value, in name order.
///
/// Read like a map (it derefs to `BTreeMap<String, AttributeValue>`), and
/// cheap to clone: the map is shared, because attributes do not change after
/// a message is received. An in-memory queue hands out the same map on every
/// receive instead of copying it.
///
/// ```
/// use std::collections::BTreeMap;
/// use iniesta_core::{AttributeValue, Attributes};
///
/// let attrs: Attributes = [("version".to_owned(), AttributeValue::Number("2".into()))]
///     .into_iter()
///     .collect();
/// assert_eq!(attrs.get("version").and_then(AttributeValue::as_str), Some("2"));
/// let copy = attrs.clone(); // no copy of the map
/// assert_eq!(copy, attrs);
///
/// let mut changed = copy;
/// changed.to_mut().remove("version"); // copies, once, on first change
/// assert!(changed.is_empty() && !attrs.is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attributes(Arc<BTreeMap<String, AttributeValue>>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Attributes::default()
    }

    /// The map, for changing: copied first if it is shared.
    pub fn to_mut(&mut self) -> &mut BTreeMap<String, AttributeValue> {
        Arc::make_mut(&mut self.0)
    }

    /// The map itself (copied if it is shared).
    pub fn into_map(self) -> BTreeMap<String, AttributeValue> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl std::ops::Deref for Attributes {
    type Target = BTreeMap<String, AttributeValue>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<BTreeMap<String, AttributeValue>> for Attributes {
    fn from(map: BTreeMap<String, AttributeValue>) -> Self {
        Attributes(Arc::new(map))
    }
}

impl<const N: usize> From<[(String, AttributeValue); N]> for Attributes {
    fn from(pairs: [(String, AttributeValue); N]) -> Self {
        Attributes(Arc::new(BTreeMap::from(pairs)))
    }
}

impl FromIterator<(String, AttributeValue)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, AttributeValue)>>(iter: I) -> Self {
        Attributes(Arc::new(iter.into_iter().collect()))
    }
}

impl PartialEq<BTreeMap<String, AttributeValue>> for Attributes {
    fn eq(&self, other: &BTreeMap<String, AttributeValue>) -> bool {
        *self.0 == *other
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a AttributeValue);
    type IntoIter = std::collections::btree_map::Iter<'a, String, AttributeValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
