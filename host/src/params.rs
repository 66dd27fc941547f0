//! Parameter resolution: where each value of an action's parameters comes from.
//!
//! Precedence, highest first: command line (`-p key=value`) > environment
//! (`CPI_PARAM_<NAME>`) > config file > action-level `default_settings` > provider
//! `default_settings`. Every parameter an action declares or references must end up with a
//! value before anything runs; otherwise it is a ValidationError naming each missing one.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::provider::{Action, Provider, ProviderKind};
use crate::secret;
use crate::template::Values;

/// Where a resolved value came from (shown by `--dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `-p key=value` (or a batch/API request).
    CommandLine,
    /// `CPI_PARAM_<NAME>`.
    Environment,
    /// The config file's section for this provider.
    Config,
    /// The action's own `default_settings`.
    ActionDefault,
    /// The provider's `default_settings`.
    ProviderDefault,
    /// Parsed from the output of an earlier step (pre_exec, the action, lifecycle).
    Step,
}

/// The caller-supplied parameter sources.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Values given on the command line, highest precedence.
    pub cli: IndexMap<String, String>,
    /// Values from the config file's section for the provider.
    pub config: Map<String, Value>,
    /// Whether `CPI_PARAM_<NAME>` environment variables are consulted.
    pub use_env: bool,
}

/// The values an action runs with.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Every known value, by name.
    pub values: Values,
    /// Where each value came from.
    pub sources: IndexMap<String, Source>,
    /// Names whose values are secret and must be redacted in every output.
    pub secret_names: BTreeSet<String>,
}

impl Resolved {
    /// Whether the caller gave `name` (command line, environment or config), as opposed to a
    /// default or an earlier step.
    pub fn is_given(&self, name: &str) -> bool {
        matches!(
            self.sources.get(name),
            Some(Source::CommandLine | Source::Environment | Source::Config)
        )
    }

    /// Adds values parsed from an earlier step; they do not override explicit inputs.
    pub fn add_step_outputs(&mut self, outputs: &Map<String, Value>, provider: &Provider) {
        for (name, value) in outputs {
            if !self.is_given(name) && !value.is_null() {
                self.values.insert(name.clone(), value_to_param(value));
                self.sources.insert(name.clone(), Source::Step);
                if secret::is_secret_name(name, provider) {
                    self.secret_names.insert(name.clone());
                }
            }
        }
    }

    /// Checks that every parameter `action` (and its pre_exec steps) needs has a value.
    pub fn require(&self, action: &Action) -> Result<()> {
        let mut missing: Vec<String> = Vec::new();
        let mut reported: BTreeSet<String> = BTreeSet::new();
        // Fields a pre_exec step parses become values of the steps after it.
        let mut produced: BTreeSet<String> = BTreeSet::new();
        for step in action.pre_exec.iter().chain(std::iter::once(action)) {
            for name in step
                .params
                .iter()
                .cloned()
                .chain(step.target.placeholders())
            {
                let known = self.values.contains_key(&name)
                    || produced.contains(&name)
                    || step.default_settings.contains_key(&name);
                if !known && reported.insert(name.clone()) {
                    missing.push(name);
                }
            }
            if let Some(rules) = &step.parse_rules {
                produced.extend(
                    rules
                        .patterns
                        .keys()
                        .chain(rules.array_patterns.keys())
                        .cloned(),
                );
            }
        }
        match missing.as_slice() {
            [] => Ok(()),
            [one] => Err(Error::validation(format!(
                "missing required parameter '{one}' (give it with -p {one}=VALUE, \
                 CPI_PARAM_{}, the config file or default_settings)",
                one.to_ascii_uppercase()
            ))
            .with_detail("missing", vec![one.clone()])),
            many => Err(Error::validation(format!(
                "missing required parameters: {}",
                many.join(", ")
            ))
            .with_detail("missing", many.to_vec())),
        }
    }

