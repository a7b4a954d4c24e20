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
              (status = 409, description = "turn_in_progress"),
              (status = 413, description = "prompt_too_long, body_too_large"),
              (status = 422, description = "empty_prompt, invalid_model, attachments_unsupported")),
    security(("bearer" = [])))]
async fn post_message(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<PostMessageRequest>,
) -> Result<(StatusCode, Json<PostMessageResponse>), ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    if request.prompt.trim().is_empty() {
        return Err(ApiError::unprocessable("empty_prompt", "The prompt is empty."));
    }
    let max = state.limits.max_prompt_bytes;
    if request.prompt.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "prompt_too_long",
            format!("The prompt has {} bytes; at most {max} are accepted.", request.prompt.len()),
        ));
    }
    if !request.attachments.is_empty() {
        return Err(ApiError::unprocessable(
            "attachments_unsupported",
            "Attachments are not supported yet; put the content in the prompt or upload it to the workspace.",
        ));
    }
    let model = request.model.as_deref().map(valid_model).transpose()?;
    let started = state
        .runner
        .submit(
            &chat,
            TurnRequest { prompt: request.prompt, model, permission_mode: request.permission_mode },
        )
        .await
        .map_err(|err| match err {
            RunError::Busy => ApiError::conflict(
                "turn_in_progress",
                "A turn is already running in this chat; wait for it to finish or interrupt it.",
            ),
            RunError::ChatNotFound => ApiError::chat_not_found(),
            RunError::NotRunning => ApiError::internal("submit reported no running turn"),
            RunError::Store(err) => err.into(),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PostMessageResponse {
            message_id: started.message_id,
            chat_id,
            user_message_id: started.user_message_id,
        }),
    ))
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
    match state.runner.interrupt(chat_id) {
        Ok(message_id) => Ok((StatusCode::ACCEPTED, Json(InterruptResponse { message_id }))),
        Err(_) => Err(ApiError::conflict("no_running_turn", "No turn is running in this chat.")),
    }
}
