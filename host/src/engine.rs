//! The engine: runs one action (with its `pre_exec`/`post_exec` steps) or the §8 lifecycle.

use std::sync::Arc;
#[cfg(feature = "wasm")]
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::exec::{
    Gate, Limits, Scope,
    http::{Request, Tls},
};
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

/// What the steps of one action run share: the redactor for their logs, and the provider's
/// error rules (each step's own rules come first).
struct Shared<'a> {
    redactor: &'a Redactor,
    errors: &'a crate::exec::ErrorRules,
}

/// When and how often a failed action that is safe to repeat is tried again: exponential
/// backoff with full jitter, honouring `Retry-After`, on rate limits, timeouts, connection
/// failures and 5xx answers. `create_*` and other non-idempotent actions are never retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retries).
    pub attempts: u32,
    /// The first backoff delay; each retry doubles it.
    pub base: Duration,
    /// The longest delay between attempts; a `Retry-After` beyond it is not waited for.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, or `None` when `err` is final.
    pub fn delay(&self, attempt: u32, err: &Error) -> Option<Duration> {
        if attempt >= self.attempts || !is_transient(err) {
            return None;
        }
        match err.details().get("retry_after").and_then(Value::as_u64) {
            Some(secs) if Duration::from_secs(secs) > self.max_delay => None,
            _ => Some(self.backoff(attempt, err)),
        }
    }

    /// The backoff after failed attempt `attempt`: `Retry-After` when given (capped at
    /// `max_delay`), else exponential with jitter.
    pub fn backoff(&self, attempt: u32, err: &Error) -> Duration {
        let backoff = self
            .base
            .saturating_mul(1u32 << (attempt.max(1) - 1).min(16))
            .min(self.max_delay);
        let jittered = backoff.mul_f64(0.5 + 0.5 * random_unit());
        match err.details().get("retry_after").and_then(Value::as_u64) {
            Some(secs) => Duration::from_secs(secs).min(self.max_delay).max(jittered),
            None => jittered,
        }
    }
}

/// Whether an error may go away by itself (the gate marks transport failures and 5xx
/// answers; rate limits and timeouts always may).
fn is_transient(err: &Error) -> bool {
    err.is_transient()
}

/// Whether repeating an action is safe: by its name (§5 read-only verbs) or its flag.
pub fn is_repeatable(provider: &Provider, action_name: &str) -> bool {
    if let Some(flag) = provider.actions.get(action_name).and_then(|a| a.idempotent) {
        return flag;
    }
    cpi_contract::verbs::is_retryable(action_name)
}

/// A number in [0, 1) for jitter (not for secrets).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Settings for WebAssembly component providers.
#[cfg(feature = "wasm")]
#[derive(Debug, Clone)]
pub struct WasmOptions {
    /// CPU, memory, log and result limits per call.
    pub limits: crate::wasm::SandboxLimits,
    /// Where compiled components are cached (`None`: no cache).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Where grants are stored (`None`: nothing is granted but the one-off grants).
    pub grants: Option<crate::grants::GrantStore>,
    /// Grants for this run only (`--allow-run`, `--allow-net`), within the manifest's request.
    pub one_off: crate::policy::Capabilities,
}

#[cfg(feature = "wasm")]
impl Default for WasmOptions {
    fn default() -> Self {
        WasmOptions {
            limits: Default::default(),
            cache_dir: crate::wasm::Sandbox::default_cache_dir(),
            grants: crate::grants::GrantStore::default_store(),
            one_off: Default::default(),
        }
    }
}

/// The component behind a provider during one run: its hooks and the grants in force.
#[cfg(feature = "wasm")]
struct ComponentGuard {
    component: Arc<crate::wasm::Component>,
    ctx: Arc<crate::wasm::CallContext>,
}

/// What bounds one run of a provider that is not built in.
enum Guard {
    /// A component: its hooks and grants.
    #[cfg(feature = "wasm")]
    Component(ComponentGuard),
    /// An approved JSON provider: its derived argv patterns and origins, its approved
    /// environment, and the parameters whose configured base URL it may reach.
    Approved {
        /// The approved rules and environment.
        scope: Scope,
        /// Parameters holding a base URL the user configures.
        bases: Vec<String>,
    },
}

