//! `wasi:http/outgoing-handler` for components (wasmtime-wasi-http's `send_request` hook):
//! every request a component sends with its language's own HTTP client (`fetch()`, a wasi:http
//! client crate) is sent by the same [`Gate`](cpi::exec::Gate) as `host.http-request`, so it
//! gets the same grant check (each redirect hop included, in [`cpi::exec::http::follow`]),
//! refused connection headers, timeouts, body caps, TLS policy and error classification. There
//! is no second sender: the crate's own (`default-send-request`) is not built.
//!
//! A refused request is a `CapabilityDeniedError` the host records for the call (as for
//! `host.http-request`), whatever the guest makes of the `http-request-denied` it gets.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use super::host::{CallContext, EFFECT_CALL_FUEL, record_denial};
use super::wait::CallDeadline;
use cpi::error::{Error, ErrorKind};
use cpi::exec::gate::FORBIDDEN_HEADERS;
use cpi::exec::http::{RawResponse, Request, Tls};

/// What `send_request` returns: the response and the future of its body's end.
type Sent = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
)>;

/// The hooks of one call's store: the call's gate and scope, the slot its first denial goes
/// to, and the fuel its host calls were charged.
pub(super) struct GateHooks {
    pub(super) ctx: Arc<CallContext>,
    pub(super) denied: Arc<Mutex<Option<Error>>>,
    pub(super) host_fuel: Arc<AtomicU64>,
    pub(super) fuel_budget: u64,
    /// The call's deadline: a request takes no longer than the call has left.
    pub(super) deadline: CallDeadline,
}

impl WasiHttpHooks for GateHooks {
    /// wasi:http's own list plus the gate's [`FORBIDDEN_HEADERS`] (but `Content-Length`,
    /// which wasi:http checks against the body and the gate drops): a guest cannot even set
    /// them, so the request the gate sees never names another host or frames its own body.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(forbidden)
    }

    /// The gate sets `Host` from the URL it checked.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let used = self
            .host_fuel
            .fetch_add(EFFECT_CALL_FUEL, Ordering::Relaxed)
            .saturating_add(EFFECT_CALL_FUEL);
        if used >= self.fuel_budget {
            // The epoch check stops the call at its next tick.
            return Box::new(async { Err(HttpError::ConnectionLimitReached) });
        }
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let method = parts.method.to_string();
        let headers = match headers(&parts.headers) {
            Ok(headers) => headers,
            Err(err) => return Box::new(async move { Err(err) }),
        };
        let ctx = self.ctx.clone();
        // The first hop is checked before anything else happens, so a refused request is
        // recorded even if the guest never waits for its answer.
        let probe = Request {
            method: &method,
            url: &url,
            headers: &headers,
            body: None,
            tls: &Tls::default(),
        };
        if let Err(err) = ctx.gate.check_request(&ctx.scope, &probe) {
            record(&ctx, &self.denied, &err);
            return Box::new(async move { Err(error_code(&err)) });
        }
        let denied = self.denied.clone();
        let max = ctx.gate.limits().max_output;
        // The gate's limit, cut to what the call has left: the guest waiting for the answer
        // wakes by the deadline anyway (see `wait`), and the request then stops too.
        let timeout = ctx.gate.limits().timeout.min(self.deadline.left());
        let task = {
            let ctx = ctx.clone();
            ctx.handle.clone().spawn(async move {
                let sent = async {
                    let body = collect(body, max, &url).await?;
                    let tls = Tls::default();
                    let req = Request {
                        method: &method,
                        url: &url,
                        headers: &headers,
                        body: body.as_deref(),
                        tls: &tls,
                    };
                    ctx.gate.fetch(&ctx.scope, &req).await
                };
                tokio::time::timeout(timeout, sent)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Timeout,
                            format!("{method} {url} did not complete within {timeout:?}"),
                        ))
                    })
            })
        };
        // Dropped with the guest's future: a request the guest gave up on stops.
        let task = wasmtime_wasi::runtime::AbortOnDropJoinHandle::from(task);
        Box::new(async move {
            match task.await {
                Ok(raw) => Ok((
                    response(raw)?,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                )),
                Err(err) => {
                    record(&ctx, &denied, &err);
                    Err(error_code(&err))
                }
            }
        })
    }
}

