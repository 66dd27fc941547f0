//! What bounds a run: an approved JSON provider's scope, or a component's grants and hooks
//! (`invoke`, `parse`, `map-status`). The engine asks the [`Guard`]; components reach it only
//! through the [`ComponentHost`] trait, which the sandbox (crate `cpi-sandbox`) implements, so
//! the runtime builds and runs JSON providers without wasmtime.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Engine, Run};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::{Gate, Scope};
use crate::params::{self, Inputs, Resolved};
use crate::provider::Provider;

/// A sandbox that runs component providers: the engine asks it for the component behind a
/// provider, bound to the grants in force for it.
pub trait ComponentHost: Send + Sync + std::fmt::Debug + 'static {
    /// Loads `provider`'s component (compiled, or from a cache) and binds it to the grants in
    /// force for it, its host calls going through `gate`; with the component's own provider
    /// definition when a standalone component brings one. Blocking.
    fn bind(&self, provider: &Provider, gate: &Gate) -> Result<Bound>;
}

/// A component bound to the grants of a run, and the provider definition it brings.
pub struct Bound {
    /// Its hooks, under its grants.
    pub hooks: Arc<dyn ComponentHooks>,
    /// The provider definition a standalone component brings (its file has no actions).
    pub defined: Option<Provider>,
}

/// The hooks of a component bound to a run's grants. Calls block (the engine makes them on
/// the blocking pool).
pub trait ComponentHooks: Send + Sync {
    /// The scope its host calls, and the provider's targets, go through the gate with.
    fn scope(&self) -> &Scope;
    /// Whether it runs `action` itself (its `invoke` hook).
    fn invokes(&self, action: &str) -> bool;
    /// Whether it parses the output of `action` (its `parse` hook).
    fn parses(&self, action: &str) -> bool;
    /// Whether it maps raw statuses (its `map-status` hook).
    fn maps_status(&self) -> bool;
    /// The same component with its logs, output and denials redacted of `secrets`.
    fn with_secrets(&self, secrets: Vec<String>) -> Arc<dyn ComponentHooks>;
    /// Runs `action` with `params`: its raw result.
    fn invoke(&self, action: &str, params: &Map<String, Value>) -> Result<Value>;
    /// Parses `output` of `action`.
    fn parse(&self, action: &str, output: &str) -> Result<Value>;
    /// The standard status for a raw one.
    fn map_status(&self, raw: &str) -> Result<String>;
}

/// What bounds one run of a provider that is not built in.
pub(super) enum Guard {
    /// A component: its hooks and grants.
    Component(Arc<dyn ComponentHooks>),
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
    /// denials are redacted of them.
    pub fn with_secrets(&self, resolved: &Resolved) -> Guard {
        match self {
            Guard::Component(c) => Guard::Component(c.with_secrets(resolved.secret_values())),
            Guard::Approved { scope, bases } => Guard::Approved {
                scope: scope.clone(),
                bases: bases.clone(),
            },
        }
    }

    /// Whether the component runs `action` itself (its `invoke` hook), with or without a
    /// JSON definition of it.
    pub fn invokes(&self, action: &str) -> bool {
        self.component().is_some_and(|c| c.invokes(action))
    }

    /// Whether a component is behind the provider.
    pub fn is_component(&self) -> bool {
        self.component().is_some()
    }

    /// The component, when the provider has one.
    pub fn component(&self) -> Option<&Arc<dyn ComponentHooks>> {
        match self {
            Guard::Component(c) => Some(c),
            Guard::Approved { .. } => None,
        }
    }

    /// The component, when it has a `parse` hook for the action `name`.
    pub fn parser(&self, name: &str) -> Option<&Arc<dyn ComponentHooks>> {
        self.component().filter(|c| c.parses(name))
    }

