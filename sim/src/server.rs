//! The HTTP server: configuration, lifecycle and request handling.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::SimError;
use crate::conn::{self, ConnHandle, FaultListener};
use crate::state::{self, PState, Phase, Pool, Worker};
use crate::util::{now_ms, percent_decode, random_hex};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;
/// How many request lines `/_sim/requests` keeps.
const LOG_LEN: usize = 50;
/// How much of each request body the log keeps.
const LOG_BODY_MAX: usize = 64 * 1024;
/// TrueNAS's default base path; every route is also served under it.
const API_PREFIX: &str = "/api/v2.0";
/// Defaults for optional worker fields (the §4.1 CloudCo default settings).
const DEFAULT_TYPE: &str = "standard-2";
const DEFAULT_IMAGE: &str = "ubuntu-20-04";
const DEFAULT_REGION: &str = "us-central";
const DEFAULT_NETWORK: &str = "default";
/// Upper bounds for fault settings, so a typo cannot hang a test suite forever.
const MAX_LATENCY_MS: u64 = 600_000;
const MAX_RETRY_AFTER_SECS: u64 = 86_400;

/// How to start a [`Sim`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// JSON file holding the persisted state (created if missing, refused if corrupt).
    pub state_path: PathBuf,
    /// Listening address; must be loopback (default `127.0.0.1:0`, an ephemeral port).
    pub addr: SocketAddr,
    /// Admin bearer token; `None` reuses the one in the state file or generates one.
    pub token: Option<String>,
    /// Username accepted by `POST /auth/token` (default `admin`).
    pub username: String,
    /// Password accepted by `POST /auth/token`; `None` reuses the stored one or generates one.
    pub password: Option<String>,
    /// How long transitional worker states last (default 2 s).
    pub transition: Duration,
    /// Worker quota (default 20).
    pub max_workers: usize,
}

impl SimConfig {
    /// A configuration with defaults and the given state file.
    pub fn new(state_path: impl Into<PathBuf>) -> Self {
        SimConfig {
            state_path: state_path.into(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: None,
            username: "admin".to_owned(),
            password: None,
            transition: Duration::from_secs(2),
            max_workers: 20,
        }
    }
}

/// A running simulator server; dropping it also asks the server to stop.
pub struct Sim {
    url: String,
    addr: SocketAddr,
    token: String,
    username: String,
    password: String,
    state_path: PathBuf,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("url", &self.url)
            .field("state_path", &self.state_path)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Loads (or creates) the state, binds the listener and spawns the server task.
    pub async fn start(cfg: SimConfig) -> Result<Sim, SimError> {
        if !cfg.addr.ip().is_loopback() {
            return Err(SimError::Bind {
                addr: cfg.addr,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the simulator only listens on loopback addresses",
                ),
            });
        }
        if let Some(parent) = cfg.state_path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| SimError::Io {
                path: parent.to_path_buf(),
                source: e,
            })?;
        }
        let mut st = match state::load(&cfg.state_path)? {
            Some(s) => s,
            None => PState::fresh(cfg.username.clone(), String::new(), String::new()),
        };
        st.username = cfg.username.clone();
        match cfg.token.as_deref() {
            Some(t) if !t.is_empty() => st.admin_token = t.to_owned(),
            _ if st.admin_token.is_empty() => st.admin_token = format!("sim-{}", random_hex(20)),
            _ => {}
        }
        match cfg.password.as_deref() {
            Some(p) => st.password = p.to_owned(),
            None if st.password.is_empty() => st.password = random_hex(12),
            None => {}
        }

        let listener =
            tokio::net::TcpListener::bind(cfg.addr)
                .await
                .map_err(|e| SimError::Bind {
                    addr: cfg.addr,
                    source: e,
                })?;
        let addr = listener.local_addr().map_err(|e| SimError::Bind {
            addr: cfg.addr,
            source: e,
        })?;
        state::save(&cfg.state_path, &st).map_err(|e| SimError::Io {
            path: cfg.state_path.clone(),
            source: e,
        })?;

        let (token, username, password) = (
            st.admin_token.clone(),
            st.username.clone(),
            st.password.clone(),
        );
        let state_path = cfg.state_path.clone();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                state: st,
                faults: Faults::default(),
                log: VecDeque::new(),
                count: 0,
            }),
            state_path: cfg.state_path,
            transition_ms: u64::try_from(cfg.transition.as_millis()).unwrap_or(u64::MAX),
            max_workers: cfg.max_workers,
            started: Instant::now(),
        });
        let app = Router::new().fallback(handle).with_state(shared);
        let (tx, rx) = oneshot::channel::<()>();
        let listener = FaultListener(listener);
        let app = app.into_make_service_with_connect_info::<ConnHandle>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "cpi-sim server stopped with an error");
            }
        });
        let url = format!("http://{addr}");
        tracing::debug!(%url, "cpi-sim listening");
        Ok(Sim {
            url,
            addr,
            token,
            username,
            password,
            state_path,
            shutdown_tx: Some(tx),
            task: Some(task),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (the TrueNAS routes are also under `/api/v2.0`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The username accepted by `POST /auth/token`.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password accepted by `POST /auth/token`.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The state file this server persists to.
    pub fn state_path(&self) -> &std::path::Path {
        &self.state_path
    }

    /// Stops accepting connections, lets in-flight requests finish (at most 5 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
    }
}

/// Injected faults (in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Faults {
    latency_ms: u64,
    fail_status: Option<u16>,
    fail_count: u64,
    retry_after_secs: u64,
    malformed: bool,
    /// Connection faults: how many of the next requests they hit ([`ALWAYS`]: every one).
    reset: u64,
    truncate: u64,
    non_utf8: u64,
}

