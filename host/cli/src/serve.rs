//! `cpi serve`: the standard's request shape over HTTP, safe to leave running.
//!
//! - `POST /v1/run` takes `{"provider": …, "action": …, "params": {…}}` (§11.2) and answers
//!   with the action's result, or the §10.2 error with an HTTP status for its category;
//! - `GET /v1/providers` lists the providers; `GET /healthz` answers without authentication;
//! - every other request needs `Authorization: Bearer TOKEN` (compared in constant time);
//! - bodies over the size limit are refused (413), at most `concurrency` actions run at once
//!   (the rest wait their turn), and shutdown lets in-flight actions finish.
//!
//! Parameters are data here exactly as on the command line: they are substituted as single
//! argv tokens, JSON-escaped or percent-encoded, never interpreted by a shell.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, Semaphore};

use cpi::config::Config;
use cpi::engine::Engine;
use cpi::error::{Error, ErrorKind, Result};
use cpi::params::{Inputs, Resolved};
use cpi::provider::{Action, Provider, Registry};

/// Limits and settings of a server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// How many actions run at once; further requests wait for a slot.
    pub concurrency: usize,
    /// How many connections are open at once; at the cap a new one closes the connection
    /// that has been waiting longest for a request (never one with a request in progress).
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, counted from when it
    /// opens or finished its last request (so it is the idle timeout too); the TLS handshake
    /// gets the same time.
    pub header_timeout: Duration,
    /// How long an authorized request may take to send its body.
    pub body_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body: 64 * 1024,
            concurrency: 16,
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything a request handler needs.
pub struct Server {
    registry: Registry,
    engine: Engine,
    config: Config,
    token: String,
    slots: Arc<Semaphore>,
    options: ServeOptions,
    /// Per provider and action (of the registry: a bounded set), what requests share.
    prepared: Mutex<HashMap<(String, String), Arc<Prepared>>>,
}

/// What every request to one action of one provider shares while the provider's configured
/// values stay the same: the parameter names the action accepts, and its defaults and
/// configured values resolved ([`cpi::params::prepare`]). The configuration is still read
/// per request (a `{ file = … }` value may change), and a change rebuilds this.
struct Prepared {
    config: Map<String, Value>,
    known: BTreeSet<String>,
    base: Arc<Resolved>,
}

impl Server {
    /// A server over loaded providers, answering requests that carry `token`.
    pub fn new(
        registry: Registry,
        engine: Engine,
        config: Config,
        token: String,
        options: ServeOptions,
    ) -> Server {
        Server {
            registry,
            engine,
            config,
            token,
            slots: Arc::new(Semaphore::new(options.concurrency.max(1))),
            options,
            prepared: Mutex::default(),
        }
    }

    /// The shared state of `action` of `provider` with the values `config` gives it: built
    /// by the first request, and again when the configured values change.
    fn prepared(
        &self,
        provider: &Provider,
        action: &Action,
        action_name: &str,
        config: Map<String, Value>,
    ) -> Arc<Prepared> {
        let key = (provider.name.clone(), action_name.to_string());
        let lock = || self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = lock().get(&key).filter(|p| p.config == config) {
            return hit.clone();
        }
        let inputs = Inputs {
            config,
            ..Inputs::default()
        };
        let prepared = Arc::new(Prepared {
            known: cpi::params::known_names(provider, action, &inputs),
            base: Arc::new(cpi::params::prepare(provider, action, &inputs.config)),
            config: inputs.config,
        });
        lock().insert(key, prepared.clone());
        prepared
    }

    /// The HTTP routes.
    pub fn router(self: Arc<Server>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/v1/providers", get(providers))
            .route("/v1/run", post(run))
            .fallback(|| async {
                failure(&Error::new(
                    ErrorKind::ResourceNotFound,
                    "no such endpoint (POST /v1/run, GET /v1/providers, GET /healthz)",
                ))
            })
            .with_state(self)
    }

