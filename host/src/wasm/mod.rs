//! WebAssembly component providers, run in a wasmtime sandbox with no ambient authority.
//!
//! - [`Sandbox`] owns the wasmtime engine (fuel for CPU, [`wasmtime::StoreLimits`] for memory),
//!   the linker (an empty WASI context: no files, no environment, no args, no sockets) and the
//!   on-disk compile cache.
//! - [`Component`] is one loaded component: its sha256, manifest and pre-instantiated form.
//!   Every hook call gets a fresh `Store`, so a trap or a bad state never leaks into the next.
//! - The host imports a component may call ([`host`]) go through the same executors as JSON
//!   providers, after a [`Capabilities`](crate::policy::Capabilities) check.

mod bindings;
mod cache;
mod component;
mod host;

pub use component::{Component, Manifest};
pub use host::CallContext;
pub use host::SandboxLimits;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// The WIT package version this host implements.
pub const API_VERSION: &str = "0.1.0";

/// The wasmtime engine, linker and compile cache shared by every component of a run.
pub struct Sandbox {
    engine: wasmtime::Engine,
    linker: wasmtime::component::Linker<host::State>,
    cache_dir: Option<PathBuf>,
    limits: SandboxLimits,
    loaded: Mutex<Vec<Arc<Component>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("cache_dir", &self.cache_dir)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Sandbox {
    /// A sandbox with the given limits, caching compiled components in `cache_dir`
    /// (`None` disables the cache).
    pub fn new(limits: SandboxLimits, cache_dir: Option<PathBuf>) -> Result<Sandbox> {
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .max_wasm_stack(1 << 20);
        let engine = wasmtime::Engine::new(&config)
            .map_err(|e| Error::internal(format!("wasmtime: {e:#}")))?;
        let mut linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::internal(format!("linking WASI: {e:#}")))?;
        bindings::ProviderComponent::add_to_linker::<
            host::State,
            wasmtime::component::HasSelf<host::State>,
        >(&mut linker, |state| state)
        .map_err(|e| Error::internal(format!("linking the cpi host interface: {e:#}")))?;
        Ok(Sandbox {
            engine,
            linker,
            cache_dir,
            limits,
            loaded: Mutex::new(Vec::new()),
        })
    }

    /// The default compile-cache directory: `$XDG_CACHE_HOME/cpi/components`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("cpi").join("components"))
    }

    /// Loads a component file (compiled once, then cached on disk and in memory).
    pub fn load(&self, path: &std::path::Path) -> Result<Arc<Component>> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::validation(format!("cannot read component {}: {e}", path.display()))
        })?;
        let sha = cache::sha256_hex(&bytes);
        if let Some(found) = self
            .loaded
            .lock()
            .expect("lock")
            .iter()
            .find(|c| c.sha256() == sha)
        {
            return Ok(found.clone());
        }
        let component = Arc::new(Component::load(self, path, &bytes, sha)?);
        self.loaded.lock().expect("lock").push(component.clone());
        Ok(component)
    }

    /// The limits applied to every call.
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }
}
