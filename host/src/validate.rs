//! `cpi validate`: a compliance report for a provider file.
//!
//! Errors make a file unusable or non-compliant (bad JSON or schema, missing required methods,
//! placeholders with no possible value, regexes that don't compile, groups beyond the regex,
//! unknown transforms, targets cpi refuses to run). Warnings flag what works but deviates from
//! the standard (unknown fields, unused params, §5 names, §7 parameter names).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::parse;
use crate::provider::{Action, Provider, Target};
use crate::status::{AUTH_STATUSES, WORKER_STATUSES};
use crate::template;

/// The required methods of §2.1 (from the contract).
pub use cpi_contract::verbs::REQUIRED_METHODS;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is unusable or non-compliant.
    Error,
    /// Works, but deviates from the standard or looks like a mistake.
    Warning,
}

/// One problem found in a file.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the file, as a JSON path (`actions.get_worker.parse_rules.patterns.id`).
    pub path: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

/// The compliance report for one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file checked.
    pub file: PathBuf,
    /// The provider name, when the file got that far.
    pub provider: Option<String>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }

    fn push(&mut self, severity: Severity, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Validates one file on disk.
pub fn validate_file(path: &Path) -> Report {
    match crate::fsread::read_string(path, crate::fsread::Kind::Provider) {
        Ok(text) => validate_text(&text, path),
        Err(err) => {
            let mut report = Report {
                file: path.to_path_buf(),
                provider: None,
                findings: Vec::new(),
            };
            report.push(
                Severity::Error,
                "",
                format!("cannot read file: {}", err.problem),
            );
            report
        }
    }
}

/// Validates provider text; `path` is used for the report.
pub fn validate_text(text: &str, path: &Path) -> Report {
    let mut report = Report {
        file: path.to_path_buf(),
        provider: None,
        findings: Vec::new(),
    };
    let raw: Value = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            report.push(
                Severity::Error,
                "",
                format!(
                    "invalid JSON at line {}, column {}: {err}",
                    err.line(),
                    err.column()
                ),
            );
            return report;
        }
    };
    report.provider = raw.get("name").and_then(Value::as_str).map(str::to_string);
    unknown_fields(&raw, &mut report);
    let provider = match Provider::from_json(text, path) {
        Ok(p) => p,
        Err(err) => {
            let at = err
                .details()
                .get("json_path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            report.push(Severity::Error, at, err.message().to_string());
            return finish(report);
        }
    };
    check_provider(&provider, &mut report);
    check_request(&provider, &mut report);
    finish(report)
}

/// What the review screen flags (shells given scripts, runners, downloads run, fixed temp
/// paths, programs by path) as warnings; a program or origin a parameter chooses as an error.
fn check_request(provider: &Provider, report: &mut Report) {
    match crate::request::derive(provider) {
        Ok(request) => {
            for (at, message) in request.warnings() {
                report.push(Severity::Warning, format!("actions.{at}.target"), message);
            }
        }
        Err(err) => {
            // A template the target checks already refused is not reported a second time.
            let known = report.findings.iter().any(|f| {
                f.severity == Severity::Error && err.message().ends_with(f.message.as_str())
            });
            if known {
                return;
            }
            let at = err
                .details()
                .get("action")
                .and_then(Value::as_str)
                .map(|a| format!("actions.{a}.target"))
                .unwrap_or_else(|| "env".into());
            report.push(Severity::Error, at, err.message().to_string());
        }
    }
}

fn finish(mut report: Report) -> Report {
    report.findings.sort_by_key(|f| f.severity);
    report
}

const PROVIDER_KEYS: &[&str] = &[
    "name",
    "env",
    "type",
    "description",
    "default_settings",
    "status_map",
    "secrets",
    "not_secret",
    "parameters",
    "component",
    "error_rules",
    "actions",
    "version",
    "$schema",
];
const ACTION_KEYS: &[&str] = &[
    "target",
    "accept_exit",
    "error_rules",
    "cache",
    "paginate",
    "params",
    "parse_rules",
    "default_settings",
    "pre_exec",
    "post_exec",
    "description",
    "idempotent",
    "normalize_status",
];
const PARAM_KEYS: &[&str] = &[
    "type",
    "description",
    "pattern",
    "enum",
    "min",
    "max",
    "secret",
    "allow_leading_dash",
];
const RULE_KEYS: &[&str] = &[
    "type",
    "patterns",
    "separator",
    "header",
    "array_patterns",
    "items",
];
const PATTERN_KEYS: &[&str] = &[
    "regex",
    "pointer",
    "column",
    "group",
    "optional",
    "transform",
];
const ARRAY_PATTERN_KEYS: &[&str] = &["prefix", "index", "object"];
const ENDPOINT_KEYS: &[&str] = &["url", "method", "headers", "body"];

