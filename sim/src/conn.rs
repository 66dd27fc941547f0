//! Connection-level faults: a listener whose connections a request handler can reset, and
//! response bodies cut short of their `Content-Length`.
//!
//! Status codes and bad bodies can be produced by an ordinary handler; a reset (the socket
//! closed with no response at all) and a truncated body (fewer bytes than `Content-Length`
//! promised, then a closed connection) need control below HTTP, which this module provides.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::serve::IncomingStream;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a truncated body's first part has to reach the client before the connection is
/// closed (hyper drops unflushed bytes when a body ends early).
const TRUNCATE_PAUSE: Duration = Duration::from_millis(30);

/// A TCP listener whose connections carry a [`ConnHandle`].
pub(crate) struct FaultListener(pub(crate) TcpListener);

impl axum::serve::Listener for FaultListener {
    type Io = FaultIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (FaultIo, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = FaultIo {
                        stream,
                        reset: Arc::new(AtomicBool::new(false)),
                    };
                    return (io, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "cpi-sim: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A connection that refuses to write anything once it has been marked for reset: the server
/// then drops it, and with `SO_LINGER` 0 the kernel answers with a TCP RST.
pub(crate) struct FaultIo {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl FaultIo {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "cpi-sim: injected connection reset",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// What a handler sees of its connection (a request extension, via `ConnectInfo`).
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle(Arc<AtomicBool>);

impl ConnHandle {
    /// Marks the connection for reset: whatever response follows is never written.
    pub(crate) fn reset(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, FaultListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        ConnHandle(stream.io().reset.clone())
    }
}

/// A response body that stops half-way through: `Content-Length` announces all of `body`,
/// only the first half is sent, then the connection is closed.
pub(crate) fn truncated(mut resp: Response, body: Bytes) -> Response {
    let sent = body.slice(..body.len() / 2);
    *resp.body_mut() = Body::from_stream(Truncated {
        chunk: (!sent.is_empty()).then_some(sent),
        pause: Box::pin(tokio::time::sleep(TRUNCATE_PAUSE)),
    });
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len().max(1)));
    resp
}

/// The stream behind [`truncated`]: one chunk, a pause so it is flushed, then an early end.
struct Truncated {
    chunk: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Stream for Truncated {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(chunk) = this.chunk.take() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        this.pause.as_mut().poll(cx).map(|()| None)
    }
}

/// `body` made invalid UTF-8 while keeping its shape: a 0xFF byte right after the first `"`
/// (or in front when there is none).
pub(crate) fn non_utf8(body: &[u8]) -> Bytes {
    let at = body.iter().position(|&b| b == b'"').map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&body[at..]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_bodies_keep_their_shape_but_fail_to_decode() {
        let out = non_utf8(br#"{"name":"x"}"#);
        assert!(std::str::from_utf8(&out).is_err());
        assert_eq!(&out[..2], b"{\"");
        assert_eq!(&out[2..4], [0xFF, 0xFE]);
        assert!(std::str::from_utf8(&non_utf8(b"true")).is_err());
        assert!(std::str::from_utf8(&non_utf8(b"")).is_err());
    }
}