    /// Serves on `listener` (over TLS when `tls` is given) until `shutdown` completes, then
    /// lets in-flight requests finish.
    pub async fn serve(
        self: Arc<Server>,
        listener: tokio::net::TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let options = self.options.clone();
        let router = self.router();
        let conns = Arc::new(Connections::new(options.max_connections.max(1)));
        let (closing, closed) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            while tasks.try_join_next().is_some() {}
            let Some(ticket) = conns.admit() else {
                // Every connection has a request in progress: refuse this one at once.
                drop(stream);
                continue;
            };
            let link = Link {
                router: router.clone(),
                ticket: Arc::new(ticket),
                header_timeout: options.header_timeout,
                closed: closed.clone(),
            };
            tasks.spawn(link.run(stream, tls.clone()));
        }
        let _ = closing.send(true);
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
        else {
            return false;
        };
        constant_time_eq(given.trim().as_bytes(), self.token.as_bytes())
    }
}

/// The open connections and which of them wait for a request (oldest first).
struct Connections {
    cap: usize,
    state: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    count: usize,
    next_id: u64,
    idle: IndexMap<u64, Arc<Notify>>,
}

impl Connections {
    fn new(cap: usize) -> Connections {
        Connections {
            cap,
            state: Mutex::default(),
        }
    }

    /// Admits a new connection; at the cap, the longest-idle one is told to close. `None`
    /// when every open connection has a request in progress.
    fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut open = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if open.count >= self.cap {
            let (_, oldest) = open.idle.shift_remove_index(0)?;
            oldest.notify_one();
        }
        open.count += 1;
        open.next_id += 1;
        let ticket = Ticket {
            id: open.next_id,
            evict: Arc::new(Notify::new()),
            conns: self.clone(),
        };
        open.idle.insert(ticket.id, ticket.evict.clone());
        Some(ticket)
    }
}

/// One admitted connection's place in [`Connections`].
struct Ticket {
    id: u64,
    evict: Arc<Notify>,
    conns: Arc<Connections>,
}

impl Ticket {
    fn set_idle(&self, idle: bool) {
        let mut open = self.conns.state.lock().unwrap_or_else(|e| e.into_inner());
        if idle {
            open.idle.insert(self.id, self.evict.clone());
        } else {
            open.idle.shift_remove(&self.id);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.conns.state.lock().unwrap_or_else(|e| e.into_inner());
        open.count -= 1;
        open.idle.shift_remove(&self.id);
    }
}

/// What one connection's task needs.
struct Link {
    router: Router,
    ticket: Arc<Ticket>,
    header_timeout: Duration,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl Link {
    /// Runs one connection: the TLS handshake (bounded by the header timeout), then HTTP/1.
    async fn run(self, stream: tokio::net::TcpStream, tls: Option<tokio_rustls::TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        match tls {
            None => self.http(stream).await,
            Some(acceptor) => {
                if let Ok(Ok(stream)) =
                    tokio::time::timeout(self.header_timeout, acceptor.accept(stream)).await
                {
                    self.http(stream).await;
                }
            }
        }
    }

    async fn http<S>(self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (router, ticket) = (self.router, self.ticket.clone());
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut router = router.clone();
                let ticket = ticket.clone();
                ticket.set_idle(false);
                async move {
                    let response =
                        tower_service::Service::call(&mut router, request.map(Body::new)).await;
                    ticket.set_idle(true);
                    response
                }
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        let mut closed = self.closed;
        let stop = async {
            tokio::select! {
                () = self.ticket.evict.notified() => {},
                _ = closed.wait_for(|c| *c) => {},
            }
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = stop => {},
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

/// JSON response body.
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0.to_string(),
        )
            .into_response()
    }
}

/// The HTTP status a §10.1 category is answered with.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Validation => StatusCode::BAD_REQUEST,
        ErrorKind::ResourceNotFound => StatusCode::NOT_FOUND,
        ErrorKind::CapabilityDenied => StatusCode::FORBIDDEN,
        ErrorKind::RateLimit => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        // The platform behind the provider failed: authentication there, its quota, its API.
        ErrorKind::Authentication | ErrorKind::QuotaExceeded | ErrorKind::Provider => {
            StatusCode::BAD_GATEWAY
        }
    }
}

