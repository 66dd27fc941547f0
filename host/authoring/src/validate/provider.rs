//! Checks of a whole provider file, each a small function run in the order of
//! [`PROVIDER_CHECKS`]; the checks of each action and step are in [`super::step`].

use std::collections::BTreeSet;

use serde_json::Value;

use super::names::{check_name, standard_action_name};
use super::step::{self, Step};
use super::{REQUIRED_METHODS, Report, Severity};
use cpi::params::{self, value_to_param};
use cpi::provider::{Action, ErrorRule, ParamDecl, Provider, ProviderKind, Target};
use cpi::status::{AUTH_STATUSES, WORKER_STATUSES};
use cpi::template;

/// One check of a whole provider.
pub(super) type ProviderCheck = fn(&Provider, &mut Report);

/// The provider checks, in the order their findings are reported.
pub(super) const PROVIDER_CHECKS: &[ProviderCheck] = &[
    required_methods,
    provider_error_rules,
    status_map,
    secret_lists,
    tls_defaults,
    secret_defaults,
    placeholder_defaults,
    declarations,
    leading_dash_defaults,
    actions,
];

/// Every required method of §2.1 is there; a missing one names the action that looks like it.
fn required_methods(provider: &Provider, report: &mut Report) {
    for method in REQUIRED_METHODS {
        if provider.actions.contains_key(method) {
            continue;
        }
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

/// The provider's own error rules ([`error_rules`]).
fn provider_error_rules(provider: &Provider, report: &mut Report) {
    error_rules(&provider.error_rules, "error_rules", report);
}

/// Error rules: each regex compiles and cannot match the empty text; exit code 0 never fails.
pub(super) fn error_rules(rules: &[ErrorRule], path: &str, report: &mut Report) {
    for (i, rule) in rules.iter().enumerate() {
        if let Err((_, why)) = cpi::exec::ErrorRules::compile(std::slice::from_ref(rule)) {
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

/// Every status the `status_map` maps to is a standard one (§6.1).
fn status_map(provider: &Provider, report: &mut Report) {
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
}

/// No name is both in `secrets` and in `not_secret`.
fn secret_lists(provider: &Provider, report: &mut Report) {
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
}

/// An endpoint provider's TLS defaults are readable, and do not turn certificate checks off.
fn tls_defaults(provider: &Provider, report: &mut Report) {
    if provider.kind != ProviderKind::Endpoint {
        return;
    }
    let defaults: template::Values = provider
        .default_settings
        .iter()
        .map(|(k, v)| (k.clone(), value_to_param(v)))
        .collect();
    match cpi::exec::http::Tls::from_values(&defaults) {
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

/// No secret has a value in the provider file.
fn secret_defaults(provider: &Provider, report: &mut Report) {
    for (name, value) in &provider.default_settings {
        if cpi::secret::is_secret_name(name, provider)
            && value.as_str().is_some_and(|s| !s.is_empty())
        {
            report.push(
                Severity::Warning,
                format!("default_settings.{name}"),
                format!("'{name}' is a secret; keep its value out of the provider file (use CPI_PARAM_{} or the config file)", name.to_ascii_uppercase()),
            );
        }
    }
}

/// A default holding a placeholder: values are substituted once, so it is sent literally.
fn placeholder_defaults(provider: &Provider, report: &mut Report) {
    let scopes = std::iter::once(("default_settings".to_string(), &provider.default_settings))
        .chain(provider.actions.iter().map(|(name, a)| {
            (
                format!("actions.{name}.default_settings"),
                &a.default_settings,
            )
        }));
    for (scope, defaults) in scopes {
        for (name, value) in defaults {
            let Some(text) = value.as_str() else { continue };
            if let Some(first) = template::placeholders(text).next() {
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
}

/// Parameter declarations: each one can be met ([`declaration_rules`]) and then every choice
/// and default satisfies it.
fn declarations(provider: &Provider, report: &mut Report) {
    for (name, decl) in &provider.parameters {
        let at = format!("parameters.{name}");
        if !params::is_param_name(name) {
            report.push(
                Severity::Error,
                &at,
                format!("'{name}' is not a parameter name (letters, digits and '_')"),
            );
        }
        if declaration_rules(provider, name, decl, &at, report) {
            declared_values(provider, name, decl, &at, report);
        }
    }
}

/// Whether a declaration can be met: its pattern compiles, its enum is not empty, min <= max,
/// a boolean has no bounds, and it does not contradict `secrets`. Reports what cannot.
fn declaration_rules(
    provider: &Provider,
    name: &str,
    decl: &ParamDecl,
    at: &str,
    report: &mut Report,
) -> bool {
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
    if decl.kind == cpi::provider::ParamType::Boolean && (decl.min.is_some() || decl.max.is_some())
    {
        error("type", "a boolean has no min or max".into());
    }
    if decl.secret == Some(false) && provider.secrets.iter().any(|s| s == name) {
        error(
            "secret",
            format!("'{name}' is listed in secrets but declared \"secret\": false"),
        );
    }
    sound
}

/// Every choice of a declaration's enum and every default of the parameter fits it.
fn declared_values(
    provider: &Provider,
    name: &str,
    decl: &ParamDecl,
    at: &str,
    report: &mut Report,
) {
    let secret = cpi::secret::is_secret_name(name, provider);
    for (i, choice) in decl.choices.iter().flatten().enumerate() {
        let text = value_to_param(choice);
        if let Err(err) = params::check_value(name, decl, &text, !secret) {
            report.push(Severity::Error, format!("{at}.enum[{i}]"), err.message());
        }
    }
    for (scope, value) in defaults_of(provider, name) {
        let text = value_to_param(value);
        if let Err(err) = params::check_value(name, decl, &text, !secret) {
            let message = format!(
                "the default does not fit its declaration: {}",
                err.message()
            );
            report.push(Severity::Error, format!("{scope}.{name}"), message);
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
        for (place, step) in checked_order(action) {
            if let Some(v) = step.default_settings.get(name) {
                found.push((format!("{}.default_settings", step_path(&path, place)), v));
            }
        }
    }
    found
}

/// The steps of an action in the order they are checked (and reported): the action, then its
/// `pre_exec` and `post_exec` steps.
pub(super) fn checked_order(action: &Action) -> impl Iterator<Item = (params::Step, &Action)> {
    let pre = action
        .pre_exec
        .iter()
        .enumerate()
        .map(|(i, s)| (params::Step::PreExec(i + 1), s));
    let post = action
        .post_exec
        .iter()
        .enumerate()
        .map(|(i, s)| (params::Step::PostExec(i + 1), s));
    std::iter::once((params::Step::Action, action))
        .chain(pre)
        .chain(post)
}

/// The JSON path of a step of the action at `path`.
pub(super) fn step_path(path: &str, place: params::Step) -> String {
    match place {
        params::Step::PreExec(n) => format!("{path}.pre_exec[{}]", n - 1),
        params::Step::Action => path.to_string(),
        params::Step::PostExec(n) => format!("{path}.post_exec[{}]", n - 1),
    }
}

/// A command whose defaults would begin a command word with `-` (not allowed by its
/// declaration) cannot run as written.
fn leading_dash_defaults(provider: &Provider, report: &mut Report) {
    let allowed = |n: &str| {
        provider
            .parameters
            .get(n)
            .is_some_and(|d| d.allow_leading_dash)
    };
    for (action_name, action) in &provider.actions {
        let params = params::action_params(provider, action);
        let defaults = action_defaults(&params);
        for (_, step) in checked_order(action) {
            let Target::Command(cmd) = &step.target else {
                continue;
            };
            for name in template::leading_placeholders(&cmd.command).unwrap_or_default() {
                let text = step
                    .default_settings
                    .get(&name)
                    .or_else(|| defaults.get(name.as_str()).copied())
                    .map(value_to_param)
                    .unwrap_or_default();
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

/// The default of each parameter of an action that has one, by name: the first step's own,
/// else the action's, else the provider's ([`params::action_params`]).
pub(super) fn action_defaults<'a>(
    params: &'a [params::ActionParam<'a>],
) -> std::collections::HashMap<&'a str, &'a Value> {
    params
        .iter()
        .filter_map(|p| Some((p.name.as_str(), p.default?.0)))
        .collect()
}

/// Each action: its name (§5), each of its steps ([`step::STEP_CHECKS`]), and params its
/// targets never use.
fn actions(provider: &Provider, report: &mut Report) {
    let seen_params = std::cell::RefCell::new(BTreeSet::new());
    for (name, action) in &provider.actions {
        let path = format!("actions.{name}");
        check_name(name, &path, report);
        let params = params::action_params(provider, action);
        let defaults = action_defaults(&params);
        let check = |place, at, produced: &BTreeSet<String>, report: &mut Report| {
            let step = Step {
                provider,
                step: at,
                path: step_path(&path, place),
                parent: (place != params::Step::Action).then_some(action),
                defaults: &defaults,
                produced,
                seen_params: &seen_params,
            };
            step::check(&step, report);
        };
        // Every step runs with the values resolved for the action: its params (given by the
        // caller), its defaults and the provider's, plus the fields parsed by earlier steps.
        check(params::Step::Action, action, &BTreeSet::new(), report);
        let mut produced = BTreeSet::new();
        for (i, at) in action.pre_exec.iter().enumerate() {
            check(params::Step::PreExec(i + 1), at, &produced, report);
            produced.extend(step::field_names(at));
        }
        produced.extend(step::field_names(action));
        for (i, at) in action.post_exec.iter().enumerate() {
            check(params::Step::PostExec(i + 1), at, &produced, report);
            produced.extend(step::field_names(at));
        }
        unused_params(action, &path, report);
    }
}

/// Params an action lists that no target of it uses.
fn unused_params(action: &Action, path: &str, report: &mut Report) {
    let used: BTreeSet<String> = params::steps(action)
        .flat_map(|(_, s)| s.target.placeholders())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The `(path, message)` findings `check` reports for the provider `json`.
    fn run(check: ProviderCheck, json: &str) -> Vec<(String, String)> {
        let provider = Provider::from_json(json, std::path::Path::new("t.json")).unwrap();
        let mut report = Report::for_file(std::path::Path::new("t.json"));
        check(&provider, &mut report);
        report
            .findings
            .into_iter()
            .map(|f| (f.path, f.message))
            .collect()
    }

    const CMD: &str = r#""type":"command""#;

    #[test]
    fn required_methods_are_named_with_a_lookalike() {
        let found = run(
            required_methods,
            &format!(
                r#"{{"name":"t",{CMD},"actions":{{"get_worker_info":{{"target":{{"Command":"x"}}}}}}}}"#
            ),
        );
        assert_eq!(found.len(), REQUIRED_METHODS.len());
        assert!(
            found
                .iter()
                .any(|(_, m)| m.contains("'get_worker_info' looks like it"))
        );
    }

    #[test]
    fn error_rules_compile_and_never_fail_exit_zero() {
        let found = run(
            provider_error_rules,
            &format!(
                r#"{{"name":"t",{CMD},"error_rules":[{{"when":"(","category":"ProviderError"}},{{"when":"x","exit_code":0,"category":"ProviderError"}}],"actions":{{}}}}"#
            ),
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["error_rules[0].when", "error_rules[1].exit_code"]);
    }

    #[test]
    fn status_map_targets_are_standard_statuses() {
        let found = run(
            status_map,
            &format!(
                r#"{{"name":"t",{CMD},"status_map":{{"UP":"running","ODD":"weird"}},"actions":{{}}}}"#
            ),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "status_map.ODD");
    }

    #[test]
    fn a_name_in_secrets_and_not_secret_is_an_error() {
        let found = run(
            secret_lists,
            &format!(
                r#"{{"name":"t",{CMD},"secrets":["a"],"not_secret":["a","b"],"actions":{{}}}}"#
            ),
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].1.contains("'a'"));
    }

    #[test]
    fn tls_defaults_apply_to_endpoint_providers_only() {
        let json = |kind: &str| {
            format!(
                r#"{{"name":"t","type":"{kind}","default_settings":{{"verify_ssl":false}},"actions":{{}}}}"#
            )
        };
        assert_eq!(run(tls_defaults, &json("endpoint")).len(), 1);
        assert!(run(tls_defaults, &json("command")).is_empty());
    }

    #[test]
    fn secret_values_in_the_file_are_warned_about() {
        let found = run(
            secret_defaults,
            &format!(
                r#"{{"name":"t",{CMD},"default_settings":{{"api_key":"k","region":"r","token":""}},"actions":{{}}}}"#
            ),
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["default_settings.api_key"]);
    }

    #[test]
    fn a_placeholder_in_a_default_is_sent_literally() {
        let found = run(
            placeholder_defaults,
            &format!(
                r#"{{"name":"t",{CMD},"default_settings":{{"u":"{{host}}/x"}},"actions":{{"a":{{"target":{{"Command":"x"}},"default_settings":{{"v":"{{w}}"}}}}}}}}"#
            ),
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["default_settings.u", "actions.a.default_settings.v"]
        );
    }

    #[test]
    fn declarations_are_met_by_their_choices_and_defaults() {
        let found = run(
            declarations,
            &format!(
                r#"{{"name":"t",{CMD},"default_settings":{{"n":0}},"parameters":{{"n":{{"type":"integer","min":1}},"e":{{"enum":[]}},"c":{{"enum":["a","B"],"pattern":"[a-z]"}}}},"actions":{{}}}}"#
            ),
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "default_settings.n",
                "parameters.e.enum",
                "parameters.c.enum[1]"
            ]
        );
    }

    #[test]
    fn a_default_that_would_begin_a_word_with_a_dash_cannot_run() {
        let json = |allow: bool| {
            format!(
                r#"{{"name":"t",{CMD},"parameters":{{"d":{{"allow_leading_dash":{allow}}}}},"default_settings":{{"d":"-x"}},"actions":{{"a":{{"target":{{"Command":"x {{d}}"}},"params":["d"]}}}}}}"#
            )
        };
        assert_eq!(run(leading_dash_defaults, &json(false))[0].0, "actions.a");
        assert!(run(leading_dash_defaults, &json(true)).is_empty());
    }

    #[test]
    fn actions_check_names_steps_in_order_and_unused_params() {
        let found = run(
            actions,
            &format!(
                r#"{{"name":"t",{CMD},"actions":{{"get_worker":{{"target":{{"Command":"x {{worker_id}}"}},"params":["worker_id","spare"],
              "pre_exec":[{{"target":{{"Command":"y {{nowhere}}"}}}}]}}}}}}"#
            ),
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "actions.get_worker",
                "actions.get_worker.pre_exec[0].target",
                "actions.get_worker.pre_exec[0]",
                "actions.get_worker.params[1]",
            ]
        );
    }

    #[test]
    fn step_paths_name_pre_and_post_steps_from_zero() {
        assert_eq!(step_path("actions.a", params::Step::Action), "actions.a");
        assert_eq!(
            step_path("actions.a", params::Step::PreExec(1)),
            "actions.a.pre_exec[0]"
        );
        assert_eq!(
            step_path("actions.a", params::Step::PostExec(2)),
            "actions.a.post_exec[1]"
        );
    }
}