/// A connection fault switched on with `true` rather than a count.
const ALWAYS: u64 = u64::MAX;

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            fail_status: None,
            fail_count: 0,
            retry_after_secs: 1,
            malformed: false,
            reset: 0,
            truncate: 0,
            non_utf8: 0,
        }
    }
}

/// What the faults do to one request.
#[derive(Debug, Default)]
struct Plan {
    latency_ms: u64,
    fail: Option<ApiError>,
    malformed: bool,
    reset: bool,
    truncate: bool,
    non_utf8: bool,
}

/// Uses up one hit of a connection fault counter.
fn consume(counter: &mut u64) -> bool {
    match *counter {
        0 => false,
        ALWAYS => true,
        _ => {
            *counter -= 1;
            true
        }
    }
}

fn count_json(n: u64) -> Value {
    match n {
        0 => Value::Bool(false),
        ALWAYS => Value::Bool(true),
        n => Value::from(n),
    }
}

impl Faults {
    fn to_json(&self) -> Value {
        json!({
            "latency_ms": self.latency_ms,
            "fail_status": self.fail_status,
            "fail_count": self.fail_count,
            "retry_after_secs": self.retry_after_secs,
            "malformed": self.malformed,
            "reset": count_json(self.reset),
            "truncate": count_json(self.truncate),
            "non_utf8": count_json(self.non_utf8),
        })
    }

    /// Parses a full fault configuration; omitted fields take their defaults.
    fn from_body(body: &Bytes) -> Result<Faults, ApiError> {
        let obj = json_object(body)?;
        let mut f = Faults::default();
        for (key, v) in &obj {
            match key.as_str() {
                "latency_ms" => f.latency_ms = u64_field(v, key, MAX_LATENCY_MS)?,
                "fail_count" => f.fail_count = u64_field(v, key, u64::MAX)?,
                "retry_after_secs" => f.retry_after_secs = u64_field(v, key, MAX_RETRY_AFTER_SECS)?,
                "malformed" => {
                    f.malformed = v.as_bool().ok_or_else(|| {
                        ApiError::unprocessable(format!("field '{key}' must be a boolean"))
                    })?
                }
                "reset" | "truncate" | "non_utf8" => {
                    let n = match v {
                        Value::Bool(on) => {
                            if *on {
                                ALWAYS
                            } else {
                                0
                            }
                        }
                        _ => match v.as_u64() {
                            Some(n) if n < ALWAYS => n,
                            _ => {
                                return Err(ApiError::unprocessable(format!(
                                    "field '{key}' must be a boolean or a request count"
                                )));
                            }
                        },
                    };
                    match key.as_str() {
                        "reset" => f.reset = n,
                        "truncate" => f.truncate = n,
                        _ => f.non_utf8 = n,
                    }
                }
                "fail_status" => {
                    f.fail_status = match v {
                        Value::Null => None,
                        _ => match v.as_u64() {
                            Some(n @ 400..=599) => u16::try_from(n).ok(),
                            _ => {
                                return Err(ApiError::unprocessable(format!(
                                    "field '{key}' must be null or an HTTP error status (400-599)"
                                )));
                            }
                        },
                    }
                }
                other => {
                    return Err(ApiError::unprocessable(format!(
                        "unknown field '{other}' (expected latency_ms, fail_status, fail_count, retry_after_secs, malformed, reset, truncate, non_utf8)"
                    )));
                }
            }
        }
        if f.fail_count > 0 && f.fail_status.is_none() {
            return Err(ApiError::unprocessable(
                "field 'fail_status' is required when 'fail_count' is non-zero",
            ));
        }
        Ok(f)
    }