fn unknown_fields(raw: &Value, report: &mut Report) {
    fn check(value: &Value, known: &[&str], path: &str, report: &mut Report) {
        if let Value::Object(map) = value {
            for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                report.push(
                    Severity::Warning,
                    at,
                    format!("unknown field '{key}' is ignored"),
                );
            }
        }
    }
    fn action(value: &Value, path: &str, report: &mut Report) {
        check(value, ACTION_KEYS, path, report);
        if let Some(Value::Object(target)) = value.get("target")
            && let Some(ep) = target.get("Endpoint")
        {
            check(
                ep,
                ENDPOINT_KEYS,
                &format!("{path}.target.Endpoint"),
                report,
            );
        }
        if let Some(rules) = value.get("parse_rules") {
            let rp = format!("{path}.parse_rules");
            check(rules, RULE_KEYS, &rp, report);
            if let Some(Value::Object(patterns)) = rules.get("patterns") {
                for (name, p) in patterns {
                    check(p, PATTERN_KEYS, &format!("{rp}.patterns.{name}"), report);
                }
            }
            if let Some(Value::Object(arrays)) = rules.get("array_patterns") {
                for (name, ap) in arrays {
                    let ap_path = format!("{rp}.array_patterns.{name}");
                    check(ap, ARRAY_PATTERN_KEYS, &ap_path, report);
                    if let Some(Value::Object(object)) = ap.get("object") {
                        for (field, p) in object {
                            check(
                                p,
                                PATTERN_KEYS,
                                &format!("{ap_path}.object.{field}"),
                                report,
                            );
                        }
                    }
                }
            }
        }
        for steps in ["pre_exec", "post_exec"] {
            if let Some(Value::Array(items)) = value.get(steps) {
                for (i, step) in items.iter().enumerate() {
                    action(step, &format!("{path}.{steps}[{i}]"), report);
                }
            }
        }
    }
    check(raw, PROVIDER_KEYS, "", report);
    if let Some(Value::Object(decls)) = raw.get("parameters") {
        for (name, decl) in decls {
            check(decl, PARAM_KEYS, &format!("parameters.{name}"), report);
        }
    }
    if let Some(Value::Object(actions)) = raw.get("actions") {
        for (name, a) in actions {
            action(a, &format!("actions.{name}"), report);
        }
    }
}

fn check_provider(provider: &Provider, report: &mut Report) {
    for method in REQUIRED_METHODS {
        if !provider.actions.contains_key(method) {
            let lookalike = provider.actions.keys().find(|name| {
                standard_action_name(name).as_deref() == Some(method)
                    || name
                        .strip_prefix(method)
                        .is_some_and(|rest| matches!(rest, "_info" | "_details"))
            });
            let hint = match lookalike {
                Some(name) => format!(
                    "; action '{name}' looks like it: rename it to '{method}' so callers find it"
                ),
                None => String::new(),
            };
            report.push(
                Severity::Error,
                "actions",
                format!("required method '{method}' is missing (§2.1){hint}"),
            );
        }
    }
    check_error_rules(&provider.error_rules, "error_rules", report);
    for (raw, standard) in &provider.status_map {
        if !WORKER_STATUSES.contains(&standard.as_str())
            && !AUTH_STATUSES.contains(&standard.as_str())
        {
            report.push(
                Severity::Error,
                format!("status_map.{raw}"),
                format!(
                    "'{standard}' is not a standard status (§6.1: {})",
                    WORKER_STATUSES.join(", ")
                ),
            );
        }
    }
    for name in &provider.not_secret {
        if provider.secrets.contains(name) {
            report.push(
                Severity::Error,
                "not_secret",
                format!(
                    "'{name}' is listed in both secrets and not_secret (it is treated as a secret)"
                ),
            );
        }
    }
    if provider.kind == crate::provider::ProviderKind::Endpoint {
        let defaults: crate::template::Values = provider
            .default_settings
            .iter()
            .map(|(k, v)| (k.clone(), crate::params::value_to_param(v)))
            .collect();
        match crate::exec::http::Tls::from_values(&defaults) {
            Err(err) => report.push(
                Severity::Error,
                "default_settings.verify_ssl",
                err.message().to_string(),
            ),
            Ok(tls) if tls.accept_invalid_certs => report.push(
                Severity::Warning,
                "default_settings.verify_ssl",
                "certificate checks are off by default for everyone who uses this provider: \
                 leave verify_ssl true and let users name their server's CA with ca_cert_file",
            ),
            Ok(_) => {}
        }
    }
    for (name, value) in &provider.default_settings {
        if crate::secret::is_secret_name(name, provider)
            && value.as_str().is_some_and(|s| !s.is_empty())
        {
            report.push(
                Severity::Warning,
                format!("default_settings.{name}"),
                format!("'{name}' is a secret; keep its value out of the provider file (use CPI_PARAM_{} or the config file)", name.to_ascii_uppercase()),
            );
        }
    }
    for (scope, defaults) in
        std::iter::once(("default_settings".to_string(), &provider.default_settings)).chain(
            provider.actions.iter().map(|(name, a)| {
                (
                    format!("actions.{name}.default_settings"),
                    &a.default_settings,
                )
            }),
        )
    {
        for (name, value) in defaults {
            let Some(text) = value.as_str() else { continue };
            let inner: Vec<&str> = template::placeholders(text).collect();
            if let Some(first) = inner.first() {
                report.push(
                    Severity::Warning,
                    format!("{scope}.{name}"),
                    format!(
                        "the default for '{name}' contains the placeholder {{{first}}}; cpi substitutes values once, so it is sent literally as \"{{{first}}}\", not as the value of '{first}'"
                    ),
                );
            }
        }
    }
    check_declarations(provider, report);
    let mut seen_params = BTreeSet::new();
    for (name, action) in &provider.actions {
        let path = format!("actions.{name}");
        check_name(name, &path, report);
        // Every step runs with the values resolved for the action: its params (given by the
        // caller), its defaults and the provider's, plus the fields parsed by earlier steps.
        let top = Context {
            parent: None,
            produced: BTreeSet::new(),
        };
        check_action(provider, action, &path, &top, report, &mut seen_params);
        let mut produced = BTreeSet::new();
        for (i, step) in action.pre_exec.iter().enumerate() {
            let ctx = Context {
                parent: Some(action),
                produced: produced.clone(),
            };
            let step_path = format!("{path}.pre_exec[{i}]");
            check_action(provider, step, &step_path, &ctx, report, &mut seen_params);
            produced.extend(field_names(step));
        }
        produced.extend(field_names(action));
        for (i, step) in action.post_exec.iter().enumerate() {
            let ctx = Context {
                parent: Some(action),
                produced: produced.clone(),
            };
            let step_path = format!("{path}.post_exec[{i}]");
            check_action(provider, step, &step_path, &ctx, report, &mut seen_params);
            produced.extend(field_names(step));
        }
        let used: BTreeSet<String> = std::iter::once(action)
            .chain(&action.pre_exec)
            .chain(&action.post_exec)
            .flat_map(|s| s.target.placeholders())
            .collect();
        for (i, param) in action.params.iter().enumerate() {
            if !used.contains(param) {
                report.push(
                    Severity::Warning,
                    format!("{path}.params[{i}]"),
                    format!("parameter '{param}' is declared but never used in the target"),
                );
            }
        }
    }
}

