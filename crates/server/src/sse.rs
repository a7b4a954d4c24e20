//! Server-sent events written as bytes: the frames of `text/event-stream` and the response
//! that carries them.
//!
//! axum's `Sse` takes an `Event` per frame, which its builder copies into a buffer of its
//! own; a chat event fanned out to 1,000 streams would be serialised and copied 1,000
//! times. Frames rendered here are `Bytes`, so one rendering can be shared by every stream
//! (see `agentbox_bus::Published`). The wire format is the one `Sse` writes: `id: `,
//! `event: ` and `data: ` lines, a blank line, and `: keep-alive` comments.

use std::convert::Infallible;
use std::io::Write as _;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use serde::Serialize;

/// The comment sent while a stream is idle, so proxies and clients see it is alive.
pub(crate) const KEEP_ALIVE: Bytes = Bytes::from_static(b": keep-alive\n\n");

/// One event's frame: `id` (absent for events that are in no log), `event` its type, `data`
/// the value as one line of JSON (serde_json's compact form escapes every newline).
pub(crate) fn frame(id: Option<i64>, kind: &str, data: &impl Serialize) -> Bytes {
    let mut frame = Vec::with_capacity(256);
    if let Some(id) = id {
        // Writing to a Vec cannot fail.
        let _ = writeln!(frame, "id: {id}");
    }
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(kind.as_bytes());
    frame.extend_from_slice(b"\ndata: ");
    let data_start = frame.len();
    if let Err(err) = serde_json::to_writer(&mut frame, data) {
        tracing::error!(%err, kind, "an event did not serialize");
        frame.truncate(data_start);
        frame.extend_from_slice(b"{}");
    }
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// `event: reconnect`: this server is going away; connect again (elsewhere, or here in a
/// moment) with `Last-Event-ID`. `retry` tells a browser's EventSource how long to wait.
pub(crate) fn reconnect() -> Bytes {
    Bytes::from_static(b"retry: 1000\nevent: reconnect\ndata: {\"reason\":\"shutting_down\"}\n\n")
}

/// A `text/event-stream` response whose body is `frames`, written as they come.
pub(crate) fn response(frames: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    use futures::StreamExt as _;
    (
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
        Body::from_stream(frames.map(Ok::<_, Infallible>)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::response::sse::{Event, KeepAlive, Sse};

    use super::*;

    /// What axum's `Sse` writes for `event`, the format this module must keep.
    async fn axum_writes(event: Event) -> Bytes {
        let events = futures::stream::iter([Ok::<_, Infallible>(event)]);
        let response = Sse::new(events)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
            .into_response();
        axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()
    }

    #[tokio::test]
    async fn frames_are_what_axum_writes() {
        let data = serde_json::json!({"text": "two\nlines \u{0} é"});
        let json = serde_json::to_string(&data).unwrap();
        let durable = Event::default().id("7").event("assistant_text").data(&json);
        assert_eq!(frame(Some(7), "assistant_text", &data), axum_writes(durable).await);
        let transient = Event::default().event("assistant_text_delta").data(&json);
        assert_eq!(frame(None, "assistant_text_delta", &data), axum_writes(transient).await);
        assert_eq!(KEEP_ALIVE, axum_writes(Event::default().comment("keep-alive")).await);
    }
}
