//! Chats: create, list, read, change, delete. Every lookup is scoped to the signed-in
//! user; another user's chat answers 404, exactly like a chat that does not exist.

use agentbox_protocol::api::{
    Chat, ChatStatus, CreateChatRequest, PermissionMode, RepositoryRequest, UpdateChatRequest,
};
use std::collections::HashMap;

use agentbox_protocol::task::UnseenTaskRun;
use agentbox_runs::LiveChange;
use agentbox_store::{
    ChatListing, ChatQuery, ChatRecord, ChatRepositoryRecord, ChatUpdate, NewChat,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, ChatId};
use crate::messages::bypass_not_allowed;
use crate::state::AppState;

pub const DEFAULT_TITLE: &str = agentbox_store::DEFAULT_CHAT_TITLE;
const MAX_TITLE_CHARS: usize = 200;
/// The longest search accepted, in characters.
const MAX_SEARCH_CHARS: usize = 200;
/// A preview's length in the chat list, in characters: one line of the sidebar.
const PREVIEW_CHARS: usize = 140;
const MAX_MODEL_CHARS: usize = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_chat, list_chats))
        .routes(routes!(get_chat, update_chat, delete_chat))
        .routes(routes!(mark_chat_seen))
}

/// The user's ended task runs they have not seen, in `chat_id` or in all their chats, by
/// chat (the latest of each chat); a failed lookup shows none rather than failing the answer.
async fn unseen_task_runs(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
) -> HashMap<Uuid, UnseenTaskRun> {
    match state.store.unseen_task_runs(user_id, chat_id).await {
        // Latest first: the first of each chat is the one to show.
        Ok(runs) => runs.into_iter().rev().map(|run| (run.chat_id, run)).collect(),
        Err(err) => {
            tracing::warn!(%user_id, %err, "could not read the unseen task runs");
            HashMap::new()
        }
    }
}

pub async fn chat_json(state: &AppState, chat: ChatRecord) -> Chat {
    let unseen = unseen_task_runs(state, chat.user_id, Some(chat.id)).await.remove(&chat.id);
    chat_json_with(state, chat, unseen).await
}

async fn chat_json_with(
    state: &AppState,
    chat: ChatRecord,
    unseen_task_run: Option<UnseenTaskRun>,
) -> Chat {
    let running = state.runner.is_running_anywhere(chat.id).await;
    let sandbox_status = state.runner.sandbox_provider().status(&chat.id.to_string()).await;
    let pending_requests = if running {
        match state.store.pending_permissions(chat.id).await {
            Ok(pending) => u32::try_from(pending.len()).unwrap_or(u32::MAX),
            Err(err) => {
                tracing::warn!(chat_id = %chat.id, %err, "could not count the open requests");
                0
            }
        }
    } else {
        0
    };
    Chat {
        id: chat.id,
        title: chat.title,
        model: chat.model,
        permission_mode: chat.permission_mode,
        status: if running { ChatStatus::Running } else { ChatStatus::Idle },
        pending_requests,
        session_id: chat.session_id,
        last_event_id: chat.last_seq,
        sandbox_provider: chat.sandbox_provider,
        sandbox_status: sandbox_status.as_str().to_owned(),
        custom_instructions: chat.custom_instructions,
        max_thinking_tokens: chat.max_thinking_tokens,
        pinned: chat.pinned,
        archived: chat.archived,
        preview: None,
        unseen_task_run,
        created_at: chat.created_at,
        updated_at: chat.updated_at,
    }
}

/// A chat as the list shows it, with its preview on one line.
async fn listing_json(
    state: &AppState,
    listing: ChatListing,
    unseen: Option<UnseenTaskRun>,
) -> Chat {
    let preview = listing
        .preview
        .map(|text| agentbox_runs::titles::shorten(&text, PREVIEW_CHARS))
        .filter(|text| !text.is_empty());
    Chat { preview, ..chat_json_with(state, listing.chat, unseen).await }
}

