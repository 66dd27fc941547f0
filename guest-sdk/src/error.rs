//! The one error type every hook and host call shares.

use std::fmt;

/// A `Result` whose error is the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The standard error categories (§10.1 of the spec) plus the host's own: the contract's
/// [`ErrorKind`](cpi_contract::ErrorKind), the very type cpi classifies with, so a guest and
/// the host read the same error text and HTTP answers the same way.
///
/// The category decides the error type cpi reports and its exit code, so pick the most
/// specific one: a missing worker is [`ResourceNotFound`](ErrorCategory::ResourceNotFound),
/// not [`Provider`](ErrorCategory::Provider). [`ErrorCategory::from_error_text`] reads a CLI's
/// error text and [`ErrorCategory::from_http_status`] an HTTP status, exactly as cpi does.
pub use cpi_contract::ErrorKind as ErrorCategory;

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
