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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use indexmap::IndexMap;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::params::Inputs;
use crate::provider::Registry;

/// Limits and settings of a server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// How many actions run at once; further requests wait for a slot.
    pub concurrency: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body: 64 * 1024,
            concurrency: 16,
        }
    }
}

/// Everything a request handler needs.
pub struct Server {
    registry: Registry,
    engine: Engine,
    config: Config,
    token: String,
    slots: Semaphore,
    options: ServeOptions,
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
            slots: Semaphore::new(options.concurrency.max(1)),
            options,
        }
    }

    /// The HTTP routes.
    pub fn router(self: Arc<Server>) -> Router {
        let max_body = self.options.max_body;
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
            .layer(DefaultBodyLimit::max(max_body))
            .with_state(self)
    }

    /// Serves on `listener` until `shutdown` completes, then lets in-flight requests finish.
    pub async fn serve(
        self: Arc<Server>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::internal(format!("server failed: {e}")))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        constant_time_eq(given.trim().as_bytes(), self.token.as_bytes())
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

fn failure(err: &Error) -> Response {
    let mut response = (http_status(err.kind()), Json(err.to_json())).into_response();
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

async fn run(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if !server.authorized(&headers) {
        return unauthorized();
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let err = Error::validation(format!(
                "request body refused: {} (limit {} bytes)",
                rejection.body_text(),
                server.options.max_body
            ));
            let mut response = failure(&err);
            *response.status_mut() = rejection.status();
            return response;
        }
    };
    let started = Instant::now();
    let request = match RunRequest::parse(&body) {
        Ok(r) => r,
        Err(err) => return failure(&err),
    };
    let Ok(_slot) = server.slots.acquire().await else {
        return failure(&Error::internal("the server is shutting down"));
    };
    let outcome = execute(&server, &request).await;
    tracing::info!(
        provider = %request.provider,
        action = %request.action,
        ok = outcome.is_ok(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    match outcome {
        Ok(value) => Json(value).into_response(),
        Err(err) => failure(&err),
    }
}

async fn execute(server: &Server, request: &RunRequest) -> Result<Value> {
    let provider = server.registry.get(&request.provider)?;
    if request.params.contains_key("ca_cert_file") {
        // A path on this machine: a client must not make the server read (or probe) its files.
        return Err(Error::validation(
            "ca_cert_file names a file on the server: set it in the server's config \
             (cpi.toml), not in a request",
        )
        .with_detail("param", "ca_cert_file"));
    }
    let inputs = Inputs {
        cli: request.params.clone(),
        config: server.config.provider(&provider.name)?,
        use_env: false,
    };
    if provider.component.is_none() {
        let action = provider.action(&request.action)?;
        crate::params::check_unknown(
            &inputs.cli,
            &crate::params::known_names(provider, action, &inputs),
        )?;
    }
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
                            params.insert(name.clone(), crate::params::value_to_param(other));
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
    let read = crate::fsread::read_private(path, crate::fsread::Kind::Secret)
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