/// The chat if it belongs to the user; 404 otherwise.
pub async fn owned_chat(
    state: &AppState,
    user: &CurrentUser,
    chat_id: uuid::Uuid,
) -> Result<ChatRecord, ApiError> {
    state.store.chat(user.0.id, chat_id).await?.ok_or_else(ApiError::chat_not_found)
}

fn valid_title(title: &str) -> Result<String, ApiError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_title",
            format!("A title must have between 1 and {MAX_TITLE_CHARS} characters."),
        ));
    }
    Ok(title.to_owned())
}

/// Model names are passed to the CLI as an argument: keep them to the characters model ids use.
pub fn valid_model(model: &str) -> Result<String, ApiError> {
    let ok = !model.is_empty()
        && model.len() <= MAX_MODEL_CHARS
        && model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:/@[]".contains(&b));
    if !ok {
        return Err(ApiError::unprocessable(
            "invalid_model",
            "A model name must be 1 to 100 letters, digits or -._:/@[] characters.",
        ));
    }
    Ok(model.to_owned())
}

/// The longest custom instructions accepted, in bytes (of a user or of a chat).
pub const MAX_INSTRUCTIONS_BYTES: usize = 16 * 1024;
/// The thinking budgets the model API accepts: off, or 1024 tokens and more.
const MIN_THINKING_TOKENS: u32 = 1024;
const MAX_THINKING_TOKENS: u32 = 128_000;

