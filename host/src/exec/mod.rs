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
pub fn classify_text(text: &str) -> ErrorKind {
    let t = text.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if any(&["rate limit", "too many requests", "throttl"]) {
        ErrorKind::RateLimit
    } else if any(&["quota", "limit exceeded", "insufficient credit"]) {
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
    ]) {
        ErrorKind::Authentication
    } else if any(&["not found", "does not exist", "no such", "unknown worker"]) {
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
}
