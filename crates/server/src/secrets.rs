//! The signed-in user's secrets (`/api/v1/secrets`) and a chat's overrides of them
//! (`/api/v1/chats/{chat_id}/secrets`): environment variables of their sandbox processes,
//! sealed at rest, shown masked, never returned in full. Changes are audited by name.
//! A change reaches the chat's CLI at its next turn (a kept CLI process started with other
//! values is replaced) and terminals opened afterwards.

use agentbox_protocol::api::{PutSecretRequest, SecretInfo, SecretKind, SecretScope};
use agentbox_secrets::{
    MAX_SCOPE_BYTES, MAX_SECRETS_PER_SCOPE, MAX_VALUE_BYTES, Sealed, associated_data, check_name,
    mask,
};
use agentbox_store::SecretRecord;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::accounts::ClientAddress;
use crate::audit::{Entry, record};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ChatId, ChatItem, InChat, Named};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets))
        .routes(routes!(put_secret, delete_secret))
        .routes(routes!(list_chat_secrets))
        .routes(routes!(put_chat_secret, delete_chat_secret))
}

/// A secret named in a path.
pub struct SecretName;

impl ChatItem for SecretName {
    type Id = String;

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "secret_not_found", "No secret of that name.")
    }
}

/// The user's own secrets, by name, masked.
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets",
    responses((status = 200, body = Vec<SecretInfo>)), security(("bearer" = [])))]
async fn list_secrets(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    list(&state, user.0.id, None).await
}

/// Set one of the user's secrets (created or replaced). Reserved names (`PATH`, `HOME`,
/// `LD_*`, proxies, `AGENTBOX_*`, the CLI's own `CLAUDE_CODE_*` and `ANTHROPIC_*` settings
/// but the model credentials) are refused.
#[utoipa::path(put, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "an environment variable name")),
    request_body = PutSecretRequest,
    responses((status = 200, body = SecretInfo),
              (status = 422, description = "invalid_secret_name, reserved_secret_name, \
                invalid_secret_value, secret_too_large, too_many_secrets")),
    security(("bearer" = [])))]
async fn put_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddress(address): ClientAddress,
    Named(name): Named<SecretName>,
    ApiJson(request): ApiJson<PutSecretRequest>,
) -> Result<Json<SecretInfo>, ApiError> {
    put(&state, user.0.id, None, &name, &request.value, &address).await
}

/// Delete one of the user's secrets.
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "an environment variable name")),
    responses((status = 204), (status = 404, description = "secret_not_found")),
    security(("bearer" = [])))]
async fn delete_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddress(address): ClientAddress,
    Named(name): Named<SecretName>,
) -> Result<StatusCode, ApiError> {
    delete(&state, user.0.id, None, &name, &address).await
}

/// The chat's overrides of the user's secrets, masked (the user's own are at
/// `/api/v1/secrets`; the chat's value wins).
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/secrets", tag = "secrets",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = Vec<SecretInfo>), (status = 404, description = "chat_not_found")),
    security(("bearer" = [])))]
async fn list_chat_secrets(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    owned_chat(&state, user.0.id, chat_id).await?;
    list(&state, user.0.id, Some(chat_id)).await
}

/// Set the chat's override of a secret.
#[utoipa::path(put, path = "/api/v1/chats/{chat_id}/secrets/{name}", tag = "secrets",
    params(("chat_id" = Uuid, Path), ("name" = String, Path, description = "an environment variable name")),
    request_body = PutSecretRequest,
    responses((status = 200, body = SecretInfo), (status = 404, description = "chat_not_found"),
              (status = 422, description = "invalid_secret_name, reserved_secret_name, \
                invalid_secret_value, secret_too_large, too_many_secrets")),
    security(("bearer" = [])))]
async fn put_chat_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddress(address): ClientAddress,
    InChat(chat_id, name): InChat<SecretName>,
    ApiJson(request): ApiJson<PutSecretRequest>,
) -> Result<Json<SecretInfo>, ApiError> {
    owned_chat(&state, user.0.id, chat_id).await?;
    put(&state, user.0.id, Some(chat_id), &name, &request.value, &address).await
}

/// Delete the chat's override (the user's own secret of that name applies again).
#[utoipa::path(delete, path = "/api/v1/chats/{chat_id}/secrets/{name}", tag = "secrets",
    params(("chat_id" = Uuid, Path), ("name" = String, Path, description = "an environment variable name")),
    responses((status = 204), (status = 404, description = "chat_not_found, secret_not_found")),
    security(("bearer" = [])))]
async fn delete_chat_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddress(address): ClientAddress,
    InChat(chat_id, name): InChat<SecretName>,
) -> Result<StatusCode, ApiError> {
    owned_chat(&state, user.0.id, chat_id).await?;
    delete(&state, user.0.id, Some(chat_id), &name, &address).await
}

async fn owned_chat(state: &AppState, user_id: Uuid, chat_id: Uuid) -> Result<(), ApiError> {
    state.store.chat(user_id, chat_id).await?.ok_or_else(ApiError::chat_not_found)?;
    Ok(())
}