    /// What happens to the next request, using up one injected failure: an error status
    /// first, else a reset, else a truncated and/or non-UTF-8 response.
    fn take(&mut self) -> Plan {
        let mut plan = Plan {
            latency_ms: self.latency_ms,
            malformed: self.malformed,
            ..Plan::default()
        };
        match self.fail_status {
            Some(status) if self.fail_count > 0 => {
                self.fail_count -= 1;
                plan.fail = Some(ApiError::injected(status, self.retry_after_secs));
            }
            _ if consume(&mut self.reset) => plan.reset = true,
            _ => {
                plan.truncate = consume(&mut self.truncate);
                plan.non_utf8 = consume(&mut self.non_utf8);
            }
        }
        plan
    }
}

fn u64_field(v: &Value, key: &str, max: u64) -> Result<u64, ApiError> {
    match v.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(ApiError::unprocessable(format!(
            "field '{key}' must be a non-negative integer no larger than {max}"
        ))),
    }
}

/// One logged request.
#[derive(Debug, Clone)]
struct ReqLine {
    method: String,
    path: String,
    body: String,
}

struct Inner {
    state: PState,
    faults: Faults,
    log: VecDeque<ReqLine>,
    count: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    state_path: PathBuf,
    transition_ms: u64,
    max_workers: usize,
    started: Instant,
}

/// An API error, rendered as `{"error":{"code":..,"message":..}}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    fn auth(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "AuthenticationError", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundError", message)
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }
    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "ValidationError", message)
    }
    fn provider(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ProviderError", message)
    }

    /// The error an injected `fail_status` produces.
    fn injected(status: u16, retry_after: u64) -> Self {
        let sc = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut e = match status {
            429 => {
                let mut e = Self::new(
                    sc,
                    "RateLimitError",
                    format!("rate limit exceeded, retry after {retry_after} seconds"),
                );
                e.retry_after = Some(retry_after);
                e
            }
            401 => Self::new(
                sc,
                "AuthenticationError",
                "injected fault: authentication failed",
            ),
            403 => Self::new(sc, "QuotaExceededError", "injected fault: quota exceeded"),
            404 => Self::new(
                sc,
                "ResourceNotFoundError",
                "injected fault: resource not found",
            ),
            500..=599 => Self::new(
                sc,
                "ProviderError",
                format!("injected fault: provider error (HTTP {status})"),
            ),
            _ => Self::new(
                sc,
                "ValidationError",
                format!("injected fault: HTTP {status}"),
            ),
        };
        if status == 503 {
            e.retry_after = Some(retry_after);
        }
        e
    }

    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = json_response(self.status, body.to_string());
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

type Reply = Result<(StatusCode, Value), ApiError>;

fn ok(v: Value) -> Reply {
    Ok((StatusCode::OK, v))
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn respond(reply: Reply, malformed: bool) -> Response {
    match reply {
        Ok((status, v)) => {
            let mut body = v.to_string();
            if malformed && status.is_success() {
                let mut cut = body.len() / 2;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            json_response(status, body)
        }
        Err(e) => e.into_response(),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

/// Path segments after stripping the optional `/api/v2.0` prefix, percent-decoded.
fn route_segments(path: &str) -> Vec<String> {
    let p = match path.strip_prefix(API_PREFIX) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    };
    let p = p.strip_prefix('/').unwrap_or(p);
    let p = p.strip_suffix('/').unwrap_or(p);
    if p.is_empty() {
        return Vec::new();
    }
    p.split('/').map(|s| percent_decode(s, false)).collect()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; expected a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::bad_request(format!(
            "request body must be a JSON object, got {}",
            cpi_contract::json_kind(&other)
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

fn req_str(obj: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match opt_str(obj, field)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(ApiError::unprocessable(format!(
            "field '{field}' must not be empty"
        ))),
        None => Err(ApiError::unprocessable(format!(
            "missing required field '{field}'"
        ))),
    }
}

fn opt_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::unprocessable(format!(
            "field '{field}' must be a string, got {}",
            cpi_contract::json_kind(other)
        ))),
    }
}

/// Whether `segs` names a known route (used to answer 405 rather than 404).
fn path_known(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["healthz"]
            | ["system", "info" | "version"]
            | ["auth", "token" | "check"]
            | ["instances"]
            | ["instances", _]
            | ["instances", _, "start" | "stop" | "reboot"]
            | ["pool"]
            | ["pool", "dataset"]
            | ["pool", "id", _]
            | ["jail", "id", _, "start" | "stop"]
            | ["_sim", "faults" | "requests"]
    )
}

fn route_error(method: &Method, segs: &[&str]) -> ApiError {
    let path = format!("/{}", segs.join("/"));
    if path_known(segs) {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "ValidationError",
            format!("method {method} is not allowed on {path}"),
        )
    } else {
        ApiError::not_found(format!("no route for {method} {path}"))
    }
}

