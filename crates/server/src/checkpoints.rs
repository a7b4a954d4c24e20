//! Checkpoints of a chat: list them, restore one (workspace, conversation and CLI session
//! together), and fork a new chat from a turn.

use agentbox_protocol::api::{Chat, CheckpointInfo, ForkRequest, RestoreResponse};
use agentbox_runs::CheckpointFailure;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::{chat_json, owned_chat};
use crate::error::ApiError;
use crate::extract::{ApiJson, ChatId, ChatItem, InChat};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_checkpoints))
        .merge(restore_route())
        .routes(routes!(fork_chat))
}

/// The restore alone: a worker serves it to API nodes (see `internal.rs`), since it
/// rewrites the files the worker holds.
pub fn restore_route() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(restore_checkpoint))
}

/// The `{checkpoint_id}` of a path.
struct Checkpoint;

impl ChatItem for Checkpoint {
    type Id = Uuid;

    fn not_found() -> ApiError {
        checkpoint_not_found()
    }
}

fn checkpoint_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "checkpoint_not_found", "No such checkpoint.")
}

fn failure(err: CheckpointFailure) -> ApiError {
    match err {
        CheckpointFailure::Disabled => {
            ApiError::new(StatusCode::NOT_IMPLEMENTED, "checkpoints_disabled", err.to_string())
        }
        CheckpointFailure::Busy => ApiError::conflict(
            "turn_in_progress",
            "A turn is running in this chat; wait for it to finish or interrupt it first.",
        ),
        CheckpointFailure::NotFound => checkpoint_not_found(),
        CheckpointFailure::NoCheckpoint => ApiError::unprocessable(
            "no_checkpoint",
            "That message has no checkpoint: only finished turns of this chat have one.",
        ),
        CheckpointFailure::Store(err) => err.into(),
        CheckpointFailure::Failed(reason) => ApiError::internal(reason),
    }
}

/// The chat's checkpoints, newest first.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/checkpoints", tag = "checkpoints",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = Vec<CheckpointInfo>), (status = 404)), security(("bearer" = [])))]
async fn list_checkpoints(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<Vec<CheckpointInfo>>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    let checkpoints = state.runner.checkpoints(chat_id).await.map_err(failure)?;
    Ok(Json(
        checkpoints
            .into_iter()
            .filter_map(|(record, stored)| {
                // A checkpoint the store pruned is gone: it is not offered.
                let stored = stored?;
                Some(CheckpointInfo {
                    id: record.id,
                    message_id: record.message_id,
                    kind: record.kind.as_str().to_owned(),
                    created_at: record.created_at,
                    files_added: stored.changes.added,
                    files_modified: stored.changes.modified,
                    files_deleted: stored.changes.deleted,
                    bytes_added: stored.stats.new_bytes,
                    files: stored.stats.files,
                    bytes: stored.stats.bytes,
                })
            })
            .collect(),
    ))
}

/// Make the workspace exactly the checkpoint (later files are removed), rewind the
/// conversation to its turn (later messages are hidden, not deleted) and continue the CLI
/// session from there. A checkpoint of the present is taken first: restoring it undoes this.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/checkpoints/{checkpoint_id}/restore", tag = "checkpoints",
    params(("chat_id" = Uuid, Path), ("checkpoint_id" = Uuid, Path)),
    responses((status = 200, body = RestoreResponse), (status = 404, description = "chat_not_found, checkpoint_not_found"),
              (status = 409, description = "turn_in_progress"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is alive but not answering")),
    security(("bearer" = [])))]
async fn restore_checkpoint(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, checkpoint_id): InChat<Checkpoint>,
) -> Result<Json<RestoreResponse>, ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    let restored = state.runner.restore(&chat, checkpoint_id).await.map_err(failure)?;
    Ok(Json(RestoreResponse {
        checkpoint_id,
        undo_checkpoint_id: restored.undo_id,
        undo_unavailable: restored.undo_refused,
        hidden_message_ids: restored.rewind.hidden,
        shown_message_ids: restored.rewind.shown,
    }))
}

/// A new chat with its own sandbox, holding a copy of the workspace as it was after the
/// message and the conversation up to it.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/fork", tag = "checkpoints",
    params(("chat_id" = Uuid, Path)), request_body = ForkRequest,
    responses((status = 201, body = Chat), (status = 404), (status = 422, description = "no_checkpoint, invalid_title")),
    security(("bearer" = [])))]
async fn fork_chat(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<ForkRequest>,
) -> Result<(StatusCode, Json<Chat>), ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    let title = match request.title {
        Some(title) if title.trim().is_empty() || title.chars().count() > 200 => {
            return Err(ApiError::unprocessable(
                "invalid_title",
                "A title must have between 1 and 200 characters.",
            ));
        }
        Some(title) => title.trim().to_owned(),
        None => {
            let base: String = chat.title.chars().take(190).collect();
            format!("{base} (fork)")
        }
    };
    let fork = state.runner.fork(&chat, request.message_id, title).await.map_err(failure)?;
    Ok((StatusCode::CREATED, Json(chat_json(&state, fork).await)))
}
