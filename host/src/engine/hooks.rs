//! What bounds a run: an approved JSON provider's scope, or a component's grants and hooks
//! (`invoke`, `parse`, `map-status`). The engine asks the [`Guard`]; the `wasm` feature
//! decides only which guards exist.

use std::borrow::Cow;
#[cfg(feature = "wasm")]
use std::sync::Arc;

#[cfg(feature = "wasm")]
use serde_json::{Map, Value};

use super::Engine;
#[cfg(feature = "wasm")]
use super::Run;
use crate::error::{Error, ErrorKind, Result};
use crate::exec::Scope;
use crate::params::Resolved;
#[cfg(feature = "wasm")]
use crate::params::{self, Inputs};
use crate::provider::Provider;

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
pub(super) struct ComponentGuard {
    pub component: Arc<crate::wasm::Component>,
    pub ctx: Arc<crate::wasm::CallContext>,
}

#[cfg(feature = "wasm")]
impl ComponentGuard {
    /// The component's `parse` hook: `output` of the action `name` as JSON.
    pub async fn parse(&self, name: &str, output: String) -> Result<Value> {
        let (component, ctx, action) = (self.component.clone(), self.ctx.clone(), name.to_string());
        blocking(move || component.parse(ctx, &action, &output)).await
    }
}

/// What bounds one run of a provider that is not built in.
pub(super) enum Guard {
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
    pub fn with_secrets(&self, resolved: &Resolved) -> Guard {
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

    /// Whether the component runs `action` itself (its `invoke` hook), with or without a
    /// JSON definition of it.
    #[cfg_attr(not(feature = "wasm"), allow(unused_variables))]
    pub fn invokes(&self, action: &str) -> bool {
        match self {
            #[cfg(feature = "wasm")]
            Guard::Component(c) => c.component.manifest().invokes.iter().any(|a| a == action),
            Guard::Approved { .. } => false,
        }
    }

    /// Whether a component is behind the provider.
    pub fn is_component(&self) -> bool {
        !matches!(self, Guard::Approved { .. })
    }

    /// The component, when the provider has one.
    #[cfg(feature = "wasm")]
    pub fn component(&self) -> Option<&ComponentGuard> {
        match self {
            Guard::Component(c) => Some(c),
            Guard::Approved { .. } => None,
        }
    }

    /// The component, when it has a `parse` hook for the action `name`.
    #[cfg(feature = "wasm")]
    pub fn parser(&self, name: &str) -> Option<&ComponentGuard> {
        self.component()
            .filter(|c| c.component.manifest().parses.iter().any(|a| a == name))
    }

    /// The scope a step goes through the gate with: a component's grants; an approved
    /// provider's rules plus the origin of each base URL the user configured (its value in
    /// this run); no limit but the provider's own file for a built-in provider.
    pub fn scope<'g>(
        guard: Option<&'g Guard>,
        provider: &Provider,
        resolved: &Resolved,
    ) -> Cow<'g, Scope> {
        match guard {
            #[cfg(feature = "wasm")]
            Some(Guard::Component(guard)) => Cow::Borrowed(&guard.ctx.scope),
            Some(Guard::Approved { scope, bases }) => {
                let mut scope = scope.clone();
                if let Some(grants) = scope.grants.as_mut() {
                    grants.http.extend(bases.iter().filter_map(|param| {
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
        #[cfg(feature = "wasm")]
        if provider.component.is_some() {
            let (guard, defined) = self.component_guard(provider).await?;
            return Ok((Some(guard), defined));
        }
        Ok((self.approved(provider)?, None))
    }

    /// Loads a provider's component and the grants in force for it: the guard every step of
    /// a run goes through, and the component's own provider definition when it brings one
    /// (a standalone component named by a file without actions).
    #[cfg(feature = "wasm")]
    async fn component_guard(&self, provider: &Provider) -> Result<(Guard, Option<Provider>)> {
        let component = self.load_component(provider).await?;
        let defined = own_definition(provider, &component)?;
        let manifest = component.manifest();
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

    /// One attempt at an action of a component-backed provider: `invoke` if the component
    /// implements the action, otherwise the provider's targets (checked against the grants)
    /// with the component's `parse` and `map-status` hooks where it has them. The result
    /// comes back redacted of the caller's secrets.
    #[cfg(feature = "wasm")]
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
    #[cfg(feature = "wasm")]
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
            .ok_or_else(|| Error::internal("invoke without a component"))?;
        let (call, ctx, action) = (
            hooks.component.clone(),
            hooks.ctx.clone(),
            run.name.to_string(),
        );
        let mut value = blocking(move || call.invoke(ctx, &action, &params)).await?;
        self.normalize(run, &mut value).await?;
        Ok(value)
    }

    /// The component's `map-status` for each distinct raw status in `value`, when it has the
    /// hook: entries for the status table, checked before the provider's.
    #[cfg(feature = "wasm")]
    pub(super) async fn mapped_statuses(
        &self,
        run: &Run<'_>,
        value: &Value,
    ) -> Result<Vec<(String, String)>> {
        let Some(hooks) = run
            .guard
            .and_then(Guard::component)
            .filter(|g| g.component.manifest().maps_status)
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
            let (component, ctx, text) = (hooks.component.clone(), hooks.ctx.clone(), raw.clone());
            let status = blocking(move || component.map_status(ctx, &text)).await?;
            mapped.push((raw, status.to_string()));
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
#[cfg(feature = "wasm")]
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| Error::internal(format!("component call failed: {e}")))?
}

/// The values for an action a component implements without a JSON definition of it: the
/// provider's defaults and the caller's values, each checked against its declaration.
#[cfg(feature = "wasm")]
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

/// A standalone component's own provider definition, when its file has no actions and the
/// component brings one (it must carry the file's name).
#[cfg(feature = "wasm")]
fn own_definition(
    provider: &Provider,
    component: &crate::wasm::Component,
) -> Result<Option<Provider>> {
    let (Some(json), true) = (
        &component.manifest().provider_json,
        provider.actions.is_empty(),
    ) else {
        return Ok(None);
    };
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
    Ok(Some(defined))
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
