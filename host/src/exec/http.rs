//! Sends the gate's HTTP requests over shared reqwest clients (rustls) and maps HTTP failures
//! onto the standard's error categories. Only [`super::Gate`] calls it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use super::{ErrorRules, Limits, excerpt};
use crate::error::{Error, ErrorKind, Result};
use crate::policy::Capabilities;

/// A response that passed the status check.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body as UTF-8 text.
    pub body: String,
}

/// How a request checks the server's certificate, from the provider's `verify_ssl` and
/// `ca_cert_file` settings (a self-signed Proxmox or TrueNAS is the common case).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tls {
    /// `verify_ssl` is false: any certificate is accepted. Logged as a warning on every use.
    pub accept_invalid_certs: bool,
    /// PEM file of extra trusted roots (the server's own CA), on top of the built-in ones.
    pub ca_cert_file: Option<PathBuf>,
}

impl Tls {
    /// Reads `verify_ssl` (true/false, yes/no, on/off, 1/0; default true) and `ca_cert_file`
    /// (a path; empty means none) from an action's resolved values.
    pub fn from_values(values: &crate::template::Values) -> Result<Tls> {
        let accept_invalid_certs = match values.get("verify_ssl").map(|v| v.trim()) {
            None | Some("") => false,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => false,
                "false" | "no" | "off" | "0" => true,
                _ => {
                    return Err(Error::validation(format!(
                        "verify_ssl must be true or false, not {v:?}"
                    ))
                    .with_detail("param", "verify_ssl"));
                }
            },
        };
        let ca_cert_file = values
            .get("ca_cert_file")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Ok(Tls {
            accept_invalid_certs,
            ca_cert_file,
        })
    }

    /// Whether these are the built-in settings (verify against the system's roots only).
    pub fn is_default(&self) -> bool {
        *self == Tls::default()
    }
}

/// How many clients (distinct TLS settings and redirect grants) are kept for reuse.
const MAX_CLIENTS: usize = 8;

/// An HTTP request as the gate sends it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method's wire name (`GET`, `POST`, ...).
    pub method: &'a str,
    /// The absolute URL.
    pub url: &'a str,
    /// Header names and values, in order.
    pub headers: &'a [(String, String)],
    /// The body, if any.
    pub body: Option<&'a [u8]>,
    /// How the server's certificate is checked.
    pub tls: &'a Tls,
}

/// A response whatever its status (what a component's `http-request` gets back).
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The status line's reason phrase, when it is not the standard one.
    pub reason: Option<String>,
    /// The headers, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`Limits::max_output`] bytes.
    pub body: Vec<u8>,
}

/// Which client a request needs: its TLS settings (redirects, and their grants, are checked
/// hop by hop in [`follow`], not by the client).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    tls: Tls,
}

/// The HTTP side of the gate: reqwest clients (one connection pool each) built on first use
/// and kept per TLS setting.
#[derive(Debug, Clone)]
pub(super) struct Clients {
    connect_timeout: Duration,
    cache: Arc<Mutex<HashMap<ClientKey, reqwest::Client>>>,
}

impl Clients {
    /// No client yet: building one loads the TLS roots, which a run without requests skips.
    pub(super) fn new(connect_timeout: Duration) -> Clients {
        Clients {
            connect_timeout,
            cache: Arc::default(),
        }
    }

    /// The client for `tls`.
    fn client(&self, tls: &Tls) -> Result<reqwest::Client> {
        let key = ClientKey { tls: tls.clone() };
        let poisoned = |_| Error::internal("HTTP client cache poisoned");
        if let Some(client) = self.cache.lock().map_err(poisoned)?.get(&key) {
            return Ok(client.clone());
        }
        // Built outside the lock: it reads the CA file.
        let client = build(self.connect_timeout, tls)?;
        // A handful of settings are kept; more (a long-running `cpi serve` seeing many) get a
        // client each time rather than a cache that only grows.
        let mut cache = self.cache.lock().map_err(poisoned)?;
        if cache.len() < MAX_CLIENTS {
            cache.insert(key, client.clone());
        }
        Ok(client)
    }

