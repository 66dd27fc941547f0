//! The sandbox as the engine sees it: [`Components`] implements the runtime's
//! [`ComponentHost`], binding a provider's component to the grants in force for it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use cpi::engine::{Bound, ComponentHooks, ComponentHost};
use cpi::error::{Error, Result};
use cpi::exec::{Gate, Scope};
use cpi::provider::Provider;

use crate::{CallContext, Component, Sandbox, SandboxLimits};

/// Settings for WebAssembly component providers.
#[derive(Debug, Clone)]
pub struct Options {
    /// CPU, memory, log and result limits per call.
    pub limits: SandboxLimits,
    /// Where compiled components are cached (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Where grants are stored (`None`: nothing is granted but the one-off grants).
    pub grants: Option<cpi::grants::GrantStore>,
    /// Grants for this run only (`--allow-run`, `--allow-net`), within the manifest's request.
    pub one_off: cpi::policy::Capabilities,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Default::default(),
            cache_dir: Sandbox::default_cache_dir(),
            grants: cpi::grants::GrantStore::default_store(),
            one_off: Default::default(),
        }
    }
}

/// Component providers for an engine: the options, and the sandbox, created on first use.
#[derive(Debug)]
pub struct Components {
    options: Options,
    sandbox: OnceLock<Arc<Sandbox>>,
}

impl Components {
    /// Components run with these options.
    pub fn new(options: Options) -> Components {
        Components {
            options,
            sandbox: OnceLock::new(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The sandbox, created on first use.
    pub fn sandbox(&self) -> Result<Arc<Sandbox>> {
        if let Some(sandbox) = self.sandbox.get() {
            return Ok(sandbox.clone());
        }
        let options = &self.options;
        let sandbox = Sandbox::new(options.limits.clone(), options.cache_dir.clone())?;
        Ok(self.sandbox.get_or_init(|| Arc::new(sandbox)).clone())
    }

    /// Loads a provider's component (compiling it, or taking it from the cache). Blocking.
    pub fn load(&self, provider: &Provider) -> Result<Arc<Component>> {
        let path = provider.component_path().ok_or_else(|| {
            Error::validation(format!("provider '{}' has no component", provider.name))
        })?;
        self.sandbox()?.load(&provider.name, &path)
    }
}

impl ComponentHost for Components {
    fn bind(&self, provider: &Provider, gate: &Gate) -> Result<Bound> {
        let component = self.load(provider)?;
        let defined = own_definition(provider, &component)?;
        let manifest = component.manifest();
        let stored = match &self.options.grants {
            Some(store) => store.load(&provider.name)?,
            None => None,
        };
        // A component with nothing granted can do nothing outside its sandbox (and the JSON
        // targets of a component-backed provider run under its grants), so only a grant is
        // pinned: to the component and to the provider's JSON file and path.
        if let Some(grant) = stored.as_ref().filter(|_| !provider.is_builtin()) {
            cpi::approval::check_pins(grant, provider)?;
        }
        let (grants, env) = cpi::grants::effective(
            stored.as_ref(),
            component.sha256(),
            &manifest.requested,
            &self.options.one_off,
        )?;
        let scope = Scope {
            provider: provider.name.clone(),
            grants: Some(grants),
            env,
        };
        let ctx = CallContext::new(gate.clone(), scope)?;
        Ok(Bound {
            hooks: Arc::new(Hooks {
                component,
                ctx: Arc::new(ctx),
            }),
            defined,
        })
    }
}

/// A component bound to one run's grants.
struct Hooks {
    component: Arc<Component>,
    ctx: Arc<CallContext>,
}

impl ComponentHooks for Hooks {
    fn scope(&self) -> &Scope {
        &self.ctx.scope
    }

    fn invokes(&self, action: &str) -> bool {
        self.component
            .manifest()
            .invokes
            .iter()
            .any(|a| a == action)
    }

    fn parses(&self, action: &str) -> bool {
        self.component.manifest().parses.iter().any(|a| a == action)
    }

    fn maps_status(&self) -> bool {
        self.component.manifest().maps_status
    }

    fn with_secrets(&self, secrets: Vec<String>) -> Arc<dyn ComponentHooks> {
        Arc::new(Hooks {
            component: self.component.clone(),
            ctx: Arc::new((*self.ctx).clone().with_secrets(secrets)),
        })
    }

    fn invoke(&self, action: &str, params: &Map<String, Value>) -> Result<Value> {
        self.component.invoke(self.ctx.clone(), action, params)
    }

    fn parse(&self, action: &str, output: &str) -> Result<Value> {
        self.component.parse(self.ctx.clone(), action, output)
    }

    fn map_status(&self, raw: &str) -> Result<String> {
        Ok(self
            .component
            .map_status(self.ctx.clone(), raw)?
            .to_string())
    }
}

/// A standalone component's own provider definition, when its file has no actions and the
/// component brings one (it must carry the file's name).
fn own_definition(provider: &Provider, component: &Component) -> Result<Option<Provider>> {
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