/// Parameter declarations: each one can be met (its pattern compiles, its enum is not empty,
/// min <= max) and every default satisfies it, including the rule that a value beginning a
/// command word must not start with `-`.
fn check_declarations(provider: &Provider, report: &mut Report) {
    for (name, decl) in &provider.parameters {
        let at = format!("parameters.{name}");
        if !crate::params::is_param_name(name) {
            report.push(
                Severity::Error,
                &at,
                format!("'{name}' is not a parameter name (letters, digits and '_')"),
            );
        }
        let mut sound = true;
        let mut error = |what: &str, message: String| {
            sound = false;
            report.push(Severity::Error, format!("{at}.{what}"), message);
        };
        if let Some(Err(err)) = decl.regex() {
            error("pattern", format!("the pattern does not compile: {err}"));
        }
        if decl.choices.as_ref().is_some_and(Vec::is_empty) {
            error("enum", "an empty enum accepts no value".into());
        }
        if let (Some(min), Some(max)) = (decl.min, decl.max)
            && min > max
        {
            error("min", format!("min {min} is greater than max {max}"));
        }
        if decl.kind == crate::provider::ParamType::Boolean
            && (decl.min.is_some() || decl.max.is_some())
        {
            error("type", "a boolean has no min or max".into());
        }
        if decl.secret == Some(false) && provider.secrets.contains(name) {
            error(
                "secret",
                format!("'{name}' is listed in secrets but declared \"secret\": false"),
            );
        }
        if !sound {
            continue;
        }
        let secret = crate::secret::is_secret_name(name, provider);
        for (i, choice) in decl.choices.iter().flatten().enumerate() {
            let text = crate::params::value_to_param(choice);
            if let Err(err) = crate::params::check_value(name, decl, &text, !secret) {
                report.push(Severity::Error, format!("{at}.enum[{i}]"), err.message());
            }
        }
        for (scope, value) in defaults_of(provider, name) {
            let text = crate::params::value_to_param(value);
            if let Err(err) = crate::params::check_value(name, decl, &text, !secret) {
                let message = format!(
                    "the default does not fit its declaration: {}",
                    err.message()
                );
                report.push(Severity::Error, format!("{scope}.{name}"), message);
            }
        }
    }
    for (action_name, action) in &provider.actions {
        for step in std::iter::once(action)
            .chain(&action.pre_exec)
            .chain(&action.post_exec)
        {
            let Target::Command(cmd) = &step.target else {
                continue;
            };
            for name in template::leading_placeholders(&cmd.command).unwrap_or_default() {
                let value = step
                    .default_settings
                    .get(&name)
                    .or_else(|| action.default_settings.get(&name))
                    .or_else(|| provider.default_settings.get(&name));
                let text = value.map(crate::params::value_to_param).unwrap_or_default();
                let allowed = |n: &str| {
                    provider
                        .parameters
                        .get(n)
                        .is_some_and(|d| d.allow_leading_dash)
                };
                if let Err(err) = template::check_leading_dash(&name, &text, &allowed) {
                    report.push(
                        Severity::Error,
                        format!("actions.{action_name}"),
                        format!("its default cannot run: {}", err.message()),
                    );
                }
            }
        }
    }
}

