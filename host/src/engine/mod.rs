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
#[cfg(feature = "wasm")]
use std::sync::OnceLock;

use serde_json::Value;

#[cfg(feature = "wasm")]
use crate::error::Error;
use crate::error::Result;
use crate::exec::{Gate, Limits};
use crate::params::{self, Inputs};
use crate::provider::Provider;
use crate::secret::Redactor;

#[cfg(feature = "wasm")]
pub use hooks::WasmOptions;
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
    #[cfg(feature = "wasm")]
    wasm: WasmOptions,
    #[cfg(feature = "wasm")]
    sandbox: Arc<OnceLock<Arc<crate::wasm::Sandbox>>>,
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
            #[cfg(feature = "wasm")]
            wasm: WasmOptions::default(),
            #[cfg(feature = "wasm")]
            sandbox: Arc::new(OnceLock::new()),
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

    /// Settings for component providers.
    #[cfg(feature = "wasm")]
    pub fn with_wasm(mut self, wasm: WasmOptions) -> Engine {
        self.wasm = wasm;
        self.sandbox = Arc::new(OnceLock::new());
        self
    }

    /// The component sandbox, created on first use.
    #[cfg(feature = "wasm")]
    pub fn sandbox(&self) -> Result<Arc<crate::wasm::Sandbox>> {
        if let Some(sandbox) = self.sandbox.get() {
            return Ok(sandbox.clone());
        }
        let sandbox =
            crate::wasm::Sandbox::new(self.wasm.limits.clone(), self.wasm.cache_dir.clone())?;
        Ok(self.sandbox.get_or_init(|| Arc::new(sandbox)).clone())
    }

    /// Loads a provider's component (compiling it, or taking it from the cache).
    #[cfg(feature = "wasm")]
    pub async fn load_component(&self, provider: &Provider) -> Result<Arc<crate::wasm::Component>> {
        let path = provider.component_path().ok_or_else(|| {
            Error::validation(format!("provider '{}' has no component", provider.name))
        })?;
        let sandbox = self.sandbox()?;
        let name = provider.name.clone();
        tokio::task::spawn_blocking(move || sandbox.load(&name, &path))
            .await
            .map_err(|e| Error::internal(format!("component loader failed: {e}")))?
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
        #[cfg(feature = "wasm")]
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
