//! The store state of one call and the host imports a component may use. `run-command` and
//! `http-request` go through the same [`Gate`] as every JSON provider's targets, which checks
//! the grants (and each redirect hop), scrubs the environment and classifies failures.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::cpi::provider::{host, types};
use super::guest_log::{self, GuestLog, Level};
use super::http::GateHooks;
use super::wait::CallDeadline;
use cpi::error::{Error, ErrorKind};
use cpi::exec::gate::{self, Gate, Scope};
use cpi::exec::http::{Request, Tls};
use cpi::secret::Redactor;

/// Fuel charged for each `log` call, so a guest that loops on the host still runs out of
/// its CPU budget (about a millisecond of guest code).
pub const LOG_CALL_FUEL: u64 = 1_000_000;
/// Fuel charged for each `run-command`, `http-request` or wasi:http request (about 0.1 s of
/// guest code): 200 calls per hook call at the default budget.
pub const EFFECT_CALL_FUEL: u64 = 100_000_000;

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
    /// Wall-clock limit of one hook call (`--wasm-timeout`).
    pub call_time: Duration,
    /// Wall-clock limit of all of one run's hook calls together (`--wasm-run-timeout`).
    pub run_time: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            fuel: 20_000_000_000,
            memory_bytes: 512 << 20,
            log_bytes: 64 << 10,
            max_result_bytes: 16 << 20,
            call_time: Duration::from_secs(30),
            run_time: Duration::from_secs(120),
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
    /// When the run began: its hook calls together get `SandboxLimits::run_time`.
    pub started: Instant,
    /// Everything the guest puts on cpi's log this run: redacted, escaped and capped.
    pub(super) log: Arc<GuestLog>,
}

impl CallContext {
    /// A context running through `gate` under `scope` (whose grants must be set: a component
    /// gets nothing it was not granted).
    pub fn new(gate: Gate, mut scope: Scope) -> cpi::Result<CallContext> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::internal("component calls need a tokio runtime"))?;
        scope.grants.get_or_insert_with(Default::default);
        Ok(CallContext {
            name: scope.provider.clone(),
            gate,
            scope,
            handle,
            started: Instant::now(),
            log: Arc::default(),
        })
    }

    /// The same context, redacting these secret values from everything the guest logs or
    /// prints and from the denials it causes.
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = String>) -> CallContext {
        self.log = Arc::new(GuestLog::new(Redactor::new(secrets)));
        self
    }
}

/// The store data of one call.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    ctx: Arc<CallContext>,
    log: LogSink,
    /// wasi:http's context and the hooks that send its requests through the gate.
    http: WasiHttpCtx,
    hooks: GateHooks,
    /// The first capability denial of the call, reported even if the guest swallows it
    /// (shared with the wasi:http hooks).
    denied: Arc<Mutex<Option<Error>>>,
    /// The last host call's failure: when the guest returns it unchanged, the host's own
    /// error (with its details and transient flag) is what the run reports.
    pub(super) failed: Option<Error>,
    /// Fuel charged for host calls so far; with the fuel the guest's code used, it must
    /// stay within the budget (checked here and at every epoch tick, see `Component::call`).
    host_fuel: Arc<AtomicU64>,
    fuel_budget: u64,
    /// When the call must end: every wait in a host call ends by then (see `wait`).
    deadline: CallDeadline,
}

impl State {
    /// Fresh state: an empty WASI context (stdin closed, no env, args, preopens or sockets),
    /// guest stdout/stderr captured into the size-capped log; the call ends by `deadline`.
    pub(super) fn new(
        ctx: Arc<CallContext>,
        limits: &super::SandboxLimits,
        deadline: CallDeadline,
    ) -> State {
        let log = LogSink::new(limits.log_bytes);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(log.clone())
            .stderr(log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let denied = Arc::default();
        let host_fuel = Arc::default();
        let hooks = GateHooks {
            ctx: ctx.clone(),
            denied: Arc::clone(&denied),
            host_fuel: Arc::clone(&host_fuel),
            fuel_budget: limits.fuel,
            deadline,
        };
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
            http: WasiHttpCtx::new(),
            hooks,
            denied,
            failed: None,
            host_fuel,
            fuel_budget: limits.fuel,
            deadline,
        }
    }