fn parse_pool_id(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("pool id '{id}' is not a non-negative integer")))
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let raw = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    let token = bearer_token(req.headers());
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY).await;
    let segs = route_segments(uri.path());
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let is_sim = segs.first() == Some(&"_sim");

    if !is_sim {
        sh.record(&method, &raw, body.as_ref().ok());
    }
    let body = match body {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationError",
                format!("request body is larger than {MAX_BODY} bytes or could not be read"),
            )
            .into_response();
        }
    };

    if is_sim {
        let mut inner = sh.lock();
        let admin = token
            .as_deref()
            .is_some_and(|t| !t.is_empty() && t == inner.state.admin_token);
        if !admin {
            return ApiError::auth("the admin bearer token is required for /_sim routes")
                .into_response();
        }
        return respond(sim_routes(&mut inner, &method, &segs, &body), false);
    }

    let mut plan = Plan::default();
    if segs != ["healthz"] {
        plan = sh.lock().faults.take();
        if plan.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
        }
        if let Some(err) = plan.fail.take() {
            return err.into_response();
        }
        if plan.reset {
            // Before anything is done: the request is logged but has no effect.
            if let Some(conn) = &conn {
                conn.reset();
            }
            return ApiError::provider("injected fault: connection reset").into_response();
        }
    }
    let query = parse_query(uri.query());
    let reply = {
        let mut inner = sh.lock();
        sh.dispatch(&mut inner, &method, &segs, &query, &body, token.as_deref())
    };
    let resp = respond(reply, plan.malformed);
    if !plan.truncate && !plan.non_utf8 {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let mut bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    if plan.non_utf8 {
        bytes = conn::non_utf8(&bytes);
    }
    let resp = Response::from_parts(parts, Body::from(bytes.clone()));
    if plan.truncate {
        return conn::truncated(resp, bytes);
    }
    resp
}

