//! `--dry-run`: the calls an action would make and the values it would use, secrets
//! redacted; nothing runs.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Engine;
use crate::error::{Error, Result};
use crate::params::{self, Inputs, Resolved};
use crate::provider::{Action, Provider, ProviderKind};
use crate::secret::Redactor;
use crate::target;

/// What `--dry-run` shows: the calls an action would make, secrets redacted.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Provider name.
    pub provider: String,
    /// Action name.
    pub action: String,
    /// Each parameter's (redacted) value and where it came from.
    pub params: Map<String, Value>,
    /// The invocations, in run order (post_exec steps that need the action's output are
    /// shown with their templates unresolved).
    pub calls: Vec<Value>,
}

impl Engine {
    /// What running the action would do, without doing it (`--dry-run`).
    pub fn plan(&self, provider: &Provider, action_name: &str, inputs: &Inputs) -> Result<Plan> {
        let action = provider.action(action_name)?;
        let resolved = params::resolve(provider, action, inputs);
        let redactor = Redactor::new(resolved.secret_values());
        let planned = resolved.check(provider, action).and_then(|()| {
            Ok(Plan {
                provider: provider.name.clone(),
                action: action_name.to_string(),
                calls: calls(action, &resolved, &redactor)?,
                params: shown_params(provider, action, &resolved, &redactor),
            })
        });
        planned.map_err(|err: Error| {
            err.map_text(|t| redactor.redact(t))
                .context(&provider.name, action_name)
        })
    }
}

/// Every call of the action in run order; a post_exec step whose template needs the
/// action's output is shown as waiting for it.
fn calls(action: &Action, resolved: &Resolved, redactor: &Redactor) -> Result<Vec<Value>> {
    let dash_ok = |n: &str| resolved.dash_ok.contains(n);
    let mut calls = Vec::new();
    for step in action.pre_exec.iter().chain([action]) {
        calls.push(target::build(&step.target, &resolved.values, &dash_ok)?.describe(redactor));
    }
    for step in &action.post_exec {
        calls.push(
            match target::build(&step.target, &resolved.values, &dash_ok) {
                Ok(call) => call.describe(redactor),
                Err(_) => {
                    serde_json::json!({"type": "post_exec", "waits_for": "the action's output"})
                }
            },
        );
    }
    Ok(calls)
}

/// The values this action uses ([`params::action_params`]), any the user gave, and an
/// endpoint provider's TLS settings — not every provider default — each redacted and with
/// where it came from.
fn shown_params(
    provider: &Provider,
    action: &Action,
    resolved: &Resolved,
    redactor: &Redactor,
) -> Map<String, Value> {
    let used: std::collections::BTreeSet<String> = params::action_params(provider, action)
        .into_iter()
        .map(|p| p.name)
        .collect();
    let shown_names = resolved.values.keys().filter(|name| {
        used.contains(*name)
            || matches!(
                resolved.sources.get(*name),
                Some(params::Source::CommandLine | params::Source::Environment)
            )
            || (provider.kind == ProviderKind::Endpoint
                && params::TLS_SETTINGS.contains(&name.as_str()))
    });
    let mut params = Map::new();
    for name in shown_names {
        let value = &resolved.values[name];
        // An empty secret hides nothing, and "it is empty" is worth seeing.
        let shown = if resolved.secret_names.contains(name) && !value.is_empty() {
            crate::secret::REDACTED.to_string()
        } else {
            // A secret can hide inside another value (a URL's user:password@).
            redactor.redact(value)
        };
        params.insert(
            name.clone(),
            serde_json::json!({"value": shown, "source": resolved.sources[name]}),
        );
    }
    params
}
