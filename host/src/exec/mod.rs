//! Execution: the only code in cpi that causes side effects (processes, HTTP requests), all
//! of it behind one [`Gate`].

pub mod command;
pub mod gate;
mod group;
pub mod http;

pub use gate::{Gate, Scope};
pub use group::{INTERRUPTS, kill_all as kill_running_commands};

use std::time::Duration;

use regex::Regex;

use crate::error::{Error, ErrorKind};
use crate::provider::ErrorRule;

/// Limits applied to every command and request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock limit for one command or request.
    pub timeout: Duration,
    /// Largest stdout / response body accepted, in bytes.
    pub max_output: usize,
    /// Largest stderr kept, in bytes (the rest is dropped, not an error).
    pub max_stderr: usize,
    /// Largest file the command may write, in bytes (`RLIMIT_FSIZE`: past it the write fails
    /// and the writer gets `SIGXFSZ`), for commands that write what a stranger sends (a
    /// clone); `None` leaves cpi's own limit.
    pub max_file_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(120),
            max_output: 16 << 20,
            max_stderr: 64 << 10,
            max_file_bytes: None,
        }
    }
}

/// A provider's own reading of its platform's error messages (`error_rules`), compiled: an
/// ordered list checked against a failed command's stderr and stdout, or an HTTP error's body
/// and reason phrase, before the built-in heuristics of [`classify_text`]. The first rule that
/// matches decides.
#[derive(Debug, Clone, Default)]
pub struct ErrorRules {
    // Shared: an action's rules are chained with its provider's on every call, and cloning a
    // compiled regex builds its match cache again.
    rules: Vec<std::sync::Arc<CompiledErrorRule>>,
}

#[derive(Debug, Clone)]
struct CompiledErrorRule {
    when: Regex,
    kind: ErrorKind,
    exit_code: Option<i32>,
}

impl ErrorRules {
    /// Compiles rules; a bad one comes back with its index: a regex that does not compile,
    /// or one that matches the empty text (it would match every error).
    pub fn compile(rules: &[ErrorRule]) -> std::result::Result<ErrorRules, (usize, String)> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let when = crate::parse::compile_regex(&rule.when)
                .map_err(|e| (i, format!("invalid regex {:?}: {e}", rule.when)))?;
            if when.is_match("") {
                return Err((
                    i,
                    format!(
                        "the regex {:?} matches the empty text, so it would match every error",
                        rule.when
                    ),
                ));
            }
            compiled.push(std::sync::Arc::new(CompiledErrorRule {
                when,
                kind: rule.category.kind(),
                exit_code: rule.exit_code,
            }));
        }
        Ok(ErrorRules { rules: compiled })
    }

    /// These rules followed by `later` (an action's rules, then its provider's).
    pub fn then(&self, later: &ErrorRules) -> ErrorRules {
        ErrorRules {
            rules: self.rules.iter().chain(&later.rules).cloned().collect(),
        }
    }

    /// The category the first matching rule gives a failure with `status` (exit or HTTP
    /// status) that said `texts`, and the rule's regex.
    pub fn classify(&self, status: i32, texts: &[&str]) -> Option<(ErrorKind, &str)> {
        self.rules
            .iter()
            .filter(|rule| rule.exit_code.is_none_or(|code| code == status))
            .find(|rule| texts.iter().any(|text| rule.when.is_match(text)))
            .map(|rule| (rule.kind, rule.when.as_str()))
    }

    /// `error` recategorized by the first matching rule (noting which in its details).
    pub(crate) fn apply(&self, error: Error, status: i32, texts: &[&str]) -> Error {
        match self.classify(status, texts) {
            Some((kind, when)) => error.with_kind(kind).with_detail("error_rule", when),
            None => error,
        }
    }
}

/// Text classification is the contract's, shared with the guest SDK.
pub use cpi_contract::{classify_text, retry_after_in_text, says_not_found};

pub(crate) use cpi_contract::excerpt;

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

    fn rules(json: serde_json::Value) -> ErrorRules {
        let rules: Vec<ErrorRule> = serde_json::from_value(json).unwrap();
        ErrorRules::compile(&rules).unwrap()
    }

    #[test]
    fn error_rules_decide_in_order_and_only_for_their_exit_code() {
        let r = rules(serde_json::json!([
            {"when": "^error: failed to get domain '", "category": "ResourceNotFoundError"},
            {"when": "Domain not found", "category": "ResourceNotFoundError", "exit_code": 1},
            {"when": "failed", "category": "ProviderError"}
        ]));
        let said = "error: failed to get domain 'nope'";
        // The built-in heuristics do not know this wording.
        assert_eq!(classify_text(said), ErrorKind::Provider);
        assert_eq!(
            r.classify(1, &["", said]),
            Some((
                ErrorKind::ResourceNotFound,
                "^error: failed to get domain '"
            ))
        );
        let lookup = "error: Domain not found: no domain with matching name 'x'";
        assert_eq!(
            r.classify(1, &[lookup]).unwrap().0,
            ErrorKind::ResourceNotFound
        );
        assert_eq!(r.classify(2, &[lookup]), None);
        assert_eq!(r.classify(1, &["all good"]), None);
        // An action's rules come before its provider's.
        let own = rules(serde_json::json!([{"when": "failed", "category": "QuotaExceededError"}]));
        assert_eq!(
            own.then(&r).classify(1, &[said]).unwrap().0,
            ErrorKind::QuotaExceeded
        );
    }

    #[test]
    fn error_rules_refuse_bad_and_empty_matching_regexes() {
        let compile = |json: serde_json::Value| {
            let rules: Vec<ErrorRule> = serde_json::from_value(json).unwrap();
            ErrorRules::compile(&rules).unwrap_err()
        };
        let (i, why) = compile(serde_json::json!([
            {"when": "ok", "category": "ProviderError"},
            {"when": "(x", "category": "ProviderError"}
        ]));
        assert_eq!(i, 1);
        assert!(why.contains("invalid regex"), "{why}");
        let (_, why) = compile(serde_json::json!([{"when": "x*", "category": "ProviderError"}]));
        assert!(why.contains("matches the empty text"), "{why}");
        let unknown: std::result::Result<Vec<ErrorRule>, _> =
            serde_json::from_value(serde_json::json!([{"when": "x", "category": "NotFound"}]));
        assert!(unknown.is_err());
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