fn sim_routes(inner: &mut Inner, method: &Method, segs: &[&str], body: &Bytes) -> Reply {
    match (method.as_str(), segs) {
        ("GET", ["_sim", "faults"]) => ok(inner.faults.to_json()),
        ("PUT", ["_sim", "faults"]) => {
            inner.faults = Faults::from_body(body)?;
            ok(inner.faults.to_json())
        }
        ("DELETE", ["_sim", "faults"]) => {
            inner.faults = Faults::default();
            ok(inner.faults.to_json())
        }
        ("GET", ["_sim", "requests"]) => {
            let lines: Vec<Value> = inner
                .log
                .iter()
                .map(|l| json!({"method": l.method, "path": l.path, "body": l.body}))
                .collect();
            ok(json!({"count": inner.count, "requests": lines}))
        }
        ("DELETE", ["_sim", "requests"]) => {
            inner.log.clear();
            inner.count = 0;
            ok(json!({"count": 0, "requests": []}))
        }
        _ => Err(route_error(method, segs)),
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, method: &Method, raw: &str, body: Option<&Bytes>) {
        let body = match body {
            Some(b) => {
                let cut = &b[..b.len().min(LOG_BODY_MAX)];
                String::from_utf8_lossy(cut).into_owned()
            }
            None => "<unreadable or oversized body>".to_owned(),
        };
        let mut inner = self.lock();
        inner.count += 1;
        inner.log.push_back(ReqLine {
            method: method.to_string(),
            path: raw.to_owned(),
            body,
        });
        while inner.log.len() > LOG_LEN {
            inner.log.pop_front();
        }
    }

    /// Applies `f` to a copy of the state, persists it, and only then commits it.
    fn mutate<T>(
        &self,
        inner: &mut Inner,
        f: impl FnOnce(&mut PState) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut draft = inner.state.clone();
        let out = f(&mut draft)?;
        state::save(&self.state_path, &draft).map_err(|e| {
            tracing::error!(error = %e, path = %self.state_path.display(), "cannot persist state");
            ApiError::provider(format!("failed to persist state: {e}"))
        })?;
        inner.state = draft;
        Ok(out)
    }

    fn dispatch(
        &self,
        inner: &mut Inner,
        method: &Method,
        segs: &[&str],
        query: &HashMap<String, String>,
        body: &Bytes,
        token: Option<&str>,
    ) -> Reply {
        let now = now_ms();
        inner.state.settle_all(now, self.transition_ms);
        let authed = token.is_some_and(|t| inner.state.token_valid(t));
        let public = matches!(segs, ["healthz"] | ["auth", "token" | "check"]);
        if !public && !authed {
            return Err(ApiError::auth(if token.is_none() {
                "missing bearer token (send 'Authorization: Bearer <token>')"
            } else {
                "invalid bearer token"
            }));
        }
        match (method.as_str(), segs) {
            ("GET", ["healthz"]) => ok(json!({"ok": true})),
            ("GET", ["system", "info"]) => ok(json!({
                "hostname": "cpi-sim",
                "version": "TrueNAS-SIM-13.0-U6",
                "system_product": "cpi-sim virtual appliance",
                "uptime_seconds": self.started.elapsed().as_secs(),
                "cores": 2,
                "physmem": 4_294_967_296u64,
            })),
            ("GET", ["system", "version"]) => {
                ok(json!({"version": concat!("cpi-sim ", env!("CARGO_PKG_VERSION"))}))
            }
            ("POST", ["auth", "token"]) => self.issue_token(inner, body),
            ("GET", ["auth", "check"]) => {
                if authed {
                    ok(json!({"authenticated": true, "username": inner.state.username}))
                } else {
                    ok(json!({"authenticated": false}))
                }
            }
            ("GET", ["instances"]) => {
                let region = query.get("region").filter(|r| !r.is_empty());
                let list: Vec<Value> = inner
                    .state
                    .workers
                    .iter()
                    .filter(|w| region.is_none_or(|r| &w.region == r))
                    .map(Worker::view)
                    .collect();
                ok(Value::Array(list))
            }
            ("POST", ["instances"]) => self.create_worker(inner, body, now),
            ("GET", ["instances", id]) => {
                find_worker(&inner.state, id).map(|w| (StatusCode::OK, w.view()))
            }
            ("DELETE", ["instances", id]) => self.mutate(inner, |s| {
                let before = s.workers.len();
                s.workers.retain(|w| w.id != *id);
                if s.workers.len() == before {
                    return Err(worker_not_found(id));
                }
                ok(json!({"id": id, "deleted": true}))
            }),
            ("POST", ["instances", id, action @ ("start" | "stop" | "reboot")]) => {
                self.mutate(inner, |s| {
                    let w = s
                        .workers
                        .iter_mut()
                        .find(|w| w.id == *id)
                        .ok_or_else(|| worker_not_found(id))?;
                    match (*action, w.phase) {
                        ("start", Phase::Stopped | Phase::Stopping) => {
                            w.enter(Phase::Starting, now)
                        }
                        ("stop", Phase::Stopped | Phase::Stopping) | ("start", _) => {}
                        ("stop", _) => w.enter(Phase::Stopping, now),
                        _ => w.enter(Phase::Rebooting, now),
                    }
                    ok(w.view())
                })
            }
            ("GET", ["pool"]) => ok(Value::Array(
                inner.state.pools.iter().map(Pool::view).collect(),
            )),
            ("GET", ["pool", "dataset"]) => ok(Value::Array(
                inner.state.pools.iter().map(Pool::dataset_view).collect(),
            )),
            ("POST", ["pool"]) => self.create_pool(inner, body),
            ("GET", ["pool", "id", id]) => {
                let id = parse_pool_id(id)?;
                find_pool(&inner.state, id).map(|p| (StatusCode::OK, p.view()))
            }
            ("DELETE", ["pool", "id", id]) => {
                let id = parse_pool_id(id)?;
                self.mutate(inner, |s| {
                    let before = s.pools.len();
                    s.pools.retain(|p| p.id != id);
                    if s.pools.len() == before {
                        return Err(pool_not_found(id));
                    }
                    ok(Value::Bool(true))
                })
            }
            ("POST", ["jail", "id", id, action @ ("start" | "stop")]) => {
                let id = parse_pool_id(id)?;
                self.mutate(inner, |s| {
                    let p = s
                        .pools
                        .iter_mut()
                        .find(|p| p.id == id)
                        .ok_or_else(|| pool_not_found(id))?;
                    p.jail_up = *action == "start";
                    ok(p.view())
                })
            }
            _ => Err(route_error(method, segs)),
        }
    }

    fn issue_token(&self, inner: &mut Inner, body: &Bytes) -> Reply {
        let obj = json_object(body)?;
        let username = opt_str(&obj, "username")?;
        let password = opt_str(&obj, "password")?;
        let (Some(username), Some(password)) = (username, password) else {
            let missing = if obj.get("username").is_none_or(Value::is_null) {
                "username"
            } else {
                "password"
            };
            return Err(ApiError::unprocessable(format!(
                "missing required field '{missing}'"
            )));
        };
        let good = username == inner.state.username
            && !inner.state.password.is_empty()
            && password == inner.state.password;
        if !good {
            return Err(ApiError::auth("invalid username or password"));
        }
        let token = format!("sim-{}", random_hex(20));
        self.mutate(inner, |s| {
            s.add_token(token.clone());
            Ok(())
        })?;
        ok(json!({"token": token}))
    }

    fn create_worker(&self, inner: &mut Inner, body: &Bytes, now: u64) -> Reply {
        let obj = json_object(body)?;
        let name = req_str(&obj, "name")?;
        let pick = |field: &str, default: &str| -> Result<String, ApiError> {
            Ok(opt_str(&obj, field)?
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| default.to_owned()))
        };
        let kind = pick("type", DEFAULT_TYPE)?;
        let image = pick("image", DEFAULT_IMAGE)?;
        let region = pick("region", DEFAULT_REGION)?;
        let network = pick("network", DEFAULT_NETWORK)?;
        let max = self.max_workers;
        let view = self.mutate(inner, |s| {
            if s.workers.len() >= max {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "QuotaExceededError",
                    format!("worker quota exceeded: the limit is {max} workers"),
                ));
            }
            let mut id = format!("wrk-{}", random_hex(4));
            while s.workers.iter().any(|w| w.id == id) {
                id = format!("wrk-{}", random_hex(4));
            }
            let ip = s.alloc_ip();
            let w = Worker {
                id,
                name,
                kind,
                image,
                region,
                network,
                ip,
                created_at: now / 1000,
                phase: Phase::Provisioning,
                phase_since_ms: now,
            };
            let view = w.view();
            s.workers.push(w);
            Ok(view)
        })?;
        Ok((StatusCode::CREATED, view))
    }

    fn create_pool(&self, inner: &mut Inner, body: &Bytes) -> Reply {
        let obj = json_object(body)?;
        let name = req_str(&obj, "name")?;
        let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !valid_name {
            return Err(ApiError::unprocessable(format!(
                "field 'name': pool name '{name}' must start with a letter and contain only letters, digits, '-', '_', '.' or ':'"
            )));
        }
        let topology = normalize_topology(obj.get("topology"))?;
        self.mutate(inner, |s| {
            if s.pools.iter().any(|p| p.name == name) {
                return Err(ApiError::unprocessable(format!(
                    "field 'name': a pool named '{name}' already exists"
                )));
            }
            let id = s.next_pool_id;
            s.next_pool_id = s.next_pool_id.saturating_add(1);
            let p = Pool {
                id,
                name,
                topology,
                jail_up: true,
            };
            let view = p.view();
            s.pools.push(p);
            ok(view)
        })
    }
}

