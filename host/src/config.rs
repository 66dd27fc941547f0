//! The config file, `cpi.toml`: per-provider parameter values (`[providers.NAME]` tables).
//!
//! Secrets belong in the environment or in a file only their owner can read, never in
//! provider files:
//!
//! ```toml
//! [providers.hetzner]
//! location = "fsn1"
//! api_token = { env = "HCLOUD_TOKEN" }              # read from the environment
//! # api_token = { file = "~/.config/cpi/hcloud" }   # or from a file with mode 0600
//! ```
//!
//! A secret file that group or others can read is refused, and so is a literal secret value in
//! a config file that group or others can read; each error says which file and how to fix it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Parsed config: provider name → parameter values (secret references still unresolved).
#[derive(Debug, Clone, Default)]
pub struct Config {
    providers: Map<String, Value>,
    /// `[serve.allow]`: provider name → the parameters a `cpi serve` request may set.
    serve_allow: std::collections::BTreeMap<String, Vec<String>>,
    /// `provider_dirs`: extra provider directories the user chose (`~/x` and relative paths
    /// resolved like secret files).
    provider_dirs: Vec<PathBuf>,
    /// The file it came from (secret files are relative to its directory).
    path: Option<PathBuf>,
    /// The file's permission bits when group or others may read it.
    shared: Option<u32>,
}

/// The default config path: `$XDG_CONFIG_HOME/cpi/cpi.toml`, or the older `config.toml`
/// there when only that exists.
pub fn default_path() -> Option<PathBuf> {
    let dir = dirs::config_dir()?.join("cpi");
    let legacy = dir.join("config.toml");
    let current = dir.join("cpi.toml");
    Some(if !current.exists() && legacy.exists() {
        legacy
    } else {
        current
    })
}

impl Config {
    /// Loads `path`; a missing file is an empty config unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<Config> {
        let text = match crate::fsread::read_string(path, crate::fsread::Kind::Config) {
            Ok(text) => text,
            Err(err) if err.is_missing() && !required => return Ok(Config::default()),
            Err(err) => return Err(err.into()),
        };
        let mut config = Config::parse(&text, path)?;
        config.path = Some(path.to_path_buf());
        config.shared = shared_mode(path);
        if let Some(key) = config.literal_secret(|_, key| crate::secret::looks_secret(key)) {
            return Err(config.shared_secret_error(&key));
        }
        Ok(config)
    }

    /// The parameter values configured for `provider`, refusing a literal value of one of its
    /// secrets (by name or declared in its `secrets`) when others can read the file.
    pub fn values_for(&self, provider: &crate::provider::Provider) -> Result<Map<String, Value>> {
        let declared = |name: &str, key: &str| {
            name == provider.name && crate::secret::is_secret_name(key, provider)
        };
        if let Some(key) = self.literal_secret(declared) {
            return Err(self.shared_secret_error(&key));
        }
        self.provider(&provider.name)
    }

    fn shared_secret_error(&self, key: &str) -> Error {
        let (path, mode) = (
            self.path
                .as_deref()
                .unwrap_or(Path::new("cpi.toml"))
                .display(),
            self.shared.unwrap_or(0),
        );
        Error::validation(format!(
            "config file {path} holds the secret `{key}` and group or others can read it \
             (mode {mode:04o}); run `chmod 600 {path}`, or move the value to \
             {{ env = \"NAME\" }} or {{ file = \"PATH\" }}"
        ))
        .with_detail("file", path.to_string())
    }

    /// Parses config text; `path` is named in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let bad = |why: String| Error::validation(format!("config file {}: {why}", path.display()));
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        let json = serde_json::to_value(&table).map_err(|e| bad(e.to_string()))?;
        let mut providers = Map::new();
        if let Some(section) = json.get("providers") {
            let Value::Object(map) = section else {
                return Err(bad("`providers` must be a table".into()));
            };
            for (name, values) in map {
                let Value::Object(values) = values else {
                    return Err(bad(format!(
                        "`providers.{name}` must be a table of parameter values"
                    )));
                };
                for (key, value) in values {
                    if let Value::Object(reference) = value {
                        SecretRef::parse(reference)
                            .map_err(|why| bad(format!("`providers.{name}.{key}`: {why}")))?;
                    }
                }
                providers.insert(name.clone(), Value::Object(values.clone()));
            }
        }
        let provider_dirs = match json.get("provider_dirs") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(String::from))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| bad("`provider_dirs` must be a list of directory paths".into()))?
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            Some(_) => {
                return Err(bad(
                    "`provider_dirs` must be a list of directory paths".into()
                ));
            }
        };
        Ok(Config {
            providers,
            serve_allow: parse_serve(json.get("serve")).map_err(bad)?,
            provider_dirs,
            path: None,
            shared: None,
        })
    }

    /// The parameters the operator lets a `cpi serve` request set for `provider`, when the
    /// config lists them (`[serve.allow] NAME = [...]`); `None` means the default rule
    /// ([`crate::exposed`]).
    pub fn serve_allow(&self, provider: &str) -> Option<&[String]> {
        self.serve_allow.get(provider).map(Vec::as_slice)
    }

    /// The `provider_dirs` list: `~/x` in the home directory, a relative path beside the
    /// config file.
    pub fn provider_dirs(&self) -> Vec<PathBuf> {
        self.provider_dirs
            .iter()
            .map(|dir| expand(&dir.to_string_lossy(), self.path.as_deref()))
            .collect()
    }

    /// The parameter values configured for `provider`, with `{ env }` and `{ file }`
    /// references resolved.
    pub fn provider(&self, provider: &str) -> Result<Map<String, Value>> {
        let Some(Value::Object(map)) = self.providers.get(provider) else {
            return Ok(Map::new());
        };
        let mut out = Map::new();
        for (key, value) in map {
            let resolved = match value {
                Value::Object(reference) => {
                    let at = format!("`providers.{provider}.{key}`");
                    let reference = SecretRef::parse(reference)
                        .map_err(|why| Error::validation(format!("{at}: {why}")))?;
                    Value::String(reference.resolve(&at, self.path.as_deref())?)
                }
                other => other.clone(),
            };
            out.insert(key.clone(), resolved);
        }
        Ok(out)
    }

    /// In a file others can read: the first `providers.NAME.KEY` for which `secret(NAME,
    /// KEY)` holds and whose value is written into the file itself.
    fn literal_secret(&self, secret: impl Fn(&str, &str) -> bool) -> Option<String> {
        self.shared?;
        self.providers.iter().find_map(|(name, values)| {
            values.as_object()?.iter().find_map(|(key, value)| {
                (!value.is_object() && secret(name, key)).then(|| format!("providers.{name}.{key}"))
            })
        })
    }
}