    /// Sends one request and reads the whole answer (capped), whatever its status. Transport
    /// failures are categorized; "cannot connect" and "connection lost" are transient.
    pub(super) async fn fetch(
        &self,
        req: &Request<'_>,
        hops: Option<&Capabilities>,
        limits: &Limits,
    ) -> Result<RawResponse> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| Error::validation(format!("invalid HTTP method {:?}", req.method)))?;
        let mut map = HeaderMap::new();
        for (name, value) in req.headers {
            if value.contains(['\r', '\n', '\0']) || name.contains(['\r', '\n', '\0']) {
                return Err(Error::validation(format!(
                    "invalid HTTP header {name:?}: a line break or NUL"
                )));
            }
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::validation(format!("invalid HTTP header name {name:?}")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                Error::validation(format!("invalid value for HTTP header '{name}'"))
            })?;
            map.append(header, value);
        }
        let what = format!("{method} {}", req.url);
        let start = reqwest::Url::parse(req.url)
            .map_err(|e| Error::validation(format!("invalid URL {:?}: {e}", req.url)))?;
        let hop = Hop {
            method,
            url: start,
            headers: map,
            body: req.body.map(<[u8]>::to_vec),
        };
        // With grants (a component), every hop must be granted.
        let allowed = |to: &reqwest::Url| match hops {
            Some(grants) if grants.check_url(to).is_err() => Err(Error::new(
                ErrorKind::CapabilityDenied,
                format!("{what}: a redirect went to {to}, a destination that was not granted"),
            )
            .with_detail("redirect", to.as_str())),
            _ => Ok(()),
        };
        let client = self.client(req.tls)?;
        let mut response = follow(&client, hop, limits.timeout, &allowed)
            .await
            .map_err(|err| match err {
                Followed::Transport(err) => transport_error(&what, err, limits),
                Followed::Refused(err) => err,
            })?;
        let status = response.status().as_u16();
        // The status line's own reason phrase when it is not the standard one: Proxmox, for
        // one, says "500 Configuration file '…/100.conf' does not exist" with an empty body.
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .and_then(|r| std::str::from_utf8(r.as_bytes()).ok())
            .map(str::to_string);
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
            .map_err(|err| transport_error(&what, err, limits))?
        {
            if body.len() + chunk.len() > limits.max_output {
                return Err(Error::provider(format!(
                    "response to {what} is larger than {} bytes",
                    limits.max_output
                ))
                .with_detail("limit_bytes", limits.max_output));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse {
            status,
            reason,
            headers,
            body,
        })
    }
}

/// What a response means for a provider's target: its UTF-8 body when the status is 2xx,
/// otherwise the categorized error the status and body stand for (by `errors` first, when one
/// of its rules matches the body or reason phrase).
pub(super) fn check(what: &str, raw: RawResponse, errors: &ErrorRules) -> Result<HttpResponse> {
    let retry_after = raw
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(RETRY_AFTER.as_str()))
        .map(|(_, v)| v.clone());
    let body = String::from_utf8(raw.body).map_err(|err| {
        Error::provider(format!(
            "response to {what} is not valid UTF-8 (invalid byte at offset {})",
            err.utf8_error().valid_up_to()
        ))
    })?;
    let status = reqwest::StatusCode::from_u16(raw.status)
        .map_err(|_| Error::provider(format!("{what}: invalid HTTP status {}", raw.status)))?;
    if status.is_success() {
        return Ok(HttpResponse {
            status: raw.status,
            body,
        });
    }
    let error = status_error(what, status, raw.reason.as_deref(), &body, retry_after);
    let reason = raw.reason.unwrap_or_default();
    Err(errors.apply(error, raw.status.into(), &[&body, &reason]))
}

/// One request of a redirect chain.
#[derive(Debug)]
pub struct Hop {
    /// The method.
    pub method: reqwest::Method,
    /// Where it goes.
    pub url: reqwest::Url,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Option<Vec<u8>>,
}

