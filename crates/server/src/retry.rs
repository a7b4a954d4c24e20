//! Retry: a turn that failed or was stopped runs again with the same prompt, as a new turn
//! after it. The failed turn stays in the conversation (what happened is history); only the
//! chat's latest turn can be retried, so that a retry never answers an older question after
//! a newer one.

use agentbox_protocol::api::{Message, PostMessageResponse, Role};
use agentbox_protocol::event::{EventPayload, MessageStatus};
use agentbox_runs::TurnRequest;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::ApiError;
use crate::extract::{ChatItem, InChat};
use crate::messages::run_error;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(retry_message))
}

/// A message of a chat, named in a path.
pub struct ChatMessage;

impl ChatItem for ChatMessage {
    type Id = Uuid;

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "message_not_found", "This chat has no such message.")
    }
}

/// The prompt of the turn `message_id` ends, if it is the chat's latest turn and it failed
/// or was stopped.
fn prompt_to_retry(messages: &[Message], message_id: Uuid) -> Result<String, ApiError> {
    let index = messages
        .iter()
        .position(|m| m.id == message_id && m.role == Role::Assistant)
        .ok_or_else(ChatMessage::not_found)?;
    let message = &messages[index];
    if !matches!(message.status, MessageStatus::Failed | MessageStatus::Interrupted) {
        return Err(ApiError::conflict(
            "not_retryable",
            "Only a turn that failed or was stopped can be retried.",
        ));
    }
    if messages[index + 1..].iter().any(|m| m.role == Role::Assistant) {
        return Err(ApiError::conflict(
            "not_latest_turn",
            "Only the chat's latest turn can be retried; send the prompt again instead.",
        ));
    }
    messages[..index]
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .and_then(|m| {
            m.content.iter().find_map(|event| match &event.payload {
                EventPayload::UserText { text } => Some(text.clone()),
                _ => None,
            })
        })
        .ok_or_else(|| {
            ApiError::conflict("not_retryable", "This turn has no prompt to send again.")
        })
}

/// Run a failed or stopped turn again: its prompt, with the chat's current model and mode, as
/// a new turn (the answer names its messages, as `POST .../messages` does).
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/messages/{message_id}/retry", tag = "messages",
    params(("chat_id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 202, body = PostMessageResponse),
              (status = 404, description = "chat_not_found, message_not_found"),
              (status = 409, description = "not_retryable, not_latest_turn, turn_in_progress")),
    security(("bearer" = [])))]
async fn retry_message(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, message_id): InChat<ChatMessage>,
) -> Result<(StatusCode, Json<PostMessageResponse>), ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    let messages = state.store.messages(chat_id).await?;
    let prompt = prompt_to_retry(&messages, message_id)?;
    let started = state
        .runner
        .submit(&chat, TurnRequest { prompt, model: None, permission_mode: None })
        .await
        .map_err(run_error)?;
    tracing::info!(%chat_id, retried = %message_id, message_id = %started.message_id, "turn retried");
    Ok((
        StatusCode::ACCEPTED,
        Json(PostMessageResponse {
            message_id: started.message_id,
            chat_id,
            user_message_id: started.user_message_id,
        }),
    ))
}
