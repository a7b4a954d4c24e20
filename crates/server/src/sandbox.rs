//! A chat's sandbox as such: where it runs, whether it runs, pausing it by hand, and
//! restarting it when its processes have made it unusable.

use agentbox_runs::RestartError;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::ApiError;
use crate::extract::ChatId;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sandbox_info))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(restart))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SandboxInfo {
    /// `local` or `host`.
    pub provider: String,
    /// Whether the agent is confined at all (`false` for `host`).
    pub isolated: bool,
    /// `running`, `paused` or `stopped` (a stopped sandbox starts on its next use).
    pub status: String,
}

async fn info(state: &AppState, chat_id: Uuid) -> SandboxInfo {
    let provider = state.runner.sandbox_provider();
    SandboxInfo {
        provider: provider.name().to_owned(),
        isolated: provider.isolates(),
        status: provider.status(&chat_id.to_string()).await.as_str().to_owned(),
    }
}

/// The chat's sandbox: provider, isolation and status.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/sandbox", tag = "sandbox",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = SandboxInfo), (status = 404),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")), security(("bearer" = [])))]
async fn sandbox_info(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<SandboxInfo>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    Ok(Json(info(&state, chat_id).await))
}

/// Freeze the sandbox's processes now (any use resumes it).
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/sandbox/pause", tag = "sandbox",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = SandboxInfo), (status = 404), (status = 409, description = "turn_in_progress"),
              (status = 501, description = "unsupported"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn pause(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<SandboxInfo>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    if state.runner.is_running(chat_id) {
        return Err(ApiError::conflict(
            "turn_in_progress",
            "A turn is running in this chat; a paused sandbox would stall it.",
        ));
    }
    state.runner.sandbox_provider().pause(&chat_id.to_string()).await.map_err(ApiError::from)?;
    Ok(Json(info(&state, chat_id).await))
}

/// Thaw a paused sandbox.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/sandbox/resume", tag = "sandbox",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = SandboxInfo), (status = 404),
              (status = 429, description = "limit_reached: as many sandboxes running as allowed, none idle"),
              (status = 501, description = "unsupported"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn resume(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<SandboxInfo>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    let limits = crate::limits::of_user(&state, user.0.id).await?;
    crate::sandbox_limit::make_room(
        &state.store,
        &state.runner,
        &state.terminals,
        &limits,
        user.0.id,
        chat_id,
    )
    .await?;
    state.runner.sandbox_provider().resume(&chat_id.to_string()).await.map_err(ApiError::from)?;
    Ok(Json(info(&state, chat_id).await))
}

/// End every process of the chat's sandbox (commands, servers, terminals, the CLI) and start
/// it again; its files and the conversation's CLI session are kept, so the next turn
/// resumes the conversation. A running turn is interrupted first (it ends `interrupted`
/// with a `system/sandbox_restarted` notice, and the chat's queue pauses). Answers once the
/// sandbox runs again.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/sandbox/restart", tag = "sandbox",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = SandboxInfo), (status = 404, description = "chat_not_found"),
              (status = 409, description = "turn_in_progress: a turn started during the restart"),
              (status = 503, description = "sandbox_unavailable: the sandbox cannot start (over its disk quota, ...); sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn restart(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<SandboxInfo>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    state.runner.restart_sandbox(chat_id).await.map_err(|err| match err {
        RestartError::Busy => ApiError::conflict(
            "turn_in_progress",
            "A turn started while the sandbox was being restarted; restart it again if needed.",
        ),
        RestartError::Sandbox(err) => ApiError::from(err),
    })?;
    Ok(Json(info(&state, chat_id).await))
}