    /// The scope a run's steps go through the gate with: a component's grants; an approved
    /// provider's rules plus the origin of each base URL the user configured (its value in
    /// this run, never one an earlier step parsed: a provider cannot name its own
    /// destination); no limit but the provider's own file for a built-in provider.
    pub fn scope<'g>(
        guard: Option<&'g Guard>,
        provider: &Provider,
        resolved: &Resolved,
    ) -> Cow<'g, Scope> {
        match guard {
            Some(Guard::Component(hooks)) => Cow::Borrowed(hooks.scope()),
            Some(Guard::Approved { scope, bases }) => {
                let mut scope = scope.clone();
                if let Some(grants) = scope.grants.as_mut() {
                    grants.http.extend(bases.iter().filter_map(|param| {
                        if resolved.sources.get(param) == Some(&crate::params::Source::Step) {
                            return None;
                        }
                        let base = resolved.values.get(param)?;
                        crate::policy::HttpRule::parse(base).ok()
                    }));
                }
                Cow::Owned(scope)
            }
            None => Cow::Owned(Scope {
                provider: provider.name.clone(),
                ..Scope::default()
            }),
        }
    }
}

impl Engine {
    /// The guard of a JSON provider: none for a built-in one; otherwise its approval, or an
    /// error naming what to review.
    pub(super) fn approved(&self, provider: &Provider) -> Result<Option<Guard>> {
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

    /// The guard of any provider, and a standalone component's own provider definition when
    /// it brings one.
    pub(super) async fn guard_of(
        &self,
        provider: &Provider,
    ) -> Result<(Option<Guard>, Option<Provider>)> {
        if provider.component.is_some() {
            let (guard, defined) = self.component_guard(provider).await?;
            return Ok((Some(guard), defined));
        }
        Ok((self.approved(provider)?, None))
    }

    /// Binds a provider's component to the grants in force for it (on the blocking pool: it
    /// may compile): the guard every step of a run goes through, and the component's own
    /// provider definition when it brings one (a standalone component named by a file without
    /// actions).
    async fn component_guard(&self, provider: &Provider) -> Result<(Guard, Option<Provider>)> {
        let host = self.components.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "provider '{}' is a WebAssembly component, and this build of cpi has no \
                     component sandbox",
                    provider.name
                ),
            )
        })?;
        // Off the async threads: loading may compile, and the component's host calls block on
        // the runtime, which must keep driving them meanwhile (a current-thread one too).
        let (provider, gate) = (provider.clone(), self.gate.clone());
        let bound = blocking(move || host.bind(&provider, &gate)).await?;
        Ok((Guard::Component(bound.hooks), bound.defined))
    }

    /// One attempt at an action of a component-backed provider: `invoke` if the component
    /// implements the action, otherwise the provider's targets (checked against the grants)
    /// with the component's `parse` and `map-status` hooks where it has them. The result
    /// comes back redacted of the caller's secrets.
    pub(super) async fn attempt_component(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        let (guard, defined) = self
            .component_guard(provider)
            .await
            .map_err(|e| e.context(&provider.name, action_name))?;
        let effective = defined.as_ref().unwrap_or(provider);
        let invokes = guard.invokes(action_name);
        // An action the component invokes may have no JSON definition.
        let action = match invokes {
            true => effective.actions.get(action_name),
            false => Some(effective.action(action_name)?),
        };
        let resolved = match action {
            Some(action) => params::resolve(effective, action, inputs),
            None => invoke_inputs(effective, inputs)
                .map_err(|e| e.context(&provider.name, action_name))?,
        };
        let guard = guard.with_secrets(&resolved);
        let mut run = Run::new(effective, action_name, resolved, Some(&guard));
        let outcome = match action {
            Some(action) if !invokes => self.steps(&mut run, action).await,
            _ => self.invoke(&run).await,
        };
        run.finish(outcome).map(|v| run.show(v))
    }

    /// Runs an action the component implements itself (its `invoke` hook) with the run's
    /// values; the result is status-normalized, not yet redacted.
    pub(super) async fn invoke(&self, run: &Run<'_>) -> Result<Value> {
        if let Some(action) = run.provider.actions.get(run.name) {
            run.resolved.check(run.provider, action)?;
        }
        let params: Map<String, Value> = run
            .resolved
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        let hooks = run
            .guard
            .and_then(Guard::component)
            .ok_or_else(|| Error::internal("invoke without a component"))?
            .clone();
        let action = run.name.to_string();
        let mut value = blocking(move || hooks.invoke(&action, &params)).await?;
        self.normalize(run, &mut value).await?;
        Ok(value)
    }

    /// The component's `map-status` for each distinct raw status in `value`, when it has the
    /// hook: entries for the status table, checked before the provider's.
    pub(super) async fn mapped_statuses(
        &self,
        run: &Run<'_>,
        value: &Value,
    ) -> Result<Vec<(String, String)>> {
        let Some(hooks) = run
            .guard
            .and_then(Guard::component)
            .filter(|g| g.maps_status())
        else {
            return Ok(Vec::new());
        };
        let mut raws = std::collections::BTreeSet::new();
        collect_statuses(value, &mut raws);
        if raws.len() > MAX_STATUS_CALLS {
            return Err(Error::provider(format!(
                "the result has more than {MAX_STATUS_CALLS} distinct statuses for \
                 component '{}' to map; cpi maps at most {MAX_STATUS_CALLS} per result",
                run.provider.name
            )));
        }
        let mut mapped = Vec::new();
        for raw in raws {
            let (hooks, text) = (hooks.clone(), raw.clone());
            let status = blocking(move || hooks.map_status(&text)).await?;
            mapped.push((raw, status));
        }
        Ok(mapped)
    }
}

