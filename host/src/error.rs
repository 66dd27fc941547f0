//! Typed errors mapped onto the standard's error categories (§10.1) plus cpi's own.

use serde_json::{Map, Value};

/// The category an error belongs to: the six of §10.1 plus cpi's own (defined once, in the
/// contract the guest SDK shares).
pub use cpi_contract::ErrorKind;

/// An error from loading, validating or running a provider action.
///
/// Messages and details never contain secret parameter values: every place that builds an
/// error from provider output or parameters redacts them first (see [`crate::secret`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    details: Map<String, Value>,
    /// Set by the execution gate on a failure that may go away by itself (cannot connect,
    /// connection lost, a 5xx answer), which the engine retries for actions safe to repeat.
    transient: bool,
}

/// `Result` with cpi's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            details: Map::new(),
            transient: false,
        }
    }

    /// Marks the error as transient: trying again later may succeed.
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// Whether the failure may go away by itself: a rate limit, a timeout, or one the gate
    /// marked [`Error::transient`].
    pub fn is_transient(&self) -> bool {
        self.transient || self.kind.is_transient()
    }

    /// Shorthand for a [`ErrorKind::Validation`] error.
    pub fn validation(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Validation, message)
    }

    /// Shorthand for a [`ErrorKind::Provider`] error.
    pub fn provider(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Provider, message)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for an [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// Adds one `details` entry (e.g. the parameter or field concerned).
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// The same error in another category (a provider's error rule recategorizing it).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Prefixes the message with where the error happened (provider and action).
    pub fn context(mut self, provider: &str, action: &str) -> Self {
        self.details
            .entry("provider")
            .or_insert_with(|| Value::from(provider));
        self.details
            .entry("action")
            .or_insert_with(|| Value::from(action));
        self
    }

    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the category prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured details (parameter names, HTTP status, retry-after, ...).
    pub fn details(&self) -> &Map<String, Value> {
        &self.details
    }

    /// Rewrites message and details through `f` (used to redact secrets).
    pub fn map_text(mut self, f: impl Fn(&str) -> String) -> Self {
        self.message = f(&self.message);
        for value in self.details.values_mut() {
            map_strings(value, &f);
        }
        self
    }

    /// The §10.2 error response: `{"error": {"code", "message", "details"}}`.
    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.kind.code().into());
        error.insert("message".into(), self.message.clone().into());
        if !self.details.is_empty() {
            error.insert("details".into(), Value::Object(self.details.clone()));
        }
        let mut outer = Map::new();
        outer.insert("error".into(), Value::Object(error));
        Value::Object(outer)
    }
}

fn map_strings(value: &mut Value, f: &impl Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| map_strings(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| map_strings(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_follows_section_10_2() {
        let err = Error::new(ErrorKind::ResourceNotFound, "Worker 'wrk-1' was not found")
            .with_detail("worker_id", "wrk-1");
        assert_eq!(
            err.to_json(),
            serde_json::json!({"error": {"code": "ResourceNotFoundError",
                "message": "Worker 'wrk-1' was not found", "details": {"worker_id": "wrk-1"}}})
        );
    }
}
