//! On an API node, a chat's files, terminals and sandbox are served by the worker that
//! holds its sandbox (`chats.sandbox_node_id`): [`to_sandbox_node`] sends the request to
//! that worker's internal API ([`crate::internal`]) with a node credential naming the
//! signed-in user, streaming the bodies both ways, and bridges a terminal's WebSocket frame
//! by frame. A chat bound to no node, or to this one, is served here as before.
//!
//! The user is authenticated and the chat's ownership checked here first, so a worker is
//! only ever asked about a user's own chat, and the worker checks both again.

use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::error::ApiError;
use crate::internal::{CREDENTIAL_HEADER, PREFIX, chat_of_path, credential_header};
use crate::state::AppState;

/// Why a request could not reach the node that holds the chat's sandbox.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Not registered, its heartbeat older than the expiry, no address, or it did not answer.
    #[error("the worker {node} that holds this chat's sandbox is {reason}")]
    NodeUnavailable { node: String, reason: String },
}

/// One client for every forwarded request: connections to workers are reused. No overall
/// timeout (a zip of a large workspace streams for as long as it takes); a worker that
/// does not accept the connection soon counts as unreachable.
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
});

/// Headers that belong to one hop, or that this node replaces.
const NOT_FORWARDED: [HeaderName; 9] = [
    header::HOST,
    header::AUTHORIZATION,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// The chat of a path that the node holding its sandbox serves: its files, its terminal,
/// its sandbox's routes and a restore (which rewrites the files there); `true` for a restore.
fn sandbox_route(path: &str) -> Option<(Uuid, bool)> {
    let chat = chat_of_path(path, "/api/v1/")?;
    let rest = path.strip_prefix("/api/v1/chats/")?.split_once('/')?.1;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["checkpoints", _, "restore"] => Some((chat, true)),
        [first, ..] if matches!(*first, "files" | "terminal" | "sandbox") => Some((chat, false)),
        _ => None,
    }
}

fn hop_by_hop(name: &HeaderName) -> bool {
    NOT_FORWARDED.contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == CREDENTIAL_HEADER
        || name.as_str().starts_with("sec-websocket-")
}

/// Middleware of the public files, terminal and sandbox routes.
pub async fn to_sandbox_node(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some((chat_id, restore)) = sandbox_route(request.uri().path()) else {
        return next.run(request).await;
    };
    // Only a copy of the head is held across the awaits (a body is not `Sync`).
    let head = request_parts(&request);
    match target(&state, &head, chat_id).await {
        Ok(None) => next.run(request).await,
        // A restore needs no worker: this node rewinds the conversation and unbinds the
        // chat, and the next worker makes its files the checkpoint's (`runs::restore`).
        Err(Unavailable::Gone(_)) if restore => next.run(request).await,
        Ok(Some(target)) => {
            let result = if is_websocket(request.headers()) {
                websocket(&state, request, target).await
            } else {
                http(&state, request, target).await
            };
            result.unwrap_or_else(IntoResponse::into_response)
        }
        Err(Unavailable::Gone(err) | Unavailable::Other(err)) => err.into_response(),
    }
}

/// Why no target: the bound node is gone (not registered, expired, no address), or
/// anything else (not signed in, not the user's chat, the database).
enum Unavailable {
    Gone(ApiError),
    Other(ApiError),
}

impl From<ApiError> for Unavailable {
    fn from(err: ApiError) -> Self {
        Self::Other(err)
    }
}

impl From<agentbox_store::StoreError> for Unavailable {
    fn from(err: agentbox_store::StoreError) -> Self {
        Self::Other(err.into())
    }
}

/// Where a request about `chat_id` goes: `None` for here.
struct Target {
    node: String,
    address: String,
    user_id: Uuid,
    chat_id: Uuid,
}

async fn target(
    state: &AppState,
    head: &axum::http::request::Parts,
    chat_id: Uuid,
) -> Result<Option<Target>, Unavailable> {
    let settings = &state.runner.config().node;
    let Some(node) = state.store.chat_binding(chat_id).await?.filter(|node| *node != settings.id)
    else {
        return Ok(None);
    };
    let user = authenticate(state, head).await?;
    state.store.chat(user, chat_id).await?.ok_or_else(ApiError::chat_not_found)?;
    let expiry = chrono::TimeDelta::from_std(settings.expiry).unwrap_or(chrono::TimeDelta::MAX);
    let now = Utc::now();
    let record = state.store.nodes().await?.into_iter().find(|record| record.id == node);
    let unavailable = |reason: &str| {
        Unavailable::Gone(
            ForwardError::NodeUnavailable { node: node.clone(), reason: reason.to_owned() }.into(),
        )
    };
    let Some(record) = record else {
        return Err(unavailable("no longer registered"));
    };
    if now.signed_duration_since(record.heartbeat_at) > expiry {
        return Err(unavailable("gone (its heartbeat expired)"));
    }
    let Some(address) = record.address else {
        return Err(unavailable("registered without an address"));
    };
    Ok(Some(Target { node, address, user_id: user, chat_id }))
}

