//! The store state of one call and the host imports a component may use. `run-command` and
//! `http-request` go through the same [`Gate`] as every JSON provider's targets, which checks
//! the grants (and each redirect hop), scrubs the environment and classifies failures.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::cpi::provider::{host, types};
use crate::error::{Error, ErrorKind};
use crate::exec::gate::{self, Gate, Scope};
use crate::exec::http::{Request, Tls};

/// Resource limits for component calls, with sane defaults.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// CPU budget per call, in wasmtime fuel units (about one per instruction).
    pub fuel: u64,
    /// Linear-memory cap per instance, in bytes.
    pub memory_bytes: usize,
    /// Bytes of guest log/stdout/stderr kept per call; the rest is dropped.
    pub log_bytes: usize,
    /// Largest result (JSON text) a hook may return.
    pub max_result_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            fuel: 20_000_000_000,
            memory_bytes: 512 << 20,
            log_bytes: 64 << 10,
            max_result_bytes: 16 << 20,
        }
    }
}

/// What a call may do: the gate every command and request goes through, and the scope
/// (grants, granted environment) it checks them against.
#[derive(Clone)]
pub struct CallContext {
    /// Provider name, for logs and errors.
    pub name: String,
    /// The one executor of commands and requests.
    pub gate: Gate,
    /// What the user granted (never more than the manifest requested).
    pub scope: Scope,
    /// The runtime the host imports block on.
    pub handle: tokio::runtime::Handle,
}

impl CallContext {
    /// A context running through `gate` under `scope` (whose grants must be set: a component
    /// gets nothing it was not granted).
    pub fn new(gate: Gate, mut scope: Scope) -> crate::Result<CallContext> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::internal("component calls need a tokio runtime"))?;
        scope.grants.get_or_insert_with(Default::default);
        Ok(CallContext {
            name: scope.provider.clone(),
            gate,
            scope,
            handle,
        })
    }
}

/// The store data of one call.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    ctx: Arc<CallContext>,
    log: LogSink,
    /// The first capability denial of the call, reported even if the guest swallows it.
    pub(super) denied: Option<Error>,
    /// The last host call's failure: when the guest returns it unchanged, the host's own
    /// error (with its details and transient flag) is what the run reports.
    pub(super) failed: Option<Error>,
}

