//! Execution: the only code in cpi that causes side effects (processes, HTTP requests), all
//! of it behind one [`Gate`].

pub mod command;
pub mod gate;
pub mod http;

pub use gate::{Gate, Scope};

use std::time::Duration;

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

/// Text classification is the contract's, shared with the guest SDK.
pub use cpi_contract::{classify_text, retry_after_in_text, says_not_found};

pub(crate) use cpi_contract::excerpt;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

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
