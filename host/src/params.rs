//! Parameter resolution: where each value of an action's parameters comes from.
//!
//! Precedence, highest first: command line (`-p key=value`) > environment
//! (`CPI_PARAM_<NAME>`) > config file > action-level `default_settings` > provider
//! `default_settings`. Every parameter an action declares or references must end up with a
//! value before anything runs; otherwise it is a ValidationError naming each missing one.

use std::collections::BTreeSet;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::provider::{Action, ParamDecl, ParamType, Provider, ProviderKind, Target};
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
    /// The defaults and `config` already resolved for the action ([`prepare`]), so that a
    /// server resolves them once per provider and action rather than per request. Only
    /// used without `use_env`; it must come from the same provider, action and `config`.
    pub prepared: Option<Arc<Resolved>>,
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
    /// Names declared with `allow_leading_dash`: their values may begin a command word with
    /// `-`.
    pub dash_ok: BTreeSet<String>,
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
            for name in step.params.iter().chain(step.placeholders()) {
                let known = self.values.contains_key(name)
                    || produced.contains(name)
                    || step.default_settings.contains_key(name);
                if !known && reported.insert(name.clone()) {
                    missing.push(name.clone());
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

    /// Before anything runs: every parameter has a value ([`Resolved::require`]), every value
    /// the action uses satisfies its declaration, and no value known now that begins a command
    /// word starts with `-` unless its declaration allows it.
    pub fn check(&self, provider: &Provider, action: &Action) -> Result<()> {
        self.require(action)?;
        let all_steps = || steps(action).map(|(_, step)| step);
        let mut used: BTreeSet<&str> = TLS_SETTINGS.into();
        for step in all_steps() {
            used.extend(step.params.iter().map(String::as_str));
            used.extend(step.placeholders().iter().map(String::as_str));
            used.extend(step.default_settings.keys().map(String::as_str));
        }
        self.check_declared(provider, used)?;
        for step in all_steps() {
            let Target::Command(cmd) = &step.target else {
                continue;
            };
            for name in crate::template::leading_placeholders(&cmd.command)? {
                if let Some(value) = self.values.get(&name) {
                    crate::template::check_leading_dash(&name, value, &|n| {
                        self.dash_ok.contains(n)
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Checks the values of `names` that have a value and a declaration against it.
    pub fn check_declared<'a>(
        &self,
        provider: &Provider,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        for name in names {
            if let (Some(decl), Some(value)) =
                (provider.parameters.get(name), self.values.get(name))
            {
                check_value(name, decl, value, !self.secret_names.contains(name))?;
            }
        }
        Ok(())
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
        // A value an earlier step parsed from the platform's output is held to its
        // declaration (pattern, enum, range) as a caller's value is.
        let from_steps: Vec<String> = step
            .params
            .iter()
            .chain(step.placeholders())
            .filter(|name| self.sources.get(*name) == Some(&Source::Step))
            .cloned()
            .collect();
        self.check_declared(provider, from_steps.iter().map(String::as_str))
            .map_err(|e| e.with_detail("source", "an earlier step's output"))?;
        let missing: Vec<String> = step
            .params
            .iter()
            .chain(step.placeholders())
            .filter(|name| !self.values.contains_key(*name))
            .cloned()
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

/// What [`resolve`] gives for `action` of `provider` before any caller's value: its
/// defaults and `config`, with their secret names; kept in [`Inputs::prepared`].
pub fn prepare(provider: &Provider, action: &Action, config: &Map<String, Value>) -> Resolved {
    let inputs = Inputs {
        config: config.clone(),
        ..Inputs::default()
    };
    resolve(provider, action, &inputs)
}

/// Resolves every value known for `action` of `provider` from `inputs`.
pub fn resolve(provider: &Provider, action: &Action, inputs: &Inputs) -> Resolved {
    if let Some(prepared) = inputs.prepared.as_deref().filter(|_| !inputs.use_env) {
        // The same as below: the caller's values override the prepared ones in place, and
        // only their names remain to be classified.
        let mut resolved = prepared.clone();
        for (name, value) in &inputs.cli {
            resolved.values.insert(name.clone(), value.clone());
            resolved.sources.insert(name.clone(), Source::CommandLine);
            if secret::is_secret_name(name, provider) {
                resolved.secret_names.insert(name.clone());
            }
        }
        return resolved;
    }
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
    resolved.dash_ok = provider
        .parameters
        .iter()
        .filter(|(_, d)| d.allow_leading_dash)
        .map(|(n, _)| n.clone())
        .collect();
    resolved
}

/// Checks `value` of parameter `name` against its declaration: a ValidationError naming the
/// parameter and the rule it breaks. The value is quoted in the message only when `show` (it
/// is not a secret).
pub fn check_value(name: &str, decl: &ParamDecl, value: &str, show: bool) -> Result<()> {
    let fail = |rule: &str, what: String| {
        let got = if show {
            format!(" (got {})", crate::escape::line(&format!("{value:?}")))
        } else {
            String::new()
        };
        Err(Error::validation(format!("parameter '{name}' {what}{got}"))
            .with_detail("parameter", name)
            .with_detail("rule", rule))
    };
    let number = match decl.kind {
        ParamType::String => None,
        ParamType::Boolean => {
            if value != "true" && value != "false" {
                return fail("type", "must be a boolean (true or false)".into());
            }
            None
        }
        ParamType::Integer => match value.parse::<i64>() {
            Ok(n) => Some(n as f64),
            Err(_) => return fail("type", "must be an integer".into()),
        },
        ParamType::Number => match parse_number(value) {
            Some(n) => Some(n),
            None => return fail("type", "must be a decimal number".into()),
        },
    };
    if let Some(choices) = &decl.choices
        && !choices.iter().any(|c| value_to_param(c) == value)
    {
        let list: Vec<String> = choices.iter().map(value_to_param).collect();
        return fail("enum", format!("must be one of: {}", list.join(", ")));
    }
    // Numbers are bounded by value, strings by length in characters.
    let (measured, what) = match number {
        Some(n) => (n, "be"),
        None => (value.chars().count() as f64, "have a length"),
    };
    if let Some(min) = decl.min
        && measured < min
    {
        return fail("min", format!("must {what} at least {min}"));
    }
    if let Some(max) = decl.max
        && measured > max
    {
        return fail("max", format!("must {what} at most {max}"));
    }
    match decl.regex() {
        Some(Ok(re)) if !re.is_match(value) => fail(
            "pattern",
            format!(
                "must match the pattern {}",
                crate::escape::line(decl.pattern.as_deref().unwrap_or_default())
            ),
        ),
        Some(Err(err)) => Err(Error::validation(format!(
            "parameter '{name}' has a pattern that does not compile: {err}"
        ))
        .with_detail("parameter", name)
        .with_detail("rule", "pattern")),
        _ => Ok(()),
    }
}

/// A finite decimal number (`1`, `-2.5`, `3e4`): not `NaN`, `inf` or hexadecimal.
fn parse_number(value: &str) -> Option<f64> {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    let n: f64 = value.parse().ok().filter(|_| plain)?;
    n.is_finite().then_some(n)
}

/// A step of an action, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The `n`th `pre_exec` step (from 1).
    PreExec(usize),
    /// The action's own target.
    Action,
    /// The `n`th `post_exec` step (from 1).
    PostExec(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::PreExec(n) => write!(f, "pre_exec {n}"),
            Step::Action => f.write_str("action"),
            Step::PostExec(n) => write!(f, "post_exec {n}"),
        }
    }
}

/// The steps of `action` with their place, in the order they run.
pub fn steps(action: &Action) -> impl Iterator<Item = (Step, &Action)> {
    let pre = action
        .pre_exec
        .iter()
        .enumerate()
        .map(|(i, s)| (Step::PreExec(i + 1), s));
    let post = action
        .post_exec
        .iter()
        .enumerate()
        .map(|(i, s)| (Step::PostExec(i + 1), s));
    pre.chain(std::iter::once((Step::Action, action)))
        .chain(post)
}

/// One parameter an action takes, as `cpi show`, `cpi docs` and `cpi validate` present it:
/// the one place that knows where an action's parameters get their values.
#[derive(Debug, Clone)]
pub struct ActionParam<'a> {
    /// The parameter's name.
    pub name: String,
    /// The step that first uses it.
    pub used_by: Step,
    /// Its default, and whether that is the action's (a step's own first) or the provider's.
    pub default: Option<(&'a Value, Source)>,
    /// The earlier step whose parsed output sets it when the caller does not.
    pub produced_by: Option<Step>,
    /// Whether its value is secret.
    pub secret: bool,
    /// Its declaration in the provider's `parameters`.
    pub decl: Option<&'a ParamDecl>,
}

impl ActionParam<'_> {
    /// Whether the caller must give it: no default and no earlier step produces it.
    pub fn required(&self) -> bool {
        self.default.is_none() && self.produced_by.is_none()
    }
}

/// Every parameter any step of `action` uses (listed in `params` or a placeholder), in order
/// of first use, with where its value comes from. The precedence matches [`resolve`] and
/// [`Resolved::enter_step`]: a step's own default, then the action's, then the provider's.
pub fn action_params<'a>(provider: &'a Provider, action: &'a Action) -> Vec<ActionParam<'a>> {
    let mut params: Vec<ActionParam<'a>> = Vec::new();
    // Sets, not list scans: a template with 50,000 placeholders stays linear.
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut produced: std::collections::HashMap<String, Step> = std::collections::HashMap::new();
    for (place, step) in steps(action) {
        for name in step.params.iter().chain(step.placeholders()).cloned() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let default = step
                .default_settings
                .get(&name)
                .or_else(|| action.default_settings.get(&name))
                .map(|v| (v, Source::ActionDefault))
                .or_else(|| {
                    provider
                        .default_settings
                        .get(&name)
                        .map(|v| (v, Source::ProviderDefault))
                });
            params.push(ActionParam {
                produced_by: produced.get(&name).copied(),
                secret: secret::is_secret_name(&name, provider),
                decl: provider.parameters.get(&name),
                used_by: place,
                default,
                name,
            });
        }
        if let Some(rules) = &step.parse_rules {
            let fields = rules.patterns.keys().chain(rules.array_patterns.keys());
            for field in fields {
                // The first step that parses a field is the one that sets it.
                produced.entry(field.clone()).or_insert(place);
            }
        }
    }
    params
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
    let all_steps = || steps(action).map(|(_, step)| step);
    if provider.kind == ProviderKind::Endpoint
        || all_steps().any(|s| matches!(s.target, crate::provider::Target::Endpoint(_)))
    {
        // Read by the HTTP client of every HTTP request (exec::http::Tls).
        names.extend(TLS_SETTINGS.map(String::from));
    }
    for step in all_steps() {
        names.extend(step.default_settings.keys().cloned());
        names.extend(step.params.iter().cloned());
        names.extend(step.placeholders().iter().cloned());
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

/// Whether `name` is a parameter name: a letter or `_`, then letters, digits and `_`.
pub fn is_param_name(name: &str) -> bool {
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

    #[test]
    fn a_prepared_base_resolves_exactly_as_a_full_resolution() {
        let p = provider();
        let action = &p.actions["a"];
        let mut config = Map::new();
        config.insert("region".into(), Value::from("conf"));
        config.insert("api_key".into(), Value::from("key-from-config"));
        let cli: IndexMap<String, String> = [("name", "n1"), ("region", "cli"), ("token", "t")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let full = resolve(
            &p,
            action,
            &Inputs {
                cli: cli.clone(),
                config: config.clone(),
                ..Inputs::default()
            },
        );
        let fast = resolve(
            &p,
            action,
            &Inputs {
                cli,
                config: config.clone(),
                prepared: Some(Arc::new(prepare(&p, action, &config))),
                ..Inputs::default()
            },
        );
        assert_eq!(format!("{full:?}"), format!("{fast:?}"));
        assert!(fast.secret_names.contains("token") && fast.secret_names.contains("api_key"));
        assert_eq!(fast.values["region"], "cli");
    }

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
    fn a_value_a_step_parsed_is_held_to_its_declaration() {
        let p = Provider::from_json(
            r#"{"name":"p","type":"command",
            "parameters":{"worker_id":{"pattern":"^wrk-[0-9a-f]{8}$"}},
            "actions":{"a":{"target":{"Command":"x delete {worker_id}"}}}}"#,
            Path::new("p.json"),
        )
        .unwrap();
        let a = &p.actions["a"];
        let mut r = resolve(&p, a, &Inputs::default());
        let mut parsed = Map::new();
        parsed.insert("worker_id".into(), Value::from("../../etc"));
        r.add_step_outputs(&parsed, &p);
        let err = r.enter_step(a, &p).unwrap_err();
        assert_eq!(err.details()["parameter"], "worker_id", "{err}");
        assert_eq!(err.details()["source"], "an earlier step's output", "{err}");
        parsed.insert("worker_id".into(), Value::from("wrk-0123abcd"));
        r.add_step_outputs(&parsed, &p);
        r.enter_step(a, &p).unwrap();
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

#[cfg(test)]
mod declaration_tests {
    use super::*;
    use std::path::Path;

    fn decl(json: &str) -> ParamDecl {
        serde_json::from_str(json).unwrap()
    }

    fn rule(d: &ParamDecl, value: &str) -> Option<String> {
        check_value("p", d, value, true)
            .err()
            .map(|e| e.details()["rule"].as_str().unwrap_or("?").to_string())
    }

    #[test]
    fn each_rule_is_named_when_it_fails() {
        let int = decl(r#"{"type":"integer","min":1,"max":10}"#);
        assert_eq!(rule(&int, "5"), None);
        assert_eq!(rule(&int, "x").as_deref(), Some("type"));
        assert_eq!(rule(&int, "1.0").as_deref(), Some("type"));
        assert_eq!(rule(&int, "0").as_deref(), Some("min"));
        assert_eq!(rule(&int, "11").as_deref(), Some("max"));
        let num = decl(r#"{"type":"number","max":1}"#);
        assert_eq!(rule(&num, "0.5"), None);
        assert_eq!(rule(&num, "-2e-3"), None);
        for bad in ["NaN", "inf", "infinity", "0x10", "", "1e999"] {
            assert_eq!(rule(&num, bad).as_deref(), Some("type"), "{bad}");
        }
        let boolean = decl(r#"{"type":"boolean"}"#);
        assert_eq!(rule(&boolean, "false"), None);
        assert_eq!(rule(&boolean, "yes").as_deref(), Some("type"));
        let choice = decl(r#"{"enum":["a", 2, true]}"#);
        for ok in ["a", "2", "true"] {
            assert_eq!(rule(&choice, ok), None, "{ok}");
        }
        assert_eq!(rule(&choice, "b").as_deref(), Some("enum"));
        let text = decl(r#"{"pattern":"[a-z]+|x-[0-9]","min":2,"max":4}"#);
        assert_eq!(rule(&text, "abc"), None);
        // Anchored around the whole alternation: not "^[a-z]+|x-[0-9]$".
        assert_eq!(rule(&text, "ab-1").as_deref(), Some("pattern"));
        assert_eq!(rule(&text, "ab\n").as_deref(), Some("pattern"));
        assert_eq!(rule(&text, "a").as_deref(), Some("min"));
        assert_eq!(rule(&text, "abcde").as_deref(), Some("max"));
        let broken = decl(r#"{"pattern":"("}"#);
        assert_eq!(rule(&broken, "x").as_deref(), Some("pattern"));
    }

    #[test]
    fn a_secret_value_is_never_quoted_in_the_error() {
        let d = decl(r#"{"pattern":"k-[0-9]+"}"#);
        let shown = check_value("key", &d, "hunter2", true).unwrap_err();
        assert!(shown.message().contains("hunter2"), "{shown}");
        let hidden = check_value("key", &d, "hunter2", false).unwrap_err();
        assert!(!hidden.message().contains("hunter2"), "{hidden}");
        assert!(hidden.message().contains("'key'"), "{hidden}");
    }

    #[test]
    fn check_covers_every_source_and_the_leading_dash_rule() {
        let p = Provider::from_json(
            r#"{"name":"p","type":"command","default_settings":{"n":"0"},
            "parameters":{"n":{"type":"integer","min":1},"o":{"allow_leading_dash":true},
                          "s":{"secret":true}},
            "actions":{"a":{"target":{"Command":"x {n} {w} {o} --k={s}"},"params":["n","w","o","s"]}}}"#,
            Path::new("p.json"),
        )
        .unwrap();
        let a = &p.actions["a"];
        let mut inputs = Inputs::default();
        for (k, v) in [("w", "ok"), ("o", "-o"), ("s", "-s")] {
            inputs.cli.insert(k.into(), v.into());
        }
        // A default breaks the declaration.
        let err = resolve(&p, a, &inputs).check(&p, a).unwrap_err();
        assert_eq!(err.details()["parameter"], "n");
        inputs.config.insert("n".into(), Value::from(2));
        resolve(&p, a, &inputs).check(&p, a).unwrap();
        // An undeclared word-leading value starting with '-' is refused; inside a word it is not.
        inputs.cli.insert("w".into(), "--help".into());
        let err = resolve(&p, a, &inputs).check(&p, a).unwrap_err();
        assert_eq!(err.details()["parameter"], "w");
        assert_eq!(err.details()["rule"], "leading_dash");
        assert!(secret::is_secret_name("s", &p));
    }

    #[test]
    fn action_params_knows_defaults_steps_secrets_and_declarations() {
        let p = Provider::from_json(
            r#"{"name":"p","type":"command","default_settings":{"region":"r"},
            "parameters":{"vmid":{"type":"integer"}},
            "actions":{"a":{"default_settings":{"size":"s"},
              "pre_exec":[{"target":{"Command":"lookup {name}"},"params":["name"],
                "parse_rules":{"type":"object","patterns":{"vmid":{"regex":"(\\d+)"}}}}],
              "target":{"Command":"show {vmid} {region} {size} {api_token}"}}}}"#,
            Path::new("p.json"),
        )
        .unwrap();
        let list = action_params(&p, &p.actions["a"]);
        let names: Vec<&str> = list.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["name", "vmid", "region", "size", "api_token"]);
        assert!(list[0].required() && list[0].used_by == Step::PreExec(1));
        assert_eq!(list[1].produced_by, Some(Step::PreExec(1)));
        assert_eq!(list[1].decl.map(|d| d.kind), Some(ParamType::Integer));
        assert_eq!(list[2].default.map(|d| d.1), Some(Source::ProviderDefault));
        assert_eq!(list[3].default.map(|d| d.1), Some(Source::ActionDefault));
        assert!(list[4].secret && list[4].required());
    }
}
