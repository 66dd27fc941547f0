//! The §8 lifecycle (`cpi init`): each step the provider defines, in order, each step's
//! parsed fields feeding the next.

use serde::Serialize;
use serde_json::{Map, Value};

use super::hooks::Guard;
use super::{Engine, Run};
use crate::error::{Error, Result};
use crate::params::{self, Inputs, Resolved};
use crate::provider::Provider;
use crate::secret::Redactor;

/// The lifecycle steps of §8, in the order they run.
pub const LIFECYCLE: [&str; 4] = [
    "initialize_cli",
    "configure_auth",
    "test_auth",
    "test_install",
];

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

impl StepReport {
    /// The report of a step with this outcome and nothing more to say.
    fn bare(action: &str, outcome: &'static str) -> StepReport {
        StepReport {
            action: action.into(),
            outcome,
            result: None,
            error: None,
        }
    }
}

impl Engine {
    /// Runs the §8 lifecycle: each of [`LIFECYCLE`] the provider defines, in order, feeding
    /// each step's parsed fields to the next. Stops at the first failure. A provider backed by
    /// a component runs its steps under the component's grants, exactly as `cpi run` would.
    pub async fn lifecycle(
        &self,
        provider: &Provider,
        inputs: &Inputs,
    ) -> (Vec<StepReport>, Result<()>) {
        let (guard, defined) = match self.guard_of(provider).await {
            Ok(found) => found,
            Err(err) => return (Vec::new(), Err(err.context(&provider.name, LIFECYCLE[0]))),
        };
        let provider = defined.as_ref().unwrap_or(provider);
        let mut reports = Vec::new();
        let mut carried = Map::new();
        let mut failure: Option<Error> = None;
        for name in LIFECYCLE {
            if !provider.actions.contains_key(name)
                && !guard.as_ref().is_some_and(|g| g.invokes(name))
            {
                reports.push(StepReport::bare(name, "skipped"));
                continue;
            }
            if failure.is_some() {
                reports.push(StepReport::bare(name, "not_run"));
                continue;
            }
            let (outcome, redactor) = self
                .lifecycle_step(provider, name, inputs, &carried, guard.as_ref())
                .await;
            match outcome {
                Ok(value) => {
                    carry(&mut carried, &value);
                    let mut shown = value;
                    redactor.redact_json(&mut shown);
                    reports.push(StepReport {
                        result: Some(shown),
                        ..StepReport::bare(name, "ok")
                    });
                }
                Err(err) => {
                    reports.push(StepReport {
                        error: Some(err.to_json()),
                        ..StepReport::bare(name, "failed")
                    });
                    failure = Some(err);
                }
            }
        }
        (reports, failure.map_or(Ok(()), Err))
    }

    /// Runs one lifecycle step with the fields carried from earlier steps: its outcome
    /// (checked like `test_auth`) and what must be hidden when it is shown: every secret
    /// known by now (the caller's, those carried, and this step's secret-named fields, such as
    /// a token from configure_auth). What is carried on is the value itself.
    async fn lifecycle_step(
        &self,
        provider: &Provider,
        name: &str,
        inputs: &Inputs,
        carried: &Map<String, Value>,
        guard: Option<&Guard>,
    ) -> (Result<Value>, Redactor) {
        let action = provider.actions.get(name);
        let mut resolved = match action {
            Some(action) => params::resolve(provider, action, inputs),
            None => Resolved::default(),
        };
        resolved.add_step_outputs(carried, provider);
        // The guest's logs, output and denials are redacted of this step's secrets.
        let scoped = guard.map(|g| g.with_secrets(&resolved));
        let guard = scoped.as_ref();
        let mut run = Run::new(provider, name, resolved, guard);
        let outcome = match (action, guard) {
            (_, Some(guard)) if guard.invokes(name) => {
                // A component's own results come back redacted of the caller's secrets.
                self.invoke(&run).await.map(|v| run.show(v))
            }
            (Some(action), _) => self.steps(&mut run, action).await,
            (None, _) => Err(Error::internal(format!(
                "lifecycle step {name} is not defined"
            ))),
        };
        let outcome = run.finish(outcome);
        let secrets = run.secrets(outcome.as_ref().ok());
        (outcome, secrets)
    }
}

/// Carries a step's parsed fields to the next steps (not its statuses).
fn carry(carried: &mut Map<String, Value>, value: &Value) {
    if let Value::Object(map) = value {
        carried.extend(
            map.iter()
                .filter(|(k, _)| !k.ends_with("status"))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
}
