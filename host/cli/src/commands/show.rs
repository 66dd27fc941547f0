//! `cpi show`: one provider, or one action in full. Each is computed as a value first, then
//! rendered once: as JSON/YAML, or for people.

use std::process::ExitCode;
use std::sync::Arc;

use cpi::Result;
use cpi::escape::{line, text};
use cpi::provider::Target;
use cpi::secret::{self, REDACTED};
use serde_json::{Map, Value, json};

use super::registry;
use crate::cli::Global;
use crate::output::{self, outln};

/// The arguments of `cpi show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider name.
    pub provider: String,
    /// One action to show in full.
    pub action: Option<String>,
}

/// Shows one provider, or one of its actions in full.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    show(g, &args.provider, args.action.as_deref())
}

fn show(g: &Global, name: &str, action: Option<&str>) -> Result<ExitCode> {
    let registry = registry(g)?;
    let listed = registry.get(name)?;
    let (component, defined) = load(listed)?;
    let p = defined.as_ref().unwrap_or(listed);
    if let Some(action) = action {
        return show_action(g, p, action);
    }
    let value = overview(p, component.as_deref());
    if g.json {
        output::print_machine(g, &value);
    } else {
        print_overview(p, &value);
    }
    Ok(ExitCode::SUCCESS)
}

/// A component provider's component, and the definition it carries when its file has no
/// actions.
fn load(
    listed: &cpi::Provider,
) -> Result<(Option<Arc<cpi_sandbox::Component>>, Option<cpi::Provider>)> {
    if listed.component.is_none() {
        return Ok((None, None));
    }
    let component = super::load_component(listed)?;
    let defined = match (
        &component.manifest().provider_json,
        listed.actions.is_empty(),
    ) {
        (Some(json), true) => Some(cpi::Provider::from_json(json, component.path())?),
        _ => None,
    };
    Ok((Some(component), defined))
}

/// One provider as data: its component's manifest, its defaults (secrets redacted) and a
/// summary of each action.
fn overview(p: &cpi::Provider, component: Option<&cpi_sandbox::Component>) -> Value {
    let component_json = component.map(|c| {
        let m = c.manifest();
        json!({"path": c.path().display().to_string(), "sha256": c.sha256(), "name": m.name,
               "version": m.version, "api_version": m.api_version, "requested": m.requested,
               "parses": m.parses, "invokes": m.invokes, "maps_status": m.maps_status,
               "env": m.env, "parameters": m.parameters, "sdk": c.sdk_version()})
    });
    let mut defaults = Map::new();
    for (k, v) in &p.default_settings {
        let shown = if secret::is_secret_name(k, p) && v.as_str() != Some("") {
            json!(REDACTED)
        } else {
            v.clone()
        };
        defaults.insert(k.clone(), shown);
    }
    let mut actions = Map::new();
    for (action_name, a) in &p.actions {
        actions.insert(action_name.clone(), action_summary(a));
    }
    json!({"name": p.name, "type": p.kind.to_string(), "source": p.source.display().to_string(),
        "description": p.description, "default_settings": defaults, "actions": actions,
        "component": component_json})
}

/// One action in a provider's overview: description, params, target, returned fields, steps.
fn action_summary(a: &cpi::provider::Action) -> Value {
    let target = match &a.target {
        Target::Command(c) => json!({"command": c.command}),
        Target::Endpoint(e) => json!({"method": e.method.wire_name(), "url": e.url}),
    };
    let returns: Vec<String> = a
        .parse_rules
        .iter()
        .flat_map(|r| r.patterns.keys().chain(r.array_patterns.keys()))
        .cloned()
        .collect();
    json!({"description": a.description, "params": a.params, "target": target,
           "returns": returns, "pre_exec": a.pre_exec.len(),
           "post_exec": a.post_exec.len()})
}

