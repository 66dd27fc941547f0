//! Secrets: which parameters are secret, and redaction of their values from any text.

use crate::provider::Provider;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Whether parameter `name` holds a secret: by the built-in naming rules (`api_key`,
/// `password`, `token`, `secret`, ...) or because the provider lists it in `secrets`.
pub fn is_secret_name(name: &str, provider: &Provider) -> bool {
    provider.secrets.iter().any(|s| s == name) || looks_secret(name)
}

/// The built-in naming rule.
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    const WORDS: [&str; 10] = [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "private_key",
        "credential",
        "auth_key",
    ];
    WORDS.iter().any(|w| lower.contains(w))
        || lower
            .split(['_', '-'])
            .any(|part| part == "pass" || part == "pwd")
}

/// How [`crate::exec::excerpt`] marks where it cut a text.
const CUT_MARK: &str = "… (";

/// Replaces secret values in text, including their JSON-escaped, percent-encoded and
/// shell-quoted forms.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values (empty values are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            let json = serde_json::to_string(&secret).expect("strings serialize");
            let encoded =
                percent_encoding::utf8_percent_encode(&secret, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            needles.push(json[1..json.len() - 1].to_string());
            needles.push(encoded);
            // As URLs and form bodies carry it (`-._~` stay as they are).
            needles.push(crate::template::encode_component(&secret));
            // As a `sh -c` script carries it (dry runs and logs show the script).
            needles.extend(crate::template::script_forms(&secret));
            needles.push(secret);
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor { needles }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`], including a secret cut short where
    /// an excerpt ends (its start would otherwise survive).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        if out.contains(CUT_MARK) {
            for needle in &self.needles {
                for (cut, _) in needle.char_indices().rev().filter(|&(at, _)| at > 0) {
                    let start = format!("{}{CUT_MARK}", &needle[..cut]);
                    if out.contains(&start) {
                        out = out.replace(&start, &format!("{REDACTED}{CUT_MARK}"));
                    }
                }
            }
        }
        out
    }

    /// Redacts every string inside a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) => *s = self.redact(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for name in [
            "api_key",
            "password",
            "access_token",
            "client_secret",
            "root_pass",
            "API_KEY",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["name", "ssh_key_id", "region", "passes", "worker_type"] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn redacts_url_shell_and_cut_forms() {
        let secret = "k-1/+ 'q' \"$\"";
        let r = Redactor::new([secret.to_string()]);
        for form in [
            crate::template::encode_component(secret),
            crate::template::script_forms(secret).join(" "),
        ] {
            assert!(!r.redact(&form).contains("k-1"), "{form}");
        }
        let long = format!("{}{secret}", "x".repeat(95));
        let cut = crate::exec::excerpt(&long, 100);
        assert!(
            cut.contains("k-1") && !r.redact(&cut).contains("k-1"),
            "{cut}"
        );
    }

    #[test]
    fn redacts_plain_escaped_and_encoded_forms() {
        let r = Redactor::new(["p@ss \"w\"".to_string()]);
        let text = "a p@ss \"w\" b p@ss \\\"w\\\" c p%40ss%20%22w%22";
        assert_eq!(r.redact(text), "a [REDACTED] b [REDACTED] c [REDACTED]");
    }
}
