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

/// The built-in naming rule: `password`, `passwd`, `passphrase`, `secret`, `token`,
/// `api_key`, `apikey`, `access_key`, `private_key`, `credential`, `auth_key`,
/// `authorization`, `session_id`, `sessionid`, `cookie` or `kubeconfig` anywhere in the name; a
/// name ending in `key` as a word (`ssh_key`, `encryption-key`, `key`); or a `pass`, `pwd`,
/// `pin` or `sas` word — except names ending in `_file`, `_path` or `_dir`, which hold where a
/// secret lives (`credentials_file`, `private_key_path`), not the secret.
///
/// A key's *name* or *id* (`ssh_key_name`, `ssh_key_id`, `ssh_keys` as a list of ids) is not
/// secret: only a name whose last word is `key` holds key material. Hiding too much is the
/// safe mistake; a provider lists a name in `not_secret` to show it.
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if ["_file", "_path", "_dir"]
        .iter()
        .any(|suffix| lower.ends_with(suffix))
    {
        return false;
    }
    const WORDS: [&str; 16] = [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "private_key",
        "credential",
        "auth_key",
        "authorization",
        "session_id",
        "sessionid",
        "cookie",
        "kubeconfig",
    ];
    let mut words = lower.split(['_', '-']);
    WORDS.iter().any(|w| lower.contains(w))
        || lower.split(['_', '-']).next_back() == Some("key")
        || words.any(|part| ["pass", "pwd", "pin", "sas"].contains(&part))
}

/// Secret values shorter than this many characters are not replaced inside longer text: a
/// one-letter `api_token=x` would otherwise turn "exactly" into "e[REDACTED]actly" and mangle
/// every id and message that happens to contain the letter. Such values protect nothing
/// anyway; they are still redacted where they are the whole text (a JSON string equal to the
/// secret, a `--dry-run` parameter value).
pub const MIN_SUBSTRING_LEN: usize = 4;

/// How [`crate::exec::excerpt`] marks where it cut a text.
const CUT_MARK: &str = "… (";

/// Replaces secret values in text, including their JSON-escaped, percent-encoded (either
/// case of hex digit, `+` or `%20` for a space), base64 (standard and URL-safe alphabets, with
/// and without padding, and inside a longer base64 text such as a `Basic` credential) and
/// shell-quoted forms, and the password of any URL's `user:password@` part. Used only on what
/// is shown (errors, logs, dry runs, printed results): values passed from one step to the
/// next are never redacted.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Shared: a redactor for the same secrets is built once per process (see
    /// [`Redactor::new`]), and cloning one costs a reference count.
    inner: std::sync::Arc<Needles>,
}

/// What a [`Redactor`] looks for.
#[derive(Debug, Default)]
struct Needles {
    /// Forms replaced wherever they occur, longest first.
    needles: Vec<String>,
    /// All needles in one regex (percent escapes matched in either case), longest first.
    pattern: Option<regex::Regex>,
    /// Secrets shorter than [`MIN_SUBSTRING_LEN`]: replaced only when they are the whole text.
    whole: Vec<String>,
}

/// Redactors already built, by their secret values: `cpi serve` answers many requests with
/// the same credentials, and one run builds a redactor for the same values several times.
/// Bounded: emptied when it reaches [`BUILT_CAP`] entries.
static BUILT: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<Vec<String>, Redactor>>,
> = std::sync::LazyLock::new(Default::default);

/// The most redactors [`BUILT`] keeps.
const BUILT_CAP: usize = 64;

/// `scheme://user:PASSWORD@`: the password is replaced whether or not it is a known secret.
static USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@\[\]]*:)[^/\s@]+@").expect("valid regex")
});

/// Base64 needles shorter than this are not used: a few characters of base64 occur by
/// chance in any long encoded text.
const MIN_BASE64_NEEDLE: usize = 6;

/// The base64 forms of `secret`: alone (padded and not), and as it appears at each of the
/// three alignments inside a longer encoded text (the characters that depend only on it).
fn base64_forms(secret: &[u8]) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = Vec::new();
    for (padded, bare) in [(STANDARD, STANDARD_NO_PAD), (URL_SAFE, URL_SAFE_NO_PAD)] {
        forms.push(padded.encode(secret));
        for shift in 0..3usize {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(secret);
            let text = bare.encode(&shifted);
            // Characters mixing in the bytes before (at the start) or after (at the end).
            let skip = (shift * 8).div_ceil(6);
            let keep = shifted.len() * 8 / 6;
            if let Some(inner) = text.get(skip..keep)
                && inner.len() >= MIN_BASE64_NEEDLE
            {
                forms.push(inner.to_string());
            }
        }
    }
    forms
}

/// The text forms a secret takes in what cpi shows.
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("strings serialize");
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let component = crate::template::encode_component(secret);
    let mut forms = vec![
        json[1..json.len() - 1].to_string(),
        // As form bodies and query strings carry a space.
        encoded.replace("%20", "+"),
        component.replace("%20", "+"),
        encoded,
        // As URLs and form bodies carry it (`-._~` stay as they are).
        component,
    ];
    // As a `sh -c` script carries it (dry runs and logs show the script).
    forms.extend(crate::template::script_forms(secret));
    forms.extend(base64_forms(secret.as_bytes()));
    forms.push(secret.to_string());
    forms
}

