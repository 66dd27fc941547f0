//! Rust bindings for every `cpi:provider` version cpi runs (the host side), and the adapter
//! that runs a component built for an older version through the current implementation.
//!
//! The current version (`wit/provider.wit`) is bound at this module's root; each released
//! one is bound from its frozen copy (`wit/vX.Y.Z/`) in its own module. [`Pre`] and
//! [`Instance`] hide which one a component exports: its hooks answer in the current types,
//! and its host imports are the current ones seen through the old signatures (see the
//! `Host` impls in this module), so there is one implementation of every host function,
//! check and limit.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::host::State;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "provider-component",
    imports: { default: trappable },
});

/// `cpi:provider@0.1.0`, frozen (`wit/v0.1.0/provider.wit`).
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1.0",
        world: "provider-component",
        imports: { default: trappable },
    });
}

use self::cpi::provider::{host, types};
use self::v0_1_0::cpi::provider::{host as old_host, types as old_types};

/// Adds the host imports of every supported version to `linker`.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<State>) -> wasmtime::Result<()> {
    type Here = wasmtime::component::HasSelf<State>;
    ProviderComponent::add_to_linker::<State, Here>(linker, |state| state)?;
    v0_1_0::ProviderComponent::add_to_linker::<State, Here>(linker, |state| state)
}

/// A pre-instantiated component, of the version it exports.
pub enum Pre {
    /// The current version.
    Current(ProviderComponentPre<State>),
    /// `0.1.0`.
    V0_1_0(v0_1_0::ProviderComponentPre<State>),
}

/// One instance of a component, whatever its version: its hooks in the current types.
pub enum Instance {
    /// The current version.
    Current(ProviderComponent),
    /// `0.1.0`.
    V0_1_0(v0_1_0::ProviderComponent),
}

impl Pre {
    /// The typed form of `pre` for a component that exports `version` (one of
    /// [`cpi_contract::API_VERSIONS`]).
    pub fn new(version: &str, pre: InstancePre<State>) -> wasmtime::Result<Pre> {
        match version {
            "0.1.0" => Ok(Pre::V0_1_0(v0_1_0::ProviderComponentPre::new(pre)?)),
            _ => Ok(Pre::Current(ProviderComponentPre::new(pre)?)),
        }
    }

    /// A fresh instance in `store`.
    pub fn instantiate(&self, store: &mut Store<State>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::Current(pre) => Instance::Current(pre.instantiate(store)?),
            Pre::V0_1_0(pre) => Instance::V0_1_0(pre.instantiate(store)?),
        })
    }
}

impl Instance {
    /// `describe`, as a current manifest (an older one declares no environment variables
    /// and no parameters).
    pub fn describe(&self, store: &mut Store<State>) -> wasmtime::Result<types::Manifest> {
        match self {
            Instance::Current(p) => p.cpi_provider_provider().call_describe(store),
            Instance::V0_1_0(p) => {
                let m = p.cpi_provider_provider().call_describe(store)?;
                Ok(types::Manifest {
                    name: m.name,
                    version: m.version,
                    api_version: m.api_version,
                    commands: m
                        .commands
                        .into_iter()
                        .map(|c| types::CommandCapability {
                            program: c.program,
                            args: c.args,
                        })
                        .collect(),
                    http: m.http,
                    provider_json: m.provider_json,
                    parses: m.parses,
                    invokes: m.invokes,
                    maps_status: m.maps_status,
                    env: Vec::new(),
                    parameters: Vec::new(),
                })
            }
        }
    }

    /// `parse`.
    pub fn parse(
        &self,
        store: &mut Store<State>,
        action: &str,
        raw: &str,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        match self {
            Instance::Current(p) => p.cpi_provider_provider().call_parse(store, action, raw),
            Instance::V0_1_0(p) => Ok(p
                .cpi_provider_provider()
                .call_parse(store, action, raw)?
                .map_err(error_from_old)),
        }
    }