impl State {
    /// Fresh state: an empty WASI context (stdin closed, no env, args, preopens or sockets),
    /// guest stdout/stderr captured into the size-capped log.
    pub fn new(ctx: Arc<CallContext>, limits: &super::SandboxLimits) -> State {
        let log = LogSink::new(limits.log_bytes);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(log.clone())
            .stderr(log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        State {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(16)
                .tables(64)
                .memories(16)
                .trap_on_grow_failure(true)
                .build(),
            ctx,
            log,
            denied: None,
            failed: None,
        }
    }

    /// Everything the guest logged or printed during the call (escapes stripped).
    pub fn take_log(&self) -> String {
        self.log.take()
    }

    /// A host call's failure as the guest sees it; a capability denial is remembered, to be
    /// reported even if the guest swallows it.
    fn fail(&mut self, err: Error) -> types::Error {
        if err.kind() == ErrorKind::CapabilityDenied {
            tracing::warn!(provider = %self.ctx.name, "capability denied: {}", err.message());
            if self.denied.is_none() {
                self.denied = Some(err.clone());
            }
        }
        let wit = to_wit(&err);
        self.failed = Some(err);
        wit
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for State {}

impl host::Host for State {
    fn run_command(
        &mut self,
        cmd: host::Command,
    ) -> wasmtime::Result<Result<host::CommandOutput, types::Error>> {
        let mut argv = Vec::with_capacity(cmd.args.len() + 1);
        argv.push(cmd.program);
        argv.extend(cmd.args);
        let call = gate::Command {
            argv: &argv,
            stdin: cmd.stdin.as_deref(),
            timeout: cmd
                .timeout_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
        };
        let ctx = self.ctx.clone();
        let result = ctx.handle.block_on(ctx.gate.command_raw(&ctx.scope, &call));
        Ok(match result {
            Ok(out) => Ok(host::CommandOutput {
                exit_code: out.exit_code,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: out.stderr,
            }),
            Err(err) => Err(self.fail(err)),
        })
    }

    fn http_request(
        &mut self,
        req: host::Request,
    ) -> wasmtime::Result<Result<host::Response, types::Error>> {
        let tls = Tls::default();
        let call = Request {
            method: &req.method,
            url: &req.url,
            headers: &req.headers,
            body: req.body.as_deref(),
            tls: &tls,
        };
        let ctx = self.ctx.clone();
        let result = ctx.handle.block_on(ctx.gate.fetch(&ctx.scope, &call));
        Ok(match result {
            Ok(response) => Ok(host::Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(err) => Err(self.fail(err)),
        })
    }

    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        self.log.write(message.as_bytes());
        self.log.write(b"\n");
        let clean = strip_controls(&message);
        let name = &self.ctx.name;
        match level {
            host::LogLevel::Trace => tracing::trace!(provider = %name, "{clean}"),
            host::LogLevel::Debug => tracing::debug!(provider = %name, "{clean}"),
            host::LogLevel::Info => tracing::info!(provider = %name, "{clean}"),
            host::LogLevel::Warn => tracing::warn!(provider = %name, "{clean}"),
            host::LogLevel::Error => tracing::error!(provider = %name, "{clean}"),
        }
        Ok(())
    }
}

/// Converts a host error to the WIT error record.
pub fn to_wit(err: &Error) -> types::Error {
    use types::ErrorCategory as C;
    let category = match err.kind() {
        ErrorKind::Authentication => C::Authentication,
        ErrorKind::ResourceNotFound => C::ResourceNotFound,
        ErrorKind::QuotaExceeded => C::QuotaExceeded,
        ErrorKind::Validation => C::Validation,
        ErrorKind::RateLimit => C::RateLimit,
        ErrorKind::Timeout => C::Timeout,
        ErrorKind::CapabilityDenied => C::CapabilityDenied,
        ErrorKind::Unsupported => C::Unsupported,
        ErrorKind::Provider | ErrorKind::Internal => C::Provider,
    };
    types::Error {
        category,
        message: err.message().to_string(),
    }
}

/// The host error a guest's error stands for: `host` (the last host call's failure) when the
/// guest passed it on unchanged, otherwise the guest's own.
pub fn from_guest(err: types::Error, host: Option<Error>) -> Error {
    match host {
        Some(host) if same(&to_wit(&host), &err) => host,
        _ => from_wit(err),
    }
}

fn same(a: &types::Error, b: &types::Error) -> bool {
    a.message == b.message
        && std::mem::discriminant(&a.category) == std::mem::discriminant(&b.category)
}

/// Converts a WIT error record from a guest to a host error.
pub fn from_wit(err: types::Error) -> Error {
    use types::ErrorCategory as C;
    let kind = match err.category {
        C::Authentication => ErrorKind::Authentication,
        C::ResourceNotFound => ErrorKind::ResourceNotFound,
        C::QuotaExceeded => ErrorKind::QuotaExceeded,
        C::Validation => ErrorKind::Validation,
        C::RateLimit => ErrorKind::RateLimit,
        C::Provider => ErrorKind::Provider,
        C::Timeout => ErrorKind::Timeout,
        C::CapabilityDenied => ErrorKind::CapabilityDenied,
        C::Unsupported => ErrorKind::Unsupported,
    };
    let message: String = strip_controls(&err.message).chars().take(4096).collect();
    Error::new(kind, message)
}

/// Removes terminal escapes and other control characters (keeps newlines and tabs).
pub fn strip_controls(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Guest stdout/stderr and `log` output: kept up to a byte budget, the rest dropped.
#[derive(Clone)]
struct LogSink {
    buf: Arc<Mutex<Vec<u8>>>,
    cap: usize,
}

impl LogSink {
    fn new(cap: usize) -> LogSink {
        LogSink {
            buf: Arc::new(Mutex::new(Vec::new())),
            cap,
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().expect("log lock");
        let room = self.cap.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn take(&self) -> String {
        let buf = std::mem::take(&mut *self.buf.lock().expect("log lock"));
        strip_controls(&String::from_utf8_lossy(&buf))
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