/// A regex matching `needle` literally, with every `%XX` escape in either case.
fn needle_regex(needle: &str) -> String {
    let mut out = String::new();
    let mut rest = needle;
    while let Some(at) = rest.find('%') {
        out.push_str(&regex::escape(&rest[..at]));
        let hex = rest
            .get(at + 1..at + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        match hex {
            Some(hex) => {
                out.push_str(&format!("%(?i:{hex})"));
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(&regex::escape(rest));
    out
}

impl Needles {
    /// The forms of `secrets` (none empty) and their regex.
    fn build(secrets: &[String]) -> Needles {
        let mut needles = Vec::new();
        let mut whole = Vec::new();
        for secret in secrets {
            if secret.chars().count() < MIN_SUBSTRING_LEN {
                whole.push(secret.clone());
                continue;
            }
            needles.extend(forms(secret));
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        let pattern = (!needles.is_empty()).then(|| {
            let alternation: Vec<String> = needles.iter().map(|n| needle_regex(n)).collect();
            regex::RegexBuilder::new(&alternation.join("|"))
                .size_limit(64 << 20)
                .build()
                .expect("escaped literals form a valid regex")
        });
        Needles {
            needles,
            pattern,
            whole,
        }
    }
}

impl Redactor {
    /// A redactor for these secret values (empty values are ignored). The same values give
    /// the same (shared) redactor: its regex is compiled once per process.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return Redactor::default();
        }
        if let Some(hit) = BUILT.lock().ok().and_then(|c| c.get(&secrets).cloned()) {
            return hit;
        }
        let redactor = Redactor {
            inner: std::sync::Arc::new(Needles::build(&secrets)),
        };
        if let Ok(mut cache) = BUILT.lock() {
            if cache.len() >= BUILT_CAP {
                cache.clear();
            }
            cache.insert(secrets, redactor.clone());
        }
        redactor
    }

    /// Whether there is no known secret to redact (URL passwords are still redacted).
    pub fn is_empty(&self) -> bool {
        self.inner.needles.is_empty() && self.inner.whole.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`], including a secret cut short where
    /// an excerpt ends (its start would otherwise survive), and every URL's password. A
    /// secret shorter than [`MIN_SUBSTRING_LEN`] is replaced only when it is the whole text.
    pub fn redact(&self, text: &str) -> String {
        if self.inner.whole.iter().any(|w| w == text) {
            return REDACTED.to_string();
        }
        let mut out = match &self.inner.pattern {
            Some(pattern) => pattern.replace_all(text, REDACTED).into_owned(),
            None => text.to_string(),
        };
        if out.contains("://") {
            out = USERINFO
                .replace_all(&out, format!("${{1}}{REDACTED}@").as_str())
                .into_owned();
        }
        if out.contains(CUT_MARK) {
            for needle in &self.inner.needles {
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
        match value {
            serde_json::Value::String(s) if !self.is_empty() || s.contains("://") => {
                *s = self.redact(s);
            }
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
    fn the_same_secrets_share_one_redactor() {
        let values = || {
            vec![
                "s3cr3t-value-1".to_string(),
                String::new(),
                "pw".to_string(),
            ]
        };
        let (a, b) = (Redactor::new(values()), Redactor::new(values()));
        assert!(std::sync::Arc::ptr_eq(&a.inner, &b.inner));
        assert_eq!(b.redact("key s3cr3t-value-1"), format!("key {REDACTED}"));
        assert_eq!(b.redact("pw"), REDACTED);
        let other = Redactor::new(vec!["another-secret".to_string()]);
        assert!(!std::sync::Arc::ptr_eq(&a.inner, &other.inner));
        assert_eq!(other.redact("s3cr3t-value-1"), "s3cr3t-value-1");
    }

    #[test]
    fn secret_names() {
        for name in [
            "api_key",
            "password",
            "access_token",
            "client_secret",
            "root_pass",
            "API_KEY",
            "passphrase",
            "ssh_key",
            "encryption-key",
            "key",
            "authorization",
            "session_id",
            "sas",
            "storage_sas",
            "pin",
            "kubeconfig",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "name",
            "ssh_key_id",
            "ssh_key_name",
            "ssh_keys",
            "keyboard",
            "pinned",
            "spin",
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
    fn redacts_base64_percent_case_plus_and_url_passwords() {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let secret = "s3cr3t value?>~";
        let r = Redactor::new([secret.to_string()]);
        let basic = STANDARD.encode(format!("admin:{secret}"));
        for text in [
            STANDARD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            format!("Authorization: Basic {basic}"),
            "s3cr3t%20value%3f%3e~".to_string(),
            "s3cr3t+value%3F%3E~".to_string(),
        ] {
            let shown = r.redact(&text);
            assert!(shown.contains(REDACTED), "{text} -> {shown}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        // A password in a URL is hidden whether or not it is a known secret.
        let none = Redactor::new(Vec::new());
        assert_eq!(
            none.redact("GET https://bob:hunter2@example.com/x failed"),
            "GET https://bob:[REDACTED]@example.com/x failed"
        );
        assert_eq!(none.redact("http://host:8080/a@b"), "http://host:8080/a@b");
        let mut v = serde_json::json!({"url": "ftp://u:p4ss@h/"});
        none.redact_json(&mut v);
        assert_eq!(v["url"], "ftp://u:[REDACTED]@h/");
    }

    #[test]
    fn redacts_plain_escaped_and_encoded_forms() {
        let r = Redactor::new(["p@ss \"w\"".to_string()]);
        let text = "a p@ss \"w\" b p@ss \\\"w\\\" c p%40ss%20%22w%22";
        assert_eq!(r.redact(text), "a [REDACTED] b [REDACTED] c [REDACTED]");
    }
}
