//! Secrets: which parameters are secret, and redaction of their values from any text.

use crate::provider::Provider;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Whether parameter `name` holds a secret: its declaration says `"secret": true`, the
/// provider lists it in `secrets`, or it follows the built-in naming rules ([`looks_secret`])
/// and neither its declaration (`"secret": false`) nor `not_secret` says otherwise. `secrets`
/// wins over `not_secret` (`cpi validate` flags a name in both).
pub fn is_secret_name(name: &str, provider: &Provider) -> bool {
    let declared = provider.parameters.get(name).and_then(|d| d.secret);
    if declared == Some(true) || provider.secrets.iter().any(|s| s == name) {
        return true;
    }
    if declared == Some(false) {
        return false;
    }
    !provider.not_secret.iter().any(|s| s == name) && looks_secret(name)
}

/// The built-in naming rule: `password`, `passwd`, `secret`, `token`, `api_key`, `apikey`,
/// `access_key`, `private_key`, `credential`, `auth_key` anywhere in the name, or a `pass` /
/// `pwd` word — except names ending in `_file`, `_path` or `_dir`, which hold where a secret
/// lives (`credentials_file`, `private_key_path`), not the secret.
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if ["_file", "_path", "_dir"]
        .iter()
        .any(|suffix| lower.ends_with(suffix))
    {
        return false;
    }
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

/// Secret values shorter than this many characters are not replaced inside longer text: a
/// one-letter `api_token=x` would otherwise turn "exactly" into "e[REDACTED]actly" and mangle
/// every id and message that happens to contain the letter. Such values protect nothing
/// anyway; they are still redacted where they are the whole text (a JSON string equal to the
/// secret, a `--dry-run` parameter value).
pub const MIN_SUBSTRING_LEN: usize = 4;

/// How [`crate::exec::excerpt`] marks where it cut a text.
const CUT_MARK: &str = "… (";

/// Replaces secret values in text, including their JSON-escaped, percent-encoded and
/// shell-quoted forms. Used only on what is shown (errors, logs, dry runs, printed results):
/// values passed from one step to the next are never redacted.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Forms replaced wherever they occur, longest first.
    needles: Vec<String>,
    /// Secrets shorter than [`MIN_SUBSTRING_LEN`]: replaced only when they are the whole text.
    whole: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values (empty values are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut needles = Vec::new();
        let mut whole = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            if secret.chars().count() < MIN_SUBSTRING_LEN {
                whole.push(secret);
                continue;
            }
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
        Redactor { needles, whole }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty() && self.whole.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`], including a secret cut short where
    /// an excerpt ends (its start would otherwise survive). A secret shorter than
    /// [`MIN_SUBSTRING_LEN`] is replaced only when it is the whole text.
    pub fn redact(&self, text: &str) -> String {
        if self.whole.iter().any(|w| w == text) {
            return REDACTED.to_string();
        }
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
        for name in [
            "name",
            "ssh_key_id",
            "region",
            "passes",
            "worker_type",
            // Where a secret lives is not the secret.
            "credentials_file",
            "private_key_path",
            "token_dir",
            "API_TOKEN_FILE",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn providers_can_declare_names_secret_or_not() {
        let p = Provider::from_json(
            r#"{"name":"p","type":"command","secrets":["ticket","both"],
                "not_secret":["token_name","both"],"actions":{}}"#,
            std::path::Path::new("p.json"),
        )
        .unwrap();
        assert!(!is_secret_name("token_name", &p));
        assert!(is_secret_name("api_token", &p));
        assert!(is_secret_name("ticket", &p));
        // `secrets` wins a contradiction: hiding too much is the safe mistake.
        assert!(is_secret_name("both", &p));
    }

    #[test]
    fn short_secrets_are_not_cut_out_of_words() {
        let r = Redactor::new(["x".to_string(), "abc".to_string()]);
        assert_eq!(r.redact("exactly"), "exactly");
        assert_eq!(r.redact("abcdef x"), "abcdef x");
        // Where the value is the whole text it is still hidden.
        assert_eq!(r.redact("x"), REDACTED);
        let mut v = serde_json::json!({"token": "abc", "word": "exactly"});
        r.redact_json(&mut v);
        assert_eq!(v, serde_json::json!({"token": REDACTED, "word": "exactly"}));
        // From four characters on, a value is redacted wherever it occurs.
        let r = Redactor::new(["abcd".to_string()]);
        assert_eq!(r.redact("xabcdx"), "x[REDACTED]x");
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