/// Every default given for parameter `name`: the provider's and each action's and step's, with
/// the JSON path of the `default_settings` they are in.
fn defaults_of<'a>(provider: &'a Provider, name: &str) -> Vec<(String, &'a Value)> {
    let mut found: Vec<(String, &Value)> = Vec::new();
    if let Some(v) = provider.default_settings.get(name) {
        found.push(("default_settings".into(), v));
    }
    for (action_name, action) in &provider.actions {
        let path = format!("actions.{action_name}");
        let steps = std::iter::once((path.clone(), action))
            .chain(
                action
                    .pre_exec
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("{path}.pre_exec[{i}]"), s)),
            )
            .chain(
                action
                    .post_exec
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("{path}.post_exec[{i}]"), s)),
            );
        for (at, step) in steps {
            if let Some(v) = step.default_settings.get(name) {
                found.push((format!("{at}.default_settings"), v));
            }
        }
    }
    found
}

/// Where a step runs: the action it belongs to (for `pre_exec`/`post_exec` steps) and the
/// fields earlier steps produce.
struct Context<'a> {
    parent: Option<&'a Action>,
    produced: BTreeSet<String>,
}

fn field_names(action: &Action) -> BTreeSet<String> {
    action
        .parse_rules
        .iter()
        .flat_map(|r| r.patterns.keys().chain(r.array_patterns.keys()))
        .cloned()
        .collect()
}