/// Reads the `[serve]` table: only `allow`, a table of provider name → list of names.
fn parse_serve(
    section: Option<&Value>,
) -> std::result::Result<std::collections::BTreeMap<String, Vec<String>>, String> {
    let mut out = std::collections::BTreeMap::new();
    let Some(section) = section else {
        return Ok(out);
    };
    let Value::Object(serve) = section else {
        return Err("`serve` must be a table".into());
    };
    if let Some(key) = serve.keys().find(|k| *k != "allow") {
        return Err(format!(
            "unknown key `serve.{key}` (expected `serve.allow`)"
        ));
    }
    let Some(allow) = serve.get("allow") else {
        return Ok(out);
    };
    let Value::Object(allow) = allow else {
        return Err("`serve.allow` must be a table of provider = [\"param\", …]".into());
    };
    for (provider, names) in allow {
        let list = names
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("`serve.allow.{provider}` must be a list of parameter names"))?;
        out.insert(provider.clone(), list);
    }
    Ok(out)
}

/// Where a secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SecretRef {
    Env(String),
    File(String),
}

impl SecretRef {
    fn parse(table: &Map<String, Value>) -> std::result::Result<SecretRef, String> {
        let hint = "expected { env = \"NAME\" } or { file = \"PATH\" }";
        if table.len() != 1 {
            return Err(hint.to_string());
        }
        match table.iter().next() {
            Some((k, Value::String(v))) if k == "env" && !v.is_empty() => {
                Ok(SecretRef::Env(v.clone()))
            }
            Some((k, Value::String(v))) if k == "file" && !v.is_empty() => {
                Ok(SecretRef::File(v.clone()))
            }
            _ => Err(hint.to_string()),
        }
    }

