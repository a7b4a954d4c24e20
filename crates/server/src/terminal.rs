//! Terminals: a shell on a PTY in the chat's sandbox, over a WebSocket.
//!
//! `GET /api/v1/chats/{chat_id}/terminal` upgrades after the token (the `Authorization`
//! header, or `?access_token=` for browsers, which cannot set headers on a WebSocket) and the
//! chat's owner are checked. Binary frames carry terminal data both ways; text frames carry
//! JSON control messages (`resize`, `input`, `ping` from the client; `session`, `exit`,
//! `error` from the server). A shell outlives its connection for a grace period: connecting
//! with `?session=<id>` within it reattaches to the same shell and first receives its
//! recent output. A chat can have several terminals.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentbox_sandbox::{ExecRequest, ProcessKiller, PtySize};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::user_from_token;
use crate::error::ApiError;
use crate::extract::{ApiQuery, ChatId};
use crate::state::AppState;

/// Recent output kept for a reattaching client.
const REPLAY_BYTES: usize = 64 * 1024;
const PING_EVERY: Duration = Duration::from_secs(20);
const MAX_TERMINALS_PER_CHAT: usize = 8;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(terminal))
}

/// Every live terminal of the server.
pub struct TerminalRegistry {
    sessions: Mutex<HashMap<Uuid, Arc<TerminalSession>>>,
    /// How long a shell waits for its client to come back.
    grace: Duration,
}

impl TerminalRegistry {
    pub fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Self { sessions: Mutex::default(), grace })
    }

    /// Whether a terminal of the chat is open (or waiting for its client to come back).
    pub fn has_open(&self, chat_id: Uuid) -> bool {
        self.sessions().values().any(|s| s.chat_id == chat_id)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<TerminalSession>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

enum Output {
    Data(Bytes),
    Exit(Option<i32>),
}

impl Clone for Output {
    fn clone(&self) -> Self {
        match self {
            Self::Data(data) => Self::Data(data.clone()),
            Self::Exit(code) => Self::Exit(*code),
        }
    }
}

struct TerminalSession {
    id: Uuid,
    chat_id: Uuid,
    user_id: Uuid,
    input: mpsc::Sender<Vec<u8>>,
    killer: ProcessKiller,
    /// Recent output and the fan-out, under one lock so that a reattaching client's replay
    /// and its live output neither overlap nor leave a gap.
    output: Mutex<(VecDeque<u8>, broadcast::Sender<Output>)>,
    exited: Mutex<Option<Option<i32>>>,
    /// Bumped by every attach; a connection that sees another number was replaced.
    attachment: Mutex<u64>,
}

impl TerminalSession {
    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, output: Output) {
        let mut guard = Self::lock(&self.output);
        if let Output::Data(data) = &output {
            guard.0.extend(data.iter());
            let excess = guard.0.len().saturating_sub(REPLAY_BYTES);
            guard.0.drain(..excess);
        }
        let _ = guard.1.send(output);
    }

    /// The recent output and a subscription to what follows it.
    fn attach(&self) -> (u64, Vec<u8>, broadcast::Receiver<Output>) {
        let mut attachment = Self::lock(&self.attachment);
        *attachment += 1;
        let guard = Self::lock(&self.output);
        (*attachment, guard.0.iter().copied().collect(), guard.1.subscribe())
    }

    fn current_attachment(&self) -> u64 {
        *Self::lock(&self.attachment)
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TerminalQuery {
    /// Reattach to this terminal (its id came in the `session` message).
    session: Option<Uuid>,
    /// Initial size of a new terminal.
    cols: Option<u16>,
    rows: Option<u16>,
    /// The access token, for clients that cannot set the `Authorization` header.
    access_token: Option<String>,
}

/// Control messages from the client, in text frames.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Input { data: String },
    Resize { cols: u16, rows: u16 },
    Ping,
}

/// Status messages to the client, in text frames.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage {
    Session { id: Uuid, reconnected: bool },
    Exit { code: Option<i32> },
    Error { message: String },
    Pong,
}