    /// Before a step runs: its own `default_settings` fill what no explicit input (command
    /// line, environment, config) or earlier step set, and its parameters must all be known.
    pub fn enter_step(&mut self, step: &Action, provider: &Provider) -> Result<()> {
        for (name, value) in &step.default_settings {
            let set = self.is_given(name) || self.sources.get(name) == Some(&Source::Step);
            if !set {
                self.values.insert(name.clone(), value_to_param(value));
                self.sources.insert(name.clone(), Source::ActionDefault);
                if secret::is_secret_name(name, provider) {
                    self.secret_names.insert(name.clone());
                }
            }
        }
        let missing: Vec<String> = step
            .params
            .iter()
            .cloned()
            .chain(step.target.placeholders())
            .filter(|name| !self.values.contains_key(name))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(format!(
                "a step of this action needs parameters no earlier step produced: {}",
                missing.join(", ")
            ))
            .with_detail("missing", missing))
        }
    }

    /// The secret values, for redaction.
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_names
            .iter()
            .filter_map(|n| self.values.get(n).cloned())
            .collect()
    }
}

/// Resolves every value known for `action` of `provider` from `inputs`.
pub fn resolve(provider: &Provider, action: &Action, inputs: &Inputs) -> Resolved {
    let mut resolved = Resolved::default();
    let mut set = |name: &str, value: String, source: Source| {
        resolved.values.insert(name.to_string(), value);
        resolved.sources.insert(name.to_string(), source);
    };
    for (name, value) in &provider.default_settings {
        set(name, value_to_param(value), Source::ProviderDefault);
    }
    for (name, value) in &action.default_settings {
        set(name, value_to_param(value), Source::ActionDefault);
    }
    for (name, value) in &inputs.config {
        set(name, value_to_param(value), Source::Config);
    }
    if inputs.use_env {
        for name in known_names(provider, action, inputs) {
            if let Ok(value) = std::env::var(env_name(&name)) {
                set(&name, value, Source::Environment);
            }
        }
    }
    for (name, value) in &inputs.cli {
        set(name, value.clone(), Source::CommandLine);
    }
    resolved.secret_names = resolved
        .values
        .keys()
        .filter(|name| secret::is_secret_name(name, provider))
        .cloned()
        .collect();
    resolved
}

/// Settings every endpoint action takes, whether or not the provider declares them.
pub const TLS_SETTINGS: [&str; 2] = ["verify_ssl", "ca_cert_file"];

/// The environment variable that sets parameter `name`.
pub fn env_name(name: &str) -> String {
    format!("CPI_PARAM_{}", name.to_ascii_uppercase())
}

/// Every parameter name an action could use: declared, referenced, or defaulted.
pub fn known_names(provider: &Provider, action: &Action, inputs: &Inputs) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = provider.default_settings.keys().cloned().collect();
    names.extend(inputs.config.keys().cloned());
    let steps = || {
        action
            .pre_exec
            .iter()
            .chain(std::iter::once(action))
            .chain(&action.post_exec)
    };
    if provider.kind == ProviderKind::Endpoint
        || steps().any(|s| matches!(s.target, crate::provider::Target::Endpoint(_)))
    {
        // Read by the HTTP client of every HTTP request (exec::http::Tls).
        names.extend(TLS_SETTINGS.map(String::from));
    }
    for step in steps() {
        names.extend(step.default_settings.keys().cloned());
        names.extend(step.params.iter().cloned());
        names.extend(step.target.placeholders());
    }
    names
}

/// Rejects command-line parameters the action can never use (likely typos).
pub fn check_unknown(cli: &IndexMap<String, String>, known: &BTreeSet<String>) -> Result<()> {
    for name in cli.keys() {
        if !known.contains(name) {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(Error::validation(format!(
                "unknown parameter '{name}' (this action uses: {})",
                list.join(", ")
            ))
            .with_detail("parameter", name.as_str()));
        }
    }
    Ok(())
}

