//! HTTP requests through the host.
//!
//! A component has no sockets. [`Request::send`] asks cpi (its `host.http-request`);
//! [`Request::fetch`] sends the same request over the standard
//! `wasi:http/outgoing-handler`, which cpi hands to the same gate. Either way cpi checks the URL against the
//! destinations the user granted (see [`Manifest::http`](crate::Manifest::http)), follows
//! redirects only to granted destinations, and enforces its timeout and response-size cap.
//! A refused request fails with
//! [`ErrorCategory::CapabilityDenied`](crate::ErrorCategory::CapabilityDenied). Any HTTP
//! status is a [`Response`]; [`Response::error_for_status`] and [`Response::json`] turn an
//! error status into a categorized [`Error`].
//!
//! ```no_run
//! use cpi_guest_sdk::http;
//! use serde_json::Value;
//!
//! let workers: Vec<Value> = http::get("http://127.0.0.1:8787/instances")?.json()?;
//! let created = http::Request::new("POST", "http://127.0.0.1:8787/instances")
//!     .header("authorization", "Bearer KEY")
//!     .json(&serde_json::json!({ "name": "web-1" }))?
//!     .send()?
//!     .error_for_status()?;
//! # Ok::<(), cpi_guest_sdk::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::{self, WitRequest, WitResponse};
use crate::error::{Error, Result};
use crate::exec::excerpt;

/// Sends a `GET` request for `url`.
pub fn get(url: &str) -> Result<Response> {
    Request::new("GET", url).send()
}

/// An HTTP request, built with chained calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    /// A request with `method` (`"GET"`, `"POST"`, ...) for `url`, no headers and no body.
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Sets the body to `value` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Request> {
        let body = serde_json::to_vec(value)?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request and returns the response, whatever its status; fails only if the
    /// host refused or could not send it (not granted, unreachable, timed out, too large).
    pub fn send(&self) -> Result<Response> {
        let req = WitRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        };
        let WitResponse {
            status,
            headers,
            body,
        } = bindings::http_request(&req)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

impl Request {
    /// Sends the request over standard `wasi:http/outgoing-handler` (what any wasi:http client
    /// library does) and returns the response, whatever its status. cpi checks it exactly as
    /// [`send`](Request::send): granted destinations, every redirect hop, the same timeouts and
    /// caps; a refused request fails with
    /// [`ErrorCategory::CapabilityDenied`](crate::ErrorCategory::CapabilityDenied).
    pub fn fetch(&self) -> Result<Response> {
        #[cfg(target_arch = "wasm32")]
        {
            wasi::send(self)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            Err(Error::unsupported(format!(
                "{} {}: wasi:http exists only inside a component",
                self.method, self.url
            )))
        }
    }
}

/// `scheme`, `authority` and `path?query` of an `http://` or `https://` URL (used inside a
/// component; natively only by its tests).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn split_url(url: &str) -> Result<(&str, &str, &str)> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .ok_or_else(|| Error::validation(format!("not an http(s) URL: {url}")))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(Error::validation(format!("no host in the URL {url}")));
    }
    Ok((scheme, authority, path))
}

/// The wasi:http client behind [`Request::fetch`].
#[cfg(target_arch = "wasm32")]
mod wasi {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    use wasip2::io::streams::StreamError;

    use super::{Request, Response, split_url};
    use crate::error::{Error, ErrorCategory, Result};

    /// What a wasi:http failure is, in the standard's categories.
    fn failed(request: &Request, code: ErrorCode) -> Error {
        let category = match code {
            ErrorCode::HttpRequestDenied => ErrorCategory::CapabilityDenied,
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => ErrorCategory::Timeout,
            _ => ErrorCategory::Provider,
        };
        Error::new(
            category,
            format!("{} {}: {code:?}", request.method, request.url),
        )
    }

    fn refused(request: &Request, what: &str) -> Error {
        Error::validation(format!("{} {}: {what}", request.method, request.url))
    }

