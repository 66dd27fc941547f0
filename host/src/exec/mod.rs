//! Execution: the only code in cpi that causes side effects (processes, HTTP requests).

pub mod command;
pub mod http;

use std::time::Duration;

use crate::error::ErrorKind;

/// Limits applied to every command and request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock limit for one command or request.
    pub timeout: Duration,
    /// Largest stdout / response body accepted, in bytes.
    pub max_output: usize,
    /// Largest stderr kept, in bytes (the rest is dropped, not an error).
    pub max_stderr: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(120),
            max_output: 16 << 20,
            max_stderr: 64 << 10,
        }
    }
}

/// Guesses the error category from a CLI's error text (stderr) or an HTTP error body.
///
/// Throttling is checked before quotas: AWS says `RequestLimitExceeded` ("Request limit
/// exceeded") and `Throttling` / "Rate exceeded" for a rate limit that goes away by itself,
/// while `InstanceLimitExceeded`, Hetzner's `resource_limit_exceeded` and DigitalOcean's "will
/// exceed your droplet limit" are quotas.
pub fn classify_text(text: &str) -> ErrorKind {
    let t = text.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if any(&[
        "rate limit",
        "ratelimit",
        "rate exceeded",
        "too many requests",
        "throttl",
        "requestlimitexceeded",
        "request limit exceeded",
        "slowdown",
        "slow down",
    ]) {
        ErrorKind::RateLimit
    } else if any(&[
        "quota",
        "limit exceeded",
        "limit_exceeded",
        "limitexceeded",
        "insufficient credit",
        "exceed your",
        "exceeds your",
        "exceeded your",
    ]) {
        ErrorKind::QuotaExceeded
    } else if any(&[
        "authentication",
        "unauthorized",
        "unauthenticated",
        "forbidden",
        "access denied",
        "invalid api key",
        "invalid token",
        "credentials",
        "az login",
        "gcloud auth login",
        "not logged in",
    ]) {
        ErrorKind::Authentication
    } else if says_not_found(&t) {
        ErrorKind::ResourceNotFound
    } else if any(&[
        "invalid argument",
        "invalid value",
        "validation",
        "usage:",
        "missing required",
    ]) {
        ErrorKind::Validation
    } else {
        ErrorKind::Provider
    }
}

/// Whether a text says that something does not exist.
pub fn says_not_found(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "not found",
        "not_found",
        "could not find",
        "does not exist",
        "no such",
        "unknown worker",
    ]
    .iter()
    .any(|w| t.contains(w))
}

/// The `retry after N seconds` hint in an error text, if any.
pub fn retry_after_in_text(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("retry after")? + "retry after".len();
    lower[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Keeps at most `max` bytes of `text` (on a character boundary), marking the cut.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_cli_error_texts() {
        assert_eq!(
            classify_text("Error: worker 'x' not found"),
            ErrorKind::ResourceNotFound
        );
        assert_eq!(
            classify_text("Error: authentication failed"),
            ErrorKind::Authentication
        );
        assert_eq!(
            classify_text("Error: quota exceeded"),
            ErrorKind::QuotaExceeded
        );
        let rl = "Error: rate limit exceeded, retry after 3 seconds";
        assert_eq!(classify_text(rl), ErrorKind::RateLimit);
        assert_eq!(retry_after_in_text(rl), Some(3));
        assert_eq!(classify_text("segfault"), ErrorKind::Provider);
    }

    #[test]
    fn classifies_what_real_clis_and_apis_say() {
        for (text, want) in [
            // AWS throttling is a rate limit (retryable), not a quota.
            (
                "An error occurred (RequestLimitExceeded) when calling the RunInstances \
                 operation: Request limit exceeded.",
                ErrorKind::RateLimit,
            ),
            (
                "An error occurred (Throttling) when calling the DescribeInstances operation \
                 (reached max retries: 4): Rate exceeded",
                ErrorKind::RateLimit,
            ),
            ("Rate exceeded", ErrorKind::RateLimit),
            (
                "An error occurred (InstanceLimitExceeded) when calling the RunInstances \
                 operation: You have requested more instances (21) than your current instance \
                 limit of 20 allows",
                ErrorKind::QuotaExceeded,
            ),
            (
                "ERROR: Please run 'az login' to setup account.",
                ErrorKind::Authentication,
            ),
            (
                r#"{"error": {"code": "resource_limit_exceeded", "message": "server limit reached"}}"#,
                ErrorKind::QuotaExceeded,
            ),
            (
                r#"{"id": "unprocessable_entity", "message": "creating this/these droplet(s) will exceed your droplet limit"}"#,
                ErrorKind::QuotaExceeded,
            ),
            (
                "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist",
                ErrorKind::ResourceNotFound,
            ),
        ] {
            assert_eq!(classify_text(text), want, "{text}");
        }
    }
}
