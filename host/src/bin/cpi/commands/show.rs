//! `cpi providers` and `cpi show`.

use std::process::ExitCode;

use cpi::Result;
use cpi::provider::Target;
use cpi::secret::{self, REDACTED};
use serde_json::{Map, Value, json};

use super::registry;
use crate::cli::Global;
use crate::output::{self, outln};

pub fn providers(g: &Global) -> Result<ExitCode> {
    let registry = registry(g)?;
    let list: Vec<Value> = registry
        .providers()
        .map(|p| {
            let kind = if p.component.is_some() && p.actions.is_empty() {
                "component".to_string()
            } else if p.component.is_some() {
                format!("{}+component", p.kind)
            } else {
                p.kind.to_string()
            };
            let actions = if p.component.is_some() && p.actions.is_empty() {
                Value::from("(in the component)")
            } else {
                Value::from(p.actions.len())
            };
            json!({"name": p.name, "type": kind, "actions": actions,
                   "source": p.source.display().to_string()})
        })
        .collect();
    output::print_value(&Value::Array(list), g.json);
    Ok(ExitCode::SUCCESS)
}

pub fn show(g: &Global, name: &str) -> Result<ExitCode> {
    let registry = registry(g)?;
    let listed = registry.get(name)?;
    // A component provider: show its manifest, and the definition it carries.
    let (component, defined) = match &listed.component {
        Some(_) => {
            let engine = cpi::Engine::new()?;
            let component = super::runtime()?.block_on(engine.load_component(listed))?;
            let defined = match (
                &component.manifest().provider_json,
                listed.actions.is_empty(),
            ) {
                (Some(json), true) => Some(cpi::Provider::from_json(json, component.path())?),
                _ => None,
            };
            (Some(component), defined)
        }
        None => (None, None),
    };
    let p = defined.as_ref().unwrap_or(listed);
    let component_json = component.as_ref().map(|c| {
        let m = c.manifest();
        json!({"path": c.path().display().to_string(), "sha256": c.sha256(), "name": m.name,
               "version": m.version, "requested": m.requested, "parses": m.parses,
               "invokes": m.invokes, "maps_status": m.maps_status})
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
        actions.insert(
            action_name.clone(),
            json!({"params": a.params, "target": target, "returns": returns,
                   "pre_exec": a.pre_exec.len(), "post_exec": a.post_exec.len()}),
        );
    }
    let value = json!({"name": p.name, "type": p.kind.to_string(), "source": p.source.display().to_string(),
        "description": p.description, "default_settings": defaults, "actions": actions,
        "component": component_json});
    if g.json {
        output::print_machine(&value);
    } else {
        if let Some(c) = &component_json {
            outln!(
                "component {} ({} {}), sha256 {}",
                c["path"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or(""),
                c["version"].as_str().unwrap_or(""),
                c["sha256"].as_str().unwrap_or("")
            );
            outln!(
                "  hooks: parse {}, invoke {}, map-status {}",
                c["parses"],
                c["invokes"],
                c["maps_status"]
            );
            outln!(
                "  requests: {}  (see `cpi grant {}`)",
                c["requested"],
                p.name
            );
        }
        outln!("{} ({} provider, {})", p.name, p.kind, p.source.display());
        if let Some(d) = &p.description {
            outln!("{d}");
        }
        outln!("\ndefault settings:");
        for line in output::render(&Value::Object(
            value["default_settings"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ))
        .lines()
        {
            outln!("  {line}");
        }
        outln!("\nactions:");
        for (name, a) in &actions {
            let target = &a["target"];
            let how = match target.get("command") {
                Some(c) => format!("$ {}", c.as_str().unwrap_or_default()),
                None => format!(
                    "{} {}",
                    target["method"].as_str().unwrap_or_default(),
                    target["url"].as_str().unwrap_or_default()
                ),
            };
            outln!("  {name}\n      {how}");
            let params: Vec<&str> = a["params"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !params.is_empty() {
                outln!("      params:  {}", params.join(", "));
            }
            let returns: Vec<&str> = a["returns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !returns.is_empty() {
                outln!("      returns: {}", returns.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