    fn resolve(&self, at: &str, config: Option<&Path>) -> Result<String> {
        match self {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                Error::validation(format!(
                    "{at} comes from the environment variable {name}, which is not set"
                ))
            }),
            SecretRef::File(raw) => {
                let path = expand(raw, config);
                if let Some(mode) = shared_mode(&path) {
                    return Err(Error::validation(format!(
                        "{at}: secret file {} can be read by group or others (mode {mode:04o}); \
                         run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    ))
                    .with_detail("file", path.display().to_string()));
                }
                let text = crate::fsread::read_string(&path, crate::fsread::Kind::Secret)
                    .map_err(|e| Error::validation(format!("{at}: {e}")))?;
                Ok(text.trim_end_matches(['\n', '\r']).to_string())
            }
        }
    }
}

/// `~/x` is in the home directory; a relative path is beside the config file.
fn expand(raw: &str, config: Option<&Path>) -> PathBuf {
    if let Some(rest) = raw.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    let path = PathBuf::from(raw);
    match config.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

/// The file's permission bits when group or others may read it (`None` when private, or
/// when permissions are not available on this platform).
fn shared_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_provider_tables() {
        let c = Config::parse(
            "[providers.truenas]\napi_url = \"http://x\"\nport = 8\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.provider("truenas").unwrap()["api_url"], "http://x");
        assert!(c.provider("other").unwrap().is_empty());
        assert_eq!(c.serve_allow("truenas"), None);
        let c = Config::parse(
            "[serve.allow]\ntruenas = [\"name\", \"verify_ssl\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.serve_allow("truenas").unwrap(), ["name", "verify_ssl"]);
        for bad in ["serve = 1", "[serve]\nport = 1", "[serve.allow]\nx = [1]"] {
            assert!(Config::parse(bad, Path::new("c.toml")).is_err(), "{bad}");
        }
        let err = Config::parse("providers = 3", Path::new("c.toml")).unwrap_err();
        assert!(err.message().contains("c.toml"));
        let err =
            Config::parse("[providers.x]\nk = { nope = 1 }", Path::new("c.toml")).unwrap_err();
        assert!(err.message().contains("providers.x.k"), "{err}");
    }

    #[cfg(unix)]
    fn write(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cpi.toml");
        write(
            &config,
            "[providers.h]\napi_token = { file = \"token\" }\n",
            0o644,
        );
        write(&dir.path().join("token"), "s3cr3t\n", 0o600);
        let c = Config::load(&config, true).unwrap();
        assert_eq!(c.provider("h").unwrap()["api_token"], "s3cr3t");
        write(&dir.path().join("token"), "s3cr3t\n", 0o644);
        let err = c.provider("h").unwrap_err();
        assert!(err.message().contains("chmod 600"), "{err}");
        assert!(err.message().contains("0644"), "{err}");
        assert!(!err.message().contains("s3cr3t"));
    }

    #[cfg(unix)]
    #[test]
    fn literal_secrets_need_a_private_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cpi.toml");
        write(&config, "[providers.h]\napi_token = \"s3cr3t\"\n", 0o644);
        let err = Config::load(&config, true).unwrap_err();
        assert!(err.message().contains("providers.h.api_token"), "{err}");
        assert!(!err.message().contains("s3cr3t"));
        write(&config, "[providers.h]\napi_token = \"s3cr3t\"\n", 0o600);
        let c = Config::load(&config, true).unwrap();
        assert_eq!(c.provider("h").unwrap()["api_token"], "s3cr3t");
        // A name only the provider declares secret is refused too, once the provider is known.
        let p = crate::provider::Provider::from_json(
            r#"{"name":"h","type":"command","secrets":["ticket"],"actions":{}}"#,
            Path::new("h.json"),
        )
        .unwrap();
        write(&config, "[providers.h]\nticket = \"s3cr3t\"\n", 0o644);
        let c = Config::load(&config, true).unwrap();
        let err = c.values_for(&p).unwrap_err();
        assert!(err.message().contains("providers.h.ticket"), "{err}");
        write(&config, "[providers.h]\nticket = \"s3cr3t\"\n", 0o600);
        let c = Config::load(&config, true).unwrap();
        assert_eq!(c.values_for(&p).unwrap()["ticket"], "s3cr3t");
    }

    #[test]
    fn env_references_name_the_missing_variable() {
        let c = Config::parse(
            "[providers.h]\napi_token = { env = \"CPI_TEST_SURELY_UNSET_42\" }\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let err = c.provider("h").unwrap_err();
        assert!(err.message().contains("CPI_TEST_SURELY_UNSET_42"), "{err}");
    }
}