/// Instructions to store: trimmed, `None` when empty.
pub fn valid_instructions(text: &str) -> Result<Option<String>, ApiError> {
    let text = text.trim();
    if text.len() > MAX_INSTRUCTIONS_BYTES {
        return Err(ApiError::unprocessable(
            "instructions_too_long",
            format!("Custom instructions may have at most {MAX_INSTRUCTIONS_BYTES} bytes."),
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn valid_thinking(tokens: u32) -> Result<u32, ApiError> {
    if tokens == 0 || (MIN_THINKING_TOKENS..=MAX_THINKING_TOKENS).contains(&tokens) {
        return Ok(tokens);
    }
    Err(ApiError::unprocessable(
        "invalid_thinking_budget",
        format!(
            "max_thinking_tokens is 0 (thinking off) or between {MIN_THINKING_TOKENS} and \
             {MAX_THINKING_TOKENS}."
        ),
    ))
}

/// Refuse `bypassPermissions` where the server does not offer it.
pub(crate) fn allowed_mode(state: &AppState, mode: Option<PermissionMode>) -> Result<(), ApiError> {
    if mode == Some(PermissionMode::BypassPermissions) && !state.runner.bypass_allowed() {
        return Err(bypass_not_allowed());
    }
    Ok(())
}

/// Start a new chat. A model or permission mode the request leaves out comes from the
/// user's settings (`default_model`, `default_permission_mode`), then the server's defaults.
#[utoipa::path(post, path = "/api/v1/chats", tag = "chats", request_body = CreateChatRequest,
    responses((status = 201, body = Chat),
              (status = 403, description = "bypass_not_allowed"),
              (status = 422, description = "invalid_title, invalid_model, instructions_too_long, invalid_thinking_budget, invalid_repository_url, credentials_in_url, insecure_repository_url, invalid_branch, invalid_secret_name")),
    security(("bearer" = [])))]
async fn create_chat(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(request): ApiJson<CreateChatRequest>,
) -> Result<(StatusCode, Json<Chat>), ApiError> {
    let title = request.title.as_deref().map(valid_title).transpose()?;
    let model = request.model.as_deref().map(valid_model).transpose()?;
    let custom_instructions =
        request.custom_instructions.as_deref().map(valid_instructions).transpose()?.flatten();
    let max_thinking_tokens = request.max_thinking_tokens.map(valid_thinking).transpose()?;
    allowed_mode(&state, request.permission_mode)?;
    // What the request leaves out comes from the user's defaults, then the server's; a
    // default mode the server stopped offering falls back to its default.
    let defaults = state.store.user_settings(user.0.id).await?;
    let default_mode =
        defaults.default_permission_mode.filter(|mode| allowed_mode(&state, Some(*mode)).is_ok());
    let repository =
        request.repository.as_ref().map(|r| valid_repository(&state, r)).transpose()?;
    let chat = state
        .store
        .create_chat(NewChat {
            user_id: user.0.id,
            title: title.unwrap_or_else(|| DEFAULT_TITLE.to_owned()),
            model: model
                .or(defaults.default_model)
                .unwrap_or_else(|| state.info.default_model.clone()),
            permission_mode: request.permission_mode.or(default_mode).unwrap_or_default(),
            sandbox_provider: state.runner.sandbox_provider().name().to_owned(),
            custom_instructions,
            max_thinking_tokens,
        })
        .await?;
    if let Some(repository) = repository {
        let record = ChatRepositoryRecord { chat_id: chat.id, ..repository };
        if let Err(err) = state.store.set_chat_repository(&record).await {
            // A chat without the repository it was asked for is not what was created.
            if let Err(err) = state.store.delete_chat(user.0.id, chat.id).await {
                tracing::warn!(chat_id = %chat.id, %err, "could not remove a half-made chat");
            }
            return Err(err.into());
        }
    }
    Ok((StatusCode::CREATED, Json(chat_json(&state, chat).await)))
}

/// A repository to start from, checked: its URL (https, or http on the operator's
/// allow-list; no credentials), its branch's name and its secret's name. The chat's id is
/// filled in once the chat exists.
fn valid_repository(
    state: &AppState,
    request: &RepositoryRequest,
) -> Result<ChatRepositoryRecord, ApiError> {
    let url = agentbox_runs::git::check_url(&request.url, &state.runner.config().git.http_hosts)?;
    if let Some(branch) = &request.branch {
        agentbox_runs::git::check_branch(branch)?;
    }
    if let Some(secret) = &request.secret {
        agentbox_secrets::check_name(secret)
            .map_err(|err| ApiError::unprocessable("invalid_secret_name", err.to_string()))?;
    }
    Ok(ChatRepositoryRecord {
        chat_id: Uuid::nil(),
        url: url.url,
        branch: request.branch.clone(),
        secret: request.secret.clone(),
        directory: url.directory,
        created_at: chrono::Utc::now(),
    })
}

/// Which chats `GET /api/v1/chats` lists.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChatListQuery {
    /// Chats whose title contains this text, or whose prompts and replies contain every
    /// word of it (as words or their beginnings). Searches archived chats too unless
    /// `archived` is given.
    q: Option<String>,
    /// `true`: pinned chats only; `false`: unpinned only.
    pinned: Option<bool>,
    /// `true`: archived chats only; `false`: the others. Without it the list leaves
    /// archived chats out, and a search includes them.
    archived: Option<bool>,
}

/// The user's chats, most recently active first, each with a one-line preview.
#[utoipa::path(get, path = "/api/v1/chats", tag = "chats", params(ChatListQuery),
    responses((status = 200, body = Vec<Chat>),
              (status = 400, description = "invalid_query"),
              (status = 422, description = "search_too_long")),
    security(("bearer" = [])))]
async fn list_chats(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<ChatListQuery>,
) -> Result<Json<Vec<Chat>>, ApiError> {
    if query.q.as_deref().is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS) {
        return Err(ApiError::unprocessable(
            "search_too_long",
            format!("A search may have at most {MAX_SEARCH_CHARS} characters."),
        ));
    }
    let searching = query.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    let filter = ChatQuery {
        archived: query.archived.or((!searching).then_some(false)),
        pinned: query.pinned,
        search: query.q,
    };
    let chats = state.store.find_chats(user.0.id, &filter).await?;
    let mut unseen = unseen_task_runs(&state, user.0.id, None).await;
    let mut list = Vec::with_capacity(chats.len());
    for chat in chats {
        let run = unseen.remove(&chat.chat.id);
        list.push(listing_json(&state, chat, run).await);
    }
    Ok(Json(list))
}

