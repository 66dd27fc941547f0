//! What a remote caller may set: the parameters a `cpi serve` request (or a `--batch` line)
//! is allowed to give.
//!
//! The operator's values win. By default a caller may set the parameters an action uses,
//! except four kinds, which stay the operator's:
//!
//! - a value the server's `cpi.toml` sets for the provider;
//! - a base URL or address: the leading `{placeholder}` of an endpoint URL, or a name ending
//!   in `_url`, `_uri` or `_endpoint` (`api_url`, `libvirt_uri`) — it decides where the
//!   server's credentials are sent, or which program a CLI runs;
//! - a TLS setting (`verify_ssl`, `ca_cert_file`);
//! - a path on the server: a name ending in `_file`, `_path` or `_dir`.
//!
//! An operator who lists a provider in `cpi.toml` (`[serve.allow] truenas = ["name",
//! "verify_ssl"]`) replaces the default: a caller may then set exactly the listed names,
//! each of them even when it is one of the four kinds above.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::params::TLS_SETTINGS;
use crate::provider::{Provider, Target};

/// Who sets the values being checked, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A `cpi serve` request.
    Request,
    /// A line of a `--batch` file.
    BatchLine,
}

impl Caller {
    fn noun(self) -> &'static str {
        match self {
            Caller::Request => "a request",
            Caller::BatchLine => "a batch line",
        }
    }
}

/// Why a parameter is the operator's to set, or `None` when a caller may set it by default.
pub fn reserved(
    name: &str,
    provider: &Provider,
    config: &Map<String, Value>,
) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if config.contains_key(name) {
        Some("the server's config sets it")
    } else if TLS_SETTINGS.contains(&name) {
        Some("it is a TLS setting")
    } else if base_url_names(provider).contains(name)
        || ["_url", "_uri", "_endpoint"]
            .iter()
            .any(|s| lower.ends_with(s))
        || ["url", "uri", "endpoint"].contains(&lower.as_str())
    {
        Some("it is a base URL or address")
    } else if ["_file", "_path", "_dir"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        Some("it names a path on the server")
    } else {
        None
    }
}

/// Parameters that start an endpoint URL anywhere in the provider (they are its base URL).
fn base_url_names(provider: &Provider) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for action in provider.actions.values() {
        let steps = action
            .pre_exec
            .iter()
            .chain(std::iter::once(action))
            .chain(&action.post_exec);
        for step in steps {
            if let Target::Endpoint(ep) = &step.target
                && let Some(first) = crate::template::placeholders(&ep.url).next()
                && ep.url.starts_with(&format!("{{{first}}}"))
            {
                names.insert(first.to_string());
            }
        }
    }
    names
}

/// Checks that `given` holds only values `caller` may set for `provider`: the operator's
/// `allow` list when there is one, otherwise everything but [`reserved`] names. A refusal is a
/// `CapabilityDeniedError` naming the parameter and why.
pub fn check(
    given: &IndexMap<String, String>,
    provider: &Provider,
    config: &Map<String, Value>,
    allow: Option<&[String]>,
    caller: Caller,
) -> Result<()> {
    for name in given.keys() {
        let why = match allow {
            Some(list) if list.iter().any(|a| a == name) => None,
            Some(_) => Some("the server's [serve.allow] list for this provider does not name it"),
            None => reserved(name, provider, config),
        };
        if let Some(why) = why {
            let hint = match caller {
                Caller::Request => format!(
                    "the operator may allow it with `[serve.allow] {} = [\"{name}\", …]` in cpi.toml",
                    provider.name
                ),
                Caller::BatchLine => {
                    "give it with -p, or pass --allow-override to let batch lines set it".into()
                }
            };
            return Err(Error::new(
                ErrorKind::CapabilityDenied,
                format!(
                    "parameter '{name}' cannot be set by {}: {why}; {hint}",
                    caller.noun()
                ),
            )
            .with_detail("parameter", name.as_str()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn provider() -> Provider {
        Provider::from_json(
            r#"{"name":"t","type":"endpoint","actions":{"list_workers":{
              "target":{"Endpoint":{"url":"{base}/x/{name}","method":"Get",
              "headers":{"Authorization":"Bearer {api_key}"}}}}}}"#,
            Path::new("t.json"),
        )
        .unwrap()
    }

    fn given(names: &[&str]) -> IndexMap<String, String> {
        names
            .iter()
            .map(|n| (n.to_string(), "v".to_string()))
            .collect()
    }

    #[test]
    fn by_default_callers_set_everything_but_the_operators_four_kinds() {
        let p = provider();
        let mut config = Map::new();
        config.insert("api_key".into(), "k".into());
        let ok = |names: &[&str]| check(&given(names), &p, &config, None, Caller::Request);
        ok(&["name", "region"]).unwrap();
        for (name, why) in [
            ("api_key", "config sets it"),
            ("base", "base URL"),
            ("api_url", "base URL"),
            ("libvirt_uri", "base URL"),
            ("verify_ssl", "TLS"),
            ("ca_cert_file", "TLS"),
            ("credentials_file", "path on the server"),
            ("bin_dir", "path on the server"),
        ] {
            let err = ok(&[name]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::CapabilityDenied, "{name}");
            assert!(err.message().contains(why), "{name}: {err}");
            assert!(err.message().contains(&format!("'{name}'")), "{err}");
        }
    }

    #[test]
    fn an_allow_list_replaces_the_default_exactly() {
        let p = provider();
        let mut config = Map::new();
        config.insert("api_key".into(), "k".into());
        let allow = ["verify_ssl".to_string(), "api_key".to_string()];
        let ok = |names: &[&str]| check(&given(names), &p, &config, Some(&allow), Caller::Request);
        ok(&["verify_ssl", "api_key"]).unwrap();
        assert!(
            ok(&["name"])
                .unwrap_err()
                .message()
                .contains("[serve.allow]")
        );
        let err = check(&given(&["api_key"]), &p, &config, None, Caller::BatchLine).unwrap_err();
        assert!(err.message().contains("--allow-override"), "{err}");
    }
}
