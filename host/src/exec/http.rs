//! Sends an endpoint target's request over one shared reqwest client (rustls) and maps HTTP
//! failures onto the standard's error categories.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use super::{Limits, classify_text, excerpt};
use crate::error::{Error, ErrorKind, Result};
use crate::provider::Method;

/// A response that passed the status check.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body as UTF-8 text.
    pub body: String,
}

/// The HTTP side of the executor: one connection pool for every request of a run.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// A client with rustls, a connect timeout, and at most 5 redirects.
    pub fn new(connect_timeout: Duration) -> Result<HttpClient> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("cpi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::internal(format!("cannot build the HTTP client: {err}")))?;
        Ok(HttpClient { client })
    }

    /// Wraps a client built elsewhere (e.g. with a grant-checking redirect policy).
    pub fn from_client(client: reqwest::Client) -> HttpClient {
        HttpClient { client }
    }

    /// Sends one request; non-2xx statuses become categorized errors.
    pub async fn send(
        &self,
        method: &Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<&str>,
        limits: &Limits,
    ) -> Result<HttpResponse> {
        let method = reqwest::Method::from_bytes(method.wire_name().as_bytes()).map_err(|_| {
            Error::validation(format!("invalid HTTP method '{}'", method.wire_name()))
        })?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::validation(format!("invalid HTTP header name {name:?}")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                Error::validation(format!("invalid value for HTTP header '{name}'"))
            })?;
            map.append(header, value);
        }
        let mut request = self
            .client
            .request(method.clone(), url)
            .headers(map)
            .timeout(limits.timeout);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let what = format!("{method} {url}");
        let mut response = request
            .send()
            .await
            .map_err(|err| transport_error(&what, err, limits))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);

        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| transport_error(&what, err, limits))?
        {
            if bytes.len() + chunk.len() > limits.max_output {
                return Err(Error::provider(format!(
                    "response to {what} is larger than {} bytes",
                    limits.max_output
                ))
                .with_detail("limit_bytes", limits.max_output));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(bytes).map_err(|err| {
            Error::provider(format!(
                "response to {what} is not valid UTF-8 (invalid byte at offset {})",
                err.utf8_error().valid_up_to()
            ))
        })?;
        if status.is_success() {
            return Ok(HttpResponse {
                status: status.as_u16(),
                body,
            });
        }
        Err(status_error(&what, status, &body, retry_after))
    }
}

/// Maps a non-2xx response to the standard category.
fn status_error(
    what: &str,
    status: reqwest::StatusCode,
    body: &str,
    retry_after: Option<String>,
) -> Error {
    let code = status.as_u16();
    let mut kind = match code {
        401 | 403 => ErrorKind::Authentication,
        404 => ErrorKind::ResourceNotFound,
        400 | 422 => ErrorKind::Validation,
        429 => ErrorKind::RateLimit,
        _ => ErrorKind::Provider,
    };
    if code != 429 && classify_text(body) == ErrorKind::QuotaExceeded {
        kind = ErrorKind::QuotaExceeded;
    }
    let detail = server_message(body).unwrap_or_else(|| excerpt(body.trim(), 1024));
    let mut error = Error::new(kind, format!("{what} returned HTTP {status}: {detail}"))
        .with_detail("http_status", code);
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
    let kind = if err.is_connect() {
        "cannot connect"
    } else if err.is_request() || err.is_body() || err.is_decode() {
        // Connected, then the connection failed: reset, closed before a complete answer, or
        // a body cut short of its Content-Length (transient: safe actions are retried).
        "connection lost"
    } else {
        "request failed"
    };
    Error::provider(format!("{what}: {kind}: {}", chain.join(": ")))
}
