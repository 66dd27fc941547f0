//! Unknown fields: every key serde would ignore is reported as a warning with its JSON path,
//! never silently dropped.

use serde_json::Value;

use super::{Report, Severity};

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

/// Warns about every key of the raw file that no provider type knows.
pub(super) fn unknown_fields(raw: &Value, report: &mut Report) {
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

/// Warns about the keys of `value` (an object at `path`) that are not `known`.
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

/// An action (or a step of one) at `path`: its own keys, its endpoint's, its parse rules',
/// and its steps'.
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
        parse_rules(rules, &format!("{path}.parse_rules"), report);
    }
    for steps in ["pre_exec", "post_exec"] {
        if let Some(Value::Array(items)) = value.get(steps) {
            for (i, step) in items.iter().enumerate() {
                action(step, &format!("{path}.{steps}[{i}]"), report);
            }
        }
    }
}

/// Parse rules at `rp`: their keys, each pattern's and each array pattern's.
fn parse_rules(rules: &Value, rp: &str, report: &mut Report) {
    check(rules, RULE_KEYS, rp, report);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_warned_about_at_every_level_with_their_path() {
        let raw = serde_json::json!({
            "name": "t", "bogus": 1,
            "parameters": {"p": {"type": "string", "odd": true}},
            "actions": {"a": {
                "target": {"Endpoint": {"url": "https://x", "verb": "GET"}},
                "parse_rules": {"type": "properties", "patterns": {"f": {"regex": "x", "grp": 1}},
                    "array_patterns": {"d": {"object": {"g": {"rx": "y"}}}}},
                "post_exec": [{"target": {"Command": "x"}, "when": 1}]
            }}
        });
        let mut report = Report::for_file(std::path::Path::new("t.json"));
        unknown_fields(&raw, &mut report);
        let paths: Vec<&str> = report.findings.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bogus",
                "parameters.p.odd",
                "actions.a.target.Endpoint.verb",
                "actions.a.parse_rules.patterns.f.grp",
                "actions.a.parse_rules.array_patterns.d.object.g.rx",
                "actions.a.post_exec[0].when",
            ]
        );
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.severity == Severity::Warning)
        );
    }
}
