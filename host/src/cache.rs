//! Metadata caching (§12.2): results of `list_regions`, `list_zones`, `list_images`,
//! `list_worker_types` and of actions that declare `"cache": "1h"` are kept for a while, per
//! provider, action and parameter values, under `$XDG_CACHE_HOME/cpi/metadata`.
//!
//! Rules:
//! - never for worker or disk state (an action about workers or disks is never cached, even
//!   when it declares `cache`);
//! - a cache file's name is the SHA-256 of the provider (name, file digest, canonical path),
//!   action and the values the action and its steps use, so no value (a secret's least of all)
//!   appears in a file name or in the file, and an edited or another same-named provider never
//!   reads the entry;
//! - a hit is served only once the provider passes the approval check a run makes;
//! - the directory is created 0700 and must be owned by the user and writable by no one else:
//!   an unsafe directory is refused (cpi runs uncached and says why), never chmod-ed; files
//!   are written 0600 and replaced atomically;
//! - `cpi run --refresh` skips the lookup and stores the fresh result.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::params::Resolved;
use crate::provider::{Action, Provider};

/// How long the standard metadata lists are kept without a `cache` of their own.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The metadata actions cached by default.
const METADATA_ACTIONS: [&str; 4] = [
    "list_regions",
    "list_zones",
    "list_images",
    "list_worker_types",
];

/// How long `action` of a provider may be cached: `None` for worker and disk state and for
/// actions that are not metadata and declare no `cache`; `"0"` turns caching off.
pub fn ttl(action_name: &str, action: &Action) -> Result<Option<Duration>> {
    if is_state(action_name) {
        return Ok(None);
    }
    match action.cache.as_deref() {
        Some(text) => parse_ttl(text).map(|d| Some(d).filter(|d| !d.is_zero())),
        None if METADATA_ACTIONS.contains(&action_name) => Ok(Some(DEFAULT_TTL)),
        None => Ok(None),
    }
}

/// Parses a `cache` duration (`90s`, `30m`, `1h`, `2d`; `0` for never).
pub fn parse_ttl(text: &str) -> Result<Duration> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim()).map_err(|e| {
        Error::validation(format!(
            "cache: {text:?} is not a duration like \"1h\" or \"30m\": {e}"
        ))
    })
}

/// Whether an action is about worker or disk state, which is never cached.
pub fn is_state(action_name: &str) -> bool {
    let resource = action_name.split_once('_').map_or("", |(_, r)| r);
    let worker = (resource.starts_with("worker") && !resource.starts_with("worker_type"))
        || resource.starts_with("instance")
        || resource.starts_with("vm")
        || resource.starts_with("server");
    worker || resource.starts_with("disk") || resource.starts_with("volume")
}

/// A directory of cached results.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    dir: PathBuf,
}

impl MetadataCache {
    /// The user's cache (`$XDG_CACHE_HOME/cpi/metadata`), or why it cannot be used.
    pub fn user() -> Result<MetadataCache> {
        let base = dirs::cache_dir()
            .ok_or_else(|| Error::internal("no cache directory ($XDG_CACHE_HOME or ~/.cache)"))?;
        MetadataCache::at(&base.join("cpi").join("metadata"))
    }

    /// The cache in `dir`, created 0700 when missing; refused when it (or its parent `cpi`
    /// directory) is a symlink, not owned by the user, or writable by group or others.
    pub fn at(dir: &Path) -> Result<MetadataCache> {
        // The base (`~/.cache`) is created like the XDG spec says (0700) when missing.
        if let Some(base) = dir.parent().and_then(Path::parent).filter(|b| !b.exists()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(base)
                .map_err(|e| unsafe_dir(base, &format!("cannot create it: {e}")))?;
        }
        for path in [dir.parent(), Some(dir)].into_iter().flatten() {
            if !path.exists() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(path)
                    .map_err(|e| unsafe_dir(path, &format!("cannot create it: {e}")))?;
            }
            check_dir(path)?;
        }
        Ok(MetadataCache {
            dir: dir.to_path_buf(),
        })
    }

    /// The cached result of `action_name` for these values, if stored less than `ttl` ago.
    pub fn get(&self, key: &str, ttl: Duration) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join(key)).ok()?;
        let entry: Value = serde_json::from_str(&text).ok()?;
        let stored = entry.get("stored_at")?.as_u64()?;
        let age = now().checked_sub(stored)?;
        (age < ttl.as_secs()).then(|| entry.get("result").cloned())?
    }

    /// Stores a result: a 0600 file replacing the old entry atomically
    /// ([`crate::fswrite::write_atomic`]).
    pub fn put(&self, key: &str, result: &Value) -> Result<()> {
        let entry = json!({"stored_at": now(), "result": result});
        crate::fswrite::write_atomic(&self.dir.join(key), entry.to_string().as_bytes())
            .map_err(|e| Error::internal(format!("cannot write the metadata cache: {e}")))
    }
}