/// Refuses TLS settings a component's requests cannot honour.
pub(super) fn check_component_tls(
    guard: Option<&Guard>,
    tls: &crate::exec::http::Tls,
) -> Result<()> {
    if guard.is_some_and(Guard::is_component) && !tls.is_default() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "verify_ssl and ca_cert_file are not supported for component providers: \
             their requests always verify certificates against the built-in roots",
        ));
    }
    Ok(())
}

/// Runs a component call on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| Error::internal(format!("component call failed: {e}")))?
}

/// The values for an action a component implements without a JSON definition of it: the
/// provider's defaults and the caller's values, each checked against its declaration.
fn invoke_inputs(provider: &Provider, inputs: &Inputs) -> Result<Resolved> {
    let mut resolved = Resolved::default();
    for (k, v) in &provider.default_settings {
        resolved.values.insert(k.clone(), params::value_to_param(v));
    }
    for (k, v) in &inputs.cli {
        resolved.values.insert(k.clone(), v.clone());
    }
    resolved.secret_names = resolved
        .values
        .keys()
        .filter(|n| crate::secret::is_secret_name(n, provider))
        .cloned()
        .collect();
    let names: Vec<String> = resolved.values.keys().cloned().collect();
    resolved.check_declared(provider, names.iter().map(String::as_str))?;
    Ok(resolved)
}

/// Distinct statuses a component's `map-status` hook is called for per result, at most.
const MAX_STATUS_CALLS: usize = 1000;

/// Every string under a `status` key, deduplicated; stops once it has one more than
/// [`MAX_STATUS_CALLS`] (enough to know there are too many).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime alone runs JSON providers; a component provider asks for the sandbox by
    /// name instead of failing somewhere inside.
    #[tokio::test]
    async fn a_component_provider_without_a_sandbox_is_unsupported() {
        let provider = Provider::from_json(
            r#"{"name": "boxed", "type": "command", "component": "boxed.wasm",
                "actions": {"list_workers": {"target": {"Command": {"command": "true"}}}}}"#,
            std::path::Path::new("/nowhere/boxed.json"),
        )
        .unwrap();
        let err = Engine::new()
            .unwrap()
            .run(&provider, "list_workers", &Inputs::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("no component sandbox"), "{err}");
        assert!(err.message().contains("boxed"), "{err}");
    }
}
