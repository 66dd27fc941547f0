//! Checks of one step (an action, or a `pre_exec`/`post_exec` step of one), each a small
//! function run in the order of [`STEP_CHECKS`].

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::names::standard_param_name;
use super::provider::error_rules;
use super::{Report, Severity};
use cpi::params::value_to_param;
use cpi::parse;
use cpi::provider::{Action, Provider, RuleKind, Target};
use cpi::template;

/// Where a step is checked: its provider, the step, its JSON path, the action it belongs to
/// (for `pre_exec`/`post_exec` steps), what earlier steps produce.
pub(super) struct Step<'a> {
    /// The provider the step is in.
    pub provider: &'a Provider,
    /// The step itself (the action, for the action's own target).
    pub step: &'a Action,
    /// Its JSON path (`actions.get_worker.pre_exec[0]`).
    pub path: String,
    /// The action a `pre_exec`/`post_exec` step belongs to.
    pub parent: Option<&'a Action>,
    /// The default of each of the action's parameters that has one
    /// ([`cpi::params::action_params`]).
    pub defaults: &'a HashMap<&'a str, &'a Value>,
    /// Fields the steps before this one parse (they become values of this one).
    pub produced: &'a BTreeSet<String>,
    /// Parameter names already checked against the §7 names (each is reported once).
    pub seen_params: &'a RefCell<BTreeSet<String>>,
}

impl Step<'_> {
    /// The value a parameter takes when nobody gives one: the step's own default, else the
    /// one [`cpi::params::action_params`] finds (the action's, then the provider's).
    fn default_of(&self, name: &str) -> Option<&Value> {
        self.step.default_settings.get(name).or_else(|| {
            self.defaults
                .get(name)
                .copied()
                .or_else(|| self.provider.default_settings.get(name))
        })
    }

    /// Whether the action this step belongs to lists `name` in its params.
    fn in_parent(&self, name: &str) -> bool {
        self.parent
            .is_some_and(|p| p.params.iter().any(|n| n == name))
    }

    /// Reports a finding at the step's path plus `at` (`".cache"`, or `""`).
    fn push(&self, report: &mut Report, severity: Severity, at: &str, message: impl Into<String>) {
        report.push(severity, format!("{}{at}", self.path), message);
    }
}

