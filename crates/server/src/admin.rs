//! `/api/v1/admin/...`: administrators manage users (create, disable, re-enable, delete,
//! make and unmake administrators, see usage) and invites, and read the account rules.
//! Everyone else gets `403 admin_only`; the store keeps at least one enabled administrator.

use std::collections::HashMap;

use agentbox_protocol::api::{
    AccountSettings, AdminUser, CreateInviteRequest, CreateUserRequest, CreatedInvite, Invite,
    UpdateAccountSettingsRequest, UpdateUserRequest, UserUsage,
};
use agentbox_store::{InviteRecord, StoreError, UserRecord};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::accounts::{ClientAddress, REGISTRATION_SETTING, RegistrationMode, registration_mode};
use crate::audit::{self, Entry};
use crate::auth::{CurrentUser, hash_password, random_token, token_hash};
use crate::credentials;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// The signed-in user, if an administrator.
pub struct AdminUserOnly(pub UserRecord);

impl FromRequestParts<AppState> for AdminUserOnly {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(ApiError::forbidden("admin_only", "Only administrators can do this."));
        }
        Ok(Self(user))
    }
}

/// The `{user_id}` or `{invite_id}` of a path; one that is not a UUID names nothing (404).
async fn path_id(parts: &mut Parts, not_found: fn() -> ApiError) -> Result<Uuid, ApiError> {
    match Path::<Uuid>::from_request_parts(parts, &()).await {
        Ok(Path(id)) => Ok(id),
        Err(PathRejection::FailedToDeserializePathParams(_)) => Err(not_found()),
        Err(other) => Err(ApiError::internal(other.body_text())),
    }
}

pub struct UserId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for UserId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        path_id(parts, user_not_found).await.map(Self)
    }
}

pub struct InviteId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for InviteId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        path_id(parts, invite_not_found).await.map(Self)
    }
}

fn invite_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "invite_not_found", "No such invite.")
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(delete_invite))
        .routes(routes!(settings, update_account_settings))
}

/// Record an administrator's action on `target`.
pub(crate) async fn audited(
    state: &AppState,
    kind: &'static str,
    admin: Uuid,
    target: Uuid,
    address: &str,
    detail: serde_json::Value,
) {
    audit::record(
        state,
        Entry {
            kind,
            actor: Some(admin),
            target: Some(target),
            address: Some(address),
            detail: Some(detail),
            ..Entry::default()
        },
    )
    .await;
}

pub(crate) fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "No such user.")
}

fn last_admin() -> ApiError {
    ApiError::conflict(
        "last_admin",
        "This is the last enabled administrator: make another user an administrator first.",
    )
}

fn admin_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict("last_admin") => last_admin(),
        other => other.into(),
    }
}

fn admin_json(user: &UserRecord, usage: Option<UserUsage>) -> AdminUser {
    AdminUser {
        id: user.id,
        email: user.email.clone(),
        username: user.username.clone(),
        created_at: user.created_at,
        is_admin: user.is_admin,
        disabled_at: user.disabled_at,
        usage: usage.unwrap_or_default(),
    }
}

async fn usage_of(state: &AppState) -> Result<HashMap<Uuid, UserUsage>, ApiError> {
    Ok(state
        .store
        .users_usage()
        .await?
        .into_iter()
        .map(|u| (u.user_id, UserUsage { chats: u.chats, turns: u.turns, cost_usd: u.cost_usd }))
        .collect())
}

async fn one_user(state: &AppState, user: &UserRecord) -> Result<AdminUser, ApiError> {
    Ok(admin_json(user, usage_of(state).await?.remove(&user.id)))
}

/// End what a user has running: open streams and terminals close, running turns are
/// interrupted. Their tokens stop working by themselves (every request reads the account).
async fn disconnect(state: &AppState, user_id: Uuid) -> Result<(), ApiError> {
    state.accounts.disconnect(user_id);
    for chat in state.store.list_chats(user_id).await? {
        // On this node or another (the control channel carries it there).
        if state.runner.is_running_anywhere(chat.id).await {
            // A turn that ended meanwhile has nothing left to interrupt.
            let _ = state.runner.interrupt(chat.id).await;
        }
    }
    Ok(())
}

/// Every user with their usage, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    responses((status = 200, body = [AdminUser]), (status = 401),
              (status = 403, description = "admin_only")),
    security(("bearer" = [])))]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUserOnly,
) -> Result<Json<Vec<AdminUser>>, ApiError> {
    let mut usage = usage_of(&state).await?;
    let users = state.store.list_users().await?;
    Ok(Json(users.iter().map(|user| admin_json(user, usage.remove(&user.id))).collect()))
}