    /// `map-status`.
    pub fn map_status(
        &self,
        store: &mut Store<State>,
        raw: &str,
    ) -> wasmtime::Result<types::WorkerStatus> {
        match self {
            Instance::Current(p) => p.cpi_provider_provider().call_map_status(store, raw),
            Instance::V0_1_0(p) => Ok(status_from_old(
                p.cpi_provider_provider().call_map_status(store, raw)?,
            )),
        }
    }

    /// `invoke`.
    pub fn invoke(
        &self,
        store: &mut Store<State>,
        action: &str,
        params: &str,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        match self {
            Instance::Current(p) => p.cpi_provider_provider().call_invoke(store, action, params),
            Instance::V0_1_0(p) => Ok(p
                .cpi_provider_provider()
                .call_invoke(store, action, params)?
                .map_err(error_from_old)),
        }
    }
}

fn error_from_old(e: old_types::Error) -> types::Error {
    use old_types::ErrorCategory as O;
    use types::ErrorCategory as N;
    let category = match e.category {
        O::Authentication => N::Authentication,
        O::ResourceNotFound => N::ResourceNotFound,
        O::QuotaExceeded => N::QuotaExceeded,
        O::Validation => N::Validation,
        O::RateLimit => N::RateLimit,
        O::Provider => N::Provider,
        O::Timeout => N::Timeout,
        O::CapabilityDenied => N::CapabilityDenied,
        O::Unsupported => N::Unsupported,
    };
    types::Error {
        category,
        message: e.message,
    }
}

fn error_to_old(e: types::Error) -> old_types::Error {
    use old_types::ErrorCategory as O;
    use types::ErrorCategory as N;
    let category = match e.category {
        N::Authentication => O::Authentication,
        N::ResourceNotFound => O::ResourceNotFound,
        N::QuotaExceeded => O::QuotaExceeded,
        N::Validation => O::Validation,
        N::RateLimit => O::RateLimit,
        N::Provider => O::Provider,
        N::Timeout => O::Timeout,
        N::CapabilityDenied => O::CapabilityDenied,
        N::Unsupported => O::Unsupported,
    };
    old_types::Error {
        category,
        message: e.message,
    }
}

fn status_from_old(s: old_types::WorkerStatus) -> types::WorkerStatus {
    use old_types::WorkerStatus as O;
    use types::WorkerStatus as N;
    match s {
        O::Running => N::Running,
        O::Stopped => N::Stopped,
        O::Starting => N::Starting,
        O::Stopping => N::Stopping,
        O::Provisioning => N::Provisioning,
        O::Terminating => N::Terminating,
        O::Error => N::Error,
        O::Suspended => N::Suspended,
        O::Unknown => N::Unknown,
    }
}

impl old_types::Host for State {}

/// The 0.1.0 host functions: the current ones, through the old signatures.
impl old_host::Host for State {
    fn run_command(
        &mut self,
        cmd: old_host::Command,
    ) -> wasmtime::Result<Result<old_host::CommandOutput, old_types::Error>> {
        let cmd = host::Command {
            program: cmd.program,
            args: cmd.args,
            stdin: cmd.stdin,
            timeout_ms: cmd.timeout_ms,
        };
        Ok(host::Host::run_command(self, cmd)?
            .map(|out| old_host::CommandOutput {
                exit_code: out.exit_code,
                stdout: out.stdout,
                stderr: out.stderr,
            })
            .map_err(error_to_old))
    }

    fn http_request(
        &mut self,
        req: old_host::Request,
    ) -> wasmtime::Result<Result<old_host::Response, old_types::Error>> {
        let req = host::Request {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        Ok(host::Host::http_request(self, req)?
            .map(|res| old_host::Response {
                status: res.status,
                headers: res.headers,
                body: res.body,
            })
            .map_err(error_to_old))
    }

    fn log(&mut self, level: old_host::LogLevel, message: String) -> wasmtime::Result<()> {
        use host::LogLevel as N;
        use old_host::LogLevel as O;
        let level = match level {
            O::Trace => N::Trace,
            O::Debug => N::Debug,
            O::Info => N::Info,
            O::Warn => N::Warn,
            O::Error => N::Error,
        };
        host::Host::log(self, level, message)
    }
}