/// One check of one step.
type StepCheck = fn(&Step<'_>, &mut Report);

/// The step checks, in the order their findings are reported.
const STEP_CHECKS: &[StepCheck] = &[
    step_error_rules,
    cache,
    accept_exit,
    paginate,
    placeholders,
    listed_params,
    command_target,
    endpoint_target,
    parse_rules,
];

/// Runs every step check on `step`.
pub(super) fn check(step: &Step<'_>, report: &mut Report) {
    for check in STEP_CHECKS {
        check(step, report);
    }
}

/// The fields a step's parse rules produce.
pub(super) fn field_names(action: &Action) -> BTreeSet<String> {
    action
        .parse_rules
        .iter()
        .flat_map(|r| r.patterns.keys().chain(r.array_patterns.keys()))
        .cloned()
        .collect()
}

/// The step's own error rules.
fn step_error_rules(step: &Step<'_>, report: &mut Report) {
    error_rules(
        &step.step.error_rules,
        &format!("{}.error_rules", step.path),
        report,
    );
}

/// `cache` is a readable duration, and not on worker or disk state (never cached).
fn cache(step: &Step<'_>, report: &mut Report) {
    let Some(cache) = &step.step.cache else {
        return;
    };
    if let Err(err) = cpi::cache::parse_ttl(cache) {
        step.push(report, Severity::Error, ".cache", err.message());
    } else if cpi::cache::is_state(step.path.rsplit('.').next().unwrap_or_default()) {
        step.push(
            report,
            Severity::Warning,
            ".cache",
            "worker and disk state is never cached: \"cache\" is ignored here",
        );
    }
}

/// `accept_exit`: a command target, a non-zero code, a regex that compiles and is not empty.
fn accept_exit(step: &Step<'_>, report: &mut Report) {
    for (i, accept) in step.step.accept_exit.iter().enumerate() {
        let at = format!(".accept_exit[{i}]");
        if !matches!(step.step.target, Target::Command(_)) {
            step.push(
                report,
                Severity::Error,
                &at,
                "accept_exit applies to command targets only (an HTTP status is not an exit code)",
            );
        }
        if accept.code == 0 {
            step.push(
                report,
                Severity::Error,
                &at,
                "exit code 0 is always a success: accept_exit names non-zero codes",
            );
        }
        let when = format!("{at}.when");
        if accept.when.trim().is_empty() {
            step.push(
                report,
                Severity::Error,
                &when,
                "an empty regex accepts every exit with this code, real failures included: \
                 match the text that tells this answer apart",
            );
        } else if let Err(e) = regex::Regex::new(&accept.when) {
            step.push(
                report,
                Severity::Error,
                &when,
                format!("invalid regex: {e}"),
            );
        }
    }
}

/// `paginate`: the page is in the target, the next page is readable, the rules make a list.
fn paginate(step: &Step<'_>, report: &mut Report) {
    let action = step.step;
    let Some(paginate) = &action.paginate else {
        return;
    };
    if !action.target.placeholders().contains(&paginate.param) {
        step.push(
            report,
            Severity::Error,
            ".paginate.param",
            format!(
                "the target does not use {{{}}}, so every page would be the same request",
                paginate.param
            ),
        );
    }
    if let Err(err) = parse::json::next_page(&paginate.next, "{}") {
        step.push(report, Severity::Error, ".paginate.next", err.message());
    }
    let lists = action.parse_rules.as_ref().is_some_and(|r| {
        matches!(r.kind, RuleKind::Array | RuleKind::Table)
            || (r.kind == RuleKind::Json && r.items.is_some())
    });
    if !lists {
        step.push(
            report,
            Severity::Error,
            ".paginate",
            "a paged action's parse rules must make a list (type json with items, array or table)",
        );
    }
}

/// Every placeholder can get a value (§9.4): listed in params, defaulted, or produced by an
/// earlier step; one that only takes its default is worth a warning.
fn placeholders(step: &Step<'_>, report: &mut Report) {
    // Sets, not list scans: a template with 50,000 placeholders stays linear.
    let params: HashSet<&str> = step.step.params.iter().map(String::as_str).collect();
    for name in step.step.target.placeholders() {
        let declared = params.contains(name.as_str()) || step.in_parent(&name);
        let produced = step.produced.contains(&name);
        if !declared && step.default_of(&name).is_none() && !produced {
            step.push(
                report,
                Severity::Error,
                ".target",
                format!("placeholder {{{name}}} is not in params and has no default, so it can never get a value (§9.4)"),
            );
        } else if !declared && !produced {
            step.push(
                report,
                Severity::Warning,
                ".params",
                format!("placeholder {{{name}}} is used but not listed in params (§9.4); it takes its default"),
            );
        }
    }
}

/// Params listed once each, and by their §7 standard names (each name reported once per file).
fn listed_params(step: &Step<'_>, report: &mut Report) {
    let mut listed = HashSet::new();
    for (i, name) in step.step.params.iter().enumerate() {
        let at = format!(".params[{i}]");
        if !listed.insert(name.as_str()) {
            step.push(
                report,
                Severity::Warning,
                &at,
                format!("parameter '{name}' is listed more than once"),
            );
        } else if step.seen_params.borrow_mut().insert(name.clone())
            && let Some(standard) = standard_param_name(name)
        {
            step.push(
                report,
                Severity::Warning,
                &at,
                format!("parameter '{name}' has a standard name: '{standard}' (§7)"),
            );
        }
    }
}

/// A command target: not `in_vm`, a template cpi runs, and no placeholder meant to expand to
/// a whole optional flag ([`flag_fragments`]).
fn command_target(step: &Step<'_>, report: &mut Report) {
    let Target::Command(cmd) = &step.step.target else {
        return;
    };
    if cmd.in_vm {
        step.push(
            report,
            Severity::Error,
            ".target.Command.in_vm",
            "\"in_vm\": true (run over SSH inside the worker) is not supported; cpi refuses to run this step",
        );
    }
    if let Err(err) = template::check_command(&cmd.command) {
        step.push(report, Severity::Error, ".target.Command", err.message());
    } else if let Some(message) = flag_fragments(step, &cmd.command) {
        step.push(report, Severity::Warning, ".target.Command", message);
    }
}

/// OmniCloud's `{ssh_key_param}` idiom: placeholders meant to expand to a whole optional flag
/// (`--ssh-key k`) or to nothing, which cpi passes as exactly one argument.
fn flag_fragments(step: &Step<'_>, command: &str) -> Option<String> {
    let fragments: Vec<String> = lone_word_placeholders(command)
        .into_iter()
        .filter(|name| {
            ["_param", "_params", "_args", "_flags", "_options"]
                .iter()
                .any(|suffix| name.ends_with(suffix))
        })
        .collect();
    if fragments.is_empty() {
        return None;
    }
    let braced = |names: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        names.map(|n| format!("{{{n}}}")).collect()
    };
    let empty = braced(
        &mut fragments
            .iter()
            .filter(|n| step.default_of(n).map(value_to_param).as_deref() == Some("")),
    );
    let listed = braced(&mut fragments.iter());
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
    Some(format!(
        "{them}, apparently to hold an optional flag (\"--key value\") or nothing: cpi passes {each} as exactly one argument, never split into words or dropped when empty{empty}. Write the flag in the template (\"--key {{value}}\") instead"
    ))
}

