//! Typed errors mapped onto the standard's error categories (§10.1) plus cpi's own.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// The category an error belongs to: the six of §10.1 plus the ones cpi adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Credentials were missing, invalid or expired (HTTP 401/403).
    Authentication,
    /// The resource named by the request does not exist (HTTP 404).
    ResourceNotFound,
    /// A provider-imposed limit was reached.
    QuotaExceeded,
    /// The request or the provider file is invalid (missing parameter, bad value, bad rule).
    Validation,
    /// The provider throttled us (HTTP 429); `retry_after` is kept in the details.
    RateLimit,
    /// The provider failed or answered with something the parse rules cannot read.
    Provider,
    /// An action, command or request ran past its deadline.
    Timeout,
    /// A sandboxed provider asked for something it was not granted.
    CapabilityDenied,
    /// The provider file uses a feature cpi deliberately does not run.
    Unsupported,
    /// Local I/O or an invariant of cpi itself failed.
    Internal,
}

impl ErrorKind {
    /// The `code` string of the §10.2 error shape.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "AuthenticationError",
            ErrorKind::ResourceNotFound => "ResourceNotFoundError",
            ErrorKind::QuotaExceeded => "QuotaExceededError",
            ErrorKind::Validation => "ValidationError",
            ErrorKind::RateLimit => "RateLimitError",
            ErrorKind::Provider => "ProviderError",
            ErrorKind::Timeout => "TimeoutError",
            ErrorKind::CapabilityDenied => "CapabilityDeniedError",
            ErrorKind::Unsupported => "UnsupportedError",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// The process exit code the CLI uses for this category (documented in the README).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Validation => 10,
            ErrorKind::Authentication => 11,
            ErrorKind::ResourceNotFound => 12,
            ErrorKind::QuotaExceeded => 13,
            ErrorKind::RateLimit => 14,
            ErrorKind::Provider => 15,
            ErrorKind::Timeout => 16,
            ErrorKind::CapabilityDenied => 17,
            ErrorKind::Unsupported => 18,
            ErrorKind::Internal => 19,
        }
    }

    /// Every category, in exit-code order (for docs and tests).
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Validation,
        ErrorKind::Authentication,
        ErrorKind::ResourceNotFound,
        ErrorKind::QuotaExceeded,
        ErrorKind::RateLimit,
        ErrorKind::Provider,
        ErrorKind::Timeout,
        ErrorKind::CapabilityDenied,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

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
        }
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

    #[test]
    fn exit_codes_are_distinct() {
        let mut codes: Vec<u8> = ErrorKind::ALL.iter().map(|k| k.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert!(
            codes.iter().all(|&c| c > 2),
            "0-2 are success, failure and usage"
        );
    }
}
