//! WebAssembly component providers, run in a wasmtime sandbox with no ambient authority.
//!
//! - [`Sandbox`] owns the wasmtime engine (fuel for CPU, epochs for wall-clock time,
//!   [`wasmtime::StoreLimits`] for memory), the epoch ticker thread, the linker (an empty WASI context: no files, no environment, no args, no sockets) and the
//!   on-disk compile cache.
//! - [`Component`] is one loaded component: its sha256, manifest and pre-instantiated form.
//!   Every hook call gets a fresh `Store`, so a trap or a bad state never leaks into the next.
//! - The host imports a component may call ([`host`]), and the requests it sends through
//!   `wasi:http/outgoing-handler` ([`http`]), go through the same [`Gate`](cpi::exec::Gate)
//!   as JSON providers' targets, which checks them against the component's
//!   [`Capabilities`](cpi::policy::Capabilities) first.

#![deny(missing_docs)]

mod bind;
mod bindings;
mod cache;
mod component;
mod guest_log;
mod host;
mod http;
mod wait;

pub use bind::{Components, Options};
pub use component::{Component, EnvRequest, Manifest, SDK_SECTION, sdk_stamp};
pub use host::CallContext;
pub use host::SandboxLimits;
pub use host::{EFFECT_CALL_FUEL, LOG_CALL_FUEL};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpi::error::{Error, Result};

/// The WIT package version this host implements (the contract's, checked against `wit/`),
/// and every version it runs (the older ones adapted onto it, see `bindings`).
pub use cpi_contract::{API_VERSION, API_VERSIONS};

/// Component instances the pooling allocator has slots for at once: a call holds one from
/// instantiation until it returns, so this bounds concurrent hook calls, not calls in all.
const POOLED_INSTANCES: u32 = 1000;

/// How often the epoch ticker advances the engine's epoch: the granularity of the wall-clock
/// limits, and how late a host-call charge may be taken from the fuel.
const TICK: Duration = Duration::from_millis(10);

/// The wasmtime engine: fuel for the CPU budget, and the pooling instance allocator, which
/// keeps linear memories and tables mapped between calls and resets them when a call ends,
/// so a fresh instance per call costs no `mmap`/`munmap`. Where Linux can report which pages
/// a call wrote (`PAGEMAP_SCAN`, Linux 6.7+), only those are reset, in place (copied back from
/// the initial image or zeroed), instead of being dropped with `madvise` and faulted in again
/// by the next call. Each slot only reserves address space; where that much cannot be
/// reserved (an address-space `ulimit`), instances are allocated on demand instead.
///
/// Host `wasm` bench, warm `parse` call: about 85 µs on demand, 50 µs pooled, 25 µs pooled
/// with the page scan.
fn engine(limits: &SandboxLimits) -> Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    // The per-memory cap is the memory limit (StoreLimits enforces it too), within 32-bit
    // memory's 4 GiB. The other bounds are generous: an interpreter compiled to a component
    // (CPython, SpiderMonkey) has tens of thousands of table entries and several modules.
    let page = 64 << 10;
    // Calls are synchronous (no async support, so no fiber stacks): reserving the default
    // 1,000 async stacks would cost every `cpi run` 3-5 ms of `mprotect` and `munmap`.
    pool.total_stacks(0)
        .total_component_instances(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * 8)
        .total_memories(POOLED_INSTANCES)
        .total_tables(POOLED_INSTANCES * 4)
        .max_memory_size(
            limits
                .memory_bytes
                .div_ceil(page)
                .saturating_mul(page)
                .min(1 << 32),
        )
        .max_memories_per_module(8)
        .max_tables_per_module(8)
        .table_elements(1 << 20)
        .max_core_instance_size(16 << 20)
        .max_component_instance_size(16 << 20);
    if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
        // Memory a call touched stays committed for the next call in that slot: up to this
        // much per slot, in at most `max_unused_warm_slots` idle slots besides those in use.
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(16 << 20)
            .table_keep_resident(1 << 20)
            .max_unused_warm_slots(8);
    }
    let mut pooled = config.clone();
    pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    match wasmtime::Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(err) => {
            tracing::debug!(
                "wasmtime pooling allocator unavailable ({err:#}); allocating on demand"
            );
            wasmtime::Engine::new(&config).map_err(|e| Error::internal(format!("wasmtime: {e:#}")))
        }
    }
}

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
    /// (`None` disables the cache, and so does a directory others can write: see
    /// [`cache::usable_dir`]).
    pub fn new(limits: SandboxLimits, cache_dir: Option<PathBuf>) -> Result<Sandbox> {
        let cache_dir = cache_dir.filter(|dir| cache::usable_dir(dir));
        let engine = engine(&limits)?;
        start_ticker(&engine)?;
        let mut linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::internal(format!("linking WASI: {e:#}")))?;
        // Its waits, bounded by each call's deadline (see `wait`).
        wait::add_to_linker(&mut linker)
            .map_err(|e| Error::internal(format!("bounding WASI's waits: {e:#}")))?;
        // wasi:http's outgoing handler, whose requests the gate sends (see `http`).
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(|e| Error::internal(format!("linking wasi:http: {e:#}")))?;
        bindings::add_to_linker(&mut linker)
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
    ///
    /// A warm load neither reads nor hashes the file: its sha256 is remembered in the cache
    /// directory by the file's identity and change times, and names the compiled entry to
    /// load (see [`cache`] for why that is safe).
    /// `name` is the provider it is loaded as, the name its errors use.
    pub fn load(&self, name: &str, path: &std::path::Path) -> Result<Arc<Component>> {
        use cpi::fsread::{self, Kind};
        let (file, before) = fsread::open(path, Kind::Component)?;
        if let Some(dir) = &self.cache_dir
            && let Some(sha) = cache::recall_digest(dir, &before)
        {
            if let Some(found) = self.loaded(&sha) {
                return Ok(found);
            }
            if let Some(compiled) = component::from_cache(self, &sha) {
                return self.keep(Component::load(self, name, path, compiled, sha)?);
            }
        }
        let started = std::time::SystemTime::now();
        let bytes = fsread::read_open(&file, &before, path, Kind::Component)?;
        let sha = cache::sha256_hex(&bytes);
        if let Some(dir) = &self.cache_dir
            && let Ok(after) = file.metadata()
        {
            cache::remember_digest(dir, &before, &after, started, &sha);
        }
        if let Some(found) = self.loaded(&sha) {
            return Ok(found);
        }
        let compiled = component::compile(self, path, &bytes, &sha)?;
        drop(bytes);
        self.keep(Component::load(self, name, path, compiled, sha)?)
    }

    /// The component with this sha256 loaded earlier in this run.
    fn loaded(&self, sha: &str) -> Option<Arc<Component>> {
        let loaded = self.loaded.lock().expect("lock");
        loaded.iter().find(|c| c.sha256() == sha).cloned()
    }

    fn keep(&self, component: Component) -> Result<Arc<Component>> {
        let component = Arc::new(component);
        self.loaded.lock().expect("lock").push(component.clone());
        Ok(component)
    }

    /// The limits applied to every call.
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }
}

/// Starts the one thread that advances `engine`'s epoch every [`TICK`], for the wall-clock
/// limits of every store of the engine; it ends when the engine is dropped.
fn start_ticker(engine: &wasmtime::Engine) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("cpi-wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map(|_| ())
        .map_err(|e| Error::internal(format!("cannot start the wasm epoch ticker: {e}")))
}