/// The user has seen the chat: the ended runs of their scheduled tasks in it no longer
/// count as news (`unseen_task_run` becomes `null`). The web UI calls it while the chat is
/// open and visible; a run still going stays unseen until it ends and is seen again.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/seen", tag = "chats",
    params(("chat_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Marked seen"), (status = 404, description = "chat_not_found")),
    security(("bearer" = [])))]
async fn mark_chat_seen(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<StatusCode, ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    state.store.mark_task_runs_seen(user.0.id, chat.id, chrono::Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One chat.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}", tag = "chats",
    params(("chat_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Chat), (status = 404, description = "chat_not_found")),
    security(("bearer" = [])))]
async fn get_chat(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<Chat>, ApiError> {
    let chat = owned_chat(&state, &user, chat_id).await?;
    Ok(Json(chat_json(&state, chat).await))
}

/// Rename a chat or change its settings. A change of model, permission mode or thinking
/// budget also reaches the chat's running turn at once; custom instructions take effect with
/// the next turn.
#[utoipa::path(patch, path = "/api/v1/chats/{chat_id}", tag = "chats",
    params(("chat_id" = uuid::Uuid, Path)), request_body = UpdateChatRequest,
    responses((status = 200, body = Chat), (status = 403, description = "bypass_not_allowed"),
              (status = 404),
              (status = 422, description = "invalid_title, invalid_model, instructions_too_long, invalid_thinking_budget")),
    security(("bearer" = [])))]
async fn update_chat(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<UpdateChatRequest>,
) -> Result<Json<Chat>, ApiError> {
    let update = ChatUpdate {
        title: request.title.as_deref().map(valid_title).transpose()?,
        model: request.model.as_deref().map(valid_model).transpose()?,
        permission_mode: request.permission_mode,
        custom_instructions: request
            .custom_instructions
            .as_deref()
            .map(valid_instructions)
            .transpose()?,
        max_thinking_tokens: request
            .max_thinking_tokens
            .map(|tokens| tokens.map(valid_thinking).transpose())
            .transpose()?,
        pinned: request.pinned,
        archived: request.archived,
    };
    allowed_mode(&state, request.permission_mode)?;
    let before = owned_chat(&state, &user, chat_id).await?;
    let change = LiveChange {
        model: update.model.clone().filter(|model| *model != before.model),
        // The running turn may run in a mode of its own (a per-message override), so the
        // turn compares the mode with its own.
        permission_mode: update.permission_mode,
        max_thinking_tokens: update
            .max_thinking_tokens
            .filter(|tokens| *tokens != before.max_thinking_tokens),
    };
    let chat = state
        .store
        .update_chat(user.0.id, chat_id, update)
        .await?
        .ok_or_else(ApiError::chat_not_found)?;
    // The change is stored; a running turn on another node that cannot be told keeps its
    // settings until its end, which is no reason to refuse the change.
    if let Err(err) = state.runner.apply_live(chat_id, &change).await {
        tracing::warn!(%chat_id, %err, "could not send a live change to the running turn");
    }
    Ok(Json(chat_json(&state, chat).await))
}

/// Delete a chat: its running turn is stopped, its sandbox removed, its history deleted.
#[utoipa::path(delete, path = "/api/v1/chats/{chat_id}", tag = "chats",
    params(("chat_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
async fn delete_chat(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<StatusCode, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    state.runner.forget_chat(chat_id).await;
    if !state.store.delete_chat(user.0.id, chat_id).await? {
        return Err(ApiError::chat_not_found());
    }
    tracing::info!(%chat_id, "chat deleted");
    Ok(StatusCode::NO_CONTENT)
}
