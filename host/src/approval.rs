//! Approval: every provider that is not built into cpi runs only once a person approved it,
//! pinned to the sha256 of its JSON file (and of its component) and to its canonical path, the
//! way `direnv allow` pins an `.envrc`. A changed file or a moved one loses its approval, and
//! the refusal says what changed, what it now asks for beyond what was approved, and the
//! command that reviews it (`cpi grant NAME`).
//!
//! What an approval allows is what is enforced: a JSON provider's commands must match the argv
//! patterns derived from its targets ([`crate::request`]), its requests a derived origin or
//! the base URL the user configures, and its commands see only [`BASE_ENV`] plus the
//! variables approved.

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::grants::{Grant, GrantStore};
use crate::policy::Capabilities;
use crate::provider::Provider;
use crate::request::{self, Request};

/// Variables every approved provider's commands see (when cpi has them) besides the gate's
/// own base: enough for a CLI to find its config in the home directory.
pub const BASE_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "LC_MESSAGES",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
];

/// What an approved JSON provider may do in one run.
#[derive(Debug, Clone, Default)]
pub struct Approved {
    /// Argv patterns and fixed origins.
    pub caps: Capabilities,
    /// Parameters holding a base URL the user configures: a request may go to its origin.
    pub bases: Vec<String>,
    /// Names of the variables its commands get besides the gate's base: [`BASE_ENV`] and
    /// the approved ones (the gate never passes `LD_*`/`DYLD_*`).
    pub env: Vec<String>,
}