async fn list(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    let rows = state.store.secrets(user_id, chat_id).await?;
    Ok(Json(rows.iter().map(|row| info(state, row)).collect()))
}

async fn put(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    name: &str,
    value: &str,
    address: &str,
) -> Result<Json<SecretInfo>, ApiError> {
    // Check everything before changing anything.
    check_name(name).map_err(|err| {
        let code = match err {
            agentbox_secrets::NameError::Reserved(_) => "reserved_secret_name",
            _ => "invalid_secret_name",
        };
        ApiError::unprocessable(code, err.to_string())
    })?;
    check_value(name, value)?;
    let others: Vec<SecretRecord> = state
        .store
        .secrets(user_id, chat_id)
        .await?
        .into_iter()
        .filter(|row| row.name != name)
        .collect();
    if others.len() >= MAX_SECRETS_PER_SCOPE {
        return Err(ApiError::unprocessable(
            "too_many_secrets",
            format!("At most {MAX_SECRETS_PER_SCOPE} secrets can be kept here; delete one first."),
        ));
    }
    let total: usize = others.iter().map(value_size).sum::<usize>() + value.len();
    if total > MAX_SCOPE_BYTES {
        return Err(ApiError::unprocessable(
            "secret_too_large",
            format!("The values kept here may take {} KiB together.", MAX_SCOPE_BYTES / 1024),
        ));
    }
    let key = &state.runner.config().sealing_key;
    let (owner, chat) = (user_id.to_string(), chat_id.map(|id| id.to_string()));
    let sealed = key.seal(value.as_bytes(), &associated_data(&owner, chat.as_deref(), name));
    let created =
        state.store.put_secret(user_id, chat_id, name, &sealed.key_id, &sealed.text).await?;
    let kind = if created { "secret_created" } else { "secret_changed" };
    audit(state, kind, user_id, chat_id, name, address).await;
    let row = state
        .store
        .secrets(user_id, chat_id)
        .await?
        .into_iter()
        .find(|row| row.name == name)
        .ok_or_else(SecretName::not_found)?;
    Ok(Json(info(state, &row)))
}

async fn delete(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    name: &str,
    address: &str,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_secret(user_id, chat_id, name).await? {
        return Err(SecretName::not_found());
    }
    audit(state, "secret_deleted", user_id, chat_id, name, address).await;
    Ok(StatusCode::NO_CONTENT)
}

fn check_value(name: &str, value: &str) -> Result<(), ApiError> {
    let invalid = |message: &str| ApiError::unprocessable("invalid_secret_value", message);
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::unprocessable(
            "secret_too_large",
            format!("A secret's value is at most {} KiB.", MAX_VALUE_BYTES / 1024),
        ));
    }
    if value.is_empty() {
        return Err(invalid("A secret's value cannot be empty; delete the secret instead."));
    }
    if value.contains('\0') {
        return Err(invalid("An environment variable cannot hold a NUL character."));
    }
    if name == "ANTHROPIC_BASE_URL" {
        let url =
            url::Url::parse(value).map_err(|_| invalid("ANTHROPIC_BASE_URL must be a URL."))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "ANTHROPIC_BASE_URL must be an http:// or https:// URL with a host.",
            ));
        }
    }
    Ok(())
}

/// About how many bytes a sealed value holds: base64 of the 24-byte nonce, the value and
/// the 16-byte tag.
fn value_size(row: &SecretRecord) -> usize {
    (row.sealed.len() / 4 * 3).saturating_sub(24 + 16)
}

fn info(state: &AppState, row: &SecretRecord) -> SecretInfo {
    let key = &state.runner.config().sealing_key;
    let (owner, chat) = (row.user_id.to_string(), row.chat_id.map(|id| id.to_string()));
    let sealed = Sealed { key_id: row.key_id.clone(), text: row.sealed.clone() };
    let masked = match key.open_text(&sealed, &associated_data(&owner, chat.as_deref(), &row.name))
    {
        Ok(value) => mask(&value),
        Err(err) => {
            tracing::warn!(name = %row.name, %err, "a stored secret does not open");
            "(cannot be opened: sealed under another key)".to_owned()
        }
    };
    SecretInfo {
        name: row.name.clone(),
        kind: match agentbox_secrets::SecretKind::of(&row.name) {
            agentbox_secrets::SecretKind::ModelCredential => SecretKind::ModelCredential,
            agentbox_secrets::SecretKind::Environment => SecretKind::Environment,
        },
        scope: if row.chat_id.is_some() { SecretScope::Chat } else { SecretScope::User },
        masked,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

async fn audit(
    state: &AppState,
    kind: &'static str,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    name: &str,
    address: &str,
) {
    let detail = match chat_id {
        Some(chat_id) => json!({ "name": name, "chat_id": chat_id }),
        None => json!({ "name": name }),
    };
    record(
        state,
        Entry {
            kind,
            actor: Some(user_id),
            target: Some(user_id),
            address: Some(address),
            detail: Some(detail),
            ..Entry::default()
        },
    )
    .await;
}
