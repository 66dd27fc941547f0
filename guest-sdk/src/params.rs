//! The parameters of an invoked action.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The parameter values of an action [`Provider::invoke`](crate::Provider::invoke) runs: a
/// JSON object of strings, already resolved by cpi (defaults applied, required ones checked
/// against the provider definition).
///
/// ```
/// use cpi_guest_sdk::{ErrorCategory, Params};
///
/// let params: Params = [("worker_id", "w-1")].into_iter().collect();
/// assert_eq!(params.get("worker_id")?, "w-1");
/// let err = params.get("region").unwrap_err();
/// assert_eq!(err.category, ErrorCategory::Validation);
/// assert!(err.message.contains("'region'"));
/// # Ok::<(), cpi_guest_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    values: Map<String, Value>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Params {
        Params::default()
    }

    /// Parses the JSON object text the host passes to `invoke`.
    pub fn from_json(text: &str) -> Result<Params> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(values)) => Ok(Params { values }),
            Ok(other) => Err(Error::validation(format!(
                "action parameters must be a JSON object, not {}",
                cpi_contract::json_kind(&other)
            ))),
            Err(e) => Err(Error::validation(format!(
                "action parameters are not valid JSON: {e}"
            ))),
        }
    }

    /// The value of parameter `name`, or a validation error naming it when it is missing
    /// (absent or `null`) or not a string.
    pub fn get(&self, name: &str) -> Result<&str> {
        match self.values.get(name) {
            None | Some(Value::Null) => Err(Error::validation(format!(
                "missing required parameter '{name}'"
            ))),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(Error::validation(format!(
                "parameter '{name}' must be a string, not {}",
                cpi_contract::json_kind(other)
            ))),
        }
    }

    /// The value of parameter `name` if it is given (a string), `None` otherwise.
    pub fn get_opt(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }

    /// The value of parameter `name` converted with [`FromStr`] (`u32`, `bool`, ...), or a
    /// validation error naming it.
    pub fn parse<T>(&self, name: &str) -> Result<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let raw = self.get(name)?;
        raw.trim().parse().map_err(|e| {
            Error::validation(format!(
                "parameter '{name}' has an invalid value {raw:?}: {e}"
            ))
        })
    }

    /// Whether parameter `name` is given (and not `null`).
    pub fn contains(&self, name: &str) -> bool {
        !matches!(self.values.get(name), None | Some(Value::Null))
    }

    /// Every parameter, in the order the host sent them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The underlying JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.values
    }
}

impl From<Map<String, Value>> for Params {
    fn from(values: Map<String, Value>) -> Params {
        Params { values }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Params {
        Params {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCategory;

    #[test]
    fn reads_the_host_object() {
        let p = Params::from_json(r#"{"worker_id": "w-1", "count": "3", "gone": null}"#).unwrap();
        assert_eq!(p.get("worker_id").unwrap(), "w-1");
        assert_eq!(p.parse::<u32>("count").unwrap(), 3);
        assert_eq!(p.get_opt("nope"), None);
        assert!(!p.contains("gone"));
        assert_eq!(p.len(), 3);
        let missing = p.get("gone").unwrap_err();
        assert_eq!(missing.category, ErrorCategory::Validation);
        assert!(missing.message.contains("'gone'"), "{}", missing.message);
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        assert_eq!(
            Params::from_json("[1]").unwrap_err().category,
            ErrorCategory::Validation
        );
        assert_eq!(
            Params::from_json("{").unwrap_err().category,
            ErrorCategory::Validation
        );
        let p = Params::from_json(r#"{"n": 1, "word": "x"}"#).unwrap();
        assert!(p.get("n").unwrap_err().message.contains("a number"));
        let bad = p.parse::<u32>("word").unwrap_err();
        assert!(bad.message.contains("'word'"), "{}", bad.message);
    }
}
