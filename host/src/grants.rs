//! Grants: the capabilities a user gave a component provider, stored per provider in the user
//! config dir and pinned to the component's sha256, so a changed component loses its grants.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::policy::Capabilities;

/// What the user approved for one provider: pinned to its files' digests and its path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Provider name.
    pub provider: String,
    /// `json` (a JSON provider) or `component` (a component, with or without a JSON file).
    #[serde(default)]
    pub kind: String,
    /// The canonical path of the provider file approved (the same bytes elsewhere do not match).
    #[serde(default)]
    pub path: String,
    /// The sha256 of the provider's JSON file, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_sha256: Option<String>,
    /// The sha256 of the component the grant was made for (empty for a JSON provider).
    #[serde(default)]
    pub component_sha256: String,
    /// The capability request reviewed (JSON providers), kept to show what grew on a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<crate::request::Request>,
    /// The sha256 of that request's canonical JSON.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities_sha256: String,
    /// The granted commands and HTTP origins (never more than the manifest requested).
    #[serde(flatten)]
    pub capabilities: Capabilities,
    /// Names of environment variables passed to the commands it runs (never `LD_*`).
    #[serde(default)]
    pub env: Vec<String>,
}

/// The directory of grant files (`$XDG_CONFIG_HOME/cpi/grants`).
#[derive(Debug, Clone)]
pub struct GrantStore {
    dir: PathBuf,
}

impl GrantStore {
    /// A store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> GrantStore {
        GrantStore { dir: dir.into() }
    }

    /// The default store, in the user config dir.
    pub fn default_store() -> Option<GrantStore> {
        dirs::config_dir().map(|d| GrantStore::new(d.join("cpi").join("grants")))
    }

    fn file(&self, provider: &str) -> Result<PathBuf> {
        if provider.is_empty()
            || !provider
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::validation(format!(
                "invalid provider name for a grant: {provider:?}"
            )));
        }
        Ok(self.dir.join(format!("{provider}.json")))
    }

    /// The grant for `provider`, if any.
    pub fn load(&self, provider: &str) -> Result<Option<Grant>> {
        let path = self.file(provider)?;
        // Stored trust: only the user's own file, not a symlink, not writable by others, in
        // a directory only the user can write.
        let denied = |e: crate::fsread::ReadError| {
            Error::new(ErrorKind::CapabilityDenied, format!("grant: {e}"))
        };
        match crate::fsread::check_private_dir(&self.dir) {
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => return Err(denied(e)),
            Ok(()) => {}
        }
        let bytes = match crate::fsread::read_private(&path, crate::fsread::Kind::Stored) {
            Ok(bytes) => bytes,
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => return Err(denied(e)),
        };
        let grant: Grant = serde_json::from_slice(&bytes).map_err(|e| {
            Error::validation(format!("grant file {} is invalid: {e}", path.display()))
        })?;
        // A grant file is only ever written by `save`, which refuses these names: one that
        // holds them was edited by hand (`LD_PRELOAD` would reach every granted command).
        check_env_names(&grant.env).map_err(|e| {
            Error::new(
                ErrorKind::CapabilityDenied,
                format!("grant file {}: {}", path.display(), e.message()),
            )
        })?;
        Ok(Some(grant))
    }

    /// Writes a grant (mode 0600, atomically).
    pub fn save(&self, grant: &Grant) -> Result<PathBuf> {
        let path = self.file(&grant.provider)?;
        check_env_names(&grant.env)?;
        let io = |e: std::io::Error| {
            Error::internal(format!("cannot write grant file {}: {e}", path.display()))
        };
        if fs::symlink_metadata(&self.dir).is_err() {
            if let Some(parent) = self.dir.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&self.dir)
                .map_err(io)?;
        }
        // Never chmod-ed private: grants already there may have been written by someone else.
        crate::fsread::check_private_dir(&self.dir)
            .map_err(|e| Error::new(ErrorKind::CapabilityDenied, format!("grants: {e}")))?;
        let text = serde_json::to_string_pretty(grant).expect("grants serialize");
        crate::fswrite::write_atomic(&path, text.as_bytes()).map_err(io)?;
        Ok(path)
    }

    /// Removes the grant for `provider`; returns whether there was one.
    pub fn remove(&self, provider: &str) -> Result<bool> {
        let path = self.file(provider)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::internal(format!(
                "cannot remove {}: {e}",
                path.display()
            ))),
        }
    }

    /// Every stored grant, sorted by provider.
    pub fn list(&self) -> Result<Vec<Grant>> {
        let mut grants = Vec::new();
        for path in crate::provider::provider_files(&self.dir)? {
            if let Some(name) = path.file_stem().and_then(|s| s.to_str())
                && let Some(grant) = self.load(name)?
            {
                grants.push(grant);
            }
        }
        Ok(grants)
    }

    /// The directory grants live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Environment variable names a grant may pass on: never the dynamic loader's.