/// Whether a guest may not set the header `name` (see [`GateHooks::forbidden_header_filter`]).
fn forbidden(name: &http::HeaderName) -> bool {
    DEFAULT_FORBIDDEN_HEADERS.contains(name)
        || (name != http::header::CONTENT_LENGTH && FORBIDDEN_HEADERS.contains(&name.as_str()))
}

/// Remembers a capability denial for the call (see [`record_denial`]).
fn record(ctx: &CallContext, denied: &Mutex<Option<Error>>, err: &Error) {
    if err.kind() == ErrorKind::CapabilityDenied {
        record_denial(ctx, denied, err);
    }
}

/// The request's headers as the gate takes them: `Host` (the gate sets it from the URL) and
/// `Content-Length` (it frames the body itself) left out; a value that is not text refused.
fn headers(map: &http::HeaderMap) -> Result<Vec<(String, String)>, HttpError> {
    map.iter()
        .filter(|(name, _)| *name != http::header::HOST && *name != http::header::CONTENT_LENGTH)
        .map(|(name, value)| {
            let value = value
                .to_str()
                .map_err(|_| HttpError::HttpRequestHeaderSize {
                    field_name: Some(name.to_string()),
                    field_size: None,
                })?;
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

/// The guest's request body, at most `max` bytes (the gate's output cap); none when empty.
async fn collect(body: WasiBody, max: usize, url: &str) -> cpi::Result<Option<Vec<u8>>> {
    let bytes = Limited::new(body, max)
        .collect()
        .await
        .map_err(|err| {
            Error::provider(format!(
                "the body of a request to {url} could not be read (at most {max} bytes): {err}"
            ))
            .with_detail("limit_bytes", max)
        })?
        .to_bytes();
    Ok((!bytes.is_empty()).then(|| bytes.to_vec()))
}

/// The gate's answer as a wasi:http response (the body already read, within the cap).
fn response(raw: RawResponse) -> wasmtime_wasi_http::Result<http::Response<WasiBody>> {
    let mut builder = http::Response::builder().status(raw.status);
    for (name, value) in &raw.headers {
        let hop_by_hop = ["connection", "keep-alive", "transfer-encoding", "upgrade"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
        if !hop_by_hop {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    let body = Full::new(Bytes::from(raw.body))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder
        .body(body)
        .map_err(|err| HttpError::InternalError(Some(err.to_string())))
}

/// The wasi:http error code a gate error stands for; the message goes with the ones that
/// carry text.
fn error_code(err: &Error) -> HttpError {
    match err.kind() {
        ErrorKind::CapabilityDenied => HttpError::HttpRequestDenied,
        ErrorKind::Timeout => HttpError::HttpResponseTimeout,
        _ if err.details().get("limit_bytes").is_some() => HttpError::HttpResponseBodySize(None),
        _ => HttpError::InternalError(Some(err.message().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_errors_map_onto_wasi_http_error_codes() {
        let denied = Error::new(ErrorKind::CapabilityDenied, "not granted");
        assert!(matches!(error_code(&denied), HttpError::HttpRequestDenied));
        let late = Error::new(ErrorKind::Timeout, "too slow");
        assert!(matches!(error_code(&late), HttpError::HttpResponseTimeout));
        let big = Error::provider("too big").with_detail("limit_bytes", 10);
        assert!(matches!(
            error_code(&big),
            HttpError::HttpResponseBodySize(None)
        ));
        match error_code(&Error::provider("cannot connect")) {
            HttpError::InternalError(Some(text)) => assert_eq!(text, "cannot connect"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connection_headers_are_forbidden_to_the_guest_but_content_length_is_not() {
        for name in ["host", "connection", "te", "trailer", "expect", "upgrade"] {
            assert!(forbidden(&http::HeaderName::from_static(name)), "{name}");
        }
        for name in ["content-length", "authorization", "accept"] {
            assert!(!forbidden(&http::HeaderName::from_static(name)), "{name}");
        }
    }
}