/// Validates `{"data":[{"type":"STRIPE","disks":["da0"]}]}` and keeps only the known keys.
fn normalize_topology(v: Option<&Value>) -> Result<Value, ApiError> {
    const TYPES: [&str; 5] = ["STRIPE", "MIRROR", "RAIDZ1", "RAIDZ2", "RAIDZ3"];
    let err = |field: &str, what: &str| ApiError::unprocessable(format!("field '{field}' {what}"));
    let topo = match v {
        None | Some(Value::Null) => return Err(err("topology", "is required")),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(err("topology", "must be an object")),
    };
    let data = match topo.get("data") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(err("topology.data", "must not be empty")),
        None | Some(Value::Null) => return Err(err("topology.data", "is required")),
        Some(_) => return Err(err("topology.data", "must be an array")),
    };
    let mut out = Vec::with_capacity(data.len());
    for (i, vdev) in data.iter().enumerate() {
        let field = format!("topology.data[{i}]");
        let vdev = vdev
            .as_object()
            .ok_or_else(|| err(&field, "must be an object"))?;
        let kind = match vdev.get("type") {
            Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.clone(),
            Some(Value::String(_)) => {
                return Err(err(
                    &format!("{field}.type"),
                    "must be one of STRIPE, MIRROR, RAIDZ1, RAIDZ2, RAIDZ3",
                ));
            }
            None | Some(Value::Null) => return Err(err(&format!("{field}.type"), "is required")),
            Some(_) => return Err(err(&format!("{field}.type"), "must be a string")),
        };
        let disks_field = format!("{field}.disks");
        let disks = match vdev.get("disks") {
            Some(Value::Array(d)) if !d.is_empty() => d,
            Some(Value::Array(_)) => return Err(err(&disks_field, "must not be empty")),
            None | Some(Value::Null) => return Err(err(&disks_field, "is required")),
            Some(_) => return Err(err(&disks_field, "must be an array of disk names")),
        };
        let mut names = Vec::with_capacity(disks.len());
        for d in disks {
            match d.as_str() {
                Some(s) if !s.trim().is_empty() => names.push(Value::String(s.to_owned())),
                _ => {
                    return Err(err(
                        &disks_field,
                        "must contain only non-empty disk name strings",
                    ));
                }
            }
        }
        out.push(json!({"type": kind, "disks": names}));
    }
    Ok(json!({"data": out}))
}