/// Why [`follow`] gave no response.
#[derive(Debug)]
pub enum Followed {
    /// The network or the server failed (the caller maps it to a category).
    Transport(reqwest::Error),
    /// A redirect was refused: to HTTP from HTTPS, not allowed by the hop check, or one too
    /// many.
    Refused(Error),
}

/// How many redirects a request follows.
pub const MAX_REDIRECTS: usize = 5;

/// Headers kept on a redirect to another origin: what describes the request, never what
/// authenticates it. Every other header — `Authorization`, `X-Api-Key`, `PRIVATE-TOKEN`,
/// cookies, anything a template filled in — is dropped there.
const CROSS_ORIGIN_HEADERS: [&str; 5] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "content-type",
    "user-agent",
];

/// Sends `hop` over `client` (built with `Policy::none()`), following up to
/// [`MAX_REDIRECTS`] redirects by hand within `timeout` in all: a redirect from HTTPS to
/// HTTP is refused, a hop to another origin (scheme, host, port) keeps only
/// [`CROSS_ORIGIN_HEADERS`], no `Referer` is sent, 303 (and 301/302 after a POST) continue
/// as a GET without the body, and `allowed` checks each new URL before it is requested (a
/// component's grants).
pub async fn follow(
    client: &reqwest::Client,
    mut hop: Hop,
    timeout: Duration,
    allowed: &(dyn Fn(&reqwest::Url) -> Result<()> + Sync),
) -> std::result::Result<reqwest::Response, Followed> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut redirects = 0;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut request = client
            .request(hop.method.clone(), hop.url.clone())
            .headers(hop.headers.clone())
            .timeout(left.max(Duration::from_millis(1)));
        if let Some(body) = &hop.body {
            request = request.body(body.clone());
        }
        let response = request.send().await.map_err(Followed::Transport)?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        let (true, Some(location)) = (status.is_redirection(), location) else {
            return Ok(response);
        };
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        let refuse = |why: String| Followed::Refused(Error::provider(why));
        if redirects == MAX_REDIRECTS {
            return Err(refuse(format!(
                "{} {}: more than {MAX_REDIRECTS} redirects",
                hop.method, hop.url
            )));
        }
        let next = hop
            .url
            .join(location)
            .map_err(|e| refuse(format!("{}: redirect to an invalid URL ({e})", hop.url)))?;
        if !matches!(next.scheme(), "http" | "https")
            || (hop.url.scheme() == "https" && next.scheme() == "http")
        {
            return Err(refuse(format!(
                "{} {}: refused a redirect from {} to {} (a redirect may not leave HTTPS)",
                hop.method,
                hop.url,
                hop.url.scheme(),
                next.scheme()
            )));
        }
        allowed(&next).map_err(Followed::Refused)?;
        if next.origin() != hop.url.origin() {
            let kept: HeaderMap = hop
                .headers
                .iter()
                .filter(|(name, _)| CROSS_ORIGIN_HEADERS.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            hop.headers = kept;
        }
        let as_get = status == reqwest::StatusCode::SEE_OTHER
            || (matches!(status.as_u16(), 301 | 302) && hop.method == reqwest::Method::POST);
        if as_get {
            if hop.method != reqwest::Method::HEAD {
                hop.method = reqwest::Method::GET;
            }
            hop.body = None;
            hop.headers.remove(reqwest::header::CONTENT_TYPE);
            hop.headers.remove(reqwest::header::CONTENT_LENGTH);
        }
        hop.url = next;
        redirects += 1;
    }
}

/// Builds a rustls client for `tls`.
fn build(connect_timeout: Duration, tls: &Tls) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(connect_timeout)
        // Redirects are followed by hand (`follow`): each hop's grant, scheme and headers
        // are checked there.
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("cpi/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &tls.ca_cert_file {
        let pem = read_pem_file(path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                Error::validation(format!(
                    "ca_cert_file {} holds no PEM certificate",
                    path.display()
                ))
                .with_detail("param", "ca_cert_file")
            })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if tls.accept_invalid_certs {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|err| Error::internal(format!("cannot build the HTTP client: {err}")))
}

