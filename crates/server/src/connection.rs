//! Connections whose every error is JSON, even the ones hyper answers itself.
//!
//! hyper answers a request it cannot parse before any routing, with an empty body: a
//! request line over 64 KiB (414), a head too large or with too many headers (431), a
//! malformed request (400). [`ApiListener`] wraps each accepted connection in an
//! [`ApiConnection`], which recognises that answer when hyper writes it (its exact status
//! line and headers, alone in one write) and writes the same status with the API's JSON
//! error instead. Every other byte goes through untouched and unbuffered, so streams (SSE)
//! and WebSockets on the same connections are not slowed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use agentbox_protocol::api::{ErrorBody, ErrorDetail};
use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The statuses hyper answers by itself, with the code and message the API gives them.
const HYPER_ERRORS: [(&str, &str, &str); 3] = [
    (
        "400 Bad Request",
        "malformed_request",
        "The request is not valid HTTP: its request line or a header could not be parsed.",
    ),
    (
        "414 URI Too Long",
        "uri_too_long",
        "The request's URL is too long: it must be shorter than 64 KiB.",
    ),
    (
        "431 Request Header Fields Too Large",
        "headers_too_large",
        "The request's headers are too large, or there are too many of them.",
    ),
];

/// What follows hyper's status line in its own answers, up to the date's value.
const HYPER_HEADERS: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\ndate: ";
/// An HTTP date (`Tue, 01 Dec 2026 21:26:50 GMT`) is always this long.
const DATE_LEN: usize = 29;

/// A listener whose connections are [`ApiConnection`]s: serve the API with
/// `axum::serve(ApiListener(listener), app)`.
pub struct ApiListener<L>(pub L);

impl<L: Listener> Listener for ApiListener<L> {
    type Io = ApiConnection<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, address) = self.0.accept().await;
        (ApiConnection { io, replacement: None }, address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// One connection: reads pass through; writes too, except hyper's own error answers.
pub struct ApiConnection<Io> {
    io: Io,
    /// The JSON answer written in place of hyper's, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<Io: AsyncWrite + Unpin> ApiConnection<Io> {
    /// Writes what is left of the replacement; ready once all of it is out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.replacement {
            if *written == answer.len() {
                self.replacement = None;
                break;
            }
            match ready!(Pin::new(&mut self.io).poll_write(cx, &answer[*written..]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes over `data` if it is one of hyper's own error answers: hyper is told that all
    /// of it was written, and the JSON answer goes out in its place.
    fn replace(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let answer = json_answer(data)?;
        self.replacement = Some((answer, 0));
        // Whatever does not fit now goes out with the flush hyper makes next.
        Some(match self.poll_replacement(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            _ => Poll::Ready(Ok(data.len())),
        })
    }
}

/// The JSON answer for `data` if `data` is exactly an error answer of hyper's own.
fn json_answer(data: &[u8]) -> Option<Vec<u8>> {
    let rest = data.strip_prefix(b"HTTP/1.1 ")?;
    let (status, code, message) =
        HYPER_ERRORS.iter().find(|(status, _, _)| rest.starts_with(status.as_bytes()))?;
    let rest = rest[status.len()..].strip_prefix(HYPER_HEADERS)?;
    let date = rest.strip_suffix(b"\r\n\r\n").filter(|date| date.len() == DATE_LEN)?;
    let body = ErrorBody {
        error: ErrorDetail { code: (*code).to_owned(), message: (*message).to_owned() },
    };
    let body = serde_json::to_vec(&body).ok()?;
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\ndate: ",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(date);
    answer.extend_from_slice(b"\r\n\r\n");
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<Io: AsyncRead + Unpin> AsyncRead for ApiConnection<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for ApiConnection<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if let Some(replaced) = this.replace(cx, buf) {
            return replaced;
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        let mut filled = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && let Some(replaced) = this.replace(cx, only)
        {
            return replaced;
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const HYPER_414: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\n\
        content-length: 0\r\ndate: Tue, 01 Dec 2026 21:26:50 GMT\r\n\r\n";

    /// Writes `data` through an [`ApiConnection`] over a pipe that takes a few bytes at a
    /// time; returns what came out.
    async fn through(data: &'static [u8]) -> Vec<u8> {
        let (near, mut far) = tokio::io::duplex(7);
        let mut connection = ApiConnection { io: near, replacement: None };
        let writer = tokio::spawn(async move {
            connection.write_all(data).await.unwrap();
            connection.shutdown().await.unwrap();
        });
        let mut out = Vec::new();
        far.read_to_end(&mut out).await.unwrap();
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn hypers_own_answer_becomes_json_even_when_it_goes_out_in_pieces() {
        let out = String::from_utf8(through(HYPER_414).await).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Tue, 01 Dec 2026 21:26:50 GMT"), "{head}");
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "uri_too_long");
    }

    #[tokio::test]
    async fn everything_else_passes_untouched() {
        // An answer of the app, and hyper's answer with something after it (so part of
        // something larger), are not hyper's own error answer.
        let app: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
            content-length: 2\r\n\r\n{}";
        assert_eq!(through(app).await, app);
        let longer: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\n\
            content-length: 0\r\ndate: Tue, 01 Dec 2026 21:26:50 GMT\r\n\r\nmore";
        assert_eq!(through(longer).await, longer);
        assert_eq!(through(b"data: {}\n\n").await, b"data: {}\n\n");
    }
}

/// The peer of a connection, as handlers see it (`ConnectInfo<PeerAddress>`): serve with
/// `app.into_make_service_with_connect_info::<PeerAddress>()`.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddress(pub std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, ApiListener<tokio::net::TcpListener>>,
    > for PeerAddress
{
    fn connect_info(
        stream: axum::serve::IncomingStream<'_, ApiListener<tokio::net::TcpListener>>,
    ) -> Self {
        Self(*stream.remote_addr())
    }
}
