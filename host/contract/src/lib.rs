//! The contract cpi and its guests share: one definition of the error categories (codes and
//! exit codes), how a CLI's error text and an HTTP answer are classified, the standard
//! statuses and verbs, and the API version. The host's error kind and the guest SDK's error
//! category are this crate's [`ErrorKind`], so the two can never classify differently.
//!
//! No dependencies (serde only with the `serde` feature); builds for `wasm32-wasip2`.

mod classify;
mod kind;
pub mod verbs;

pub use classify::{classify_http, classify_text, retry_after_in_text, says_not_found};
pub use kind::ErrorKind;

/// How a JSON value's type is named in an error ("a string", "an array"), so host and guests
/// word type mismatches alike.
#[cfg(feature = "json")]
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Keeps at most `max` bytes of `text` (on a character boundary), marking the cut: how an
/// error quotes what a CLI or a server said.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// The `cpi:provider` WIT package version this contract describes (`wit/provider.wit`).
pub const API_VERSION: &str = "0.2.0";

/// Every `cpi:provider` version cpi runs: the released ones, frozen under `wit/vX.Y.Z/`, and
/// the current one ([`API_VERSION`], last).
pub const API_VERSIONS: [&str; 2] = ["0.1.0", API_VERSION];

/// The worker statuses of §6.1, plus `unknown` for values no table maps.
pub const WORKER_STATUSES: [&str; 9] = [
    "running",
    "stopped",
    "starting",
    "stopping",
    "provisioning",
    "terminating",
    "error",
    "suspended",
    "unknown",
];

/// The authentication statuses of §6.2, plus `unknown`.
pub const AUTH_STATUSES: [&str; 6] = [
    "authenticated",
    "unauthenticated",
    "expired",
    "invalid",
    "insufficient_permissions",
    "unknown",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "json")]
    #[test]
    fn json_kinds_read_as_english() {
        use serde_json::json;
        let named: Vec<_> = [
            json!(null),
            json!(true),
            json!(1),
            json!("x"),
            json!([]),
            json!({}),
        ]
        .iter()
        .map(json_kind)
        .collect();
        assert_eq!(
            named,
            [
                "null",
                "a boolean",
                "a number",
                "a string",
                "an array",
                "an object"
            ]
        );
    }

    /// The version here is the one `wit/provider.wit` declares.
    #[test]
    fn api_version_matches_the_wit_package() {
        let wit = include_str!("../../../wit/provider.wit");
        let declared = format!("package cpi:provider@{API_VERSION};");
        assert!(
            wit.lines().any(|l| l.trim() == declared),
            "wit/provider.wit does not declare {declared}"
        );
    }

    /// Each earlier version is frozen under `wit/vX.Y.Z/` and declares that version.
    #[test]
    fn released_versions_are_frozen_under_wit() {
        let frozen = [("0.1.0", include_str!("../../../wit/v0.1.0/provider.wit"))];
        for ((version, wit), listed) in frozen.iter().zip(API_VERSIONS) {
            assert_eq!(*version, listed);
            let declared = format!("package cpi:provider@{version};");
            assert!(
                wit.lines().any(|l| l.trim() == declared),
                "wit/v{version}/provider.wit does not declare {declared}"
            );
        }
        assert_eq!(API_VERSIONS.last(), Some(&API_VERSION));
    }

    /// The WIT's worker statuses are the standard ones.
    #[test]
    fn worker_statuses_match_the_wit_enum() {
        let wit = include_str!("../../../wit/provider.wit");
        let start = wit
            .find("enum worker-status {")
            .expect("worker-status enum");
        let body = &wit[start..start + wit[start..].find('}').expect("enum end")];
        for status in WORKER_STATUSES {
            assert!(
                body.contains(&format!("{status},")),
                "{status} not in the WIT"
            );
        }
    }
}