/// An endpoint target: HTTPS, and a body that is JSON once its placeholders are filled in
/// (unless it is a form).
fn endpoint_target(step: &Step<'_>, report: &mut Report) {
    let Target::Endpoint(ep) = &step.step.target else {
        return;
    };
    if ep.url.starts_with("http://") {
        step.push(
            report,
            Severity::Warning,
            ".target.Endpoint.url",
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
    let Some(body) = ep.body.as_deref().filter(|_| !form) else {
        return;
    };
    let Some(problem) = json_body_problem(body) else {
        return;
    };
    let declared = match content_type.as_deref() {
        Some(t) if t.contains("json") => {
            ", although its Content-Type says JSON; a JSON API will reject it"
        }
        _ => "",
    };
    step.push(
        report,
        Severity::Warning,
        ".target.Endpoint.body",
        format!(
            "the body template is not valid JSON with its placeholders filled in ({problem}); cpi sends it as written, with values JSON-escaped inside strings{declared}"
        ),
    );
}

/// Why a body template is not JSON once every placeholder is `0`, if it is not.
fn json_body_problem(body: &str) -> Option<String> {
    let probe = template::body(
        body,
        &template::placeholders(body)
            .map(|n| (n.to_string(), "0".to_string()))
            .collect(),
        template::BodyKind::Json,
    );
    match probe {
        Ok(b) => serde_json::from_str::<Value>(&b)
            .err()
            .map(|e| e.to_string()),
        Err(e) => Some(e.message().to_string()),
    }
}

/// Parse rules: present (else the raw output is returned), each pattern and the separator
/// compile, `array_patterns` only where they apply, and the whole set compiles.
fn parse_rules(step: &Step<'_>, report: &mut Report) {
    let Some(rules) = &step.step.parse_rules else {
        step.push(
            report,
            Severity::Warning,
            "",
            "no parse_rules: the raw output is returned",
        );
        return;
    };
    for (field, pattern) in &rules.patterns {
        if let Err(err) = parse::check_pattern(rules.kind, field, pattern) {
            let at = format!(".parse_rules.patterns.{field}");
            step.push(report, Severity::Error, &at, err.message());
        }
    }
    if let Some(sep) = &rules.separator
        && let Err(err) = parse::compile_regex(sep)
    {
        step.push(
            report,
            Severity::Error,
            ".parse_rules.separator",
            format!("invalid separator regex: {err}"),
        );
    }
    if !rules.array_patterns.is_empty() && rules.kind != RuleKind::Properties {
        step.push(
            report,
            Severity::Warning,
            ".parse_rules.array_patterns",
            "array_patterns only apply to rules of type 'properties'",
        );
    }
    if let Err(err) = parse::CompiledRules::compile(rules) {
        let msg = err.message().to_string();
        if !report.findings.iter().any(|f| f.message == msg)
            && rules
                .patterns
                .iter()
                .all(|(f, p)| parse::check_pattern(rules.kind, f, p).is_ok())
        {
            step.push(report, Severity::Error, ".parse_rules", msg);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The `(path, message)` findings `check` reports for action `a` of the provider whose
    /// actions are `actions`.
    fn run(check: StepCheck, actions: &str) -> Vec<(String, String)> {
        let json = format!(r#"{{"name":"t","type":"command","actions":{actions}}}"#);
        let provider = Provider::from_json(&json, std::path::Path::new("t.json")).unwrap();
        let action = &provider.actions["a"];
        let params = cpi::params::action_params(&provider, action);
        let defaults = crate::validate::provider::action_defaults(&params);
        let (produced, seen) = (BTreeSet::new(), RefCell::new(BTreeSet::new()));
        let step = Step {
            provider: &provider,
            step: action,
            path: "actions.a".into(),
            parent: None,
            defaults: &defaults,
            produced: &produced,
            seen_params: &seen,
        };
        let mut report = Report::for_file(std::path::Path::new("t.json"));
        check(&step, &mut report);
        report
            .findings
            .into_iter()
            .map(|f| (f.path, f.message))
            .collect()
    }

    fn paths(found: &[(String, String)]) -> Vec<&str> {
        found.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn a_steps_error_rules_are_checked_at_its_path() {
        let found = run(
            step_error_rules,
            r#"{"a":{"target":{"Command":"x"},"error_rules":[{"when":"(","category":"ProviderError"}]}}"#,
        );
        assert_eq!(paths(&found), ["actions.a.error_rules[0].when"]);
    }

    #[test]
    fn cache_needs_a_duration() {
        let found = run(cache, r#"{"a":{"target":{"Command":"x"},"cache":"soon"}}"#);
        assert_eq!(paths(&found), ["actions.a.cache"]);
        assert!(run(cache, r#"{"a":{"target":{"Command":"x"},"cache":"1h"}}"#).is_empty());
    }

    #[test]
    fn accept_exit_is_for_commands_with_a_non_zero_code_and_a_regex() {
        let found = run(
            accept_exit,
            r#"{"a":{"target":{"Command":"x"},"accept_exit":[{"code":0,"when":" "}]}}"#,
        );
        assert_eq!(
            paths(&found),
            ["actions.a.accept_exit[0]", "actions.a.accept_exit[0].when"]
        );
    }

    #[test]
    fn paging_needs_the_page_in_the_target_and_a_list() {
        let found = run(
            paginate,
            r#"{"a":{"target":{"Command":"x"},"paginate":{"param":"page","next":{"pointer":"/next"}}}}"#,
        );
        assert_eq!(
            paths(&found),
            ["actions.a.paginate.param", "actions.a.paginate"]
        );
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_and_one_with_a_default_a_warning() {
        let found = run(
            placeholders,
            r#"{"a":{"target":{"Command":"x {none} {dflt}"},"default_settings":{"dflt":"1"}}}"#,
        );
        assert_eq!(paths(&found), ["actions.a.target", "actions.a.params"]);
        assert!(found[0].1.contains("{none}") && found[1].1.contains("{dflt}"));
    }

    #[test]
    fn params_are_listed_once_and_by_standard_names() {
        let found = run(
            listed_params,
            r#"{"a":{"target":{"Command":"x {vm_id}"},"params":["vm_id","vm_id"]}}"#,
        );
        assert_eq!(
            paths(&found),
            ["actions.a.params[0]", "actions.a.params[1]"]
        );
        assert!(found[0].1.contains("'worker_id'") && found[1].1.contains("more than once"));
    }

    #[test]
    fn command_targets_refuse_in_vm_and_warn_about_flag_fragments() {
        let found = run(
            command_target,
            r#"{"a":{"target":{"Command":{"command":"x {opt_flags}","in_vm":true}},"default_settings":{"opt_flags":""}}}"#,
        );
        assert_eq!(
            paths(&found),
            ["actions.a.target.Command.in_vm", "actions.a.target.Command"]
        );
        assert!(found[1].1.contains("empty argument"), "{found:?}");
    }

    #[test]
    fn endpoint_targets_prefer_https_and_a_json_body() {
        let found = run(
            endpoint_target,
            r#"{"a":{"target":{"Endpoint":{"url":"http://x","method":"Post","body":"{\"a\": {v}"}}}}"#,
        );
        assert_eq!(
            paths(&found),
            [
                "actions.a.target.Endpoint.url",
                "actions.a.target.Endpoint.body"
            ]
        );
        assert_eq!(json_body_problem(r#"{"a": {v}}"#), None);
    }

    #[test]
    fn parse_rules_compile_and_are_missed_when_absent() {
        assert_eq!(
            paths(&run(parse_rules, r#"{"a":{"target":{"Command":"x"}}}"#)),
            ["actions.a"]
        );
        let found = run(
            parse_rules,
            r#"{"a":{"target":{"Command":"x"},"parse_rules":{"type":"array","separator":"(","patterns":{"f":{"regex":"("}},
               "array_patterns":{"d":{}}}}}"#,
        );
        assert_eq!(
            paths(&found),
            [
                "actions.a.parse_rules.patterns.f",
                "actions.a.parse_rules.separator",
                "actions.a.parse_rules.array_patterns",
            ]
        );
    }

    #[test]
    fn lone_word_placeholders_are_whole_arguments_not_flag_values() {
        assert_eq!(lone_word_placeholders("x {a} --k {b} pre{c}"), ["a"]);
    }
}