impl Guard {
    /// The same guard for a run with these secret values: the guest's logs, output and
    /// denials are redacted of them. (Without the wasm feature only approved JSON providers
    /// have guards, and nothing of theirs needs the secrets.)
    #[cfg_attr(not(feature = "wasm"), allow(dead_code, unused_variables))]
    fn with_secrets(&self, resolved: &Resolved) -> Guard {
        match self {
            #[cfg(feature = "wasm")]
            Guard::Component(c) => Guard::Component(ComponentGuard {
                component: c.component.clone(),
                ctx: Arc::new((*c.ctx).clone().with_secrets(resolved.secret_values())),
            }),
            Guard::Approved { scope, bases } => Guard::Approved {
                scope: scope.clone(),
                bases: bases.clone(),
            },
        }
    }

    /// Whether the component runs `action` itself (its `invoke` hook).
    #[cfg_attr(not(feature = "wasm"), allow(unused_variables))]
    fn invokes(&self, action: &str) -> bool {
        match self {
            #[cfg(feature = "wasm")]
            Guard::Component(c) => c.component.manifest().invokes.iter().any(|a| a == action),
            Guard::Approved { .. } => false,
        }
    }

    /// Whether the component can run `action` with no JSON definition of it.
    fn runs(&self, action: &str) -> bool {
        self.invokes(action)
    }

    /// Whether a component is behind the provider.
    fn is_component(&self) -> bool {
        !matches!(self, Guard::Approved { .. })
    }

    /// The component, when the provider has one.
    #[cfg(feature = "wasm")]
    fn component(&self) -> Option<&ComponentGuard> {
        match self {
            Guard::Component(c) => Some(c),
            Guard::Approved { .. } => None,
        }
    }
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

    /// The guard of a JSON provider: none for a built-in one; otherwise its approval, or an
    /// error naming what to review.
    fn approved(&self, provider: &Provider) -> Result<Option<Guard>> {
        if provider.is_builtin() {
            return Ok(None);
        }
        let approved = crate::approval::check(self.approvals.as_ref(), provider)?;
        Ok(Some(Guard::Approved {
            scope: Scope {
                provider: provider.name.clone(),
                grants: Some(approved.caps),
                env: approved.env,
            },
            bases: approved.bases,
        }))
    }

    /// Extra environment variables for every command this engine runs.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Engine {
        self.gate = self.gate.with_env(env);
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
        let value = self.run_retrying(provider, action_name, inputs).await?;
        check_auth(action_name, value).map_err(|err| {
            let redactor = self.redactor(provider, action_name, inputs);
            err.map_text(|t| redactor.redact(t))
                .context(&provider.name, action_name)
        })
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