fn check_action(
    provider: &Provider,
    action: &Action,
    path: &str,
    ctx: &Context<'_>,
    report: &mut Report,
    seen_params: &mut BTreeSet<String>,
) {
    // The value a parameter takes when nobody gives one: the engine resolves a step with the
    // action's defaults over the provider's.
    let default_of = |name: &str| {
        [Some(action), ctx.parent]
            .into_iter()
            .flatten()
            .find_map(|a| a.default_settings.get(name))
            .or_else(|| provider.default_settings.get(name))
    };
    let in_parent = |name: &str| {
        ctx.parent
            .is_some_and(|p| p.params.iter().any(|n| n == name))
    };
    check_error_rules(&action.error_rules, &format!("{path}.error_rules"), report);
    if let Some(cache) = &action.cache {
        if let Err(err) = crate::cache::parse_ttl(cache) {
            report.push(
                Severity::Error,
                format!("{path}.cache"),
                err.message().to_string(),
            );
        } else if crate::cache::is_state(path.rsplit('.').next().unwrap_or_default()) {
            report.push(
                Severity::Warning,
                format!("{path}.cache"),
                "worker and disk state is never cached: \"cache\" is ignored here",
            );
        }
    }
    for (i, accept) in action.accept_exit.iter().enumerate() {
        let at = format!("{path}.accept_exit[{i}]");
        if !matches!(action.target, crate::provider::Target::Command(_)) {
            report.push(
                Severity::Error,
                at.clone(),
                "accept_exit applies to command targets only (an HTTP status is not an exit code)",
            );
        }
        if accept.code == 0 {
            report.push(
                Severity::Error,
                at.clone(),
                "exit code 0 is always a success: accept_exit names non-zero codes",
            );
        }
        if accept.when.trim().is_empty() {
            report.push(
                Severity::Error,
                format!("{at}.when"),
                "an empty regex accepts every exit with this code, real failures included: \
                 match the text that tells this answer apart",
            );
        } else if let Err(e) = regex::Regex::new(&accept.when) {
            report.push(
                Severity::Error,
                format!("{at}.when"),
                format!("invalid regex: {e}"),
            );
        }
    }
    if let Some(paginate) = &action.paginate {
        let at = format!("{path}.paginate");
        if !action.target.placeholders().contains(&paginate.param) {
            report.push(
                Severity::Error,
                format!("{at}.param"),
                format!(
                    "the target does not use {{{}}}, so every page would be the same request",
                    paginate.param
                ),
            );
        }
        if let Err(err) = crate::parse::json::next_page(&paginate.next, "{}") {
            report.push(
                Severity::Error,
                format!("{at}.next"),
                err.message().to_string(),
            );
        }
        let lists = action.parse_rules.as_ref().is_some_and(|r| {
            matches!(
                r.kind,
                crate::provider::RuleKind::Array | crate::provider::RuleKind::Table
            ) || (r.kind == crate::provider::RuleKind::Json && r.items.is_some())
        });
        if !lists {
            report.push(
                Severity::Error,
                at,
                "a paged action's parse rules must make a list (type json with items, array or table)",
            );
        }
    }
    // Sets, not list scans: a template with 50,000 placeholders stays linear.
    let params: std::collections::HashSet<&str> =
        action.params.iter().map(String::as_str).collect();
    for name in action.target.placeholders() {
        let declared = params.contains(name.as_str()) || in_parent(&name);
        let produced = ctx.produced.contains(&name);
        if !declared && default_of(&name).is_none() && !produced {
            report.push(
                Severity::Error,
                format!("{path}.target"),
                format!("placeholder {{{name}}} is not in params and has no default, so it can never get a value (§9.4)"),
            );
        } else if !declared && !produced {
            report.push(
                Severity::Warning,
                format!("{path}.params"),
                format!("placeholder {{{name}}} is used but not listed in params (§9.4); it takes its default"),
            );
        }
    }
    let mut listed = std::collections::HashSet::new();
    for (i, name) in action.params.iter().enumerate() {
        if !listed.insert(name.as_str()) {
            report.push(
                Severity::Warning,
                format!("{path}.params[{i}]"),
                format!("parameter '{name}' is listed more than once"),
            );
        } else if seen_params.insert(name.clone())
            && let Some(standard) = standard_param_name(name)
        {
            report.push(
                Severity::Warning,
                format!("{path}.params[{i}]"),
                format!("parameter '{name}' has a standard name: '{standard}' (§7)"),
            );
        }
    }
    match &action.target {
        Target::Command(cmd) => {
            if cmd.in_vm {
                report.push(
                    Severity::Error,
                    format!("{path}.target.Command.in_vm"),
                    "\"in_vm\": true (run over SSH inside the worker) is not supported; cpi refuses to run this step",
                );
            }
            if let Err(err) = template::check_command(&cmd.command) {
                report.push(
                    Severity::Error,
                    format!("{path}.target.Command"),
                    err.message().to_string(),
                );
            } else {
                // OmniCloud's `{ssh_key_param}` idiom: a placeholder meant to expand to a whole
                // optional flag (`--ssh-key k`) or to nothing.
                let fragments: Vec<String> = lone_word_placeholders(&cmd.command)
                    .into_iter()
                    .filter(|name| {
                        ["_param", "_params", "_args", "_flags", "_options"]
                            .iter()
                            .any(|suffix| name.ends_with(suffix))
                    })
                    .collect();
                if !fragments.is_empty() {
                    let empty: Vec<String> = fragments
                        .iter()
                        .filter(|n| {
                            default_of(n).map(crate::params::value_to_param).as_deref() == Some("")
                        })
                        .map(|n| format!("{{{n}}}"))
                        .collect();
                    let listed: Vec<String> =
                        fragments.iter().map(|n| format!("{{{n}}}")).collect();
                    let (them, each) = if listed.len() == 1 {
                        (
                            format!("placeholder {} is a whole argument by itself", listed[0]),
                            "its value",
                        )
                    } else {
                        (
                            format!(
                                "placeholders {} are each a whole argument by themselves",
                                listed.join(", ")
                            ),
                            "each value",
                        )
                    };
                    let empty = if empty.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (the default \"\" of {} becomes an empty argument)",
                            empty.join(", ")
                        )
                    };
                    report.push(
                        Severity::Warning,
                        format!("{path}.target.Command"),
                        format!(
                            "{them}, apparently to hold an optional flag (\"--key value\") or nothing: cpi passes {each} as exactly one argument, never split into words or dropped when empty{empty}. Write the flag in the template (\"--key {{value}}\") instead"
                        ),
                    );
                }
            }
        }
        Target::Endpoint(ep) => {
            if ep.url.starts_with("http://") {
                report.push(
                    Severity::Warning,
                    format!("{path}.target.Endpoint.url"),
                    "uses plain HTTP; prefer HTTPS (§12.1)",
                );
            }
            let content_type = ep
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                .map(|(_, value)| value.to_ascii_lowercase());
            let form = content_type
                .as_deref()
                .is_some_and(|t| t.contains("x-www-form-urlencoded"));
            if let Some(body) = ep.body.as_deref().filter(|_| !form) {
                let probe = template::body(
                    body,
                    &template::placeholders(body)
                        .map(|n| (n.to_string(), "0".to_string()))
                        .collect(),
                    template::BodyKind::Json,
                );
                let problem = match probe {
                    Ok(b) => serde_json::from_str::<Value>(&b)
                        .err()
                        .map(|e| e.to_string()),
                    Err(e) => Some(e.message().to_string()),
                };
                if let Some(problem) = problem {
                    let declared = match content_type.as_deref() {
                        Some(t) if t.contains("json") => {
                            ", although its Content-Type says JSON; a JSON API will reject it"
                        }
                        _ => "",
                    };
                    report.push(
                        Severity::Warning,
                        format!("{path}.target.Endpoint.body"),
                        format!(
                            "the body template is not valid JSON with its placeholders filled in ({problem}); cpi sends it as written, with values JSON-escaped inside strings{declared}"
                        ),
                    );
                }
            }
        }
    }
    let Some(rules) = &action.parse_rules else {
        report.push(
            Severity::Warning,
            path.to_string(),
            "no parse_rules: the raw output is returned",
        );
        return;
    };
    for (field, pattern) in &rules.patterns {
        if let Err(err) = parse::check_pattern(rules.kind, field, pattern) {
            report.push(
                Severity::Error,
                format!("{path}.parse_rules.patterns.{field}"),
                err.message().to_string(),
            );
        }
    }
    if let Some(sep) = &rules.separator
        && let Err(err) = parse::compile_regex(sep)
    {
        report.push(
            Severity::Error,
            format!("{path}.parse_rules.separator"),
            format!("invalid separator regex: {err}"),
        );
    }
    if !rules.array_patterns.is_empty() && rules.kind != crate::provider::RuleKind::Properties {
        report.push(
            Severity::Warning,
            format!("{path}.parse_rules.array_patterns"),
            "array_patterns only apply to rules of type 'properties'",
        );
    }
    if let Err(err) = crate::parse::CompiledRules::compile(rules) {
        let msg = err.message().to_string();
        if !report.findings.iter().any(|f| f.message == msg)
            && rules
                .patterns
                .iter()
                .all(|(f, p)| parse::check_pattern(rules.kind, f, p).is_ok())
        {
            report.push(Severity::Error, format!("{path}.parse_rules"), msg);
        }
    }
}

