//! The one error type every hook and host call shares.

use std::fmt;

/// A `Result` whose error is the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The standard error categories (§10.1 of the spec) plus the host's own.
///
/// The category decides the error type cpi reports and its exit code, so pick the most
/// specific one: a missing worker is [`ResourceNotFound`](ErrorCategory::ResourceNotFound),
/// not [`Provider`](ErrorCategory::Provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Credentials are missing, wrong or expired.
    Authentication,
    /// The worker (or other resource) does not exist.
    ResourceNotFound,
    /// The cloud refused because a quota or credit limit was reached.
    QuotaExceeded,
    /// A parameter or an input is invalid.
    Validation,
    /// The cloud asked the caller to slow down.
    RateLimit,
    /// Anything else that went wrong on the cloud's or the provider's side.
    Provider,
    /// A command or request took too long.
    Timeout,
    /// The host refused a command or request the user did not grant (set by the host).
    CapabilityDenied,
    /// The provider does not implement this hook or action.
    Unsupported,
}

impl ErrorCategory {
    /// The category's standard name (`"resource_not_found"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Authentication => "authentication",
            ErrorCategory::ResourceNotFound => "resource_not_found",
            ErrorCategory::QuotaExceeded => "quota_exceeded",
            ErrorCategory::Validation => "validation",
            ErrorCategory::RateLimit => "rate_limit",
            ErrorCategory::Provider => "provider",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::CapabilityDenied => "capability_denied",
            ErrorCategory::Unsupported => "unsupported",
        }
    }

    /// Guesses the category from a CLI's error text (stderr) or an HTTP error body, the same
    /// way cpi does for JSON providers: "not found" is
    /// [`ResourceNotFound`](ErrorCategory::ResourceNotFound), "quota" is
    /// [`QuotaExceeded`](ErrorCategory::QuotaExceeded), and so on; anything unrecognized is
    /// [`Provider`](ErrorCategory::Provider).
    pub fn from_error_text(text: &str) -> ErrorCategory {
        let t = text.to_ascii_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
        if any(&["rate limit", "too many requests", "throttl"]) {
            ErrorCategory::RateLimit
        } else if any(&["quota", "limit exceeded", "insufficient credit"]) {
            ErrorCategory::QuotaExceeded
        } else if any(&[
            "authentication",
            "unauthorized",
            "unauthenticated",
            "forbidden",
            "access denied",
            "invalid api key",
            "invalid token",
            "credentials",
        ]) {
            ErrorCategory::Authentication
        } else if any(&["not found", "does not exist", "no such", "unknown worker"]) {
            ErrorCategory::ResourceNotFound
        } else if any(&[
            "invalid argument",
            "invalid value",
            "validation",
            "usage:",
            "missing required",
        ]) {
            ErrorCategory::Validation
        } else {
            ErrorCategory::Provider
        }
    }

    /// The category an HTTP error status stands for (401/403 authentication, 404 not found,
    /// 400/422 validation, 429 rate limit, 408/504 timeout, anything else provider).
    pub fn from_http_status(status: u16) -> ErrorCategory {
        match status {
            401 | 403 => ErrorCategory::Authentication,
            404 => ErrorCategory::ResourceNotFound,
            400 | 422 => ErrorCategory::Validation,
            429 => ErrorCategory::RateLimit,
            408 | 504 => ErrorCategory::Timeout,
            _ => ErrorCategory::Provider,
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its standard category: what every hook returns and every host call fails
/// with.
///
/// ```
/// use cpi_guest_sdk::{Error, ErrorCategory};
///
/// let err = Error::not_found("worker 'w-1' does not exist");
/// assert_eq!(err.category, ErrorCategory::ResourceNotFound);
/// assert_eq!(err.to_string(), "worker 'w-1' does not exist");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure this is.
    pub category: ErrorCategory,
    /// A one-line, human-readable explanation.
    pub message: String,
}

impl Error {
    /// An error of any category.
    pub fn new(category: ErrorCategory, message: impl Into<String>) -> Error {
        Error {
            category,
            message: message.into(),
        }
    }

    /// Credentials are missing, wrong or expired.
    pub fn authentication(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::Authentication, message)
    }

    /// The resource does not exist.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::ResourceNotFound, message)
    }

    /// A quota or credit limit was reached.
    pub fn quota_exceeded(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::QuotaExceeded, message)
    }

    /// A parameter or input is invalid.
    pub fn validation(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::Validation, message)
    }

    /// The cloud is rate limiting.
    pub fn rate_limit(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::RateLimit, message)
    }

    /// Something failed on the cloud's or the provider's side.
    pub fn provider(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::Provider, message)
    }

    /// Something took too long.
    pub fn timeout(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::Timeout, message)
    }

    /// The hook or action is not implemented.
    pub fn unsupported(message: impl Into<String>) -> Error {
        Error::new(ErrorCategory::Unsupported, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Malformed JSON (from a CLI or an API) is the provider's failure.
impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Error {
        Error::provider(format!("invalid JSON: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_error_text_like_the_host() {
        let cases = [
            (
                "Error: not found: worker 'x'",
                ErrorCategory::ResourceNotFound,
            ),
            (
                "Error: authentication failed: bad key",
                ErrorCategory::Authentication,
            ),
            (
                "Error: quota exceeded: 10 workers",
                ErrorCategory::QuotaExceeded,
            ),
            (
                "rate limit exceeded, retry after 3 seconds",
                ErrorCategory::RateLimit,
            ),
            ("Error: invalid argument: --name", ErrorCategory::Validation),
            ("segfault", ErrorCategory::Provider),
        ];
        for (text, want) in cases {
            assert_eq!(ErrorCategory::from_error_text(text), want, "{text}");
        }
    }

    #[test]
    fn http_statuses_map_to_categories() {
        assert_eq!(
            ErrorCategory::from_http_status(404),
            ErrorCategory::ResourceNotFound
        );
        assert_eq!(
            ErrorCategory::from_http_status(401),
            ErrorCategory::Authentication
        );
        assert_eq!(
            ErrorCategory::from_http_status(429),
            ErrorCategory::RateLimit
        );
        assert_eq!(
            ErrorCategory::from_http_status(500),
            ErrorCategory::Provider
        );
    }

    #[test]
    fn json_errors_are_provider_errors() {
        let err: Error = serde_json::from_str::<serde_json::Value>("{")
            .unwrap_err()
            .into();
        assert_eq!(err.category, ErrorCategory::Provider);
        assert!(err.message.starts_with("invalid JSON"), "{}", err.message);
    }
}