/// Reads `ca_cert_file` through [`crate::fsread`]: a regular file of at most 1 MiB (never a
/// FIFO or `/dev/zero`, which would hang or exhaust memory; the value may come from a
/// `cpi serve` request).
fn read_pem_file(path: &std::path::Path) -> Result<Vec<u8>> {
    crate::fsread::read(path, crate::fsread::Kind::Certificate).map_err(|err| {
        Error::validation(format!("ca_cert_file: {err}"))
            .with_detail("param", "ca_cert_file")
            .with_detail("file", path.display().to_string())
    })
}

/// Maps a non-2xx response to the standard category ([`cpi_contract::classify_http`]: by
/// status, corrected by what the reason phrase or the body says) and an error naming the
/// request, the status and the server's message.
fn status_error(
    what: &str,
    status: reqwest::StatusCode,
    reason: Option<&str>,
    body: &str,
    retry_after: Option<String>,
) -> Error {
    let code = status.as_u16();
    let said = format!("{}\n{body}", reason.unwrap_or_default());
    let kind = cpi_contract::classify_http(code, &said);
    let detail = server_message(body).unwrap_or_else(|| excerpt(body.trim(), 1024));
    let status_line = match reason {
        Some(reason) => format!("{code} {reason}"),
        None => status.to_string(),
    };
    let message = if detail.is_empty() {
        format!("{what} returned HTTP {status_line}")
    } else {
        format!("{what} returned HTTP {status_line}: {detail}")
    };
    let mut error = Error::new(kind, message).with_detail("http_status", code);
    if kind == ErrorKind::Provider && code >= 500 {
        // A server error may go away by itself (safe actions are retried).
        error = error.transient();
    }
    if let Some(retry_after) = retry_after {
        let value = retry_after
            .parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| retry_after.into());
        error = error.with_detail("retry_after", value);
    }
    error
}

/// The `message` of a JSON error body (`{"error": {"message": ...}}`, `{"message": ...}`).
fn server_message(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = json
        .pointer("/error/message")
        .or_else(|| json.get("message"))
        .or_else(|| json.get("error").filter(|e| e.is_string()))?;
    message.as_str().map(str::to_string)
}

