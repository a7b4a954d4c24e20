//! Permission requests: list the open ones of a chat, answer one (allow or deny a tool call,
//! answer questions, approve or send back a plan), and manage the chat's "always allow"
//! rules.

use agentbox_protocol::permission::{
    PendingPermission, PermissionAnswerRequest, PermissionAnswerResponse, ResolvedBy,
    StoredPermissionRule,
};
use agentbox_runs::PermissionError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::ApiError;
use crate::extract::{ApiJson, ChatId, ChatItem, InChat};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pending))
        .routes(routes!(answer))
        .routes(routes!(list_rules))
        .routes(routes!(delete_rule))
}

/// The `{request_id}` of a path: the agent's id of the tool call, any text.
struct PermissionRequest;

impl ChatItem for PermissionRequest {
    type Id = String;

    fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "permission_request_not_found",
            "This chat has no permission request with that id.",
        )
    }
}

/// The `{rule_id}` of a path.
struct Rule;

impl ChatItem for Rule {
    type Id = Uuid;

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "rule_not_found", "This chat has no such rule.")
    }
}

fn refusal(err: PermissionError) -> ApiError {
    match err {
        PermissionError::NotFound => PermissionRequest::not_found(),
        PermissionError::AlreadyResolved(by) => {
            let why = match by {
                Some(ResolvedBy::User) => "it was already answered",
                Some(ResolvedBy::Timeout) => "nobody answered it in time, so it was denied",
                Some(ResolvedBy::Cancelled) => "the agent withdrew it",
                Some(ResolvedBy::TurnEnded) => "its turn ended",
                Some(ResolvedBy::ServerRestarted) => "the server restarted, which denied it",
                Some(ResolvedBy::ModeChanged) => "the chat's mode changed, which settled it",
                None => "it was settled a moment ago",
            };
            ApiError::conflict(
                "permission_request_resolved",
                format!("This permission request can no longer be answered: {why}."),
            )
        }
        PermissionError::TurnNotRunning => ApiError::conflict(
            "turn_not_running",
            "The turn that asked is no longer running, so the request cannot be answered.",
        ),
        PermissionError::Invalid { code, message } if code == "bypass_not_allowed" => {
            ApiError::new(StatusCode::FORBIDDEN, code, message)
        }
        PermissionError::Invalid { code, message } => ApiError::unprocessable(code, message),
        PermissionError::Store(err) => err.into(),
    }
}

/// The chat's open permission requests, oldest first. Each names the `seq` of its
/// `permission_request` event, which carries every detail (reason, plan, questions).
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/permissions", tag = "permissions",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = Vec<PendingPermission>), (status = 404)),
    security(("bearer" = [])))]
async fn list_pending(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<Vec<PendingPermission>>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    Ok(Json(state.store.pending_permissions(chat_id).await?))
}

/// Answer an open permission request. A tool call is allowed or denied (`message` tells the
/// agent why; `remember` also stores a rule so that matching calls pass from now on); a
/// question is answered with `answers`; a plan is approved (with the `mode` to continue in)
/// or sent back with `message` as feedback. The agent gets the answer at once and a
/// `permission_resolved` event records it.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/permissions/{request_id}",
    tag = "permissions",
    params(("chat_id" = Uuid, Path), ("request_id" = String, Path)),
    request_body = PermissionAnswerRequest,
    responses((status = 200, body = PermissionAnswerResponse),
              (status = 403, description = "bypass_not_allowed"),
              (status = 404, description = "chat_not_found, permission_request_not_found"),
              (status = 409, description = "permission_request_resolved, turn_not_running"),
              (status = 422, description = "answers_required, unknown_question, invalid_answer, \
                   answers_not_applicable, mode_not_applicable, remember_not_applicable, \
                   remember_requires_approval, invalid_mode, message_too_long, \
                   answer_not_taken (a turn on a worker node refused the answer or did not \
                   take it in time)")),
    security(("bearer" = [])))]
async fn answer(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, request_id): InChat<PermissionRequest>,
    ApiJson(answer): ApiJson<PermissionAnswerRequest>,
) -> Result<Json<PermissionAnswerResponse>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    let answered =
        state.runner.answer_permission(chat_id, &request_id, &answer).await.map_err(refusal)?;
    tracing::info!(%chat_id, %request_id, approved = answered.approved, "permission request answered");
    Ok(Json(answered))
}

/// The chat's "always allow" rules, oldest first.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/permissions/rules", tag = "permissions",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = Vec<StoredPermissionRule>), (status = 404)),
    security(("bearer" = [])))]
async fn list_rules(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<Vec<StoredPermissionRule>>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    Ok(Json(state.store.permission_rules(chat_id).await?))
}

/// Remove an "always allow" rule: matching calls ask again.
#[utoipa::path(delete, path = "/api/v1/chats/{chat_id}/permissions/rules/{rule_id}",
    tag = "permissions",
    params(("chat_id" = Uuid, Path), ("rule_id" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "chat_not_found, rule_not_found")),
    security(("bearer" = [])))]
async fn delete_rule(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, rule_id): InChat<Rule>,
) -> Result<StatusCode, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    if !state.store.delete_permission_rule(chat_id, rule_id).await? {
        return Err(Rule::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
