//! The store state of one call and the host imports a component may use. Every import checks
//! the grants first, then delegates to the same executors JSON providers use.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::cpi::provider::{host, types};
use crate::error::{Error, ErrorKind};
use crate::exec::{Limits, command};
use crate::policy::Capabilities;

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

/// What a call may do: the grants and the executors behind the imports.
#[derive(Clone)]
pub struct CallContext {
    /// Provider name, for logs and errors.
    pub name: String,
    /// What the user granted (never more than the manifest requested).
    pub grants: Capabilities,
    /// Timeouts and output caps for commands and requests.
    pub exec: Limits,
    /// Environment variables passed to granted commands (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// The runtime the host imports block on.
    pub handle: tokio::runtime::Handle,
    /// HTTP client whose redirect policy checks each hop against the grants; built on first
    /// use, since most calls make no request (building one loads the TLS roots).
    http: OnceLock<reqwest::Client>,
}

impl CallContext {
    /// A context for `name` with `grants`.
    pub fn new(
        name: &str,
        grants: Capabilities,
        exec: Limits,
        env: Vec<(String, String)>,
    ) -> crate::Result<CallContext> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::internal("component calls need a tokio runtime"))?;
        Ok(CallContext {
            name: name.to_string(),
            grants,
            exec,
            env,
            handle,
            http: OnceLock::new(),
        })
    }

    /// The HTTP client for this context's grants: redirects are followed only to granted
    /// destinations, each hop checked.
    pub fn http(&self) -> crate::Result<&reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        // Redirects are followed by `exec::http::follow`, which checks each hop's grant,
        // scheme and headers.
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(self.exec.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(self.http.get_or_init(|| client))
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
        }
    }

    /// Everything the guest logged or printed during the call (escapes stripped).
    pub fn take_log(&self) -> String {
        self.log.take()
    }

    fn deny(&mut self, err: Error) -> types::Error {
        tracing::warn!(provider = %self.ctx.name, "capability denied: {}", err.message());
        if self.denied.is_none() {
            self.denied = Some(err.clone());
        }
        to_wit(&err)
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
        if let Err(err) = self.ctx.grants.check_command(&cmd.program, &cmd.args) {
            return Ok(Err(self.deny(err)));
        }
        let mut limits = self.ctx.exec.clone();
        if let Some(ms) = cmd.timeout_ms {
            limits.timeout = limits.timeout.min(Duration::from_millis(u64::from(ms)));
        }
        let mut argv = Vec::with_capacity(cmd.args.len() + 1);
        argv.push(cmd.program);
        argv.extend(cmd.args);
        let spec = command::Spec {
            argv: &argv,
            env: &self.ctx.env,
            inherit_env: false,
            stdin: cmd.stdin.as_deref(),
        };
        let ctx = self.ctx.clone();
        let result = ctx.handle.block_on(command::run_raw(&spec, &limits));
        drop(ctx);
        Ok(match result {
            Ok(out) => Ok(host::CommandOutput {
                exit_code: out.exit_code,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: out.stderr,
            }),
            Err(err) => Err(to_wit(&err)),
        })
    }

    fn http_request(
        &mut self,
        req: host::Request,
    ) -> wasmtime::Result<Result<host::Response, types::Error>> {
        let url = match url::Url::parse(&req.url) {
            Ok(url) => url,
            Err(e) => {
                return Ok(Err(to_wit(&Error::validation(format!(
                    "invalid URL {:?}: {e}",
                    req.url
                )))));
            }
        };
        if let Err(err) = self.ctx.grants.check_url(&url) {
            return Ok(Err(self.deny(err)));
        }
        let ctx = self.ctx.clone();
        let result = ctx.handle.block_on(send(&ctx, req, url));
        Ok(match result {
            Ok(response) => Ok(response),
            Err(err) => {
                if err.kind() == ErrorKind::CapabilityDenied && self.denied.is_none() {
                    self.denied = Some(err.clone());
                }
                Err(to_wit(&err))
            }
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

async fn send(
    ctx: &CallContext,
    req: host::Request,
    url: url::Url,
) -> crate::Result<host::Response> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| Error::validation(format!("invalid HTTP method {:?}", req.method)))?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &req.headers {
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes());
        let text = reqwest::header::HeaderValue::from_str(value);
        let (Ok(header), Ok(text)) = (header, text) else {
            return Err(Error::validation(format!("invalid HTTP header {name:?}")));
        };
        headers.append(header, text);
    }
    let hop = crate::exec::http::Hop {
        method,
        url: url.clone(),
        headers,
        body: req.body,
    };
    let grants = &ctx.grants;
    let allowed = |to: &url::Url| {
        grants.check_url(to).map(|_| ()).map_err(|_| {
            Error::new(
                ErrorKind::CapabilityDenied,
                format!("{url}: a redirect went to {to}, a destination that was not granted"),
            )
        })
    };
    let mut response = crate::exec::http::follow(ctx.http()?, hop, ctx.exec.timeout, &allowed)
        .await
        .map_err(|e| match e {
            crate::exec::http::Followed::Refused(err) => err,
            crate::exec::http::Followed::Transport(e) if e.is_timeout() => Error::new(
                ErrorKind::Timeout,
                format!("{url} did not answer within {:?}", ctx.exec.timeout),
            ),
            crate::exec::http::Followed::Transport(e) => Error::provider(format!("{url}: {e}")),
        })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::provider(format!("{url}: {e}")))?
    {
        if body.len() + chunk.len() > ctx.exec.max_output {
            return Err(Error::provider(format!(
                "response from {url} is larger than {} bytes",
                ctx.exec.max_output
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(host::Response {
        status,
        headers,
        body,
    })
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
