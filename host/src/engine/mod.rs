//! The engine: runs one action (with its `pre_exec`/`post_exec` steps) or the §8 lifecycle.
//!
//! One attempt at an action is a [`run::Run`]: the provider, the action, the values known so
//! far and what bounds the run, shared by every step instead of a parameter each. The work is
//! split by concern:
//!
//! - [`retry`]: whether and when a failed attempt is repeated, and the shared rate-limit hold;
//! - [`hooks`]: what bounds a run (an approved provider's scope, a component's grants) and
//!   the component's hooks (`invoke`, `parse`, `map-status`);
//! - [`steps`]: the steps of one attempt, paging, and each step's call through the [`Gate`];
//! - [`output`]: parsing raw output and normalizing statuses;
//! - [`run`]: the one boundary a run's results and errors leave through (redaction, the
//!   `test_auth` check, the provider and action named in errors);
//! - [`plan`] (`--dry-run`) and [`lifecycle`] (`cpi init`).

mod hooks;
mod lifecycle;
mod output;
mod plan;
mod retry;
mod run;
mod steps;

use std::sync::Arc;

use serde_json::Value;

use crate::error::Result;
use crate::exec::{Gate, Limits};
use crate::params::{self, Inputs};
use crate::provider::Provider;
use crate::secret::Redactor;

pub use hooks::{Bound, ComponentHooks, ComponentHost};
pub use lifecycle::{LIFECYCLE, StepReport};
pub use plan::Plan;
pub use retry::{RetryPolicy, is_repeatable};

use run::Run;

/// Runs provider actions; every command and request goes through its [`Gate`].
#[derive(Debug, Clone)]
pub struct Engine {
    gate: Gate,
    retry: RetryPolicy,
    throttle: Arc<crate::throttle::Throttle>,
    approvals: Option<crate::grants::GrantStore>,
    /// The sandbox component providers run in (`None`: they cannot run).
    components: Option<Arc<dyn ComponentHost>>,
}

impl Engine {
    /// An engine with default limits.
    pub fn new() -> Result<Engine> {
        Engine::with_limits(Limits::default())
    }

    /// An engine with the given limits.
    pub fn with_limits(limits: Limits) -> Result<Engine> {
        Ok(Engine {
            gate: Gate::new(limits),
            retry: RetryPolicy::default(),
            throttle: Arc::default(),
            approvals: crate::grants::GrantStore::default_store(),
            components: None,
        })
    }

    /// Where approvals are looked up (`None`: only built-in providers run).
    pub fn with_approvals(mut self, store: Option<crate::grants::GrantStore>) -> Engine {
        self.approvals = store;
        self
    }

    /// Extra environment variables for every command this engine runs.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Engine {
        self.gate = self.gate.with_env(env);
        self
    }

    /// Retry policy for actions that are safe to repeat.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Engine {
        self.retry = retry;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.gate.limits()
    }

    /// The gate every command and request of this engine goes through.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The sandbox component providers run in (crate `cpi-sandbox`); without one, running a
    /// component provider is an `UnsupportedError`.
    pub fn with_components(mut self, host: Arc<dyn ComponentHost>) -> Engine {
        self.components = Some(host);
        self
    }

    /// Runs `action_name` of `provider` and returns its parsed, status-normalized result as it
    /// may be shown: the secret values the caller gave are redacted (a CLI echoing its key).
    /// A `test_auth` whose result says "not authenticated" is an `AuthenticationError`.
    pub async fn run(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        let mut value = self.run_unredacted(provider, action_name, inputs).await?;
        self.redactor(provider, action_name, inputs)
            .redact_json(&mut value);
        Ok(value)
    }

    /// Like [`Engine::run`], but the result keeps every value exactly as the action produced
    /// it, to be passed on to a next step (`--wait` takes the new worker's id from it). Show
    /// it only through [`Engine::redactor`]. Errors are redacted either way. (Results of
    /// component providers come back redacted already.)
    pub async fn run_unredacted(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        self.run_retrying(provider, action_name, inputs).await
    }

    /// Refuses a JSON provider that may not run (not approved, changed or moved) with the error
    /// a run gives, for a caller answering without running it (a metadata cache hit).
    pub fn check_approved(&self, provider: &Provider, action_name: &str) -> Result<()> {
        self.approved(provider)
            .map(|_| ())
            .map_err(|e| e.context(&provider.name, action_name))
    }

    /// What must be hidden when a result of `action_name` run with `inputs` is shown: the
    /// secret values the caller gave. (Secrets an action produces, such as a fresh token from
    /// `configure_auth`, are what the caller asked for.)
    pub fn redactor(&self, provider: &Provider, action_name: &str, inputs: &Inputs) -> Redactor {
        match provider.actions.get(action_name) {
            Some(action) => {
                Redactor::new(params::resolve(provider, action, inputs).secret_values())
            }
            None => Redactor::default(),
        }
    }

    /// One attempt at an action: its steps (or, for a component-backed provider, its hooks),
    /// leaving through [`Run::finish`].
    async fn attempt(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        if provider.component.is_some() {
            return self.attempt_component(provider, action_name, inputs).await;
        }
        let action = provider.action(action_name)?;
        let guard = self
            .approved(provider)
            .map_err(|e| e.context(&provider.name, action_name))?;
        let resolved = params::resolve(provider, action, inputs);
        let mut run = Run::new(provider, action_name, resolved, guard.as_ref());
        let outcome = self.steps(&mut run, action).await;
        run.finish(outcome)
    }
}