/// Environment variables that change from shell to shell without changing what a CLI
/// answers; every other variable (`AWS_PROFILE`, `CLOUDSDK_CORE_PROJECT`, `KUBECONFIG`, ...)
/// is part of the key, since a CLI reads its account from there.
const VOLATILE_ENV: [&str; 12] = [
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "TERM",
    "COLUMNS",
    "LINES",
    "DISPLAY",
    "WINDOWID",
    "SSH_AUTH_SOCK",
    "SSH_CONNECTION",
    "SSH_CLIENT",
];

/// The cache key (a file name) of a run: SHA-256 over the provider (name, file digest and
/// canonical path, so an edited, moved or same-named provider never reads another's entries),
/// the action, the values of the parameters it and its `pre_exec`/`post_exec` steps use (in
/// name order) and cpi's environment (but [`VOLATILE_ENV`]). Component providers are never
/// cached.
pub fn key(provider: &Provider, action_name: &str, action: &Action, resolved: &Resolved) -> String {
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
        .filter(|(k, _)| !VOLATILE_ENV.iter().any(|v| k == v))
        .collect();
    env.sort();
    key_with_env(provider, action_name, action, resolved, &env)
}

fn key_with_env(
    provider: &Provider,
    action_name: &str,
    action: &Action,
    resolved: &Resolved,
    env: &[(std::ffi::OsString, std::ffi::OsString)],
) -> String {
    let mut names: Vec<String> = crate::params::steps(action)
        .flat_map(|(_, step)| {
            step.params
                .iter()
                .cloned()
                .chain(step.target.placeholders())
        })
        .collect();
    names.sort();
    names.dedup();
    let mut hash = Sha256::new();
    let path = crate::approval::canonical(&provider.source);
    let component = provider.component.as_deref().unwrap_or("");
    for part in [
        provider.name.as_str(),
        provider.sha256.as_str(),
        path.as_str(),
        component,
        action_name,
    ] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    for name in names {
        let value = resolved.values.get(&name).map_or("", String::as_str);
        for part in [name.as_str(), value] {
            hash.update(part.len().to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
    for (name, value) in env {
        for part in [name.as_encoded_bytes(), value.as_encoded_bytes()] {
            hash.update(part.len().to_le_bytes());
            hash.update(part);
        }
    }
    format!("{:x}.json", hash.finalize())
}

fn check_dir(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| unsafe_dir(path, &format!("cannot read it: {e}")))?;
    if !meta.is_dir() {
        return Err(unsafe_dir(path, "not a directory (or a symlink)"));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(unsafe_dir(path, "owned by another user"));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(unsafe_dir(path, "writable by group or others"));
    }
    Ok(())
}

fn unsafe_dir(path: &Path, why: &str) -> Error {
    Error::validation(format!(
        "metadata cache directory {} is not used: {why} (cpi never changes its permissions; \
         fix or remove it)",
        crate::escape::line(&path.display().to_string())
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(json: Value) -> Action {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn metadata_is_cached_worker_and_disk_state_never() {
        let plain = action(json!({"target": {"Command": "x"}}));
        let declared = action(json!({"target": {"Command": "x"}, "cache": "30m"}));
        let off = action(json!({"target": {"Command": "x"}, "cache": "0"}));
        assert_eq!(ttl("list_regions", &plain).unwrap(), Some(DEFAULT_TTL));
        assert_eq!(ttl("list_worker_types", &plain).unwrap(), Some(DEFAULT_TTL));
        assert_eq!(ttl("list_networks", &plain).unwrap(), None);
        assert_eq!(
            ttl("list_networks", &declared).unwrap(),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(ttl("list_images", &off).unwrap(), None);
        for state in [
            "list_workers",
            "get_worker",
            "list_disks",
            "get_instance",
            "list_vms",
        ] {
            assert_eq!(ttl(state, &declared).unwrap(), None, "{state}");
        }
        assert!(
            ttl(
                "list_networks",
                &action(json!({"target": {"Command": "x"}, "cache": "soon"}))
            )
            .is_err()
        );
    }

    #[test]
    fn entries_expire_and_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = MetadataCache::at(&tmp.path().join(".cache/cpi/metadata")).unwrap();
        cache.put("k.json", &json!(["us-east-1"])).unwrap();
        assert_eq!(cache.get("k.json", DEFAULT_TTL), Some(json!(["us-east-1"])));
        assert_eq!(cache.get("k.json", Duration::ZERO), None);
        assert_eq!(cache.get("other.json", DEFAULT_TTL), None);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join(".cache/cpi/metadata/k.json")), 0o600);
        assert_eq!(mode(&tmp.path().join(".cache/cpi/metadata")), 0o700);
    }

    #[test]
    fn an_open_cache_dir_is_refused_not_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cpi");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = MetadataCache::at(&dir.join("metadata")).unwrap_err();
        assert!(
            err.message().contains("writable by group or others"),
            "{err}"
        );
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o777, "left as it was");
        assert!(!dir.join("metadata").exists());
    }

    #[test]
    fn keys_hash_every_value_so_a_secret_never_shows() {
        let provider = Provider::from_json(
            r#"{"name": "p", "type": "endpoint", "actions": {"list_regions": {
                "target": {"Endpoint": {"url": "{api_url}/regions", "method": "Get",
                "headers": {"Authorization": "Bearer {api_token}"}}},
                "params": ["api_url", "api_token"]}}}"#,
            Path::new("p.json"),
        )
        .unwrap();
        let action = provider.action("list_regions").unwrap();
        let resolved = |token: &str| {
            let mut r = Resolved::default();
            r.values.insert("api_url".into(), "https://x".into());
            r.values.insert("api_token".into(), token.into());
            r
        };
        let a = key(&provider, "list_regions", action, &resolved("tok-secret-1"));
        let b = key(&provider, "list_regions", action, &resolved("tok-secret-2"));
        assert_ne!(a, b);
        assert!(!a.contains("tok"));
        assert_eq!(a.len(), 64 + ".json".len());
        assert_eq!(
            a,
            key(&provider, "list_regions", action, &resolved("tok-secret-1"))
        );
        // Another account selected by the environment is another entry.
        let env = |profile: &str| vec![("AWS_PROFILE".into(), profile.into())];
        let r = resolved("t");
        assert_ne!(
            key_with_env(&provider, "list_regions", action, &r, &env("prod")),
            key_with_env(&provider, "list_regions", action, &r, &env("dev"))
        );
    }

    #[test]
    fn keys_pin_the_provider_file_and_every_steps_values() {
        let text = r#"{"name": "p", "type": "command", "actions": {"list_regions": {
            "target": {"Command": "cli regions {region}"},
            "pre_exec": [{"target": {"Command": "cli login {account}"}}]}}}"#;
        let provider = Provider::from_json(text, Path::new("a/p.json")).unwrap();
        let action = provider.action("list_regions").unwrap();
        let resolved = |account: &str| {
            let mut r = Resolved::default();
            r.values.insert("region".into(), "r1".into());
            r.values.insert("account".into(), account.into());
            r
        };
        let k = |p: &Provider, account: &str| {
            key_with_env(p, "list_regions", action, &resolved(account), &[])
        };
        let base = k(&provider, "one");
        assert_ne!(base, k(&provider, "two"), "a pre_exec value");
        let mut elsewhere = provider.clone();
        elsewhere.source = "b/p.json".into();
        assert_ne!(base, k(&elsewhere, "one"), "another file of the same name");
        let mut edited = provider.clone();
        edited.sha256 = "0".repeat(64);
        assert_ne!(base, k(&edited, "one"), "an edited file");
    }
}
