//! The error categories: the six of §10.1 plus cpi's own, with their codes and exit codes.

use std::fmt;

/// The category an error belongs to: the six of §10.1 plus the ones cpi adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// An action, command or request ran past its deadline (HTTP 408/504).
    Timeout,
    /// A sandboxed provider asked for something it was not granted.
    CapabilityDenied,
    /// The provider file uses a feature cpi deliberately does not run.
    Unsupported,
    /// Local I/O or an invariant of cpi itself failed (never crosses the WIT boundary: a
    /// guest's internal error is a provider error there).
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

    /// The category's standard name (`"resource_not_found"`, ...); the WIT enum spells it
    /// with hyphens.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "authentication",
            ErrorKind::ResourceNotFound => "resource_not_found",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Validation => "validation",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Provider => "provider",
            ErrorKind::Timeout => "timeout",
            ErrorKind::CapabilityDenied => "capability_denied",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
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

    /// Whether a failure of this category may go away by itself (a rate limit, a timeout).
    /// Other failures are transient only when the executor says so (cannot connect, 5xx).
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::RateLimit | ErrorKind::Timeout)
    }

    /// Guesses the category from a CLI's error text (stderr) or an HTTP error body: see
    /// [`crate::classify_text`].
    pub fn from_error_text(text: &str) -> ErrorKind {
        crate::classify_text(text)
    }

    /// The category an HTTP error status stands for, before its body is read: see
    /// [`crate::classify_http`], which also reads the body.
    pub fn from_http_status(status: u16) -> ErrorKind {
        crate::classify::by_status(status)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Every category but `internal` is a case of the WIT's `error-category`.
    #[test]
    fn categories_match_the_wit_enum() {
        let wit = include_str!("../../../wit/provider.wit");
        let start = wit
            .find("enum error-category {")
            .expect("error-category enum");
        let body = &wit[start..start + wit[start..].find('}').expect("enum end")];
        let cases: Vec<&str> = body
            .lines()
            .skip(1)
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| !l.is_empty())
            .collect();
        let ours: Vec<String> = ErrorKind::ALL
            .iter()
            .filter(|k| **k != ErrorKind::Internal)
            .map(|k| k.as_str().replace('_', "-"))
            .collect();
        let mut sorted = cases.clone();
        sorted.sort();
        let mut ours_sorted = ours.clone();
        ours_sorted.sort();
        assert_eq!(sorted, ours_sorted);
    }
}
