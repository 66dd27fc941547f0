//! `cpi providers`: the built-in and discovered providers.

use std::process::ExitCode;

use cpi::Result;
use serde_json::{Value, json};

use super::registry;
use crate::cli::Global;
use crate::output;

/// Lists the providers found.
pub fn exec(g: &Global) -> Result<ExitCode> {
    providers(g)
}

fn providers(g: &Global) -> Result<ExitCode> {
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
    output::print_value(g, &Value::Array(list));
    Ok(ExitCode::SUCCESS)
}