pub fn check_env_names(names: &[String]) -> Result<()> {
    for name in names {
        let upper = name.to_ascii_uppercase();
        if upper.starts_with("LD_")
            || upper.starts_with("DYLD_")
            || name.is_empty()
            || name.contains(['=', '\0'])
        {
            return Err(Error::new(
                ErrorKind::CapabilityDenied,
                format!("environment variable {name:?} cannot be granted"),
            ));
        }
    }
    Ok(())
}

/// The capabilities in force for a component: its stored grant (only if pinned to this exact
/// component) plus one-off additions, all within what the manifest requested.
pub fn effective(
    stored: Option<&Grant>,
    sha256: &str,
    requested: &Capabilities,
    one_off: &Capabilities,
) -> Result<(Capabilities, Vec<String>)> {
    let mut caps = Capabilities::default();
    let mut env = Vec::new();
    if let Some(grant) = stored {
        if grant.component_sha256 != sha256 {
            return Err(Error::new(
                ErrorKind::CapabilityDenied,
                format!(
                    "the component of provider '{}' changed since it was granted (sha256 {} then, {} now); \
                     its grants no longer apply. Review it with `cpi grant {}`",
                    grant.provider,
                    short(&grant.component_sha256),
                    short(sha256),
                    grant.provider
                ),
            ));
        }
        grant.capabilities.check_within(requested)?;
        caps.extend(&grant.capabilities);
        env = grant.env.clone();
    }
    one_off.check_within(requested)?;
    caps.extend(one_off);
    Ok((caps, env))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::CommandRule;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_and_pinning() {
        let dir = tempfile::tempdir().unwrap();
        let store = GrantStore::new(dir.path().join("grants"));
        let requested = Capabilities {
            commands: vec![CommandRule::parse("cli worker **").unwrap()],
            http: vec![],
            ..Capabilities::default()
        };
        let grant = Grant {
            provider: "p".into(),
            component_sha256: "aaa".into(),
            capabilities: requested.clone(),
            env: vec!["CLOUDCO_API_URL".into()],
            ..Grant::default()
        };
        let path = store.save(&grant).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let loaded = store.load("p").unwrap().unwrap();
        assert_eq!(loaded, grant);
        let (caps, env) =
            effective(Some(&loaded), "aaa", &requested, &Capabilities::default()).unwrap();
        assert_eq!(caps, requested);
        assert_eq!(env, ["CLOUDCO_API_URL"]);
        let stale =
            effective(Some(&loaded), "bbb", &requested, &Capabilities::default()).unwrap_err();
        assert!(
            stale.message().contains("changed since it was granted"),
            "{stale}"
        );
        assert!(store.remove("p").unwrap());
        assert!(store.load("p").unwrap().is_none());
        assert!(check_env_names(&["LD_PRELOAD".into()]).is_err());
        assert!(store.load("../etc").is_err());
    }
}