/// Open (or reattach to) a terminal in the chat's sandbox; upgrades to a WebSocket.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/terminal", tag = "sandbox",
    params(("chat_id" = Uuid, Path), TerminalQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
              (status = 400, description = "websocket_required, invalid_size"), (status = 401),
              (status = 404, description = "chat_not_found, terminal_not_found"),
              (status = 429, description = "too_many_terminals, limit_reached (sandboxes running)"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn terminal(
    State(state): State<AppState>,
    ChatId(chat_id): ChatId,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<TerminalQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    // Set by `internal::dispatch` on a worker serving an API node's request.
    internal_caller: Option<axum::Extension<crate::internal::InternalCaller>>,
) -> Result<Response, ApiError> {
    let user = match internal_caller {
        Some(axum::Extension(caller)) => crate::auth::user_by_id(&state, caller.user_id).await?,
        None => user_from_token(&state, &bearer_or_query(&headers, &query)?).await?,
    };
    state.store.chat(user.id, chat_id).await?.ok_or_else(ApiError::chat_not_found)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(StatusCode::BAD_REQUEST, "websocket_required", rejection.body_text())
    })?;
    let registry = state.terminals.clone();
    let (session, reconnected) = match query.session {
        Some(id) => {
            let session = registry
                .sessions()
                .get(&id)
                .filter(|s| s.user_id == user.id && s.chat_id == chat_id)
                .cloned()
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "terminal_not_found",
                        "That terminal has ended; open a new one.",
                    )
                })?;
            (session, true)
        }
        None => {
            let size = PtySize { cols: query.cols.unwrap_or(80), rows: query.rows.unwrap_or(24) };
            if !(1..=1000).contains(&size.cols) || !(1..=1000).contains(&size.rows) {
                return Err(ApiError::bad_request(
                    "invalid_size",
                    "cols and rows must be between 1 and 1000",
                ));
            }
            let open = registry.sessions().values().filter(|s| s.chat_id == chat_id).count();
            if open >= MAX_TERMINALS_PER_CHAT {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_terminals",
                    format!(
                        "A chat can have {MAX_TERMINALS_PER_CHAT} terminals at once; close one first."
                    ),
                ));
            }
            let limits = crate::limits::of_user(&state, user.id).await?;
            crate::sandbox_limit::make_room(
                &state.store,
                &state.runner,
                &state.terminals,
                &limits,
                user.id,
                chat_id,
            )
            .await?;
            (start_shell(&state, chat_id, user.id, size).await?, false)
        }
    };
    // Ends at shutdown, and when the account is disabled.
    let shutdown = state.accounts.connection(&state.shutdown, user.id);
    Ok(upgrade.on_upgrade(move |socket| serve(socket, session, reconnected, registry, shutdown)))
}

async fn start_shell(
    state: &AppState,
    chat_id: Uuid,
    user_id: Uuid,
    size: PtySize,
) -> Result<Arc<TerminalSession>, ApiError> {
    let sandbox = state
        .runner
        .sandbox_provider()
        .ensure(&chat_id.to_string())
        .await
        .map_err(ApiError::from)?;
    // The user's secrets, with the chat's overrides, as when the CLI starts (never the
    // server's model credentials).
    let secrets = agentbox_runs::ChatSecrets::load(
        &state.store,
        &state.runner.config().sealing_key,
        user_id,
        chat_id,
    )
    .await?;
    let process = sandbox
        .exec(ExecRequest {
            program: "/bin/bash".into(),
            args: vec!["-l".into()],
            env: secrets.env(),
            pty: Some(size),
            // A person's commands, like the agent's: what they start cannot starve the CLI.
            as_command: true,
            ..ExecRequest::default()
        })
        .await
        .map_err(ApiError::from)?;
    let (input, mut inputs) = mpsc::channel::<Vec<u8>>(64);
    let session = Arc::new(TerminalSession {
        id: Uuid::new_v4(),
        chat_id,
        user_id,
        input,
        killer: process.killer.clone(),
        output: Mutex::new((VecDeque::new(), broadcast::channel(1024).0)),
        exited: Mutex::new(None),
        attachment: Mutex::new(0),
    });
    let mut stdin = process.stdin;
    tokio::spawn(async move {
        while let Some(data) = inputs.recv().await {
            if stdin.write_all(&data).await.is_err() {
                return;
            }
        }
    });
    let registry = state.terminals.clone();
    let pump = session.clone();
    let mut stdout = process.stdout;
    let exit = process.exit;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            pump.publish(Output::Data(Bytes::copy_from_slice(&buf[..n])));
        }
        let code = exit.await.ok().and_then(|status| status.code);
        *TerminalSession::lock(&pump.exited) = Some(code);
        pump.publish(Output::Exit(code));
        registry.sessions().remove(&pump.id);
    });
    state.terminals.sessions().insert(session.id, session.clone());
    tracing::info!(%chat_id, terminal = %session.id, "terminal opened");
    Ok(session)
}

