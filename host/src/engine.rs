//! The engine: runs one action (with its `pre_exec`/`post_exec` steps) or the §8 lifecycle.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::exec::{Limits, command, http::HttpClient};
use crate::params::{self, Inputs, Resolved};
use crate::provider::{Action, Provider};
use crate::secret::Redactor;
use crate::status::{StatusMapper, Vocabulary};
use crate::target::{self, Invocation};

/// The lifecycle steps of §8, in the order they run.
pub const LIFECYCLE: [&str; 4] = [
    "initialize_cli",
    "configure_auth",
    "test_auth",
    "test_install",
];

/// Runs provider actions: owns the HTTP client, the limits and the command environment.
#[derive(Debug, Clone)]
pub struct Engine {
    http: HttpClient,
    limits: Limits,
    env: Vec<(String, String)>,
}

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

/// One lifecycle step's report.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The action name.
    pub action: String,
    /// `ok`, `failed`, `skipped` (not defined by the provider) or `not_run` (after a failure).
    pub outcome: &'static str,
    /// The parsed result of a step that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The §10.2 error of a failed step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Engine {
    /// An engine with default limits.
    pub fn new() -> Result<Engine> {
        Engine::with_limits(Limits::default())
    }

    /// An engine with the given limits.
    pub fn with_limits(limits: Limits) -> Result<Engine> {
        let connect = limits.timeout.min(Duration::from_secs(10));
        Ok(Engine {
            http: HttpClient::new(connect)?,
            limits,
            env: Vec::new(),
        })
    }

    /// Extra environment variables for every command this engine runs.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Engine {
        self.env = env;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs `action_name` of `provider` and returns its parsed, status-normalized result.
    pub async fn run(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        let action = provider.action(action_name)?;
        let mut resolved = params::resolve(provider, action, inputs);
        self.run_resolved(provider, action_name, action, &mut resolved)
            .await
    }

    async fn run_resolved(
        &self,
        provider: &Provider,
        action_name: &str,
        action: &Action,
        resolved: &mut Resolved,
    ) -> Result<Value> {
        let redactor = Redactor::new(resolved.secret_values());
        let outcome = async {
            resolved.require(action)?;
            for step in action
                .pre_exec
                .iter()
                .chain([action])
                .chain(&action.post_exec)
            {
                step.rules()?;
            }
            for step in &action.pre_exec {
                let out = self.run_step(step, resolved, &redactor).await?;
                if let Value::Object(map) = &out {
                    resolved.add_step_outputs(map, provider);
                }
            }
            let mut result = self.run_step(action, resolved, &redactor).await?;
            for step in &action.post_exec {
                if let Value::Object(map) = &result {
                    resolved.add_step_outputs(map, provider);
                }
                resolved.require(step)?;
                let out = self.run_step(step, resolved, &redactor).await?;
                if let (Value::Object(result), Value::Object(out)) = (&mut result, out) {
                    result.extend(out);
                }
            }
            StatusMapper::new(&provider.status_map)
                .normalize(&mut result, Vocabulary::for_action(action_name));
            Ok(result)
        }
        .await;
        // Values produced by steps (a token from configure_auth) are secrets too.
        let redactor = if resolved.secret_names.is_empty() {
            redactor
        } else {
            Redactor::new(resolved.secret_values())
        };
        outcome.map_err(|err: Error| {
            err.map_text(|t| redactor.redact(t))
                .context(&provider.name, action_name)
        })
    }

    /// Runs one step: build the invocation, execute it, parse the output.
    async fn run_step(
        &self,
        step: &Action,
        resolved: &Resolved,
        redactor: &Redactor,
    ) -> Result<Value> {
        let invocation = target::build(&step.target, &resolved.values)?;
        tracing::info!(call = %invocation.describe(redactor), "running");
        let started = std::time::Instant::now();
        let output = match invocation {
            Invocation::Command { argv } => {
                command::run(&argv, &self.env, &self.limits).await?.stdout
            }
            Invocation::Http {
                method,
                url,
                headers,
                body,
            } => {
                self.http
                    .send(&method, &url, &headers, body.as_deref(), &self.limits)
                    .await?
                    .body
            }
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            bytes = output.len(),
            output = %redactor.redact(&crate::exec::excerpt(&output, 4096)),
            "finished"
        );
        match step.rules()? {
            Some(rules) => rules.apply(&output),
            None => Ok(serde_json::from_str(output.trim()).unwrap_or(Value::String(output))),
        }
    }

    /// Parses saved output with an action's rules, exactly as a run would (`cpi parse`).
    pub fn parse_saved(provider: &Provider, action_name: &str, output: &str) -> Result<Value> {
        let action = provider.action(action_name)?;
        let mut value = match action.rules()? {
            Some(rules) => rules.apply(output),
            None => Ok(Value::String(output.to_string())),
        }
        .map_err(|e| e.context(&provider.name, action_name))?;
        StatusMapper::new(&provider.status_map)
            .normalize(&mut value, Vocabulary::for_action(action_name));
        Ok(value)
    }

    /// What running the action would do, without doing it (`--dry-run`).
    pub fn plan(&self, provider: &Provider, action_name: &str, inputs: &Inputs) -> Result<Plan> {
        let action = provider.action(action_name)?;
        let resolved = params::resolve(provider, action, inputs);
        let redactor = Redactor::new(resolved.secret_values());
        let result = (|| {
            resolved.require(action)?;
            let mut calls = Vec::new();
            for step in action.pre_exec.iter().chain([action]) {
                calls.push(target::build(&step.target, &resolved.values)?.describe(&redactor));
            }
            for step in &action.post_exec {
                calls.push(match target::build(&step.target, &resolved.values) {
                    Ok(call) => call.describe(&redactor),
                    Err(_) => {
                        serde_json::json!({"type": "post_exec", "waits_for": "the action's output"})
                    }
                });
            }
            let mut params = Map::new();
            for (name, value) in &resolved.values {
                let shown = if resolved.secret_names.contains(name) {
                    crate::secret::REDACTED.to_string()
                } else {
                    value.clone()
                };
                params.insert(
                    name.clone(),
                    serde_json::json!({"value": shown, "source": resolved.sources[name]}),
                );
            }
            Ok(Plan {
                provider: provider.name.clone(),
                action: action_name.to_string(),
                params,
                calls,
            })
        })();
        result.map_err(|err: Error| {
            err.map_text(|t| redactor.redact(t))
                .context(&provider.name, action_name)
        })
    }

    /// Runs the §8 lifecycle: each of [`LIFECYCLE`] the provider defines, in order, feeding
    /// each step's parsed fields to the next. Stops at the first failure.
    pub async fn lifecycle(
        &self,
        provider: &Provider,
        inputs: &Inputs,
    ) -> (Vec<StepReport>, Result<()>) {
        let mut reports = Vec::new();
        let mut carried = Map::new();
        let mut failure: Option<Error> = None;
        for name in LIFECYCLE {
            let Some(action) = provider.actions.get(name) else {
                reports.push(StepReport {
                    action: name.into(),
                    outcome: "skipped",
                    result: None,
                    error: None,
                });
                continue;
            };
            if failure.is_some() {
                reports.push(StepReport {
                    action: name.into(),
                    outcome: "not_run",
                    result: None,
                    error: None,
                });
                continue;
            }
            let mut resolved = params::resolve(provider, action, inputs);
            resolved.add_step_outputs(&carried, provider);
            match self
                .run_resolved(provider, name, action, &mut resolved)
                .await
                .and_then(|v| check_auth(name, v))
            {
                Ok(value) => {
                    if let Value::Object(map) = &value {
                        carried.extend(
                            map.iter()
                                .filter(|(k, _)| !k.ends_with("status"))
                                .map(|(k, v)| (k.clone(), v.clone())),
                        );
                    }
                    // Secrets a step produced (a token from configure_auth) are carried to
                    // the next steps but never shown.
                    let mut secrets = resolved.secret_values();
                    if let Value::Object(map) = &value {
                        secrets.extend(
                            map.iter()
                                .filter(|(k, _)| crate::secret::is_secret_name(k, provider))
                                .map(|(_, v)| params::value_to_param(v)),
                        );
                    }
                    let mut shown = value;
                    Redactor::new(secrets).redact_json(&mut shown);
                    reports.push(StepReport {
                        action: name.into(),
                        outcome: "ok",
                        result: Some(shown),
                        error: None,
                    });
                }
                Err(err) => {
                    reports.push(StepReport {
                        action: name.into(),
                        outcome: "failed",
                        result: None,
                        error: Some(err.to_json()),
                    });
                    failure = Some(err);
                }
            }
        }
        (reports, failure.map_or(Ok(()), Err))
    }
}

/// A `test_auth` whose result says "not authenticated" fails the lifecycle.
fn check_auth(action: &str, value: Value) -> Result<Value> {
    if action != "test_auth" {
        return Ok(value);
    }
    let status = value.get("status").and_then(Value::as_str);
    let flag = value.get("authenticated");
    let ok = match (status, flag) {
        (Some(status), _) => status == "authenticated",
        (None, Some(Value::Bool(b))) => *b,
        (None, Some(Value::String(s))) => {
            crate::status::StatusMapper::default().map(s, Vocabulary::Auth) == "authenticated"
        }
        _ => true,
    };
    if ok {
        Ok(value)
    } else {
        Err(Error::new(
            ErrorKind::Authentication,
            format!("test_auth reports the provider is not authenticated: {value}"),
        ))
    }
}