/// Parses `key=value` (the `-p` syntax).
pub fn parse_assignment(arg: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((key, value)) if is_param_name(key) => Ok((key.to_string(), value.to_string())),
        _ => Err(Error::validation(format!(
            "expected -p NAME=VALUE with NAME made of letters, digits and '_', got {:?}",
            arg.split_once('=').map_or(arg, |(k, _)| k)
        ))),
    }
}

fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A JSON default as the text substituted into templates (`[]` stays `[]`).
pub fn value_to_param(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn provider() -> Provider {
        Provider::from_json(
            r#"{"name":"p","type":"command","default_settings":{"region":"prov","size":"s","tags":[]},
            "actions":{"a":{"target":{"Command":"x {region} {size} {name} {api_key}"},
            "params":["region","size","name","api_key"],"default_settings":{"size":"act"}}}}"#,
            Path::new("p.json"),
        )
        .unwrap()
    }

    #[test]
    fn precedence_is_cli_env_config_action_provider() {
        let p = provider();
        let a = &p.actions["a"];
        let mut inputs = Inputs::default();
        let r = resolve(&p, a, &inputs);
        assert_eq!(r.values["region"], "prov");
        assert_eq!(r.values["size"], "act");
        assert_eq!(r.values["tags"], "[]");
        inputs.config.insert("region".into(), "conf".into());
        assert_eq!(resolve(&p, a, &inputs).values["region"], "conf");
        inputs.cli.insert("region".into(), "cli".into());
        let r = resolve(&p, a, &inputs);
        assert_eq!(r.values["region"], "cli");
        assert_eq!(r.sources["region"], Source::CommandLine);
    }

    #[test]
    fn missing_parameters_are_named() {
        let p = provider();
        let r = resolve(&p, &p.actions["a"], &Inputs::default());
        let err = r.require(&p.actions["a"]).unwrap_err();
        assert!(
            err.message().contains("name") && err.message().contains("api_key"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_recognised_by_name() {
        let p = provider();
        let mut inputs = Inputs::default();
        inputs.cli.insert("api_key".into(), "k-123".into());
        let r = resolve(&p, &p.actions["a"], &inputs);
        assert_eq!(r.secret_values(), vec!["k-123"]);
    }

    #[test]
    fn assignments_need_a_name() {
        assert_eq!(
            parse_assignment("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_assignment("=x").is_err());
        assert!(parse_assignment("novalue").is_err());
    }
}

#[cfg(test)]
mod step_tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn pre_exec_outputs_and_step_defaults_count_as_values() {
        let p = Provider::from_json(
            r#"{"name":"p","type":"command","actions":{"a":{
              "pre_exec":[{"target":{"Command":"lookup {name}"},"params":["name"],
                "parse_rules":{"type":"object","patterns":{"vmid":{"regex":"(\\d+)"}}}}],
              "target":{"Command":"show {vmid}"},"params":["vmid"],
              "post_exec":[{"target":{"Command":"tag {vmid} {tag}"},"default_settings":{"tag":"x"}}]}}}"#,
            Path::new("p.json"),
        )
        .unwrap();
        let a = &p.actions["a"];
        let mut inputs = Inputs::default();
        inputs.cli.insert("name".into(), "web".into());
        let mut r = resolve(&p, a, &inputs);
        // vmid comes from the pre_exec step: not missing up front.
        r.require(a).unwrap();
        // But the action itself cannot run until the step produced it.
        assert!(r.enter_step(a, &p).unwrap_err().message().contains("vmid"));
        r.values.insert("vmid".into(), "7".into());
        r.sources.insert("vmid".into(), Source::Step);
        let post = &a.post_exec[0];
        r.enter_step(post, &p).unwrap();
        assert_eq!(r.values["tag"], "x");
        // An explicit value beats the step default.
        inputs.cli.insert("tag".into(), "mine".into());
        let mut r = resolve(&p, a, &inputs);
        r.values.insert("vmid".into(), "7".into());
        r.enter_step(post, &p).unwrap();
        assert_eq!(r.values["tag"], "mine");
    }
}