    pub(super) fn send(req: &Request) -> Result<Response> {
        let (scheme, authority, path) = split_url(&req.url)?;
        let entries: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        let headers = Fields::from_list(&entries)
            .map_err(|e| refused(req, &format!("a header was refused ({e:?})")))?;
        let request = OutgoingRequest::new(headers);
        let method = match req.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let scheme = if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_method(&method)
            .and_then(|()| request.set_scheme(Some(&scheme)))
            .and_then(|()| request.set_authority(Some(authority)))
            .and_then(|()| request.set_path_with_query(Some(path)))
            .map_err(|()| refused(req, "the method or URL was refused"))?;
        let body = request
            .body()
            .map_err(|()| refused(req, "no request body"))?;
        let pending = outgoing_handler::handle(request, None).map_err(|c| failed(req, c))?;
        if let Some(bytes) = &req.body {
            let stream = body.write().map_err(|()| refused(req, "no body stream"))?;
            for chunk in bytes.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error::provider(format!("{} {}: {e:?}", req.method, req.url)))?;
            }
        }
        OutgoingBody::finish(body, None).map_err(|c| failed(req, c))?;
        let response = loop {
            match pending.get() {
                Some(Ok(answer)) => break answer.map_err(|c| failed(req, c))?,
                Some(Err(())) => return Err(refused(req, "the response was taken twice")),
                None => pending.subscribe().block(),
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| refused(req, "no response body"))?;
        let stream = incoming
            .stream()
            .map_err(|()| refused(req, "no response body stream"))?;
        let mut body = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => {
                    return Err(Error::provider(format!(
                        "{} {}: reading the body: {e:?}",
                        req.method, req.url
                    )));
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// An HTTP response, whatever its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received (names as sent by the server).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header called `name` (ignoring case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::provider(format!("the response body is not UTF-8: {e}")))
    }

    /// `Ok(self)` for a 2xx status; otherwise an error categorized exactly as cpi categorizes
    /// a JSON provider's answer ([`cpi_contract::classify_http`]: 401/403 authentication, 404
    /// not found, 429 rate limit, 408/504 timeout, ..., corrected by a body that says "rate
    /// exceeded" or "quota") whose message carries the status and the body.
    pub fn error_for_status(self) -> Result<Response> {
        if self.is_success() {
            return Ok(self);
        }
        let body = String::from_utf8_lossy(&self.body);
        let body = body.trim();
        // Exactly as cpi classifies a JSON provider's answer.
        let category = cpi_contract::classify_http(self.status, body);
        let shown = if body.is_empty() {
            "(empty body)".to_string()
        } else {
            excerpt(body, 1024)
        };
        Err(Error::new(
            category,
            format!("HTTP {}: {shown}", self.status),
        ))
    }

    /// Deserializes a 2xx body as JSON; an error status becomes the error
    /// [`error_for_status`](Response::error_for_status) gives.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        if !self.is_success() {
            return Err(self.clone().error_for_status().unwrap_err());
        }
        Ok(serde_json::from_slice(&self.body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCategory;

    #[test]
    fn urls_split_into_what_wasi_http_asks_for() {
        assert_eq!(
            split_url("http://127.0.0.1:8787/instances?region=eu").unwrap(),
            ("http", "127.0.0.1:8787", "/instances?region=eu")
        );
        assert_eq!(
            split_url("https://api.example.com").unwrap(),
            ("https", "api.example.com", "/")
        );
        assert_eq!(split_url("https://h?x=1").unwrap(), ("https", "h", "?x=1"));
        for bad in ["ftp://h/x", "h/x", "https:///x"] {
            assert_eq!(
                split_url(bad).unwrap_err().category,
                ErrorCategory::Validation,
                "{bad}"
            );
        }
        // Outside a component there is no wasi:http: a clear error, not a panic.
        let err = Request::new("GET", "http://h/x").fetch().unwrap_err();
        assert_eq!(err.category, ErrorCategory::Unsupported);
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn json_and_headers() {
        let r = response(200, r#"[{"id": "w-1"}]"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: Vec<serde_json::Value> = r.json().unwrap();
        assert_eq!(v[0]["id"], "w-1");
    }

    #[test]
    fn error_statuses_are_categorized() {
        let err = response(404, r#"{"error": "no worker w-9"}"#)
            .json::<serde_json::Value>()
            .unwrap_err();
        assert_eq!(err.category, ErrorCategory::ResourceNotFound);
        assert!(err.message.starts_with("HTTP 404: "), "{}", err.message);
        let quota = response(403, "quota exceeded")
            .error_for_status()
            .unwrap_err();
        assert_eq!(quota.category, ErrorCategory::QuotaExceeded);
    }

    #[test]
    fn json_bodies_set_the_content_type() {
        let req = Request::new("POST", "http://h:1/x")
            .json(&serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(req.body.as_deref(), Some(br#"{"a":1}"#.as_slice()));
        assert_eq!(req.headers[0].1, "application/json");
    }
}
