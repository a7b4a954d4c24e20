//! Messages: post a prompt (which starts a turn), list the conversation, interrupt.

use agentbox_protocol::api::{Message, PostMessageRequest, PostMessageResponse};
use agentbox_runs::{RunError, TurnRequest};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::chats::{owned_chat, valid_model};
use crate::error::ApiError;
use crate::extract::{ApiJson, ChatId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_message, list_messages))
}

/// Send a prompt. The turn runs in the background; follow it on the chat's stream until the
/// `message_completed` event of the returned `message_id`.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/messages", tag = "messages",
    params(("chat_id" = uuid::Uuid, Path)), request_body = PostMessageRequest,
    responses((status = 202, body = PostMessageResponse),
              (status = 404, description = "chat_not_found"),
              (status = 403, description = "bypass_not_allowed"),
              (status = 409, description = "turn_in_progress"),
              (status = 413, description = "prompt_too_long, body_too_large"),
              (status = 422, description = "empty_prompt, invalid_model, attachments_unsupported"),
              (status = 429, description = "limit_reached, with Retry-After for daily limits"),
              (status = 503, description = "shutting_down, with Retry-After: the node is draining")),
    security(("bearer" = [])))]
async fn post_message(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<PostMessageRequest>,
) -> Result<(StatusCode, Json<PostMessageResponse>), ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    valid_prompt(&state, &request.prompt)?;
    if !request.attachments.is_empty() {
        return Err(ApiError::unprocessable(
            "attachments_unsupported",
            "Attachments are not supported yet; put the content in the prompt or upload it to the workspace.",
        ));
    }
    let model = request.model.as_deref().map(valid_model).transpose()?;
    crate::limits::check(&state, user.0.id, chat_id).await?;
    let started = state
        .runner
        .submit(
            &chat,
            TurnRequest { prompt: request.prompt, model, permission_mode: request.permission_mode },
        )
        .await
        .map_err(run_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PostMessageResponse {
            message_id: started.message_id,
            chat_id,
            user_message_id: started.user_message_id,
        }),
    ))
}

/// A prompt must have words and fit the server's limit.
pub fn valid_prompt(state: &AppState, prompt: &str) -> Result<(), ApiError> {
    if prompt.trim().is_empty() {
        return Err(ApiError::unprocessable("empty_prompt", "The prompt is empty."));
    }
    let max = state.limits.max_prompt_bytes;
    if prompt.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "prompt_too_long",
            format!("The prompt has {} bytes; at most {max} are accepted.", prompt.len()),
        ));
    }
    Ok(())
}

/// The response to a refusal of the turn runner.
pub fn run_error(err: RunError) -> ApiError {
    match err {
        RunError::Busy => ApiError::conflict(
            "turn_in_progress",
            "A turn is already running in this chat; wait for it to finish, interrupt it, or \
             queue the prompt (POST .../queue).",
        ),
        RunError::ChatNotFound => ApiError::chat_not_found(),
        RunError::NotRunning => {
            ApiError::conflict("no_running_turn", "No turn is running in this chat.")
        }
        RunError::QueuedNotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "queued_message_not_found",
            "The chat has no such queued message; it may have started already.",
        ),
        RunError::BypassNotAllowed => bypass_not_allowed(),
        RunError::ShuttingDown => ApiError::shutting_down(),
        RunError::Store(err) => err.into(),
    }
}

/// `bypassPermissions` asked for where the server does not offer it.
pub fn bypass_not_allowed() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "bypass_not_allowed", agentbox_runs::BYPASS_REFUSAL)
}

/// The conversation: every message in order with its events as `content`.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/messages", tag = "messages",
    params(("chat_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Message>), (status = 404)), security(("bearer" = [])))]
async fn list_messages(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<Vec<Message>>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    Ok(Json(state.store.messages(chat_id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InterruptResponse {
    /// The assistant message of the turn being interrupted.
    pub message_id: uuid::Uuid,
}

/// Interrupt the chat's running turn; it ends with status `interrupted`.
pub async fn interrupt(
    state: &AppState,
    user: &CurrentUser,
    chat_id: uuid::Uuid,
) -> Result<(StatusCode, Json<InterruptResponse>), ApiError> {
    owned_chat(state, user, chat_id).await?;
    match state.runner.interrupt(chat_id).await {
        Ok(message_id) => Ok((StatusCode::ACCEPTED, Json(InterruptResponse { message_id }))),
        Err(RunError::Store(err)) => Err(err.into()),
        Err(_) => Err(ApiError::conflict("no_running_turn", "No turn is running in this chat.")),
    }
}