/// Create an account, whatever the registration mode.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = CreateUserRequest,
    responses((status = 201, body = AdminUser), (status = 401),
              (status = 403, description = "admin_only"), (status = 409, description = "email_taken"),
              (status = 422, description = "invalid_email, invalid_password, invalid_username")),
    security(("bearer" = [])))]
async fn create_user(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<AdminUser>), ApiError> {
    let email = credentials::email(&request.email)?;
    credentials::password(&request.password, email)?;
    credentials::username(request.username.as_deref())?;
    let hash = hash_password(request.password).await?;
    let mut user = state
        .store
        .create_user(email, request.username.as_deref().map(str::trim), &hash)
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => {
                ApiError::conflict("email_taken", "An account with this email already exists.")
            }
            other => other.into(),
        })?;
    if request.is_admin && !user.is_admin {
        user = state.store.set_user_admin(user.id, true).await?.ok_or_else(user_not_found)?;
    }
    tracing::info!(admin = %admin.id, user_id = %user.id, is_admin = user.is_admin, "account created by an administrator");
    let detail = serde_json::json!({"email": user.email, "is_admin": user.is_admin});
    audited(&state, "user_created", admin.id, user.id, &address, detail).await;
    Ok((StatusCode::CREATED, Json(admin_json(&user, None))))
}

/// Disable or re-enable an account, or make or unmake an administrator. Disabling takes
/// effect at once: the user's tokens stop working, their streams and terminals close and
/// their running turns are interrupted.
#[utoipa::path(patch, path = "/api/v1/admin/users/{user_id}", tag = "admin",
    params(("user_id" = Uuid, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = AdminUser), (status = 401),
              (status = 403, description = "admin_only"), (status = 404, description = "user_not_found"),
              (status = 409, description = "last_admin")),
    security(("bearer" = [])))]
async fn update_user(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    UserId(user_id): UserId,
    ApiJson(request): ApiJson<UpdateUserRequest>,
) -> Result<Json<AdminUser>, ApiError> {
    let mut user = state.store.user(user_id).await?.ok_or_else(user_not_found)?;
    // Taking rights away first: an admin who is also being disabled is checked once.
    if let Some(is_admin) = request.is_admin {
        user = state
            .store
            .set_user_admin(user_id, is_admin)
            .await
            .map_err(admin_error)?
            .ok_or_else(user_not_found)?;
    }
    if let Some(disabled) = request.disabled {
        user = state
            .store
            .set_user_disabled(user_id, disabled)
            .await
            .map_err(admin_error)?
            .ok_or_else(user_not_found)?;
        if disabled {
            disconnect(&state, user_id).await?;
        }
    }
    tracing::info!(admin = %admin.id, %user_id, disabled = ?request.disabled, is_admin = ?request.is_admin, "account changed by an administrator");
    let detail = serde_json::json!({"disabled": request.disabled, "is_admin": request.is_admin});
    audited(&state, "user_updated", admin.id, user_id, &address, detail).await;
    Ok(Json(one_user(&state, &user).await?))
}

/// Delete an account with its chats, their sandboxes and checkpoints.
#[utoipa::path(delete, path = "/api/v1/admin/users/{user_id}", tag = "admin",
    params(("user_id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403, description = "admin_only"),
              (status = 404, description = "user_not_found"), (status = 409, description = "last_admin")),
    security(("bearer" = [])))]
async fn delete_user(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    UserId(user_id): UserId,
) -> Result<StatusCode, ApiError> {
    let user = state.store.user(user_id).await?.ok_or_else(user_not_found)?;
    // Refused before anything is stopped, so a refusal changes nothing.
    if user.is_admin
        && user.disabled_at.is_none()
        && !state
            .store
            .list_users()
            .await?
            .iter()
            .any(|other| other.id != user.id && other.is_admin && other.disabled_at.is_none())
    {
        return Err(last_admin());
    }
    // Disabled first, so that nothing new starts while the chats are taken down.
    state.store.set_user_disabled(user_id, true).await.map_err(admin_error)?;
    disconnect(&state, user_id).await?;
    for chat in state.store.list_chats(user_id).await? {
        state.runner.forget_chat(chat.id).await;
    }
    if !state.store.delete_user(user_id).await.map_err(admin_error)? {
        return Err(user_not_found());
    }
    tracing::info!(admin = %admin.id, %user_id, "account deleted by an administrator");
    let detail = serde_json::json!({"email": user.email});
    audited(&state, "user_deleted", admin.id, user_id, &address, detail).await;
    Ok(StatusCode::NO_CONTENT)
}