/// Error rules: each regex compiles and cannot match the empty text; exit code 0 never fails.
fn check_error_rules(rules: &[crate::provider::ErrorRule], path: &str, report: &mut Report) {
    for (i, rule) in rules.iter().enumerate() {
        if let Err((_, why)) = crate::exec::ErrorRules::compile(std::slice::from_ref(rule)) {
            report.push(Severity::Error, format!("{path}[{i}].when"), why);
        }
        if rule.exit_code == Some(0) {
            report.push(
                Severity::Error,
                format!("{path}[{i}].exit_code"),
                "exit code 0 is a success, never an error: name the failing status",
            );
        }
    }
}

/// §5 naming: `verb_resource`, with the standard's verbs.
fn check_name(name: &str, path: &str, report: &mut Report) {
    const VERBS: &[&str] = &[
        "list",
        "create",
        "delete",
        "get",
        "has",
        "start",
        "stop",
        "reboot",
        "suspend",
        "resume",
        "update",
        "resize",
        "rename",
        "tag",
        "untag",
        "attach",
        "detach",
        "test",
        "configure",
        "initialize",
        "setup",
        "validate",
        "install",
        "set",
        "rotate",
    ];
    let (verb, resource) = name.split_once('_').unwrap_or((name, ""));
    if let Some(standard) = standard_action_name(name) {
        report.push(
            Severity::Warning,
            path.to_string(),
            format!("action name '{name}' does not follow the §5 conventions: the standard name is '{standard}'"),
        );
    } else if !VERBS.contains(&verb) || resource.is_empty() {
        report.push(
            Severity::Warning,
            path.to_string(),
            format!("action name '{name}' does not follow the §5 conventions (verb_resource, verbs: list, create, delete, get, has, start, stop, ...)"),
        );
    } else if verb == "list" && !resource.ends_with('s') {
        report.push(
            Severity::Warning,
            path.to_string(),
            format!("'{name}': list_ takes a plural resource (§5.1)"),
        );
    }
}

/// The §5 name for an action named with a common synonym of a standard verb
/// (`power_on_worker` → `start_worker`, `terminate_worker` → `delete_worker`).
pub fn standard_action_name(name: &str) -> Option<String> {
    const SYNONYMS: &[(&str, &str)] = &[
        ("power_on_", "start"),
        ("poweron_", "start"),
        ("boot_", "start"),
        ("power_off_", "stop"),
        ("poweroff_", "stop"),
        ("shutdown_", "stop"),
        ("halt_", "stop"),
        ("restart_", "reboot"),
        ("reset_", "reboot"),
        ("terminate_", "delete"),
        ("destroy_", "delete"),
        ("remove_", "delete"),
        ("describe_", "get"),
        ("show_", "get"),
        ("add_", "create"),
        ("modify_", "update"),
    ];
    SYNONYMS.iter().find_map(|(prefix, verb)| {
        let resource = name.strip_prefix(prefix)?;
        let fits = match *verb {
            // The §5.2 state operations are worker operations: restarting a service is not
            // rebooting it.
            "start" | "stop" | "reboot" => resource == "worker",
            // `add_tag_to_resource` names two resources; no single §5 name fits it.
            _ => !resource.is_empty() && !resource.contains("_to_") && !resource.contains("_from_"),
        };
        fits.then(|| format!("{verb}_{resource}"))
    })
}

/// Placeholders that make up a whole command argument on their own, outside a shell script
/// and not as the value of a preceding `-flag`.
fn lone_word_placeholders(command: &str) -> Vec<String> {
    let names: Vec<String> = template::placeholders(command)
        .map(str::to_string)
        .collect();
    let marker = |n: &str| format!("\u{1}{n}\u{1}");
    let values: template::Values = names.iter().map(|n| (n.clone(), marker(n))).collect();
    let Ok(argv) = template::command_argv(command, &values) else {
        return Vec::new();
    };
    // Looked up by marker, not by formatting every name for every word: linear in the
    // template's size (50,000 placeholders once took minutes here).
    let by_marker: std::collections::HashMap<String, &String> =
        names.iter().map(|n| (marker(n), n)).collect();
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, word) in argv.iter().enumerate().skip(1) {
        let Some(name) = by_marker.get(word) else {
            continue;
        };
        if !argv[i - 1].starts_with('-') && seen.insert(*name) {
            found.push((*name).clone());
        }
    }
    found
}

