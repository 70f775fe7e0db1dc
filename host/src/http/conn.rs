//! One TCP connection's life around hyper: what happens to the socket when
//! hyper lets go of it.
//!
//! Hyper ends a connection in two ways that leave the client without an
//! answer it can read, and both are handled here once hyper hands the socket
//! back:
//!
//! - Its header-read deadline passes (slowloris). Hyper closes without a
//!   word; a client that had begun a request gets a 408 here. An idle
//!   keep-alive connection is closed silently, as a 408 there could be taken
//!   for the answer to the client's next request.
//! - A request body is refused unread (413). Closing a socket whose receive
//!   buffer still holds data makes the kernel send a reset, and a client
//!   that writes its whole body before reading (Python's urllib does) sees
//!   "connection reset" instead of the 413. So the socket lingers: its write
//!   side is shut and what the client still sends is read and thrown away,
//!   for at most [`LINGER_TIME`] and [`LINGER_BYTES`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A lingering socket is closed this long after hyper let it go at the latest.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// ... or once the client has sent this much more.
pub const LINGER_BYTES: usize = 64 * 1024 * 1024;
/// ... or once the client has sent nothing for this long.
const LINGER_IDLE: Duration = Duration::from_secs(1);

/// A connection's socket as hyper uses it; the socket comes back through
/// [`Returned`] when hyper drops it.
pub struct Socket {
    stream: Option<TcpStream>,
    /// Bytes came in since the last answer went out: a request is under way.
    mid_request: bool,
    back: Option<oneshot::Sender<(TcpStream, bool)>>,
}

/// Where a [`Socket`] comes back, with what the connection's requests asked
/// for its end.
pub struct Returned {
    socket: oneshot::Receiver<(TcpStream, bool)>,
    linger: Arc<AtomicBool>,
}

/// Set by the service when it answers without reading the body: the socket
/// lingers once hyper is done.
#[derive(Clone)]
pub struct LingerFlag(Arc<AtomicBool>);

impl LingerFlag {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Wraps an accepted stream.
pub fn wrap(stream: TcpStream) -> (Socket, Returned, LingerFlag) {
    let (back, socket) = oneshot::channel();
    let linger = Arc::new(AtomicBool::new(false));
    (
        Socket {
            stream: Some(stream),
            mid_request: false,
            back: Some(back),
        },
        Returned {
            socket,
            linger: linger.clone(),
        },
        LingerFlag(linger),
    )
}

impl Returned {
    /// Runs once hyper's connection future has finished with `ended`: answers
    /// a request cut off by the header deadline, and lingers when asked to.
    pub async fn finish(self, ended: &Result<(), hyper::Error>, header_timeout: Duration) {
        let Ok((mut stream, mid_request)) = self.socket.await else {
            return;
        };
        let header_deadline_passed = matches!(ended, Err(e) if e.is_timeout());
        if header_deadline_passed && mid_request {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                stream.write_all(&header_timeout_answer(header_timeout)),
            )
            .await;
            let _ = stream.shutdown().await;
        } else if self.linger.load(Ordering::Relaxed) {
            let _ = stream.shutdown().await;
            let _ = tokio::time::timeout(LINGER_TIME, drain(&mut stream)).await;
        }
    }
}

/// Reads and drops what the client sends until it stops, closes, or has sent
/// [`LINGER_BYTES`].
async fn drain(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    while total < LINGER_BYTES {
        match tokio::time::timeout(LINGER_IDLE, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => return,
        }
    }
}

/// The 408 for a request whose headers did not arrive in time, written on the
/// socket directly (hyper has given up on the connection).
fn header_timeout_answer(limit: Duration) -> Vec<u8> {
    let body = serde_json::json!({
        "error": "invalid_request",
        "error_description": format!(
            "the request headers were not received within {} ms",
            limit.as_millis()
        ),
    })
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n\
         cache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Socket {
    /// The stream; it is only taken when the socket is dropped, so a poll
    /// never finds it gone, and would get an error rather than a panic if one did.
    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.stream
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

/// `?` for a poll function: an error out of `stream()` is the poll's result.
macro_rules! stream_or_ready {
    ($socket:expr) => {
        match $socket.stream() {
            Ok(s) => s,
            Err(e) => return Poll::Ready(Err(e)),
        }
    };
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let (Some(stream), Some(back)) = (self.stream.take(), self.back.take()) {
            let _ = back.send((stream, self.mid_request));
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = stream_or_ready!(self).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.mid_request = true;
        }
        polled
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = stream_or_ready!(self).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.mid_request = false;
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = stream_or_ready!(self).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.mid_request = false;
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        stream_or_ready!(self).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        stream_or_ready!(self).poll_shutdown(cx)
    }
}