    async fn run_retrying(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        let retry = &self.retry;
        let repeatable = is_repeatable(provider, action_name);
        let mut attempt = 1;
        loop {
            let held = self.throttle.wait().await;
            if !held.is_zero() {
                tracing::info!(
                    "{}/{action_name}: held back {held:?} by a rate limit another call met",
                    provider.name
                );
            }
            let outcome = self.run_once(provider, action_name, inputs).await;
            let err = match outcome {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if err.kind() == ErrorKind::RateLimit {
                // Everyone backs off, whether or not this action may be retried.
                self.throttle.hold(retry.backoff(attempt, &err));
            }
            let delay = retry.delay(attempt, &err).filter(|_| repeatable);
            match delay {
                Some(delay) => {
                    tracing::info!(
                        "{}/{action_name}: attempt {attempt} of {} failed ({}: {}); retrying in {delay:?}",
                        provider.name,
                        retry.attempts,
                        err.kind(),
                        err.message()
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => {
                    return Err(if attempt > 1 {
                        err.with_detail("attempts", attempt)
                    } else {
                        err
                    });
                }
            }
        }
    }

    /// Retry policy for actions that are safe to repeat.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Engine {
        self.retry = retry;
        self
    }

    async fn run_once(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        #[cfg(feature = "wasm")]
        if provider.component.is_some() {
            return self.run_component(provider, action_name, inputs).await;
        }
        let action = provider.action(action_name)?;
        let guard = self
            .approved(provider)
            .map_err(|e| e.context(&provider.name, action_name))?;
        let mut resolved = params::resolve(provider, action, inputs);
        self.run_resolved_unredacted(provider, action_name, action, &mut resolved, guard.as_ref())
            .await
    }

    /// Loads a provider's component and the grants in force for it: the guard every step of
    /// a run goes through, and the component's own provider definition when it brings one
    /// (a standalone component named by a file without actions).
    #[cfg(feature = "wasm")]
    async fn guard(&self, provider: &Provider) -> Result<(Guard, Option<Provider>)> {
        let component = self.load_component(provider).await?;
        let manifest = component.manifest();
        let defined = match (&manifest.provider_json, provider.actions.is_empty()) {
            (Some(json), true) => {
                let mut defined = Provider::from_json(json, component.path())?;
                if defined.name != provider.name {
                    return Err(Error::validation(format!(
                        "component {} defines provider '{}' but its file is named '{}'",
                        component.path().display(),
                        defined.name,
                        provider.name
                    )));
                }
                defined.component = provider.component.clone();
                defined.source = component.path().to_path_buf();
                Some(defined)
            }
            _ => None,
        };
        let stored = match &self.wasm.grants {
            Some(store) => store.load(&provider.name)?,
            None => None,
        };
        // A component with nothing granted can do nothing outside its sandbox (and the JSON
        // targets of a component-backed provider run under its grants), so only a grant is
        // pinned: to the component and to the provider's JSON file and path.
        if let Some(grant) = stored.as_ref().filter(|_| !provider.is_builtin()) {
            crate::approval::check_pins(grant, provider)?;
        }
        let (grants, env) = crate::grants::effective(
            stored.as_ref(),
            component.sha256(),
            &manifest.requested,
            &self.wasm.one_off,
        )?;
        let scope = Scope {
            provider: provider.name.clone(),
            grants: Some(grants),
            env,
        };
        let ctx = crate::wasm::CallContext::new(self.gate.clone(), scope)?;
        let guard = Guard::Component(ComponentGuard {
            component,
            ctx: Arc::new(ctx),
        });
        Ok((guard, defined))
    }

    /// Runs an action of a component-backed provider: `invoke` if the component implements
    /// the action, otherwise the provider's targets (checked against the grants) with the
    /// component's `parse` and `map-status` hooks where it has them.
    #[cfg(feature = "wasm")]
    async fn run_component(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        let (guard, defined) = self
            .guard(provider)
            .await
            .map_err(|e| e.context(&provider.name, action_name))?;
        let effective = defined.as_ref().unwrap_or(provider);
        if !guard.invokes(action_name) {
            let action = effective.action(action_name)?;
            let mut resolved = params::resolve(effective, action, inputs);
            let guard = guard.with_secrets(&resolved);
            return self
                .run_resolved(effective, action_name, action, &mut resolved, Some(&guard))
                .await;
        }
        let resolved = match effective.actions.get(action_name) {
            Some(action) => params::resolve(effective, action, inputs),
            None => {
                let mut resolved = Resolved::default();
                for (k, v) in &effective.default_settings {
                    resolved.values.insert(k.clone(), params::value_to_param(v));
                }
                for (k, v) in &inputs.cli {
                    resolved.values.insert(k.clone(), v.clone());
                }
                resolved.secret_names = resolved
                    .values
                    .keys()
                    .filter(|n| crate::secret::is_secret_name(n, effective))
                    .cloned()
                    .collect();
                let names: Vec<String> = resolved.values.keys().cloned().collect();
                resolved
                    .check_declared(effective, names.iter().map(String::as_str))
                    .map_err(|e| e.context(&provider.name, action_name))?;
                resolved
            }
        };
        let guard = guard.with_secrets(&resolved);
        self.invoke(effective, action_name, &resolved, &guard).await
    }

    /// Runs an action the component implements itself (its `invoke` hook) with resolved
    /// values; the result is normalized and the caller's secrets are redacted.
    #[cfg(feature = "wasm")]
    async fn invoke(
        &self,
        provider: &Provider,
        action_name: &str,
        resolved: &Resolved,
        guard: &Guard,
    ) -> Result<Value> {
        if let Some(action) = provider.actions.get(action_name) {
            resolved
                .check(provider, action)
                .map_err(|e| e.context(&provider.name, action_name))?;
        }
        let redactor = Redactor::new(resolved.secret_values());
        let params: Map<String, Value> = resolved
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        let hooks = guard
            .component()
            .ok_or_else(|| Error::internal("invoke without a component"))?;
        let (call, ctx, action) = (
            hooks.component.clone(),
            hooks.ctx.clone(),
            action_name.to_string(),
        );
        let outcome = tokio::task::spawn_blocking(move || call.invoke(ctx, &action, &params))
            .await
            .map_err(|e| Error::internal(format!("component call failed: {e}")))
            .and_then(|r| r);
        let outcome = match outcome {
            Ok(mut value) => {
                let normalized = self
                    .normalize(provider, action_name, &mut value, Some(guard))
                    .await;
                redactor.redact_json(&mut value);
                normalized.map(|()| value)
            }
            Err(e) => Err(e),
        };
        outcome.map_err(|e| {
            e.map_text(|t| redactor.redact(t))
                .context(&provider.name, action_name)
        })
    }

    /// Status normalization: the component's `map-status` hook when it has one, then the
    /// provider's table, then the built-in one.
    async fn normalize(
        &self,
        provider: &Provider,
        action_name: &str,
        value: &mut Value,
        guard: Option<&Guard>,
    ) -> Result<()> {
        // Only worker and authentication results have standard statuses.
        let flag = provider
            .actions
            .get(action_name)
            .and_then(|a| a.normalize_status);
        let Some(vocabulary) = Vocabulary::for_flagged_action(action_name, flag) else {
            return Ok(());
        };
        #[cfg_attr(not(feature = "wasm"), allow(unused_mut))]
        let mut table = provider.status_map.clone();
        #[cfg(feature = "wasm")]
        if let Some(guard) = guard.and_then(Guard::component)
            && guard.component.manifest().maps_status
        {
            let mut raws = std::collections::BTreeSet::new();
            collect_statuses(value, &mut raws);
            if raws.len() > MAX_STATUS_CALLS {
                return Err(Error::provider(format!(
                    "the result has more than {MAX_STATUS_CALLS} distinct statuses for \
                     component '{}' to map; cpi maps at most {MAX_STATUS_CALLS} per result",
                    provider.name
                )));
            }
            for raw in raws {
                let (component, ctx, text) =
                    (guard.component.clone(), guard.ctx.clone(), raw.clone());
                let mapped = tokio::task::spawn_blocking(move || component.map_status(ctx, &text))
                    .await
                    .map_err(|e| Error::internal(format!("component call failed: {e}")))??;
                table.insert(raw, mapped.to_string());
            }
        }
        #[cfg(not(feature = "wasm"))]
        let _ = guard;
        StatusMapper::new(&table).normalize(value, vocabulary);
        Ok(())
    }

    /// [`Engine::run_resolved_unredacted`], with the secret values the caller gave redacted
    /// from the result.
    #[cfg(feature = "wasm")]
    async fn run_resolved(
        &self,
        provider: &Provider,
        action_name: &str,
        action: &Action,
        resolved: &mut Resolved,
        guard: Option<&Guard>,
    ) -> Result<Value> {
        let shown = Redactor::new(resolved.secret_values());
        let mut result = self
            .run_resolved_unredacted(provider, action_name, action, resolved, guard)
            .await?;
        // Secrets the caller gave never come back in a result (a CLI echoing its key);
        // secrets an action produces (a fresh token) are what the caller asked for.
        shown.redact_json(&mut result);
        Ok(result)
    }

    /// Runs an action's steps with resolved values. Each step's parsed fields reach the next
    /// step exactly as they were produced; only logs and errors are redacted.
    async fn run_resolved_unredacted(
        &self,
        provider: &Provider,
        action_name: &str,
        action: &Action,
        resolved: &mut Resolved,
        guard: Option<&Guard>,
    ) -> Result<Value> {
        let redactor = Redactor::new(resolved.secret_values());
        let outcome = async {
            let shared = Shared {
                redactor: &redactor,
                errors: provider.error_rules()?,
            };
            let redactor = &shared;
            resolved.check(provider, action)?;
            for step in action
                .pre_exec
                .iter()
                .chain([action])
                .chain(&action.post_exec)
            {
                step.rules()?;
            }
            for step in &action.pre_exec {
                resolved.enter_step(step, provider)?;
                let out = self.run_step(step, None, resolved, redactor, guard).await?;
                if let Value::Object(map) = &out {
                    resolved.add_step_outputs(map, provider);
                }
            }
            resolved.enter_step(action, provider)?;
            let mut result = match &action.paginate {
                None => {
                    self.run_step(action, Some(action_name), resolved, redactor, guard)
                        .await?
                }
                Some(paginate) => {
                    self.run_pages(action, action_name, paginate, resolved, redactor, guard)
                        .await?
                }
            };
            for step in &action.post_exec {
                if let Value::Object(map) = &result {
                    resolved.add_step_outputs(map, provider);
                }
                resolved.enter_step(step, provider)?;
                let out = self.run_step(step, None, resolved, redactor, guard).await?;
                if let (Value::Object(result), Value::Object(out)) = (&mut result, out) {
                    result.extend(out);
                }
            }
            self.normalize(provider, action_name, &mut result, guard)
                .await?;
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

    /// Runs one step: build the invocation, execute it, parse the output. `name` is the
    /// action's name for the action itself (`None` for pre/post steps).
    async fn run_step(
        &self,
        step: &Action,
        name: Option<&str>,
        resolved: &Resolved,
        redactor: &Shared<'_>,
        guard: Option<&Guard>,
    ) -> Result<Value> {
        let output = self.execute(step, name, resolved, redactor, guard).await?;
        self.parse_output(step, name, output, guard).await
    }

    /// Runs the action and returns one list of every page's items: the page parameter follows
    /// what each answer names as the next page, unless the user chose a page themselves.
    async fn run_pages(
        &self,
        action: &Action,
        name: &str,
        paginate: &crate::provider::Paginate,
        resolved: &mut Resolved,
        redactor: &Shared<'_>,
        guard: Option<&Guard>,
    ) -> Result<Value> {
        let chosen = resolved.is_given(&paginate.param);
        if chosen {
            return self
                .run_step(action, Some(name), resolved, redactor, guard)
                .await;
        }
        let first = resolved.values.get(&paginate.param).cloned();
        let max_pages = paginate.max_pages.unwrap_or(100).max(1);
        let mut items = Vec::new();
        // Pages already fetched: a platform that names one again would loop forever.
        let mut seen: std::collections::HashSet<String> = first.iter().cloned().collect();
        let mut outcome = Err(Error::provider(format!(
            "{name} has more than {max_pages} pages: narrow the query or raise paginate.max_pages"
        ))
        .with_detail("max_pages", max_pages));
        for page in 1..=max_pages {
            let output = self
                .execute(action, Some(name), resolved, redactor, guard)
                .await?;
            let next = crate::parse::json::next_page(&paginate.next, &output)?;
            match self.parse_output(action, Some(name), output, guard).await? {
                Value::Array(list) => items.extend(list),
                other => {
                    return Err(Error::provider(format!(
                        "{name} is paged, so each page must parse to a list, not {}",
                        crate::parse::json::kind_of(&other)
                    )));
                }
            }
            match next {
                Some(next) if seen.insert(next.clone()) => {
                    tracing::info!("{name}: page {page} done; next {}={next}", paginate.param);
                    resolved.values.insert(paginate.param.clone(), next);
                }
                // The last page (or a platform naming a page twice, which would never end).
                _ => {
                    outcome = Ok(Value::Array(std::mem::take(&mut items)));
                    break;
                }
            }
        }
        // Later steps see the page the user's values selected, not the last one fetched.
        match first {
            Some(first) => resolved.values.insert(paginate.param.clone(), first),
            None => resolved.values.shift_remove(&paginate.param),
        };
        outcome
    }

    /// Builds a step's invocation and runs it (checked against the grants for components);
    /// the raw output.
    async fn execute(
        &self,
        step: &Action,
        name: Option<&str>,
        resolved: &Resolved,
        shared: &Shared<'_>,
        guard: Option<&Guard>,
    ) -> Result<String> {
        let redactor = shared.redactor;
        let errors = step.error_rules()?.then(shared.errors);
        let invocation = target::build(&step.target, &resolved.values, &|n| {
            resolved.dash_ok.contains(n)
        })?;
        tracing::info!(call = %invocation.describe(redactor), "running");
        let started = std::time::Instant::now();
        let own;
        let scope = match guard {
            #[cfg(feature = "wasm")]
            Some(Guard::Component(guard)) => &guard.ctx.scope,
            Some(Guard::Approved { scope, bases }) => {
                own = with_configured_bases(scope, bases, resolved);
                &own
            }
            None => {
                own = Scope {
                    provider: name.unwrap_or("request").to_string(),
                    ..Scope::default()
                };
                &own
            }
        };
        let output = match invocation {
            Invocation::Command { argv } => {
                self.gate
                    .command(scope, &argv, &step.accept_exit, &errors)
                    .await?
                    .stdout
            }
            Invocation::Http {
                method,
                url,
                headers,
                body,
            } => {
                let tls = Tls::from_values(&resolved.values)?;
                if guard.is_some_and(Guard::is_component) && !tls.is_default() {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "verify_ssl and ca_cert_file are not supported for component providers: \
                         their requests always verify certificates against the built-in roots",
                    ));
                }
                let req = Request {
                    method: method.wire_name(),
                    url: &url,
                    headers: &headers,
                    body: body.as_deref().map(str::as_bytes),
                    tls: &tls,
                };
                self.gate.send(scope, &req, &errors).await?.body
            }
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            bytes = output.len(),
            output = %redactor.redact(&crate::exec::excerpt(&output, 4096)),
            "finished"
        );
        Ok(output)
    }

    /// Parses a step's raw output: the component's `parse` hook when it has one for this
    /// action, otherwise the step's rules (or the output as JSON or text without rules).
    async fn parse_output(
        &self,
        step: &Action,
        name: Option<&str>,
        output: String,
        guard: Option<&Guard>,
    ) -> Result<Value> {
        #[cfg(not(feature = "wasm"))]
        let _ = guard;
        #[cfg(feature = "wasm")]
        if let (Some(guard), Some(name)) = (guard.and_then(Guard::component), name)
            && guard.component.manifest().parses.iter().any(|a| a == name)
        {
            let (component, ctx, action) =
                (guard.component.clone(), guard.ctx.clone(), name.to_string());
            return tokio::task::spawn_blocking(move || component.parse(ctx, &action, &output))
                .await
                .map_err(|e| Error::internal(format!("component call failed: {e}")))?;
        }
        #[cfg(not(feature = "wasm"))]
        let _ = name;
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
        // Only rules that can yield a `status` have one to normalize.
        if let Some(vocabulary) =
            Vocabulary::for_flagged_action(action_name, action.normalize_status)
            && action.rules()?.is_some_and(|r| r.may_yield_status())
        {
            StatusMapper::new(&provider.status_map).normalize(&mut value, vocabulary);
        }
        Ok(value)
    }

    /// What running the action would do, without doing it (`--dry-run`).
    pub fn plan(&self, provider: &Provider, action_name: &str, inputs: &Inputs) -> Result<Plan> {
        let action = provider.action(action_name)?;
        let resolved = params::resolve(provider, action, inputs);
        let redactor = Redactor::new(resolved.secret_values());
        let dash_ok = |n: &str| resolved.dash_ok.contains(n);
        let result = (|| {
            resolved.check(provider, action)?;
            let mut calls = Vec::new();
            for step in action.pre_exec.iter().chain([action]) {
                calls.push(
                    target::build(&step.target, &resolved.values, &dash_ok)?.describe(&redactor),
                );
            }
            for step in &action.post_exec {
                calls.push(match target::build(&step.target, &resolved.values, &dash_ok) {
                    Ok(call) => call.describe(&redactor),
                    Err(_) => {
                        serde_json::json!({"type": "post_exec", "waits_for": "the action's output"})
                    }
                });
            }
            // The values this action uses (and any the user gave), not every provider default.
            let used: std::collections::BTreeSet<String> = action
                .pre_exec
                .iter()
                .chain([action])
                .chain(&action.post_exec)
                .flat_map(|step| {
                    step.params
                        .iter()
                        .cloned()
                        .chain(step.target.placeholders())
                })
                .collect();
            let shown_names = resolved.values.keys().filter(|name| {
                used.contains(*name)
                    || matches!(
                        resolved.sources.get(*name),
                        Some(params::Source::CommandLine | params::Source::Environment)
                    )
                    || (provider.kind == crate::provider::ProviderKind::Endpoint
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
    /// each step's parsed fields to the next. Stops at the first failure. A provider backed by
    /// a component runs its steps under the component's grants, exactly as `cpi run` would.
    pub async fn lifecycle(
        &self,
        provider: &Provider,
        inputs: &Inputs,
    ) -> (Vec<StepReport>, Result<()>) {
        #[cfg(feature = "wasm")]
        let (guard, defined) = match provider.component {
            None => match self.approved(provider) {
                Ok(guard) => (guard, None),
                Err(err) => return (Vec::new(), Err(err.context(&provider.name, LIFECYCLE[0]))),
            },
            Some(_) => match self.guard(provider).await {
                Ok((guard, defined)) => (Some(guard), defined),
                Err(err) => return (Vec::new(), Err(err.context(&provider.name, LIFECYCLE[0]))),
            },
        };
        #[cfg(not(feature = "wasm"))]
        let (guard, defined): (Option<Guard>, Option<Provider>) = match self.approved(provider) {
            Ok(guard) => (guard, None),
            Err(err) => return (Vec::new(), Err(err.context(&provider.name, LIFECYCLE[0]))),
        };
        let provider = defined.as_ref().unwrap_or(provider);
        let mut reports = Vec::new();
        let mut carried = Map::new();
        let mut failure: Option<Error> = None;
        for name in LIFECYCLE {
            let report = |outcome| StepReport {
                action: name.into(),
                outcome,
                result: None,
                error: None,
            };
            if !provider.actions.contains_key(name) && !guard.as_ref().is_some_and(|g| g.runs(name))
            {
                reports.push(report("skipped"));
                continue;
            }
            if failure.is_some() {
                reports.push(report("not_run"));
                continue;
            }
            let (outcome, redactor) = self
                .lifecycle_step(provider, name, inputs, &carried, guard.as_ref())
                .await;
            match outcome {
                Ok(value) => {
                    if let Value::Object(map) = &value {
                        carried.extend(
                            map.iter()
                                .filter(|(k, _)| !k.ends_with("status"))
                                .map(|(k, v)| (k.clone(), v.clone())),
                        );
                    }
                    let mut shown = value;
                    redactor.redact_json(&mut shown);
                    reports.push(StepReport {
                        result: Some(shown),
                        ..report("ok")
                    });
                }
                Err(err) => {
                    reports.push(StepReport {
                        error: Some(err.to_json()),
                        ..report("failed")
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
        let mut resolved = match provider.actions.get(name) {
            Some(action) => params::resolve(provider, action, inputs),
            None => Resolved::default(),
        };
        resolved.add_step_outputs(carried, provider);
        // The guest's logs, output and denials are redacted of this step's secrets.
        #[cfg(feature = "wasm")]
        let scoped = guard.map(|g| g.with_secrets(&resolved));
        #[cfg(feature = "wasm")]
        let guard = scoped.as_ref();
        let outcome = match (provider.actions.get(name), guard) {
            #[cfg(feature = "wasm")]
            (_, Some(guard)) if guard.invokes(name) => {
                self.invoke(provider, name, &resolved, guard).await
            }
            (Some(action), guard) => {
                self.run_resolved_unredacted(provider, name, action, &mut resolved, guard)
                    .await
            }
            (None, _) => Err(Error::internal(format!(
                "lifecycle step {name} is not defined"
            ))),
        };
        let mut secrets = resolved.secret_values();
        if let Ok(Value::Object(map)) = &outcome {
            secrets.extend(
                map.iter()
                    .filter(|(k, _)| crate::secret::is_secret_name(k, provider))
                    .map(|(_, v)| params::value_to_param(v)),
            );
        }
        let redactor = Redactor::new(secrets);
        let outcome = outcome.and_then(|v| {
            check_auth(name, v).map_err(|e| {
                e.map_text(|t| redactor.redact(t))
                    .context(&provider.name, name)
            })
        });
        (outcome, redactor)
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
        )
        .with_detail("result", value))
    }
}

/// Distinct statuses a component's `map-status` hook is called for per result, at most.
#[cfg(feature = "wasm")]
const MAX_STATUS_CALLS: usize = 1000;

/// Every string under a `status` key, deduplicated; stops once it has one more than
/// [`MAX_STATUS_CALLS`] (enough to know there are too many).
#[cfg(feature = "wasm")]
fn collect_statuses(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    if out.len() > MAX_STATUS_CALLS {
        return;
    }
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_statuses(v, out)),
        Value::Object(map) => {
            if let Some(Value::String(raw)) = map.get("status")
                && !out.contains(raw)
            {
                out.insert(raw.clone());
            }
            map.values().for_each(|v| collect_statuses(v, out));
        }
        _ => {}
    }
}

/// An approved JSON provider's scope for one step: its rules plus the origin of each base URL
/// the user configured (the value in this run).
fn with_configured_bases(scope: &Scope, bases: &[String], resolved: &Resolved) -> Scope {
    let mut scope = scope.clone();
    if let Some(grants) = scope.grants.as_mut() {
        for param in bases {
            if let Some(rule) = resolved
                .values
                .get(param)
                .and_then(|base| crate::policy::HttpRule::parse(base).ok())
            {
                grants.http.push(rule);
            }
        }
    }
    scope
}