fn transport_error(what: &str, err: reqwest::Error, limits: &Limits) -> Error {
    if err.is_timeout() {
        return Error::new(
            ErrorKind::Timeout,
            format!("{what} did not complete within {:?}", limits.timeout),
        )
        .with_detail("timeout_secs", limits.timeout.as_secs_f64());
    }
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    let mut chain = Vec::new();
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    // What went wrong below reqwest's own "error sending request for url (…)" line, which
    // quotes the URL (and a URL may well contain "certificate").
    let cause = chain
        .get(1..)
        .unwrap_or_default()
        .join(": ")
        .to_ascii_lowercase();
    let chain = chain.join(": ");
    if cause.contains("causedasendentity") {
        return Error::provider(format!(
            "{what}: the server presents a CA certificate as its own ({chain}); TLS libraries \
             refuse that even when it is named in ca_cert_file: give the server a certificate \
             issued by a CA and name that CA in ca_cert_file (or, on a trusted network only, \
             set verify_ssl to false)"
        ));
    }
    if cause.contains("certificate") {
        // Not transient: retrying cannot make the certificate acceptable.
        return Error::provider(format!(
            "{what}: the server's TLS certificate was not accepted ({chain}); if the server \
             uses its own CA, name its PEM file in ca_cert_file (or, on a trusted network \
             only, set verify_ssl to false)"
        ));
    }
    let (kind, transient) = if err.is_connect() {
        ("cannot connect", true)
    } else if err.is_request() || err.is_body() || err.is_decode() {
        // Connected, then the connection failed: reset, closed before a complete answer, or
        // a body cut short of its Content-Length (transient: safe actions are retried).
        ("connection lost", true)
    } else {
        ("request failed", false)
    };
    let error = Error::provider(format!("{what}: {kind}: {chain}"));
    if transient { error.transient() } else { error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn kind(code: u16, reason: Option<&str>, body: &str) -> (ErrorKind, String) {
        let err = status_error(
            "GET http://x/y",
            StatusCode::from_u16(code).unwrap(),
            reason,
            body,
            None,
        );
        (err.kind(), err.message().to_string())
    }

    #[test]
    fn bodies_and_reasons_correct_the_status_category() {
        // Hetzner: a 403 that is a quota, not a credentials problem.
        let hetzner =
            r#"{"error": {"code": "resource_limit_exceeded", "message": "server limit reached"}}"#;
        assert_eq!(kind(403, None, hetzner).0, ErrorKind::QuotaExceeded);
        // DigitalOcean: a 422 that is a quota.
        let droplets = r#"{"id": "unprocessable_entity", "message": "creating this/these droplet(s) will exceed your droplet limit"}"#;
        assert_eq!(kind(422, None, droplets).0, ErrorKind::QuotaExceeded);
        // AWS throttling over HTTP is a rate limit (retried), not a quota or a 5xx.
        let aws = "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors></Response>";
        assert_eq!(kind(503, None, aws).0, ErrorKind::RateLimit);
        // Proxmox: a missing VM is a 500 whose reason phrase says so; the reason is kept.
        let (k, message) = kind(
            500,
            Some("Configuration file 'nodes/pve/qemu-server/100.conf' does not exist"),
            r#"{"data":null}"#,
        );
        assert_eq!(k, ErrorKind::ResourceNotFound);
        assert!(
            message.contains(
                "HTTP 500 Configuration file 'nodes/pve/qemu-server/100.conf' does not exist"
            ),
            "{message}"
        );
        assert_eq!(
            kind(500, None, r#"{"message": "VM 100 not found"}"#).0,
            ErrorKind::ResourceNotFound
        );
        // A plain 500 stays a (retryable) provider error, with the standard reason.
        let (k, message) = kind(500, None, "");
        assert_eq!(k, ErrorKind::Provider);
        assert!(
            message.ends_with("HTTP 500 Internal Server Error"),
            "{message}"
        );
        assert_eq!(kind(401, None, "bad token").0, ErrorKind::Authentication);
    }

    /// One table of what CLIs and APIs say, run through the host's classification and the
    /// guest SDK's: a component and a JSON provider must read the same answer the same way.
    #[test]
    fn the_host_and_the_guest_sdk_classify_alike() {
        use cpi_guest_sdk::ErrorCategory;
        let texts = [
            "Error: worker 'x' not found",
            "An error occurred (RequestLimitExceeded) when calling the RunInstances operation: \
             Request limit exceeded.",
            "An error occurred (Throttling) (reached max retries: 4): Rate exceeded",
            "An error occurred (InstanceLimitExceeded): more instances than your limit",
            "ERROR: Please run 'az login' to setup account.",
            "ERROR: (gcloud.compute.instances.list) You do not currently have an active \
             account selected. Please run: $ gcloud auth login",
            r#"{"error": {"code": "resource_not_found", "message": "server 7 missing"}}"#,
            r#"{"error": {"code": "resource_limit_exceeded", "message": "limit reached"}}"#,
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            "creating this/these droplet(s) will exceed your droplet limit",
            "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist",
            "VBoxManage: error: Could not find a registered machine named 'x'",
            "error: invalid argument '--size'",
            "Error: No such container: web-1",
            "segfault",
            "",
        ];
        for text in texts {
            assert_eq!(
                crate::exec::classify_text(text),
                ErrorCategory::from_error_text(text),
                "{text}"
            );
        }
        let answers = [
            (400, ""),
            (401, "bad token"),
            (403, texts[7]),
            (403, "rateLimitExceeded"),
            (404, ""),
            (408, ""),
            (422, texts[9]),
            (429, "quota"),
            (500, texts[10]),
            (500, ""),
            (503, texts[1]),
            (503, "Rate exceeded"),
            (504, ""),
        ];
        for (status, body) in answers {
            let sdk = cpi_guest_sdk::http::Response {
                status,
                headers: vec![],
                body: body.as_bytes().to_vec(),
            };
            let sdk = sdk.error_for_status().unwrap_err().category;
            assert_eq!(kind(status, None, body).0, sdk, "{status} {body}");
        }
    }

    /// The reason phrase really comes through reqwest from the status line.
    #[tokio::test]
    async fn the_reason_phrase_of_the_status_line_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 500 Configuration file 'nodes/pve/qemu-server/100.conf' does not exist\r\n\
                      Content-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n\
                      {\"data\":null}",
                )
                .await;
        });
        let clients = Clients::new(Duration::from_secs(5));
        let url = format!("http://{addr}/api2/json/nodes/pve/qemu/100/status/current");
        let req = Request {
            method: "GET",
            url: &url,
            headers: &[],
            body: None,
            tls: &Tls::default(),
        };
        let raw = clients.fetch(&req, None, &Limits::default()).await.unwrap();
        let err = check("GET", raw, &ErrorRules::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceNotFound, "{err}");
        assert!(err.message().contains("does not exist"), "{err}");
    }

    /// A provider's error rule reads the body before the status decides: a 400 that says a
    /// quota was reached, and only for the status the rule names.
    #[test]
    fn error_rules_read_the_body_before_the_status_decides() {
        let raw = || RawResponse {
            status: 400,
            reason: None,
            headers: Vec::new(),
            body: br#"{"message":"too many volumes: 10"}"#.to_vec(),
        };
        let rules = |exit_code: Option<i32>| {
            let rule: crate::provider::ErrorRule = serde_json::from_value(serde_json::json!({
                "when": "too many volumes", "category": "QuotaExceededError", "exit_code": exit_code
            }))
            .unwrap();
            ErrorRules::compile(&[rule]).unwrap()
        };
        let err = check("POST /volumes", raw(), &rules(None)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
        assert_eq!(err.details()["error_rule"], "too many volumes");
        let kind = |rules: &ErrorRules| check("POST /volumes", raw(), rules).unwrap_err().kind();
        assert_eq!(kind(&rules(Some(400))), ErrorKind::QuotaExceeded);
        assert_eq!(kind(&rules(Some(403))), ErrorKind::Validation);
        assert_eq!(kind(&ErrorRules::default()), ErrorKind::Validation);
    }

    #[test]
    fn tls_settings_read_verify_ssl_spellings_and_an_optional_ca_file() {
        let tls = |pairs: &[(&str, &str)]| {
            let values: crate::template::Values = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Tls::from_values(&values)
        };
        assert!(tls(&[]).unwrap().is_default());
        assert!(tls(&[("verify_ssl", "")]).unwrap().is_default());
        for on in ["true", "TRUE", "yes", "on", "1", " true "] {
            assert!(tls(&[("verify_ssl", on)]).unwrap().is_default(), "{on}");
        }
        for off in ["false", "False", "no", "off", "0"] {
            assert!(
                tls(&[("verify_ssl", off)]).unwrap().accept_invalid_certs,
                "{off}"
            );
        }
        let err = tls(&[("verify_ssl", "maybe")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        assert!(err.message().contains("verify_ssl"), "{err}");
        assert!(tls(&[("ca_cert_file", " ")]).unwrap().is_default());
        let with_ca = tls(&[("ca_cert_file", "/etc/pve/pve-root-ca.pem")]).unwrap();
        assert_eq!(
            with_ca.ca_cert_file.as_deref(),
            Some(std::path::Path::new("/etc/pve/pve-root-ca.pem"))
        );
        assert!(!with_ca.accept_invalid_certs);
    }
}