/// Absolute paths in text, where they start a word: a server's file names (never a URL's
/// path, which follows its host).
static PATH: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"(^|[\s'"`(=\[])(~?/[^\s'"`),\]]*)"#).expect("valid regex")
});

/// `value` with every server file path replaced: errors answered to a client never say
/// where the server keeps its files.
fn scrub_paths(value: &mut Value) {
    match value {
        Value::String(s) if PATH.is_match(s) => {
            *s = PATH.replace_all(s, "${1}<server path>").into_owned();
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_paths),
        Value::Object(map) => map.values_mut().for_each(scrub_paths),
        _ => {}
    }
}

fn failure(err: &Error) -> Response {
    let mut body = err.to_json();
    scrub_paths(&mut body);
    let mut response = (http_status(err.kind()), Json(body)).into_response();
    if let Some(secs) = err.details().get("retry_after").and_then(Value::as_u64) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn unauthorized() -> Response {
    let err = Error::new(
        ErrorKind::Authentication,
        "this server needs `Authorization: Bearer TOKEN` (the token is in the file `cpi serve` printed at start-up)",
    );
    let mut response = failure(&err);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn providers(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if !server.authorized(&headers) {
        return unauthorized();
    }
    let list: Vec<Value> = server
        .registry
        .providers()
        .map(|p| json!({"name": p.name, "type": p.kind, "actions": p.actions.keys().collect::<Vec<_>>()}))
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn run(State(server): State<Arc<Server>>, request: Request) -> Response {
    // The token is checked from the headers alone: no body byte is read for a caller
    // without it, and the connection is closed rather than drained.
    if !server.authorized(request.headers()) {
        let mut response = unauthorized();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let body = match read_body(&server.options, request).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let started = Instant::now();
    let request = match RunRequest::parse(&body) {
        Ok(r) => r,
        Err(err) => return failure(&err),
    };
    let Ok(slot) = server.slots.clone().acquire_owned().await else {
        return failure(&Error::internal("the server is shutting down"));
    };
    // A started action runs to its end in a task of its own, holding its slot: a client that
    // hangs up does not abort a half-done create (nor free a slot while it still runs).
    let task = tokio::spawn(async move {
        let outcome = execute(&server, &request).await;
        tracing::info!(
            provider = %cpi::escape::line(&request.provider),
            action = %cpi::escape::line(&request.action),
            ok = outcome.is_ok(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        drop(slot);
        outcome
    });
    match task.await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(err)) => failure(&err),
        Err(err) => failure(&Error::internal(format!(
            "the request's task failed: {err}"
        ))),
    }
}

/// Reads an authorized request's body: at most `max_body` bytes (413 beyond), within
/// `body_timeout` (408 after).
async fn read_body(
    options: &ServeOptions,
    request: Request,
) -> std::result::Result<Bytes, Box<Response>> {
    let refuse = |status: StatusCode, why: String| {
        let mut response = failure(&Error::validation(format!("request body refused: {why}")));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        Box::new(response)
    };
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("larger than {} bytes", options.max_body),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > options.max_body as u64) {
        return Err(too_large());
    }
    let read = axum::body::to_bytes(request.into_body(), options.max_body);
    match tokio::time::timeout(options.body_timeout, read).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(err)) => {
            let inner = err.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(too_large())
            } else {
                Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read".into(),
                ))
            }
        }
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!("not sent within {:?}", options.body_timeout),
        )),
    }
}