/// The canonical path of a provider file, as approvals record it.
pub fn canonical(path: &Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// A JSON provider's approval as `cpi grant` records it: its request, pinned to its file.
pub fn approve_json(provider: &Provider, env: &[String]) -> Result<Grant> {
    let request = request::derive(provider)?;
    let mut names = request.env.clone();
    for name in env {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    crate::grants::check_env_names(&names)?;
    Ok(Grant {
        provider: provider.name.clone(),
        kind: "json".into(),
        path: canonical(&provider.source),
        json_sha256: Some(provider.sha256.clone()),
        capabilities_sha256: request.digest(),
        request: Some(request),
        env: names,
        ..Grant::default()
    })
}

/// Whether `path` is in the user's own provider directory (approvals are new there: the
/// refusal explains that once).
fn in_user_dir(path: &Path) -> bool {
    let Some(config) = dirs::config_dir() else {
        return false;
    };
    let dir = config.join("cpi").join("providers");
    let dir = dir.canonicalize().unwrap_or(dir);
    Path::new(&canonical(path)).starts_with(dir)
}

/// The error for a provider that has no approval.
pub fn not_approved(provider: &Provider) -> Error {
    let name = &provider.name;
    let mut msg = format!(
        "provider '{name}' ({}) is not approved to run: it is not built into cpi, so a person \
         must first review what it can do (the programs it runs, the hosts it contacts). \
         Review and approve it with `cpi grant {name}`",
        provider.source.display()
    );
    if in_user_dir(&provider.source) {
        msg.push_str(
            ". (New in this version of cpi: providers in your own provider directory are \
             approved once, like any other; see \"Trust\" in the README.)",
        );
    }
    Error::new(ErrorKind::CapabilityDenied, msg)
        .with_detail("provider", name.as_str())
        .with_detail("review", format!("cpi grant {name}"))
}

/// Checks an approval's pins against the provider as loaded now: the same canonical path and
/// the same JSON bytes. `requested_now` derives the current request for the message.
pub fn check_pins(grant: &Grant, provider: &Provider) -> Result<()> {
    let name = &provider.name;
    let path = canonical(&provider.source);
    if !grant.path.is_empty() && grant.path != path {
        return Err(Error::new(
            ErrorKind::CapabilityDenied,
            format!(
                "provider '{name}' was approved as {}, but this one is {path}; the same name \
                 elsewhere is not approved. Review it with `cpi grant {name}`",
                grant.path
            ),
        )
        .with_detail("provider", name.as_str()));
    }
    let json_then = grant.json_sha256.as_deref().unwrap_or("");
    if !provider.sha256.is_empty() && json_then != provider.sha256 {
        return Err(changed(grant, provider, json_then));
    }
    Ok(())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The refusal for a provider file that changed since its approval, with what grew.
fn changed(grant: &Grant, provider: &Provider, then: &str) -> Error {
    let name = &provider.name;
    let file = provider
        .source
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut msg = format!(
        "provider '{name}' changed since you approved it ({file}: sha256 {} then, {} now), so \
         its approval no longer applies",
        if then.is_empty() { "none" } else { short(then) },
        short(&provider.sha256)
    );
    match (request::derive(provider), &grant.request) {
        (Ok(now), Some(old)) => {
            let grew = now.growth_since(old);
            if grew.is_empty() {
                msg.push_str("; what it asks for did not grow");
            } else {
                msg.push_str(&format!(
                    "; it now asks for more: {}",
                    crate::escape::line(&grew.join("; "))
                ));
            }
        }
        (Err(e), _) => msg.push_str(&format!("; and it is now refused: {}", e.message())),
        _ => {}
    }
    msg.push_str(&format!(". Review what changed with `cpi grant {name}`"));
    Error::new(ErrorKind::CapabilityDenied, msg)
        .with_detail("provider", name.as_str())
        .with_detail("review", format!("cpi grant {name}"))
}

/// What an approved JSON provider may do; an error naming the reviewing command when it is
/// not approved, changed or moved.
pub fn check(store: Option<&GrantStore>, provider: &Provider) -> Result<Approved> {
    let grant = match store {
        Some(store) => store.load(&provider.name)?,
        None => None,
    };
    let Some(grant) = grant else {
        return Err(not_approved(provider));
    };
    check_pins(&grant, provider)?;
    let request: Request = match (&grant.request, grant.kind.as_str()) {
        (Some(request), "json") => request.clone(),
        _ => return Err(not_approved(provider)),
    };
    let (mut caps, bases) = request.enforced();
    // Its wildcards stand for substituted values, which its templates refuse to start with
    // `-` unless a parameter declares `allow_leading_dash`.
    caps.wildcards_match_options = true;
    let env = BASE_ENV
        .iter()
        .map(|s| s.to_string())
        .chain(grant.env.iter().cloned())
        .collect();
    Ok(Approved { caps, bases, env })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(dir: &Path, command: &str) -> Provider {
        let path = dir.join("p.json");
        let text = format!(
            r#"{{"name":"p","type":"command","actions":{{"a":{{"target":{{"Command":{}}}}}}}}}"#,
            serde_json::to_string(command).unwrap()
        );
        std::fs::write(&path, &text).unwrap();
        Provider::load(&path).unwrap()
    }

    #[test]
    fn approvals_pin_bytes_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = GrantStore::new(dir.path().join("grants"));
        let p = provider(dir.path(), "cli list");
        assert!(check(Some(&store), &p).is_err());
        store.save(&approve_json(&p, &[]).unwrap()).unwrap();
        let ok = check(Some(&store), &p).unwrap();
        assert!(ok.caps.check_command("cli", &["list".into()]).is_ok());
        assert!(
            ok.caps
                .check_command("sh", &["-c".into(), "id".into()])
                .is_err()
        );

        let edited = provider(dir.path(), "sh -c 'id'");
        let err = check(Some(&store), &edited).unwrap_err();
        assert!(
            err.message().contains("changed since you approved it"),
            "{err}"
        );
        assert!(err.message().contains("+ run  sh -c 'id'"), "{err}");
        assert!(err.message().contains("cpi grant p"), "{err}");

        let elsewhere = tempfile::tempdir().unwrap();
        let copy = provider(elsewhere.path(), "cli list");
        let err = check(Some(&store), &copy).unwrap_err();
        assert!(err.message().contains("was approved as"), "{err}");
    }
}