/// The signed-in user, as the public route would find them: the bearer token, or a
/// terminal's `?access_token=`.
async fn authenticate(
    state: &AppState,
    head: &axum::http::request::Parts,
) -> Result<Uuid, ApiError> {
    let mut parts = head.clone();
    let has_bearer = parts.headers.contains_key(header::AUTHORIZATION);
    if has_bearer || !is_websocket(&parts.headers) {
        let crate::auth::CurrentUser(user) =
            crate::auth::CurrentUser::from_request_parts(&mut parts, state).await?;
        return Ok(user.id);
    }
    let token = access_token(head.uri.query()).ok_or_else(|| {
        ApiError::unauthorized("Sign in first: no token (Authorization header or access_token).")
    })?;
    Ok(crate::auth::user_from_token(state, &token).await?.id)
}

/// A copy of the request's head without its extensions (enough to authenticate).
fn request_parts(request: &Request) -> axum::http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy.into_parts().0
}

fn access_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned())
}

/// The query without `access_token`: the worker gets the node credential instead.
fn forwarded_query(query: Option<&str>) -> String {
    let Some(query) = query else { return String::new() };
    if access_token(Some(query)).is_none() {
        // Passed on byte for byte.
        return format!("?{query}");
    }
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key != "access_token")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        return String::new();
    }
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    serializer.extend_pairs(kept);
    format!("?{}", serializer.finish())
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// The internal URL of the request on the target: `<address>/internal/v1/<rest>?<query>`.
fn internal_url(target: &Target, request: &Request) -> Result<String, ApiError> {
    let rest = request
        .uri()
        .path()
        .strip_prefix("/api/v1/")
        .ok_or_else(|| ApiError::internal("a forwarded path outside /api/v1/"))?;
    let address = target.address.trim_end_matches('/');
    Ok(format!("{address}{PREFIX}{rest}{}", forwarded_query(request.uri().query())))
}

fn unreachable_node(target: &Target, err: impl std::fmt::Display) -> ApiError {
    tracing::warn!(node = %target.node, address = %target.address, error = %err, "the chat's worker did not answer");
    ForwardError::NodeUnavailable { node: target.node.clone(), reason: "not answering".into() }
        .into()
}

/// The user was signed in here, so a 401 from the worker is about this node's credential
/// (another `SECRET_KEY` there), never the user's: passing it on would sign them out.
fn credential_refused(target: &Target) -> ApiError {
    tracing::error!(node = %target.node, "the chat's worker refused this node's credential: is SECRET_KEY the same on every node?");
    ForwardError::NodeUnavailable {
        node: target.node.clone(),
        reason: "refusing this node's credential (its SECRET_KEY differs)".into(),
    }
    .into()
}

async fn http(state: &AppState, request: Request, target: Target) -> Result<Response, ApiError> {
    let url = internal_url(&target, &request)?;
    let (parts, body) = request.into_parts();
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(
        CREDENTIAL_HEADER,
        credential_header(state, &target.node, target.user_id, target.chat_id),
    );
    let response = CLIENT
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await
        .map_err(|err| unreachable_node(&target, err))?;
    if response.status() == StatusCode::UNAUTHORIZED {
        return Err(credential_refused(&target));
    }
    let mut answer = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        if !hop_by_hop(name) {
            answer = answer.header(name, value);
        }
    }
    answer.body(Body::from_stream(response.bytes_stream())).map_err(ApiError::internal)
}