async fn execute(server: &Server, request: &RunRequest) -> Result<Value> {
    let provider = server.registry.get(&request.provider)?;
    let config = server.config.values_for(provider)?;
    let mut inputs = Inputs::default();
    if provider.component.is_none() {
        let action = provider.action(&request.action)?;
        let prepared = server.prepared(provider, action, &request.action, config);
        cpi::params::check_unknown(&request.params, &prepared.known)?;
        inputs.config = prepared.config.clone();
        inputs.prepared = Some(prepared.base.clone());
    } else {
        inputs.config = config;
    }
    cpi::exposed::check(
        &request.params,
        provider,
        &inputs.config,
        server.config.serve_allow(&provider.name),
        cpi::exposed::Caller::Request,
    )?;
    inputs.cli = request.params.clone();
    server.engine.run(provider, &request.action, &inputs).await
}

/// A `POST /v1/run` body.
#[derive(Debug)]
struct RunRequest {
    provider: String,
    action: String,
    params: IndexMap<String, String>,
}

impl RunRequest {
    fn parse(body: &[u8]) -> Result<RunRequest> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Error::validation(format!("the request body is not JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::validation(
                "the request body must be an object: {\"provider\", \"action\", \"params\"}",
            ));
        };
        if let Some(key) = map
            .keys()
            .find(|k| !["provider", "action", "params"].contains(&k.as_str()))
        {
            return Err(Error::validation(format!(
                "unknown field '{key}' in the request (expected provider, action, params)"
            )));
        }
        let text = |key: &str| match map.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(Error::validation(format!(
                "the request needs \"{key}\" (a non-empty string)"
            ))),
        };
        let mut params = IndexMap::new();
        match map.get("params") {
            None | Some(Value::Null) => {}
            Some(Value::Object(values)) => {
                for (name, value) in values {
                    match value {
                        Value::Object(_) | Value::Array(_) => {
                            return Err(Error::validation(format!(
                                "parameter '{name}' must be a string, number or boolean"
                            ))
                            .with_detail("parameter", name.as_str()));
                        }
                        other => {
                            params.insert(name.clone(), cpi::params::value_to_param(other));
                        }
                    }
                }
            }
            Some(_) => {
                return Err(Error::validation("\"params\" must be an object"));
            }
        }
        Ok(RunRequest {
            provider: text("provider")?,
            action: text("action")?,
            params,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The default token file: `$XDG_CONFIG_HOME/cpi/serve.token`.
pub fn default_token_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("cpi").join("serve.token"))
}

/// Reads the token from `path`, creating it (random, mode 0600) on first start. A token file
/// that group or others can read is refused.
pub fn load_or_create_token(path: &Path) -> Result<String> {
    // Stored trust: the user's own regular file, not a symlink, not writable by others.
    let read = cpi::fsread::read_private(path, cpi::fsread::Kind::Secret)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    match read {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0);
                if mode & 0o077 != 0 {
                    return Err(Error::validation(format!(
                        "token file {} can be read or written by group or others (mode {mode:04o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    )));
                }
            }
            let token = text.trim().to_string();
            if token.len() < 32 {
                return Err(Error::validation(format!(
                    "token file {} holds a token shorter than 32 characters; delete it and a new one is generated",
                    path.display()
                )));
            }
            Ok(token)
        }
        Err(e) if e.is_missing() => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| Error::internal(format!("no randomness for the token: {e}")))?;
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::validation(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(|e| {
                Error::validation(format!("cannot create token file {}: {e}", path.display()))
            })?;
            use std::io::Write;
            writeln!(file, "{token}").map_err(|e| {
                Error::validation(format!("cannot write token file {}: {e}", path.display()))
            })?;
            Ok(token)
        }
        Err(e) => Err(Error::validation(format!("token file: {e}"))),
    }
}