async fn serve(
    socket: WebSocket,
    session: Arc<TerminalSession>,
    reconnected: bool,
    registry: Arc<TerminalRegistry>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let _open = crate::metrics::OpenConnection::new("terminal");
    let (mut sink, mut stream) = socket.split();
    let (attachment, replay, mut output) = session.attach();
    let hello = ServerMessage::Session { id: session.id, reconnected };
    if send_json(&mut sink, &hello).await.is_err() {
        return;
    }
    if reconnected && !replay.is_empty() && sink.send(Message::Binary(replay.into())).await.is_err()
    {
        return;
    }
    let exited = *TerminalSession::lock(&session.exited);
    if let Some(code) = exited {
        let _ = send_json(&mut sink, &ServerMessage::Exit { code }).await;
        let _ = sink.close().await;
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut superseded = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    let _ = session.input.send(data.to_vec()).await;
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Input { data }) => {
                        let _ = session.input.send(data.into_bytes()).await;
                    }
                    Ok(ClientMessage::Resize { cols, rows }) if (1..=1000).contains(&cols) && (1..=1000).contains(&rows) => {
                        session.killer.resize(PtySize { cols, rows });
                    }
                    Ok(ClientMessage::Resize { .. }) => {
                        let message = ServerMessage::Error { message: "cols and rows must be between 1 and 1000".into() };
                        if send_json(&mut sink, &message).await.is_err() {
                            break;
                        }
                    }
                    Ok(ClientMessage::Ping) => {
                        if send_json(&mut sink, &ServerMessage::Pong).await.is_err() {
                            break;
                        }
                    }
                    Err(err) => {
                        let message = ServerMessage::Error { message: format!("not a control message: {err}") };
                        if send_json(&mut sink, &message).await.is_err() {
                            break;
                        }
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = output.recv() => match out {
                Ok(Output::Data(data)) => {
                    if sink.send(Message::Binary(data)).await.is_err() {
                        break;
                    }
                }
                Ok(Output::Exit(code)) => {
                    let _ = send_json(&mut sink, &ServerMessage::Exit { code }).await;
                    let _ = sink.close().await;
                    return;
                }
                // Too slow to keep up: some output is lost to this client, not to the shell.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
            _ = superseded.tick() => {
                if session.current_attachment() != attachment {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 4000, reason: "attached elsewhere".into() }))).await;
                    return;
                }
            }
            () = shutdown.cancelled() => {
                let _ = sink.close().await;
                session.killer.kill();
                return;
            }
        }
    }
    // The client is gone: keep the shell for a while in case it comes back.
    let grace = registry.grace;
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let running = TerminalSession::lock(&session.exited).is_none();
        if session.current_attachment() == attachment && running {
            tracing::info!(terminal = %session.id, "terminal not reattached in time; closing it");
            session.killer.kill();
            registry.sessions().remove(&session.id);
        }
    });
}

async fn send_json(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    message: &ServerMessage,
) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).unwrap_or_default();
    sink.send(Message::Text(text.into())).await
}

/// The access token of a terminal request: the `Authorization` header, else
/// `?access_token=` (browsers cannot set headers on a WebSocket).
pub(crate) fn bearer_or_query(
    headers: &HeaderMap,
    query: &TerminalQuery,
) -> Result<String, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::to_owned)
        .or(query.access_token.clone())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "Sign in first: no token (Authorization header or access_token).",
            )
        })
}