    /// The resource table a WASI wait works on, and the deadline it must end by.
    pub(super) fn waiting(&mut self) -> (&mut ResourceTable, CallDeadline) {
        (&mut self.table, self.deadline)
    }

    /// The call's first capability denial, if any.
    pub(super) fn denied(&self) -> Option<Error> {
        self.denied.lock().expect("denial lock").clone()
    }

    /// Fuel charged for host calls so far.
    pub(super) fn host_fuel(&self) -> u64 {
        self.host_fuel.load(Ordering::Relaxed)
    }

    /// Everything the guest printed during the call, cut at the per-call cap.
    pub fn take_log(&self) -> String {
        self.log.take()
    }

    /// Charges a host call against the CPU budget: a guest whose host calls alone use it
    /// up is stopped here, one whose code and host calls together do at the next tick.
    fn charge(&mut self, fuel: u64) -> wasmtime::Result<()> {
        let used = self
            .host_fuel
            .fetch_add(fuel, Ordering::Relaxed)
            .saturating_add(fuel);
        if used >= self.fuel_budget {
            return Err(wasmtime::Trap::OutOfFuel.into());
        }
        Ok(())
    }

    /// A host call's failure as the guest sees it; a capability denial is remembered, to be
    /// reported even if the guest swallows it.
    fn fail(&mut self, err: Error) -> types::Error {
        if err.kind() == ErrorKind::CapabilityDenied {
            record_denial(&self.ctx, &self.denied, &err);
        }
        let wit = to_wit(&err);
        self.failed = Some(err);
        wit
    }
}

/// Warns about a denial (within the run's caps) and keeps the call's first one in `denied`,
/// cut and redacted, to report whatever the guest makes of it.
pub(super) fn record_denial(ctx: &CallContext, denied: &Mutex<Option<Error>>, err: &Error) {
    ctx.log.denial(&ctx.name, err.message());
    let mut first = denied.lock().expect("denial lock");
    if first.is_none() {
        let log = &ctx.log;
        *first = Some(
            err.clone()
                .map_text(|t| log.redact_cut(t, guest_log::MESSAGE_BYTES / 2)),
        );
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

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl types::Host for State {}

impl host::Host for State {
    fn run_command(
        &mut self,
        cmd: host::Command,
    ) -> wasmtime::Result<Result<host::CommandOutput, types::Error>> {
        self.charge(EFFECT_CALL_FUEL)?;
        self.deadline.check()?;
        let mut argv = Vec::with_capacity(cmd.args.len() + 1);
        argv.push(cmd.program);
        argv.extend(cmd.args);
        // No longer than the guest asked, nor than the call has left (the gate's own limit
        // still applies): a command that hangs is killed at the call's deadline.
        let left = self.deadline.left();
        let asked = cmd
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)));
        let call = gate::Command {
            argv: &argv,
            stdin: cmd.stdin.as_deref(),
            timeout: Some(asked.map_or(left, |asked| asked.min(left))),
        };
        let ctx = self.ctx.clone();
        let result = ctx.handle.block_on(ctx.gate.command_raw(&ctx.scope, &call));
        // Killed at the deadline: the call's own timeout, not the command's, is the error.
        self.deadline.check()?;
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
        self.charge(EFFECT_CALL_FUEL)?;
        let tls = Tls::default();
        let call = Request {
            method: &req.method,
            url: &req.url,
            headers: &req.headers,
            body: req.body.as_deref(),
            tls: &tls,
        };
        let ctx = self.ctx.clone();
        let at = tokio::time::Instant::from_std(self.deadline.at);
        // Dropped at the call's deadline (the request with it), which then ends the call; the
        // timer is made inside the runtime (the calling thread may have none).
        let fetch = ctx.gate.fetch(&ctx.scope, &call);
        let result = ctx
            .handle
            .block_on(async move { tokio::time::timeout_at(at, fetch).await })
            .map_err(|_| self.deadline.expired())?;
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
        self.charge(LOG_CALL_FUEL)?;
        let level = match level {
            host::LogLevel::Trace => Level::Trace,
            host::LogLevel::Debug => Level::Debug,
            host::LogLevel::Info => Level::Info,
            host::LogLevel::Warn => Level::Warn,
            host::LogLevel::Error => Level::Error,
        };
        self.ctx
            .log
            .message(&self.ctx.name, level, &message, guest_log::MESSAGE_BYTES);
        Ok(())
    }

    fn classify_error(
        &mut self,
        message: String,
        http_status: Option<u16>,
        body: Option<String>,
    ) -> wasmtime::Result<types::ErrorCategory> {
        self.charge(LOG_CALL_FUEL)?;
        Ok(to_wit(&Error::new(
            classify(&message, http_status, body.as_deref()),
            "",
        ))
        .category)
    }
}