/// A TLS acceptor for `--tls-cert` (a PEM certificate chain) and `--tls-key` (its PEM
/// private key), with rustls's safe defaults (TLS 1.2 and 1.3, HTTP/1.1 only).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &Path, why: String| {
        Error::validation(format!("{what} {}: {why}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|items| items.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad("--tls-cert", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("--tls-cert", cert, "holds no PEM certificate".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--tls-key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::validation(format!("--tls-cert/--tls-key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Refuses a non-loopback address unless explicitly allowed.
pub fn check_bind(addr: SocketAddr, allow_remote: bool) -> Result<()> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "refusing to listen on {addr}: cpi serve runs provider actions with your credentials, so it listens on loopback only; pass --allow-remote to listen on {} (behind TLS termination you control)",
            addr.ip()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_field_by_field() {
        let r = RunRequest::parse(
            br#"{"provider": "p", "action": "list_workers", "params": {"n": 2, "b": true}}"#,
        )
        .unwrap();
        assert_eq!(r.params["n"], "2");
        assert_eq!(r.params["b"], "true");
        let bad = |body: &str| {
            RunRequest::parse(body.as_bytes())
                .unwrap_err()
                .message()
                .to_string()
        };
        assert!(bad("[]").contains("must be an object"));
        assert!(bad(r#"{"action": "x"}"#).contains("\"provider\""));
        assert!(bad(r#"{"provider": "p", "action": "x", "extra": 1}"#).contains("'extra'"));
        assert!(bad(r#"{"provider": "p", "action": "x", "params": {"a": [1]}}"#).contains("'a'"));
        assert!(bad("{").contains("not JSON"));
    }

    #[test]
    fn errors_lose_server_paths_but_keep_urls() {
        let mut v = json!({"message": "config file /home/u/.config/cpi/cpi.toml: bad; \
            cannot read '/etc/x' (GET http://127.0.0.1:9/api/v2.0/x)", "details": {"file": "/a/b"}});
        scrub_paths(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("/home/u") && !text.contains("/etc/x"),
            "{text}"
        );
        assert!(!text.contains("/a/b"), "{text}");
        assert!(text.contains("http://127.0.0.1:9/api/v2.0/x"), "{text}");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let server = Server::new(
            Registry::default(),
            Engine::new().unwrap(),
            Config::default(),
            "t".repeat(32),
            ServeOptions::default(),
        );
        let with = |auth: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
            server.authorized(&h)
        };
        assert!(with(&format!("Bearer {}", "t".repeat(32))));
        assert!(with(&format!("bearer {}", "t".repeat(32))));
        assert!(with(&format!("BEARER  {}", "t".repeat(32))));
        assert!(!with(&format!("Basic {}", "t".repeat(32))));
        assert!(!with("Bearer nope"));
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let conns = Arc::new(Connections::new(2));
        let a = conns.admit().unwrap();
        let b = conns.admit().unwrap();
        b.set_idle(false);
        // a is idle: it is told to close, and the newcomer is admitted.
        let c = conns.admit().unwrap();
        assert!(
            futures_util::FutureExt::now_or_never(a.evict.notified()).is_some(),
            "a was evicted"
        );
        c.set_idle(false);
        drop(a);
        // b and c both have requests in progress: no room.
        assert!(conns.admit().is_none());
        drop(b);
        assert!(conns.admit().is_some());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[cfg(unix)]
    #[test]
    fn the_token_file_is_created_private_and_refused_when_shared() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/serve.token");
        let token = load_or_create_token(&path).unwrap();
        assert_eq!(token.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_token(&path).unwrap(), token, "stable");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_token(&path).unwrap_err();
        assert!(err.message().contains("chmod 600"), "{err}");
    }

    #[test]
    fn only_loopback_without_the_explicit_flag() {
        assert!(check_bind("127.0.0.1:1".parse().unwrap(), false).is_ok());
        assert!(check_bind("[::1]:1".parse().unwrap(), false).is_ok());
        let err = check_bind("0.0.0.0:1".parse().unwrap(), false).unwrap_err();
        assert!(err.message().contains("--allow-remote"));
        assert!(check_bind("0.0.0.0:1".parse().unwrap(), true).is_ok());
    }
}