/// The §7 standard name for a common non-standard parameter name.
pub fn standard_param_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "instance_id" | "server_id" | "vm_id" | "vmid" | "droplet_id" | "linode_id"
        | "machine_id" | "container_id" => "worker_id",
        "instance_type" | "machine_type" | "server_type" | "flavor" | "plan" | "vm_size"
        | "worker_size" | "shape" | "bundle_id" => "worker_type",
        "image_id" | "image_name" | "os" | "blueprint_id" | "template" | "os_image" => "image",
        "location" | "datacenter" | "metro" => "region",
        "availability_zone" | "availability_domain" => "zone",
        "volume_id" => "disk_id",
        "volume_type" | "storage_type" | "disk_sku" => "disk_type",
        "disk_size" | "disk_size_gb" | "volume_size" | "volume_size_gb" | "size_in_gb" => "size_gb",
        "network_id" | "network_name" | "vpc" | "vpc_id" => "network",
        "subnet_id" | "subnetwork" => "subnet",
        "ip" | "public_ip" | "ipv4" => "ip_address",
        "instance_name" | "server_name" | "vm_name" | "worker_name" | "hostname" => "name",
        _ => return None,
    })
}

/// Every `*.json` file under the given paths (files as given, directories one level deep).
pub fn expand_paths(paths: &[PathBuf]) -> crate::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(crate::provider::provider_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str) -> Report {
        validate_text(text, Path::new("t.json"))
    }

    #[test]
    fn reports_missing_methods_bad_regexes_and_undeclared_placeholders() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{
            "get_worker":{"target":{"Command":"cli get {worker_id} {zone}"},"params":["worker_id","unused"],
              "parse_rules":{"type":"object","patterns":{"id":{"regex":"(x","group":1},
              "n":{"regex":"(a)","group":3},"t":{"regex":"a","transform":"upper"}}},"extra":1}}}"#,
        );
        let text = format!("{:#?}", r.findings);
        assert!(text.contains("required method 'create_worker'"), "{text}");
        assert!(text.contains("placeholder {zone}"), "{text}");
        assert!(text.contains("invalid regex"), "{text}");
        assert!(text.contains("group 3"), "{text}");
        assert!(text.contains("unknown transform"), "{text}");
        assert!(
            text.contains("'unused' is declared but never used"),
            "{text}"
        );
        assert!(text.contains("actions.get_worker.extra"), "{text}");
        assert_eq!(r.findings[0].severity, Severity::Error);
    }

    #[test]
    fn accept_exit_needs_a_command_a_non_zero_code_and_a_regex() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{
              "list_snapshots":{"target":{"Command":"vbox list"},
                "accept_exit":[{"code":1,"when":"no snapshots"},{"code":0,"when":"(x"}]},
              "list_disks":{"target":{"Endpoint":{"url":"https://x/d","method":"Get"}},
                "accept_exit":[{"code":1,"when":"none"}]}}}"#,
        );
        let at = |path: &str| -> Vec<String> {
            r.findings
                .iter()
                .filter(|f| f.path == path && f.severity == Severity::Error)
                .map(|f| f.message.clone())
                .collect()
        };
        assert!(at("actions.list_snapshots.accept_exit[0]").is_empty());
        assert!(at("actions.list_snapshots.accept_exit[1]")[0].contains("exit code 0"));
        assert!(at("actions.list_snapshots.accept_exit[1].when")[0].contains("invalid regex"));
        assert!(at("actions.list_disks.accept_exit[0]")[0].contains("command targets only"));
        assert!(
            !format!("{:?}", r.findings).contains("unknown field"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn paginate_needs_the_page_in_the_target_a_pointer_and_a_list() {
        let r = report(
            r#"{"name":"t","type":"endpoint","default_settings":{"page":1},"actions":{
              "list_workers":{"target":{"Endpoint":{"url":"https://x/s?page={page}","method":"Get"}},
                "params":["page"],
                "paginate":{"param":"page","next":{"pointer":"/meta/next_page"}},
                "parse_rules":{"type":"json","items":"/servers","patterns":{"id":{"pointer":"/id"}}}},
              "list_disks":{"target":{"Endpoint":{"url":"https://x/d","method":"Get"}},
                "paginate":{"param":"page","next":{"regex":"next=(\\d+)"}},
                "parse_rules":{"type":"json","patterns":{"id":{"pointer":"/id"}}}}}}"#,
        );
        let errors = |prefix: &str| -> Vec<String> {
            r.findings
                .iter()
                .filter(|f| f.path.starts_with(prefix) && f.severity == Severity::Error)
                .map(|f| format!("{}: {}", f.path, f.message))
                .collect()
        };
        assert!(
            errors("actions.list_workers").is_empty(),
            "{:?}",
            r.findings
        );
        let disks = errors("actions.list_disks.paginate").join("\n");
        assert!(disks.contains("does not use {page}"), "{:#?}", r.findings);
        assert!(disks.contains("pointer"), "{disks}");
        assert!(disks.contains("must make a list"), "{disks}");
    }

    #[test]
    fn tls_defaults_are_checked() {
        let finding = |verify: &str| {
            let r = report(&format!(
                r#"{{"name":"t","type":"endpoint","default_settings":{{"verify_ssl":"{verify}"}},
                    "actions":{{}}}}"#
            ));
            r.findings
                .into_iter()
                .find(|f| f.path == "default_settings.verify_ssl")
                .map(|f| (f.severity, f.message))
        };
        assert_eq!(finding("true"), None);
        let (severity, message) = finding("off").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("ca_cert_file"), "{message}");
        let (severity, message) = finding("sometimes").unwrap();
        assert_eq!(severity, Severity::Error);
        assert!(message.contains("\"sometimes\""), "{message}");
    }

    #[test]
    fn declarations_that_cannot_be_met_or_that_defaults_break_are_errors() {
        let r = report(
            r#"{"name":"t","type":"command","secrets":["k"],
                "default_settings":{"n":0,"m":"c","d":"-1"},
                "parameters":{
                  "n":{"type":"integer","min":1},
                  "m":{"enum":["a","b"]},
                  "e":{"enum":[]},
                  "r":{"pattern":"("},
                  "b":{"type":"boolean","max":1},
                  "x":{"type":"integer","min":5,"max":1},
                  "y":{"enum":["ok","NO"],"pattern":"[a-z]+"},
                  "k":{"secret":false},
                  "bad name":{},
                  "ok":{"type":"number","description":"fine","bogus":1}
                },
                "actions":{"a":{"target":{"Command":"x {n} {m} {d}"},"params":["n","m","d"],
                  "default_settings":{"m":"z"}}}}"#,
        );
        let errors: Vec<(String, String)> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.path.clone(), f.message.clone()))
            .collect();
        let text = format!("{errors:#?}");
        for path in [
            "default_settings.n",
            "default_settings.m",
            "actions.a.default_settings.m",
            "parameters.e.enum",
            "parameters.r.pattern",
            "parameters.b.type",
            "parameters.x.min",
            "parameters.y.enum[1]",
            "parameters.k.secret",
            "parameters.bad name",
            "actions.a",
        ] {
            assert!(
                errors.iter().any(|(p, _)| p == path),
                "{path} missing: {text}"
            );
        }
        assert!(!text.contains("parameters.ok"), "{text}");
        assert!(
            r.findings
                .iter()
                .any(|f| f.path == "parameters.ok.bogus" && f.severity == Severity::Warning),
            "{:#?}",
            r.findings
        );
    }

    #[test]
    fn not_secret_is_a_known_key_and_contradictions_are_errors() {
        let r = report(
            r#"{"name":"t","type":"command","secrets":["token_name"],
                "not_secret":["token_name","ok_token"],"actions":{}}"#,
        );
        let text = format!("{:#?}", r.findings);
        assert!(!text.contains("unknown"), "{text}");
        assert!(
            r.findings.iter().any(|f| f.severity == Severity::Error
                && f.path == "not_secret"
                && f.message.contains("'token_name'")),
            "{text}"
        );
        assert!(!text.contains("'ok_token'"), "{text}");
    }

    #[test]
    fn schema_errors_carry_the_json_path() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{"a":{"target":{"Endpoint":{"url":1,"method":"Get"}}}}}"#,
        );
        assert_eq!(r.errors(), 1);
        assert_eq!(r.findings[0].path, "actions.a.target.Endpoint.url");
    }

    #[test]
    fn steps_run_with_the_actions_values() {
        // OmniCloud's vmware-esxi create_worker: the post_exec step uses the action's param and
        // the field the step before it parsed; neither is a missing value.
        let r = report(
            r#"{"name":"t","type":"command","actions":{
            "create_worker":{"target":{"Command":"vim-cmd create {worker_name}"},"params":["worker_name"],
              "post_exec":[
                {"target":{"Command":"vim-cmd find {worker_name}"},
                 "parse_rules":{"type":"object","patterns":{"vmid":{"regex":"(\\d+)"}}}},
                {"target":{"Command":"vim-cmd devices {vmid} {nowhere}"}}]}}}"#,
        );
        let text = format!("{:#?}", r.findings);
        assert!(!text.contains("{worker_name}"), "{text}");
        assert!(!text.contains("{vmid}"), "{text}");
        assert!(
            r.findings.iter().any(|f| f.severity == Severity::Error
                && f.path == "actions.create_worker.post_exec[1].target"
                && f.message.contains("{nowhere}")),
            "{text}"
        );
    }

    #[test]
    fn names_point_at_the_standard_equivalent() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{
            "power_on_worker":{"target":{"Command":"x"},"params":["instance_id","instance_id"]},
            "restart_service":{"target":{"Command":"x"}},
            "create_disk":{"target":{"Command":"x create {tags_param}"},"default_settings":{"tags_param":""}}}}"#,
        );
        let find = |path: &str| -> Vec<&str> {
            r.findings
                .iter()
                .filter(|f| f.path == path)
                .map(|f| f.message.as_str())
                .collect()
        };
        let all = format!("{:#?}", r.findings);
        assert!(all.contains("required method 'start_worker' is missing (§2.1); action 'power_on_worker' looks like it"), "{all}");
        assert!(find("actions.power_on_worker")[0].contains("the standard name is 'start_worker'"));
        assert!(
            !find("actions.restart_service")[0].contains("reboot"),
            "{all}"
        );
        assert!(find("actions.power_on_worker.params[0]")[0].contains("'worker_id' (§7)"));
        assert!(find("actions.power_on_worker.params[1]")[0].contains("listed more than once"));
        let cmd = find("actions.create_disk.target.Command");
        assert!(
            cmd[0].contains("{tags_param} is a whole argument")
                && cmd[0].contains("empty argument"),
            "{all}"
        );
    }
}