/// The overview for people.
fn print_overview(p: &cpi::Provider, value: &Value) {
    let c = &value["component"];
    if !c.is_null() {
        print_component(p, c);
    }
    outln!(
        "{} ({} provider, {})",
        line(&p.name),
        p.kind,
        line(&p.source.display().to_string())
    );
    if let Some(d) = &p.description {
        outln!("{}", text(d));
    }
    outln!("\ndefault settings:");
    for row in output::render(&Value::Object(
        value["default_settings"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ))
    .lines()
    {
        outln!("  {row}");
    }
    outln!("\nactions:");
    for (name, a) in value["actions"].as_object().into_iter().flatten() {
        print_action_summary(name, a);
    }
    outln!(
        "\n`cpi show {} ACTION` shows one action in full.",
        line(&p.name)
    );
}

/// A component's manifest for people: the component's own text, every part of it escaped.
fn print_component(p: &cpi::Provider, c: &Value) {
    let str_of = |key: &str| line(c[key].as_str().unwrap_or("")).into_owned();
    outln!(
        "component {} ({} {}), sha256 {}",
        str_of("path"),
        str_of("name"),
        str_of("version"),
        str_of("sha256")
    );
    outln!(
        "  hooks: parse {}, invoke {}, map-status {}",
        line(&c["parses"].to_string()),
        line(&c["invokes"].to_string()),
        c["maps_status"]
    );
    outln!(
        "  requests: {}  (see `cpi grant {}`)",
        line(&c["requested"].to_string()),
        line(&p.name)
    );
    let sdk = match c["sdk"].as_str() {
        Some(sdk) => format!(" with {}", line(sdk)),
        None => " without the guest SDK".to_string(),
    };
    outln!("  built for cpi:provider@{}{sdk}", str_of("api_version"));
    super::grant::print_declared(&c["env"], &c["parameters"], None);
}

/// One action's summary for people.
fn print_action_summary(name: &str, a: &Value) {
    let target = &a["target"];
    let how = match target.get("command") {
        Some(c) => format!("$ {}", line(c.as_str().unwrap_or_default())),
        None => format!(
            "{} {}",
            line(target["method"].as_str().unwrap_or_default()),
            line(target["url"].as_str().unwrap_or_default())
        ),
    };
    outln!("  {}", line(name));
    if let Some(d) = a["description"].as_str() {
        outln!("      {}", line(d));
    }
    outln!("      {how}");
    let strings = |key: &str| -> Vec<&str> {
        a[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let params = strings("params");
    if !params.is_empty() {
        outln!("      params:  {}", line(&params.join(", ")));
    }
    let returns = strings("returns");
    if !returns.is_empty() {
        outln!("      returns: {}", line(&returns.join(", ")));
    }
}

/// `cpi show PROVIDER ACTION`: everything about one action a user needs before running it:
/// where each parameter's value comes from, every step's target, what it returns, whether
/// it is retried and whether its statuses are normalized.
fn show_action(g: &Global, p: &cpi::Provider, name: &str) -> Result<ExitCode> {
    let action = p.action(name)?;
    let value = action_value(p, name, action);
    if g.json {
        output::print_machine(g, &value);
    } else {
        print_action(p, name, action, &value);
    }
    Ok(ExitCode::SUCCESS)
}

/// One action in full, as data.
fn action_value(p: &cpi::Provider, name: &str, action: &cpi::provider::Action) -> Value {
    // Every parameter any step needs, in order of first use, with where its value comes from.
    let params: Vec<Value> = cpi::params::action_params(p, action)
        .iter()
        .map(param_entry)
        .collect();
    let steps_json: Vec<Value> = cpi::params::steps(action)
        .map(|(step, a)| {
            let target = match &a.target {
                Target::Command(c) => json!({"command": c.command}),
                Target::Endpoint(e) => {
                    json!({"method": e.method.wire_name(), "url": e.url,
                           "headers": e.headers, "body": e.body})
                }
            };
            json!({"step": step.to_string(), "target": target, "returns": returns_of(a)})
        })
        .collect();
    let flag = action.normalize_status;
    json!({
        "provider": p.name,
        "action": name,
        "description": action.description,
        "params": params,
        "steps": steps_json,
        "returns": returns_of(action),
        "accept_exit": action.accept_exit,
        "paginate": action.paginate.as_ref().map(|p| json!({
            "param": p.param, "next": p.next.pointer, "next_regex": p.next.regex,
            "max_pages": p.max_pages.unwrap_or(100)})),
        "retried_on_failure": cpi::engine::is_repeatable(p, name),
        "normalizes_status": cpi::status::Vocabulary::for_flagged_action(name, flag).is_some(),
    })
}

/// One parameter of an action: its default (secrets redacted) or where else its value comes
/// from, whether it is secret, its declaration, its environment variable.
fn param_entry(param: &cpi::params::ActionParam<'_>) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), json!(param.name));
    match (param.default, param.produced_by) {
        (Some((v, source)), _) => {
            let shown = if param.secret && v.as_str() != Some("") {
                json!(REDACTED)
            } else {
                v.clone()
            };
            entry.insert("default".into(), shown);
            let source = match source {
                cpi::params::Source::ProviderDefault => "provider default",
                _ => "action default",
            };
            entry.insert("source".into(), json!(source));
        }
        (None, Some(by)) => {
            entry.insert("source".into(), json!(format!("{by}, unless given")));
        }
        (None, None) => {
            entry.insert("source".into(), json!("required"));
        }
    }
    if param.secret {
        entry.insert("secret".into(), json!(true));
    }
    if let Some(decl) = param.decl {
        entry.insert("declaration".into(), json!(decl));
        entry.insert("accepts".into(), json!(decl.summary()));
    }
    entry.insert("env".into(), json!(cpi::params::env_name(&param.name)));
    Value::Object(entry)
}

/// One action in full, for people.
fn print_action(p: &cpi::Provider, name: &str, action: &cpi::provider::Action, value: &Value) {
    outln!("{}/{}", line(&p.name), line(name));
    if let Some(d) = &action.description {
        outln!("{}", text(d));
    }
    outln!("\nparameters:");
    print_params(value["params"].as_array().map_or(&[], Vec::as_slice));
    for step in value["steps"].as_array().into_iter().flatten() {
        print_step(step);
    }
    outln!();
    for accept in &action.accept_exit {
        outln!(
            "exit {} accepted when the output matches /{}/",
            accept.code,
            line(&accept.when.to_string())
        );
    }
    if let Some(p) = &action.paginate {
        outln!(
            "paged: follows {} from {} (at most {} pages; -p {}=N fetches one page)",
            line(&p.param),
            line(p.next.pointer.as_deref().unwrap_or("?")),
            p.max_pages.unwrap_or(100),
            line(&p.param)
        );
    }
    outln!(
        "retried on failure: {}",
        if value["retried_on_failure"] == true {
            "yes (safe to repeat)"
        } else {
            "no (not safe to repeat blindly)"
        }
    );
    outln!(
        "statuses normalized: {}",
        if value["normalizes_status"] == true {
            "yes (§6)"
        } else {
            "no"
        }
    );
}

/// The parameters of an action, aligned: name, default or source, what it accepts.
fn print_params(params: &[Value]) {
    let width = params
        .iter()
        .filter_map(|e| e["name"].as_str())
        .map(|n| line(n).chars().count())
        .max()
        .unwrap_or(0);
    for e in params {
        let name = line(e["name"].as_str().unwrap_or_default());
        let source = line(e["source"].as_str().unwrap_or_default());
        let from = match e.get("default") {
            Some(v) => format!("{} ({source})", output::render(v).trim_end()),
            None => source.to_string(),
        };
        let secret = if e.get("secret").is_some() {
            "  [secret]"
        } else {
            ""
        };
        outln!("  {name:width$}  {from}{secret}");
        if let Some(accepts) = e["accepts"].as_str() {
            let description = e["declaration"]["description"]
                .as_str()
                .map(|d| format!("{}; ", cpi::escape::line(d)))
                .unwrap_or_default();
            outln!(
                "  {:width$}    {description}{}",
                "",
                cpi::escape::line(accepts)
            );
        }
    }
}

/// One step of an action: its target in full and what it returns.
fn print_step(step: &Value) {
    outln!("\n{}:", step["step"].as_str().unwrap_or_default());
    let t = &step["target"];
    let str_of = |v: &Value| line(v.as_str().unwrap_or_default()).into_owned();
    match t.get("command") {
        Some(c) => outln!("  $ {}", str_of(c)),
        None => {
            outln!("  {} {}", str_of(&t["method"]), str_of(&t["url"]));
            for (h, v) in t["headers"].as_object().into_iter().flatten() {
                outln!("  {}: {}", line(h), str_of(v));
            }
            if let Some(body) = t["body"].as_str() {
                outln!("  body: {}", line(body));
            }
        }
    }
    let returns = field_list(&step["returns"]);
    if !returns.is_empty() {
        outln!("  returns: {}", line(&returns));
    }
}

/// The fields an action's parse rules produce, each marked when it is optional.
fn returns_of(a: &cpi::provider::Action) -> Value {
    let Some(rules) = &a.parse_rules else {
        return json!([]);
    };
    let mut fields: Vec<Value> = rules
        .patterns
        .iter()
        .map(|(name, pattern)| json!({"field": name, "optional": pattern.optional}))
        .collect();
    fields.extend(
        rules
            .array_patterns
            .keys()
            .map(|name| json!({"field": name, "optional": false, "list": true})),
    );
    Value::Array(fields)
}

/// `id, name, ip_address?` (optional fields marked with `?`, lists with `[]`).
fn field_list(returns: &Value) -> String {
    returns
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let mut s = f["field"].as_str().unwrap_or_default().to_string();
            if f["list"] == true {
                s.push_str("[]");
            }
            if f["optional"] == true {
                s.push('?');
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}
