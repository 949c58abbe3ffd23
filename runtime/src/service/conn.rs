//! The request header timeout: each accepted connection gets `header_timeout` to deliver a
//! request's header, counted from when it is ready for one (accepted, or its previous
//! response written), however the bytes trickle in. A connection past it is closed, so slow
//! clients (and idle keep-alive connections) cannot hold the service's connections for good.
//!
//! hyper has `header_read_timeout`, but `axum::serve` builds hyper's connection without the
//! timer it needs, so it never fires; the listener wraps each connection instead. The body
//! timeout is a middleware (`http::body_deadline`), which knows where the body starts.
//!
//! The wrapper sees bytes, not requests: the header ends at the first empty line (`\r\n\r\n`
//! or `\n\n`) after a request's first byte, and the next request is awaited once the
//! server writes a final response (a `1xx` interim response such as `100 Continue` does not
//! count). A pipelined request whose header was read along with the previous request's is
//! judged by the clock of its body instead; no common client pipelines.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// A TCP listener whose connections enforce the header timeout.
#[derive(Debug)]
pub(crate) struct TimeoutListener {
    inner: TcpListener,
    header_timeout: Duration,
}

impl TimeoutListener {
    pub fn new(inner: TcpListener, header_timeout: Duration) -> TimeoutListener {
        TimeoutListener {
            inner,
            header_timeout,
        }
    }
}

impl axum::serve::Listener for TimeoutListener {
    type Io = TimedConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TimedConn, SocketAddr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (TimedConn::new(io, self.header_timeout), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One connection: reads fail with `TimedOut` once a header is overdue.
#[derive(Debug)]
pub(crate) struct TimedConn {
    io: TcpStream,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// Waiting for (the rest of) a request's header: the deadline runs.
    awaiting_header: bool,
    header: HeaderScan,
}

/// Finds the end of a request's header in the bytes as they arrive.
#[derive(Debug, Clone, Copy)]
struct HeaderScan {
    /// A byte other than a line end was seen since the request began.
    started: bool,
    /// The current line holds nothing but `\r` so far.
    line_empty: bool,
}

impl HeaderScan {
    const NEW: HeaderScan = HeaderScan {
        started: false,
        line_empty: true,
    };

    /// Feeds newly read bytes; `true` once the header is complete.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            match b {
                b'\n' if self.started && self.line_empty => return true,
                b'\n' => self.line_empty = true,
                b'\r' => {}
                _ => {
                    self.started = true;
                    self.line_empty = false;
                }
            }
        }
        false
    }
}

impl TimedConn {
    fn new(io: TcpStream, timeout: Duration) -> TimedConn {
        TimedConn {
            io,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            awaiting_header: true,
            header: HeaderScan::NEW,
        }
    }

    /// The server wrote `first` (the start of a write): unless it is an interim `1xx`
    /// response, the next request's header is awaited from now.
    fn wrote(&mut self, first: &[u8]) {
        if first.starts_with(b"HTTP/1.1 1") || first.starts_with(b"HTTP/1.0 1") {
            return;
        }
        self.awaiting_header = true;
        self.header = HeaderScan::NEW;
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
    }
}

impl AsyncRead for TimedConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.awaiting_header && this.deadline.as_mut().poll(cx).is_ready() {
            tracing::debug!("request header not received in time; closing the connection");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request header timeout",
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if this.awaiting_header && this.header.feed(&buf.filled()[before..]) {
            this.awaiting_header = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TimedConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        if n > 0 {
            this.wrote(buf);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        if n > 0 {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            this.wrote(first);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_ends(chunks: &[&[u8]]) -> bool {
        let mut scan = HeaderScan::NEW;
        chunks.iter().any(|c| scan.feed(c))
    }

    #[test]
    fn the_header_ends_at_the_first_empty_line() {
        assert!(header_ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]));
        assert!(header_ends(&[
            b"GET / HTTP/1.1\r\nHost: a\r",
            b"\n",
            b"\r\n"
        ]));
        assert!(header_ends(&[b"GET / HTTP/1.1\nHost: a\n\n"]));
        assert!(!header_ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]));
        assert!(!header_ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r"]));
        // Empty lines before a request are not its end.
        assert!(!header_ends(&[b"\r\n\r\n", b"GET / HTTP/1.1\r\n"]));
    }
}
