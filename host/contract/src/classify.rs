//! How an error's category is read from what a CLI printed or an HTTP server answered.

use crate::ErrorKind;

/// Words that mean "slow down": a rate limit that goes away by itself. Checked before quotas:
/// AWS says `RequestLimitExceeded` ("Request limit exceeded") and `Throttling` / "Rate
/// exceeded", S3 `SlowDown`.
const RATE_LIMIT: &[&str] = &[
    "rate limit",
    "ratelimit",
    "rate exceeded",
    "too many requests",
    "throttl",
    "requestlimitexceeded",
    "request limit exceeded",
    "slowdown",
    "slow down",
];

/// Words that mean a limit that stays until something changes: `InstanceLimitExceeded`,
/// Hetzner's `resource_limit_exceeded`, DigitalOcean's "will exceed your droplet limit".
const QUOTA: &[&str] = &[
    "quota",
    "limit exceeded",
    "limit_exceeded",
    "limitexceeded",
    "insufficient credit",
    "exceed your",
    "exceeds your",
    "exceeded your",
];

/// Words that mean missing, wrong or expired credentials (or a CLI asking to log in).
const AUTHENTICATION: &[&str] = &[
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
];

/// Words that mean something does not exist.
const NOT_FOUND: &[&str] = &[
    "not found",
    "not_found",
    "could not find",
    "does not exist",
    "no such",
    "unknown worker",
];

/// Words that mean the request itself was wrong.
const VALIDATION: &[&str] = &[
    "invalid argument",
    "invalid value",
    "validation",
    "usage:",
    "missing required",
];

/// Guesses the category from a CLI's error text (stderr) or an HTTP error body; anything
/// unrecognized is [`ErrorKind::Provider`].
pub fn classify_text(text: &str) -> ErrorKind {
    let t = text.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if any(RATE_LIMIT) {
        ErrorKind::RateLimit
    } else if any(QUOTA) {
        ErrorKind::QuotaExceeded
    } else if any(AUTHENTICATION) {
        ErrorKind::Authentication
    } else if any(NOT_FOUND) {
        ErrorKind::ResourceNotFound
    } else if any(VALIDATION) {
        ErrorKind::Validation
    } else {
        ErrorKind::Provider
    }
}

/// Whether a text says that something does not exist.
pub fn says_not_found(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    NOT_FOUND.iter().any(|w| t.contains(w))
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

/// The category a status stands for on its own: 401/403 authentication, 404 not found,
/// 400/422 validation, 429 rate limit, 408/504 timeout, anything else provider.
pub(crate) fn by_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Authentication,
        404 => ErrorKind::ResourceNotFound,
        400 | 422 => ErrorKind::Validation,
        429 => ErrorKind::RateLimit,
        408 | 504 => ErrorKind::Timeout,
        _ => ErrorKind::Provider,
    }
}

/// The category of a non-2xx answer: by its status, corrected by what `said` (the reason
/// phrase and the body) says: a rate limit (AWS answers `RequestLimitExceeded` with 503, GCE
/// `rateLimitExceeded` with 403), a quota (Hetzner's 403 `resource_limit_exceeded`,
/// DigitalOcean's 422 "will exceed your droplet limit"), or, for a 500, a resource that does
/// not exist (Proxmox).
pub fn classify_http(status: u16, said: &str) -> ErrorKind {
    let by_status = by_status(status);
    match classify_text(said) {
        ErrorKind::RateLimit => ErrorKind::RateLimit,
        ErrorKind::QuotaExceeded if status != 429 => ErrorKind::QuotaExceeded,
        _ if status == 500 && says_not_found(said) => ErrorKind::ResourceNotFound,
        _ => by_status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_real_clis_and_apis_say() {
        for (text, want) in [
            ("Error: worker 'x' not found", ErrorKind::ResourceNotFound),
            ("Error: authentication failed", ErrorKind::Authentication),
            ("Error: quota exceeded", ErrorKind::QuotaExceeded),
            ("segfault", ErrorKind::Provider),
            (
                "An error occurred (RequestLimitExceeded) when calling the RunInstances \
                 operation: Request limit exceeded.",
                ErrorKind::RateLimit,
            ),
            ("Rate exceeded", ErrorKind::RateLimit),
            ("<Code>SlowDown</Code>", ErrorKind::RateLimit),
            (
                "An error occurred (InstanceLimitExceeded): You have requested more instances",
                ErrorKind::QuotaExceeded,
            ),
            (
                "ERROR: Please run 'az login' to setup account.",
                ErrorKind::Authentication,
            ),
            (
                r#"{"error": {"code": "resource_not_found"}}"#,
                ErrorKind::ResourceNotFound,
            ),
        ] {
            assert_eq!(classify_text(text), want, "{text}");
        }
        assert_eq!(
            retry_after_in_text("rate limit, retry after 3 seconds"),
            Some(3)
        );
    }

    #[test]
    fn http_answers_are_classified_by_status_then_body() {
        assert_eq!(classify_http(404, ""), ErrorKind::ResourceNotFound);
        assert_eq!(classify_http(503, "Rate exceeded"), ErrorKind::RateLimit);
        assert_eq!(
            classify_http(403, "resource_limit_exceeded"),
            ErrorKind::QuotaExceeded
        );
        assert_eq!(classify_http(429, "quota"), ErrorKind::RateLimit);
        assert_eq!(
            classify_http(500, "VM 100 not found"),
            ErrorKind::ResourceNotFound
        );
        assert_eq!(classify_http(504, ""), ErrorKind::Timeout);
        assert_eq!(classify_http(408, ""), ErrorKind::Timeout);
        assert_eq!(classify_http(500, ""), ErrorKind::Provider);
    }
}
