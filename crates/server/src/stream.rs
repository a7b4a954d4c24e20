//! The chat's live event stream (SSE) and its interruption.
//!
//! A client gets exactly the events after the one it names (`Last-Event-ID` header or
//! `?last_event_id=`; everything when it names none), first from the durable log and then
//! live, without a gap or a duplicate: the handler subscribes to the bus *before* reading
//! the log, skips live events it already sent, and goes back to the log whenever it sees a
//! gap or lags behind the bus.
//!
//! A live event is rendered as an SSE frame once per node, by whichever of its chat's
//! streams writes it first, and the others write the same bytes (`Published::rendered`):
//! with 1,000 streams on one chat that is what delivery costs, not 1,000 serialisations.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use agentbox_bus::{Received, Subscription};
use agentbox_protocol::TransientEvent;
use agentbox_protocol::event::ChatEvent;
use agentbox_store::Store;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::{Instant, Sleep};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::ApiError;
use crate::extract::{ApiQuery, ChatId};
use crate::messages::{InterruptResponse, interrupt};
use crate::sse;
use crate::state::AppState;

/// Events read from the log per query while catching up.
const PAGE: usize = 500;
/// A catch-up chunk stops growing past this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream_events, interrupt_turn))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Same as the `Last-Event-ID` header, for clients that cannot set headers.
    last_event_id: Option<String>,
    /// Also send the assistant's text and thinking as the model writes them:
    /// `assistant_text_delta` and `assistant_thinking_delta` events (`{type, message_id,
    /// text}`) without an `id`, which are in no log and never replayed; the `assistant_text`
    /// or `assistant_thinking` event that follows carries the whole block.
    #[serde(default)]
    deltas: bool,
}

/// The chat's events as `text/event-stream`: `id` is the event's `seq`, `event` its type,
/// `data` the event as JSON. Stays open; sends keep-alive comments while idle. With
/// `deltas=true`, also the transient `assistant_text_delta` events (no `id`). When the
/// server begins to shut down it sends `event: reconnect` (no `id`, `data`
/// `{"reason":"shutting_down"}`) and closes: the client connects again with its
/// `Last-Event-ID` and misses nothing.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/stream", tag = "messages",
    params(("chat_id" = Uuid, Path), StreamQuery,
           ("Last-Event-ID" = Option<i64>, Header, description = "Send only events after this seq")),
    responses((status = 200, content_type = "text/event-stream", body = ChatEvent),
              (status = 400, description = "invalid_last_event_id"), (status = 404)),
    security(("bearer" = [])))]
async fn stream_events(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    let header = headers.get("last-event-id").map(|v| v.to_str().unwrap_or("invalid").to_owned());
    let last_sent = match header.or(query.last_event_id) {
        None => 0,
        Some(text) => text.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_last_event_id",
                "Last-Event-ID must be a non-negative integer.",
            )
        })?,
    };
    // Subscribe before the first read of the log, so nothing committed in between is missed.
    let subscription = state.bus.subscribe(chat_id).await;
    let tail = Tail::new(subscription, state.store.clone(), chat_id, last_sent, query.deltas);
    let open = crate::metrics::OpenConnection::new("sse");
    let draining = state.draining.clone();
    let frames = futures::stream::unfold(tail, |mut tail| async move {
        let frame = tail.next().await?;
        Some((frame, tail))
    })
    // When a shutdown begins the client is told to reconnect (to another node, or to this
    // one once it is back) with its `Last-Event-ID`, and the stream ends.
    .take_until(state.draining.clone().cancelled_owned())
    .chain(
        futures::stream::once(async move {
            drop(open);
            draining.is_cancelled().then(sse::reconnect)
        })
        .filter_map(std::future::ready),
    )
    // Ends at shutdown, and at once when the user is disabled.
    .take_until(state.accounts.connection(&state.shutdown, user.0.id).cancelled_owned());
    Ok(sse::response(frames))
}

/// Interrupt the running turn (same as `POST .../interrupt` in other APIs).
#[utoipa::path(delete, path = "/api/v1/chats/{chat_id}/stream", tag = "messages",
    params(("chat_id" = Uuid, Path)),
    responses((status = 202, body = InterruptResponse), (status = 404),
              (status = 409, description = "no_running_turn")),
    security(("bearer" = [])))]
