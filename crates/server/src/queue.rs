//! Queued prompts: follow-ups sent while a turn runs. They wait in order and run one after
//! the other once the running turn completes or fails; an interrupt pauses the queue until
//! a prompt is sent with `send`. A plain `POST .../messages` still answers 409 while a turn
//! runs: queueing is asked for explicitly, here.

use agentbox_protocol::api::{
    QueueMessageRequest, QueuedMessage, SendQueuedResponse, UpdateQueuedMessageRequest,
};
use agentbox_runs::{SendNow, TurnRequest};
use agentbox_store::QueuedUpdate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::{owned_chat, valid_model};
use crate::error::ApiError;
use crate::extract::{ApiJson, ChatId, ChatItem, InChat};
use crate::messages::{bypass_not_allowed, run_error, valid_prompt};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queue, enqueue))
        .routes(routes!(update_queued, delete_queued))
        .routes(routes!(send_queued))
}

fn queued_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "queued_message_not_found",
        "The chat has no such queued message; it may have started already.",
    )
}

/// The `{queued_id}` of a path.
struct Queued;

impl ChatItem for Queued {
    type Id = Uuid;

    fn not_found() -> ApiError {
        queued_not_found()
    }
}

/// The chat's queued prompts, the next one first.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/queue", tag = "queue",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = Vec<QueuedMessage>), (status = 404)),
    security(("bearer" = [])))]
async fn list_queue(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<Vec<QueuedMessage>>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    Ok(Json(state.store.queue(chat_id).await?))
}

/// Queue a prompt. When the chat is idle (and its queue not paused by an interrupt) the
/// queue starts at once: the answer then carries the `message_id` of the prompt's turn.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/queue", tag = "queue",
    params(("chat_id" = Uuid, Path)), request_body = QueueMessageRequest,
    responses((status = 201, body = QueuedMessage),
              (status = 403, description = "bypass_not_allowed"),
              (status = 404),
              (status = 413, description = "prompt_too_long"),
              (status = 422, description = "empty_prompt, invalid_model"),
              (status = 429, description = "limit_reached (when the prompt would start at once)")),
    security(("bearer" = [])))]
async fn enqueue(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<QueueMessageRequest>,
) -> Result<(StatusCode, Json<QueuedMessage>), ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    valid_prompt(&state, &request.prompt)?;
    let model = request.model.as_deref().map(valid_model).transpose()?;
    // On an idle chat the prompt starts at once, so it meets the per-user limits now; behind
    // a running turn it waits, and the runner checks it again when it starts it
    // (admission.rs).
    if !state.runner.is_running(chat_id) {
        crate::limits::check(&state, user.0.id, chat_id).await?;
    }
    let queued = state
        .runner
        .enqueue(
            &chat,
            TurnRequest { prompt: request.prompt, model, permission_mode: request.permission_mode },
        )
        .await
        .map_err(run_error)?;
    Ok((StatusCode::CREATED, Json(queued)))
}

/// Change a queued prompt before it runs.
#[utoipa::path(patch, path = "/api/v1/chats/{chat_id}/queue/{queued_id}", tag = "queue",
    params(("chat_id" = Uuid, Path), ("queued_id" = Uuid, Path)),
    request_body = UpdateQueuedMessageRequest,
    responses((status = 200, body = QueuedMessage),
              (status = 403, description = "bypass_not_allowed"),
              (status = 404, description = "chat_not_found, queued_message_not_found"),
              (status = 422, description = "empty_prompt, invalid_model")),
    security(("bearer" = [])))]
async fn update_queued(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, queued_id): InChat<Queued>,
    ApiJson(request): ApiJson<UpdateQueuedMessageRequest>,
) -> Result<Json<QueuedMessage>, ApiError> {
    if let Some(prompt) = &request.prompt {
        valid_prompt(&state, prompt)?;
    }
    let model = request.model.as_deref().map(valid_model).transpose()?;
    if request.permission_mode == Some(agentbox_protocol::api::PermissionMode::BypassPermissions)
        && !state.runner.bypass_allowed()
    {
        return Err(bypass_not_allowed());
    }
    owned_chat(&state, &user, chat_id).await?;
    let update =
        QueuedUpdate { prompt: request.prompt, model, permission_mode: request.permission_mode };
    let queued = state
        .store
        .update_queued(chat_id, queued_id, update)
        .await?
        .ok_or_else(queued_not_found)?;
    Ok(Json(queued))
}

/// Remove a queued prompt.
#[utoipa::path(delete, path = "/api/v1/chats/{chat_id}/queue/{queued_id}", tag = "queue",
    params(("chat_id" = Uuid, Path), ("queued_id" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "chat_not_found, queued_message_not_found")),
    security(("bearer" = [])))]
async fn delete_queued(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, queued_id): InChat<Queued>,
) -> Result<StatusCode, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    if !state.store.delete_queued(chat_id, queued_id).await? {
        return Err(queued_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Send a queued prompt now: it runs at once when the chat is idle; otherwise the running
/// turn is interrupted and the prompt runs right after it. The queue is no longer paused.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/queue/{queued_id}/send", tag = "queue",
    params(("chat_id" = Uuid, Path), ("queued_id" = Uuid, Path)),
    responses((status = 202, body = SendQueuedResponse),
              (status = 404, description = "chat_not_found, queued_message_not_found")),
    security(("bearer" = [])))]
async fn send_queued(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, queued_id): InChat<Queued>,
) -> Result<(StatusCode, Json<SendQueuedResponse>), ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    let message_id = match state.runner.send_now(chat_id, queued_id).await.map_err(run_error)? {
        SendNow::Started(queued) => queued.message_id,
        SendNow::AfterInterrupt => None,
    };
    Ok((StatusCode::ACCEPTED, Json(SendQueuedResponse { queued_id, message_id })))
}