/// Text a guest asks to classify is read up to this many bytes (message and body each): the
/// rules look at what a failure says first, and a huge body costs no more than this.
const CLASSIFIED_BYTES: usize = 64 << 10;

/// The standard category of a guest's failure, by the contract's rules (the ones the host
/// applies to JSON providers' commands and requests): an HTTP answer's by its status,
/// corrected by what the message and body say; otherwise by the text.
fn classify(message: &str, http_status: Option<u16>, body: Option<&str>) -> ErrorKind {
    let cut = |text: &str| cpi_contract::excerpt(text, CLASSIFIED_BYTES);
    let said = match body {
        Some(body) => format!("{}\n{}", cut(message), cut(body)),
        None => cut(message),
    };
    match http_status {
        Some(status) => cpi_contract::classify_http(status, &said),
        None => cpi_contract::classify_text(&said),
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
    let message = cpi_contract::excerpt(&err.message, 4096);
    Error::new(kind, cpi::escape::text(&message))
}

/// Guest stdout/stderr: kept up to a byte budget per call, the rest counted and dropped.
#[derive(Clone)]
struct LogSink {
    buf: Arc<Mutex<(Vec<u8>, usize)>>,
    cap: usize,
}

impl LogSink {
    fn new(cap: usize) -> LogSink {
        LogSink {
            buf: Arc::new(Mutex::new((Vec::new(), 0))),
            cap,
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().expect("log lock");
        let (kept, dropped) = &mut *buf;
        let room = self.cap.saturating_sub(kept.len());
        let take = bytes.len().min(room);
        kept.extend_from_slice(&bytes[..take]);
        *dropped += bytes.len() - take;
    }

    /// The text kept, raw (the guest log escapes and redacts it when it shows it), with the
    /// cut marked where bytes were dropped.
    fn take(&self) -> String {
        let (kept, dropped) = std::mem::take(&mut *self.buf.lock().expect("log lock"));
        let mut text = String::from_utf8_lossy(&kept).into_owned();
        if dropped > 0 {
            text.push_str(&format!("… ({dropped} more bytes not kept)"));
        }
        text
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `classify-error` answers as the host classifies its own commands and requests.
    #[test]
    fn guests_get_the_hosts_classification() {
        let quota = r#"{"error": {"code": "resource_limit_exceeded", "message": "limit"}}"#;
        assert_eq!(
            classify("GET /servers", Some(403), Some(quota)),
            ErrorKind::QuotaExceeded
        );
        assert_eq!(classify("", Some(401), None), ErrorKind::Authentication);
        assert_eq!(classify("", Some(503), None), ErrorKind::Provider);
        assert_eq!(
            classify("Error: worker 'x' not found", None, None),
            ErrorKind::ResourceNotFound
        );
        assert_eq!(
            classify("exit 1", None, Some("Rate exceeded")),
            ErrorKind::RateLimit
        );
        // Only the start of a huge text is read.
        let long = format!("{}not found", "x".repeat(CLASSIFIED_BYTES));
        assert_eq!(classify(&long, None, None), ErrorKind::Provider);
    }
}
