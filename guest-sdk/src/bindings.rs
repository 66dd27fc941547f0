//! The wit-bindgen bindings for `wit/provider.wit` and the glue between them and the SDK's
//! public types. Nothing generated here is public API: the export half is reachable only
//! through the hidden `__private` module that [`register_provider!`](crate::register_provider)
//! expands to.

use std::marker::PhantomData;

use crate::{Error, ErrorCategory, Manifest, Params, Provider, Status};

wit_bindgen::generate!({
    path: "../wit",
    world: "provider-component",
    export_macro_name: "__export_provider_component",
    pub_export_macro: true,
});

use self::cpi::provider::{host, types};
use self::exports::cpi::provider::provider::Guest;

/// The `Guest` implementation for provider `P`: converts between WIT and SDK types and
/// serializes JSON results to text.
pub struct Adapter<P: ?Sized>(PhantomData<fn() -> P>);

impl<P: Provider + ?Sized> Guest for Adapter<P> {
    fn describe() -> types::Manifest {
        P::manifest().into()
    }

    fn parse(action: String, raw: String) -> Result<String, types::Error> {
        to_text(P::parse(&action, &raw))
    }

    fn map_status(raw: String) -> types::WorkerStatus {
        P::map_status(&raw).into()
    }

    fn invoke(action: String, params: String) -> Result<String, types::Error> {
        let params = Params::from_json(&params).map_err(types::Error::from)?;
        to_text(P::invoke(&action, &params))
    }
}

fn to_text(result: crate::Result<serde_json::Value>) -> Result<String, types::Error> {
    result
        .and_then(|value| serde_json::to_string(&value).map_err(Error::from))
        .map_err(types::Error::from)
}

impl From<Manifest> for types::Manifest {
    fn from(m: Manifest) -> types::Manifest {
        types::Manifest {
            name: m.name,
            version: m.version,
            api_version: crate::API_VERSION.to_string(),
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
            env: m
                .env
                .into_iter()
                .map(|e| types::EnvRequest {
                    name: e.name,
                    description: e.description,
                })
                .collect(),
            parameters: m.parameters.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<crate::manifest::Parameter> for types::ParamDecl {
    fn from(p: crate::manifest::Parameter) -> types::ParamDecl {
        use crate::manifest::ParamType as P;
        types::ParamDecl {
            name: p.name,
            type_: match p.kind {
                P::String => types::ParamType::String,
                P::Integer => types::ParamType::Integer,
                P::Number => types::ParamType::Number,
                P::Boolean => types::ParamType::Boolean,
            },
            description: p.description,
            pattern: p.pattern,
            choices: p.choices,
            min: p.min,
            max: p.max,
            secret: p.secret,
        }
    }
}

impl From<Status> for types::WorkerStatus {
    fn from(s: Status) -> types::WorkerStatus {
        use types::WorkerStatus as W;
        match s {
            Status::Running => W::Running,
            Status::Stopped => W::Stopped,
            Status::Starting => W::Starting,
            Status::Stopping => W::Stopping,
            Status::Provisioning => W::Provisioning,
            Status::Terminating => W::Terminating,
            Status::Error => W::Error,
            Status::Suspended => W::Suspended,
            Status::Unknown => W::Unknown,
        }
    }
}

impl From<Error> for types::Error {
    fn from(e: Error) -> types::Error {
        use types::ErrorCategory as C;
        let category = match e.category {
            ErrorCategory::Authentication => C::Authentication,
            ErrorCategory::ResourceNotFound => C::ResourceNotFound,
            ErrorCategory::QuotaExceeded => C::QuotaExceeded,
            ErrorCategory::Validation => C::Validation,
            ErrorCategory::RateLimit => C::RateLimit,
            // The WIT has no internal category: a guest's own failure is the provider's.
            ErrorCategory::Provider | ErrorCategory::Internal => C::Provider,
            ErrorCategory::Timeout => C::Timeout,
            ErrorCategory::CapabilityDenied => C::CapabilityDenied,
            ErrorCategory::Unsupported => C::Unsupported,
        };
        types::Error {
            category,
            message: e.message,
        }
    }
}

impl From<types::Error> for Error {
    fn from(e: types::Error) -> Error {
        use types::ErrorCategory as C;
        let category = match e.category {
            C::Authentication => ErrorCategory::Authentication,
            C::ResourceNotFound => ErrorCategory::ResourceNotFound,
            C::QuotaExceeded => ErrorCategory::QuotaExceeded,
            C::Validation => ErrorCategory::Validation,
            C::RateLimit => ErrorCategory::RateLimit,
            C::Provider => ErrorCategory::Provider,
            C::Timeout => ErrorCategory::Timeout,
            C::CapabilityDenied => ErrorCategory::CapabilityDenied,
            C::Unsupported => ErrorCategory::Unsupported,
        };
        Error::new(category, e.message)
    }
}

// The host imports. On wasm32 they call into cpi; compiled natively (unit tests, clippy) there
// is no host behind them, so they fail with an `unsupported` error (and `log` prints to
// stderr) instead of reaching wit-bindgen's native stubs, which panic.

/// Where the native stand-ins say the real host is.
#[cfg(not(target_arch = "wasm32"))]
fn no_host(what: &str) -> Error {
    Error::unsupported(format!(
        "{what} is only available inside cpi (build the provider for wasm32-wasip2)"
    ))
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn run_command(cmd: &host::Command) -> crate::Result<host::CommandOutput> {
    host::run_command(cmd).map_err(Error::from)
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn run_command(cmd: &host::Command) -> crate::Result<host::CommandOutput> {
    Err(no_host(&format!("running '{}'", cmd.program)))
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn http_request(req: &host::Request) -> crate::Result<host::Response> {
    host::http_request(req).map_err(Error::from)
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn http_request(req: &host::Request) -> crate::Result<host::Response> {
    Err(no_host(&format!(
        "the HTTP request {} {}",
        req.method, req.url
    )))
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn log(level: crate::log::Level, message: &str) {
    use crate::log::Level;
    let level = match level {
        Level::Trace => host::LogLevel::Trace,
        Level::Debug => host::LogLevel::Debug,
        Level::Info => host::LogLevel::Info,
        Level::Warn => host::LogLevel::Warn,
        Level::Error => host::LogLevel::Error,
    };
    host::log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn log(level: crate::log::Level, message: &str) {
    eprintln!("[{level}] {message}");
}

pub(crate) use host::{
    Command as WitCommand, CommandOutput as WitCommandOutput, Request as WitRequest,
    Response as WitResponse,
};