async fn interrupt_turn(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<(StatusCode, Json<InterruptResponse>), ApiError> {
    interrupt(&state, &user, chat_id).await
}

struct Tail {
    subscription: Subscription,
    store: Store,
    chat_id: Uuid,
    last_sent: i64,
    backlog: VecDeque<ChatEvent>,
    catch_up: bool,
    /// Whether the client asked for transient events.
    deltas: bool,
    keep_alive_every: Duration,
    /// When the last frame was written.
    last_write: Instant,
    /// Fires at the latest `KEEP_ALIVE` after the last write, often earlier: it is moved
    /// only when it fires, not on every frame, which would take the timer driver's lock
    /// once per event per stream.
    keep_alive: Pin<Box<Sleep>>,
}

impl Tail {
    fn new(
        subscription: Subscription,
        store: Store,
        chat_id: Uuid,
        last_sent: i64,
        deltas: bool,
    ) -> Self {
        Self::with_keep_alive(subscription, store, chat_id, last_sent, deltas, KEEP_ALIVE)
    }

    fn with_keep_alive(
        subscription: Subscription,
        store: Store,
        chat_id: Uuid,
        last_sent: i64,
        deltas: bool,
        keep_alive_every: Duration,
    ) -> Self {
        Self {
            subscription,
            store,
            chat_id,
            last_sent,
            backlog: VecDeque::new(),
            catch_up: true,
            deltas,
            keep_alive_every,
            last_write: Instant::now(),
            keep_alive: Box::pin(tokio::time::sleep(keep_alive_every)),
        }
    }

    /// The next frame to write; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        let frame = self.next_frame().await?;
        self.last_write = Instant::now();
        Some(frame)
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if !self.backlog.is_empty() {
                // From the log: this stream's own, so rendered for it alone, and the page's
                // frames written as one chunk (one write per event made replays of long
                // chats slow; docs/benchmarks.md).
                // Bounded, so that a page of large events is not one huge buffer.
                let mut chunk = Vec::new();
                while chunk.len() < CHUNK_BYTES {
                    let Some(event) = self.backlog.pop_front() else { break };
                    if event.seq > self.last_sent {
                        self.last_sent = event.seq;
                        chunk.extend_from_slice(&durable_frame(&event));
                    }
                }
                if !chunk.is_empty() {
                    return Some(Bytes::from(chunk));
                }
                continue;
            }
            if self.catch_up {
                let page = self.store.events_after(self.chat_id, self.last_sent, PAGE as i64).await;
                match page {
                    Ok(events) => {
                        self.catch_up = events.len() == PAGE;
                        self.backlog = events.into();
                        continue;
                    }
                    Err(err) => {
                        // End the stream; the client reconnects with its Last-Event-ID.
                        tracing::error!(chat_id = %self.chat_id, %err, "reading the event log failed");
                        return None;
                    }
                }
            }
            // Waiting on the bus is the only place a stream sits idle. `recv` is
            // cancel-safe, so giving up on it for a keep-alive loses nothing.
            let received = tokio::select! {
                biased;
                received = self.subscription.recv() => received,
                () = self.keep_alive.as_mut() => {
                    let due = self.last_write + self.keep_alive_every;
                    let now = Instant::now();
                    if now >= due {
                        self.keep_alive.as_mut().reset(now + self.keep_alive_every);
                        return Some(sse::KEEP_ALIVE);
                    }
                    self.keep_alive.as_mut().reset(due);
                    continue;
                }
            };
            match received {
                Received::Event(event) if event.seq <= self.last_sent => {}
                Received::Event(event) if event.seq == self.last_sent + 1 => {
                    self.last_sent = event.seq;
                    return Some(event.rendered(durable_frame));
                }
                // A gap or a lag: the log has what we missed, in order.
                Received::Event(_) | Received::Lagged => self.catch_up = true,
                // Only live: while catching up they would arrive after their own block.
                Received::Transient(event) if self.deltas && !self.catch_up => {
                    return Some(event.rendered(transient_frame));
                }
                Received::Transient(_) => {}
            }
        }
    }
}

/// A logged event's frame; its `id` is its `seq`.
fn durable_frame(event: &ChatEvent) -> Bytes {
    sse::frame(Some(event.seq), event.payload.kind(), event)
}

/// A transient event's frame, without `id`: it is in no log, so `Last-Event-ID` must never
/// name it.
fn transient_frame(event: &TransientEvent) -> Bytes {
    sse::frame(None, event.kind(), event)
}

#[cfg(test)]
mod tests {
    use agentbox_bus::EventBus;
    use agentbox_protocol::EventPayload;

    use super::*;

    /// An idle stream sends a keep-alive once the interval has passed since its last frame,
    /// never earlier, also when the timer set before that frame fires first.
    #[tokio::test]
    async fn idle_streams_send_keep_alives_an_interval_after_the_last_frame() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db.sqlite").to_str().unwrap()).await.unwrap();
        let bus = EventBus::new();
        let chat_id = Uuid::new_v4();
        let every = Duration::from_millis(200);
        let subscription = bus.subscribe(chat_id).await;
        let started = Instant::now();
        let mut tail = Tail::with_keep_alive(subscription, store, chat_id, 0, false, every);
        // The chat does not exist, so its log is empty.
        assert_eq!(tail.next().await, Some(sse::KEEP_ALIVE));
        assert!(started.elapsed() >= every);

        // An event half-way through the next interval: the timer still fires at its end,
        // finds the stream not idle for long enough, and waits on.
        tokio::time::sleep(every / 2).await;
        let before_event = Instant::now();
        let event = ChatEvent {
            seq: 1,
            message_id: Uuid::nil(),
            parent_tool_use_id: None,
            created_at: chrono::Utc::now(),
            payload: EventPayload::AssistantText { text: "hi".into() },
        };
        bus.publish(chat_id, event.clone());
        assert_eq!(tail.next().await, Some(durable_frame(&event)));
        assert_eq!(tail.next().await, Some(sse::KEEP_ALIVE));
        assert!(before_event.elapsed() >= every);
    }
}
