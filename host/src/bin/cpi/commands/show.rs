//! `cpi providers` and `cpi show`.

use std::process::ExitCode;

use cpi::Result;
use cpi::provider::Target;
use cpi::secret::{self, REDACTED};
use serde_json::{Map, Value, json};

use super::registry;
use crate::cli::Global;
use crate::output;

pub fn providers(g: &Global) -> Result<ExitCode> {
    let registry = registry(g)?;
    let list: Vec<Value> = registry
        .providers()
        .map(|p| {
            json!({"name": p.name, "type": p.kind.to_string(), "actions": p.actions.len(),
                   "source": p.source.display().to_string()})
        })
        .collect();
    output::print_value(&Value::Array(list), g.json);
    Ok(ExitCode::SUCCESS)
}

pub fn show(g: &Global, name: &str) -> Result<ExitCode> {
    let registry = registry(g)?;
    let p = registry.get(name)?;
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
        "description": p.description, "default_settings": defaults, "actions": actions});
    if g.json {
        println!("{value}");
    } else {
        println!("{} ({} provider, {})", p.name, p.kind, p.source.display());
        if let Some(d) = &p.description {
            println!("{d}");
        }
        println!("\ndefault settings:");
        for line in output::render(&Value::Object(
            value["default_settings"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ))
        .lines()
        {
            println!("  {line}");
        }
        println!("\nactions:");
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
            println!("  {name}\n      {how}");
            let params: Vec<&str> = a["params"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !params.is_empty() {
                println!("      params:  {}", params.join(", "));
            }
            let returns: Vec<&str> = a["returns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !returns.is_empty() {
                println!("      returns: {}", returns.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