fn worker_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("worker '{id}' was not found"))
}

fn pool_not_found(id: u64) -> ApiError {
    ApiError::not_found(format!("pool {id} was not found"))
}

fn find_worker<'a>(s: &'a PState, id: &str) -> Result<&'a Worker, ApiError> {
    s.workers
        .iter()
        .find(|w| w.id == id)
        .ok_or_else(|| worker_not_found(id))
}

fn find_pool(s: &PState, id: u64) -> Result<&Pool, ApiError> {
    s.pools
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| pool_not_found(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_strip_prefix_and_decode() {
        assert_eq!(route_segments("/api/v2.0/pool/id/1"), ["pool", "id", "1"]);
        assert_eq!(route_segments("/api/v2.0"), Vec::<String>::new());
        assert_eq!(route_segments("/api/v2.01/x"), ["api", "v2.01", "x"]);
        assert_eq!(route_segments("/instances/a%2Fb/"), ["instances", "a/b"]);
    }

    #[test]
    fn query_parsing() {
        let q = parse_query(Some("region=us%20west&x&y=a+b"));
        assert_eq!(q.get("region").map(String::as_str), Some("us west"));
        assert_eq!(q.get("y").map(String::as_str), Some("a b"));
        assert_eq!(q.get("x").map(String::as_str), Some(""));
    }

    #[test]
    fn malformed_bodies_are_invalid_json() {
        for v in [json!(true), json!({"a": "é"}), json!([1, 2]), json!(7)] {
            let resp = respond(ok(v), true);
            assert_eq!(resp.status(), StatusCode::OK);
        }
        let body = Bytes::from_static(b"{\"fail_status\": 200}");
        assert!(Faults::from_body(&body).is_err());
        let body = Bytes::from_static(b"{\"fail_count\": 2}");
        assert!(Faults::from_body(&body).is_err());
    }

    #[test]
    fn topology_validation_names_fields() {
        let bad = json!({"data": [{"type": "STRIPE", "disks": [1]}]});
        let e = normalize_topology(Some(&bad)).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("topology.data[0].disks")));
        let good = json!({"data": [{"type": "MIRROR", "disks": ["da0", "da1"], "x": 1}]});
        assert_eq!(
            normalize_topology(Some(&good)).ok(),
            Some(json!({"data": [{"type": "MIRROR", "disks": ["da0", "da1"]}]}))
        );
    }
}