fn invite_json(invite: &InviteRecord) -> Invite {
    Invite {
        id: invite.id,
        created_by: invite.created_by,
        created_at: invite.created_at,
        expires_at: invite.expires_at,
        used_at: invite.used_at,
        used_by: invite.used_by,
    }
}

/// Every invite, newest first.
#[utoipa::path(get, path = "/api/v1/admin/invites", tag = "admin",
    responses((status = 200, body = [Invite]), (status = 401), (status = 403, description = "admin_only")),
    security(("bearer" = [])))]
async fn list_invites(
    State(state): State<AppState>,
    _admin: AdminUserOnly,
) -> Result<Json<Vec<Invite>>, ApiError> {
    Ok(Json(state.store.list_invites().await?.iter().map(invite_json).collect()))
}

/// A single-use invite to register; its token is in this answer only.
#[utoipa::path(post, path = "/api/v1/admin/invites", tag = "admin", request_body = CreateInviteRequest,
    responses((status = 201, body = CreatedInvite), (status = 401),
              (status = 403, description = "admin_only"), (status = 422, description = "invalid_expiry")),
    security(("bearer" = [])))]
async fn create_invite(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<CreateInviteRequest>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let ttl = match request.expires_in_hours {
        None => {
            chrono::Duration::from_std(state.accounts.invite_ttl).map_err(ApiError::internal)?
        }
        Some(hours @ 1..=8760) => chrono::Duration::hours(i64::from(hours)),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_expiry",
                "expires_in_hours must be between 1 and 8760 (a year).",
            ));
        }
    };
    let token = random_token();
    let invite = state.store.create_invite(admin.id, &token_hash(&token), Utc::now() + ttl).await?;
    tracing::info!(admin = %admin.id, invite = %invite.id, "invite created");
    let detail = serde_json::json!({"expires_at": invite.expires_at});
    audited(&state, "invite_created", admin.id, invite.id, &address, detail).await;
    let path = format!("/?invite={token}");
    Ok((StatusCode::CREATED, Json(CreatedInvite { invite: invite_json(&invite), token, path })))
}

/// Withdraw an invite (used or not).
#[utoipa::path(delete, path = "/api/v1/admin/invites/{invite_id}", tag = "admin",
    params(("invite_id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403, description = "admin_only"),
              (status = 404, description = "invite_not_found")),
    security(("bearer" = [])))]
async fn delete_invite(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    InviteId(invite_id): InviteId,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_invite(invite_id).await? {
        audited(&state, "invite_deleted", admin.id, invite_id, &address, serde_json::json!({}))
            .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(invite_not_found())
    }
}

async fn settings_json(state: &AppState) -> Result<AccountSettings, ApiError> {
    Ok(AccountSettings {
        registration: registration_mode(state).await?.api(),
        invite_ttl_hours: state.accounts.invite_ttl.as_secs() / 3600,
    })
}

/// The account rules this server runs with: its flags, and the registration mode as an
/// administrator last set it.
#[utoipa::path(get, path = "/api/v1/admin/settings", tag = "admin",
    responses((status = 200, body = AccountSettings), (status = 401), (status = 403, description = "admin_only")),
    security(("bearer" = [])))]
async fn settings(
    State(state): State<AppState>,
    _admin: AdminUserOnly,
) -> Result<Json<AccountSettings>, ApiError> {
    Ok(Json(settings_json(&state).await?))
}

/// Change the registration mode (`open`, `closed`, `invite`) while the server runs. It is
/// stored in the database: it holds after a restart, in place of `--registration`, and on
/// every node at once.
#[utoipa::path(put, path = "/api/v1/admin/settings", tag = "admin",
    request_body = UpdateAccountSettingsRequest,
    responses((status = 200, body = AccountSettings), (status = 401), (status = 403, description = "admin_only")),
    security(("bearer" = [])))]
async fn update_account_settings(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<UpdateAccountSettingsRequest>,
) -> Result<Json<AccountSettings>, ApiError> {
    if let Some(registration) = request.registration {
        let mode = RegistrationMode::from_api(registration);
        state.store.set_server_setting(REGISTRATION_SETTING, mode.as_str()).await?;
        tracing::info!(admin = %admin.id, registration = mode.as_str(), "registration mode changed");
        audit::record(
            &state,
            Entry {
                kind: "settings_changed",
                actor: Some(admin.id),
                address: Some(&address),
                detail: Some(serde_json::json!({"registration": mode.as_str()})),
                ..Entry::default()
            },
        )
        .await;
    }
    Ok(Json(settings_json(&state).await?))
}
