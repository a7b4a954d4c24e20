//! A chat's sandbox as such: where it runs, whether it runs, and pausing it by hand.

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
    responses((status = 200, body = SandboxInfo), (status = 404)), security(("bearer" = [])))]
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
              (status = 501, description = "unsupported")),
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
    responses((status = 200, body = SandboxInfo), (status = 404), (status = 501, description = "unsupported")),
    security(("bearer" = [])))]
async fn resume(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<SandboxInfo>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    state.runner.sandbox_provider().resume(&chat_id.to_string()).await.map_err(ApiError::from)?;
    Ok(Json(info(&state, chat_id).await))
}