/// A terminal: open the worker's WebSocket first (so that its refusals, such as 404
/// `terminal_not_found` or 429, come back as they are), then upgrade the client's and copy
/// frames both ways until either side closes.
async fn websocket(
    state: &AppState,
    request: Request,
    target: Target,
) -> Result<Response, ApiError> {
    let url = internal_url(&target, &request)?;
    let url = match url.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => match url.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => url,
        },
    };
    let (mut parts, _body) = request.into_parts();
    let upgrade =
        WebSocketUpgrade::from_request_parts(&mut parts, state).await.map_err(|rejection| {
            ApiError::new(StatusCode::BAD_REQUEST, "websocket_required", rejection.body_text())
        })?;
    let mut upstream_request =
        url.as_str().into_client_request().map_err(|err| unreachable_node(&target, err))?;
    upstream_request.headers_mut().insert(
        CREDENTIAL_HEADER,
        credential_header(state, &target.node, target.user_id, target.chat_id),
    );
    if let Some(id) = parts.headers.get("x-request-id") {
        upstream_request.headers_mut().insert("x-request-id", id.clone());
    }
    let upstream = match tokio_tungstenite::connect_async(upstream_request).await {
        Ok((upstream, _)) => upstream,
        Err(tungstenite::Error::Http(refusal)) if refusal.status() == StatusCode::UNAUTHORIZED => {
            return Err(credential_refused(&target));
        }
        Err(tungstenite::Error::Http(refusal)) => {
            // The worker answered, and said no: its answer is the client's.
            let (head, body) = refusal.into_parts();
            let mut answer = Response::builder().status(head.status);
            if let Some(kind) = head.headers.get(header::CONTENT_TYPE) {
                answer = answer.header(header::CONTENT_TYPE, kind);
            }
            return answer.body(Body::from(body.unwrap_or_default())).map_err(ApiError::internal);
        }
        Err(err) => return Err(unreachable_node(&target, err)),
    };
    Ok(upgrade.on_upgrade(move |client| bridge(client, upstream)))
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn bridge(client: WebSocket, upstream: Upstream) {
    let (mut client_tx, mut client_rx) = client.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    let to_worker = async {
        while let Some(Ok(message)) = client_rx.next().await {
            let closing = matches!(message, Message::Close(_));
            if upstream_tx.send(to_tungstenite(message)).await.is_err() || closing {
                break;
            }
        }
        let _ = upstream_tx.close().await;
    };
    let to_client = async {
        while let Some(Ok(message)) = upstream_rx.next().await {
            let Some(message) = from_tungstenite(message) else { continue };
            let closing = matches!(message, Message::Close(_));
            if client_tx.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = client_tx.close().await;
    };
    // Either side ending ends the bridge: the worker keeps the shell for its grace period,
    // as it does for a client that went away.
    tokio::select! {
        () = to_worker => {}
        () = to_client => {}
    }
}

fn to_tungstenite(message: Message) -> tungstenite::Message {
    match message {
        Message::Text(text) => tungstenite::Message::text(text.as_str()),
        Message::Binary(data) => tungstenite::Message::Binary(data),
        Message::Ping(data) => tungstenite::Message::Ping(data),
        Message::Pong(data) => tungstenite::Message::Pong(data),
        Message::Close(frame) => {
            tungstenite::Message::Close(frame.map(|frame| tungstenite::protocol::CloseFrame {
                code: frame.code.into(),
                reason: frame.reason.as_str().into(),
            }))
        }
    }
}

fn from_tungstenite(message: tungstenite::Message) -> Option<Message> {
    Some(match message {
        tungstenite::Message::Text(text) => Message::Text(text.as_str().into()),
        tungstenite::Message::Binary(data) => Message::Binary(data),
        tungstenite::Message::Ping(data) => Message::Ping(data),
        tungstenite::Message::Pong(data) => Message::Pong(data),
        tungstenite::Message::Close(frame) => {
            Message::Close(frame.map(|frame| axum::extract::ws::CloseFrame {
                code: frame.code.into(),
                reason: frame.reason.as_str().into(),
            }))
        }
        // Raw frames only appear when writing; never read.
        tungstenite::Message::Frame(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_terminals_the_sandbox_and_restores_are_forwarded() {
        let chat = Uuid::new_v4();
        for rest in ["files", "files/zip", "files/content", "terminal", "sandbox", "sandbox/pause"]
        {
            assert_eq!(
                sandbox_route(&format!("/api/v1/chats/{chat}/{rest}")),
                Some((chat, false)),
                "{rest}"
            );
        }
        for rest in ["", "/messages", "/fork", "/checkpoints", "/filesx"] {
            assert_eq!(sandbox_route(&format!("/api/v1/chats/{chat}{rest}")), None, "{rest}");
        }
        assert_eq!(sandbox_route("/api/v1/chats/not-a-uuid/files"), None);
        let restore = format!("/api/v1/chats/{chat}/checkpoints/{}/restore", Uuid::new_v4());
        assert_eq!(sandbox_route(&restore), Some((chat, true)));
    }

    #[test]
    fn the_access_token_stays_on_the_api_node() {
        assert_eq!(forwarded_query(None), "");
        assert_eq!(forwarded_query(Some("access_token=x")), "");
        assert_eq!(forwarded_query(Some("access_token=x&cols=80&rows=24")), "?cols=80&rows=24");
        assert_eq!(forwarded_query(Some("path=a%20b%2Fc")), "?path=a%20b%2Fc");
        assert_eq!(access_token(Some("cols=1&access_token=t%2B")).as_deref(), Some("t+"));
    }
}
