//! Changing a password: the user's own change (`POST /api/v1/auth/password`, with the
//! current password, limited like sign-in) and an administrator's reset
//! (`POST /api/v1/admin/users/{user_id}/password`). Either ends every refresh-token family
//! of the user in the transaction that stores the new hash; the user's own change answers
//! with new tokens for the session that made it (a family of its own), so that session goes
//! on and every other one has to sign in again when its access token expires.

use agentbox_protocol::api::{ChangePasswordRequest, ResetPasswordRequest, TokenResponse};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::{ClientAddress, rate_limited};
use crate::admin::{AdminUserOnly, UserId, audited, user_not_found};
use crate::audit::{self, Entry};
use crate::auth::{CurrentUser, hash_password, issue_tokens, token_hash, verify_password};
use crate::credentials;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(change_password)).routes(routes!(reset_password))
}

/// Change your password. A wrong current password counts as a failed sign-in of the
/// account and the address (`429` with `Retry-After` after too many). Every refresh token
/// of the account stops working; the answer holds new tokens for this session. Access
/// tokens already issued to other sessions work until they expire.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth",
    request_body = ChangePasswordRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "unauthorized"),
              (status = 403, description = "wrong_password"),
              (status = 422, description = "invalid_password"),
              (status = 429, description = "rate_limited, with Retry-After")),
    security(("bearer" = [])))]
async fn change_password(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let accounts = &state.accounts;
    let now = accounts.now();
    // The same buckets as sign-in: a stolen access token must not guess faster than login.
    let account = token_hash(&user.email);
    let waits = [
        accounts.login_account.blocked(&account, now),
        accounts.login_address.blocked(&address, now),
    ];
    if let Some(wait) = waits.into_iter().flatten().max() {
        audit::rate_limited(&state, "password", &account, &address, Some(&user.email)).await;
        return Err(rate_limited(wait));
    }
    let valid = verify_password(request.current_password, Some(user.password_hash.clone())).await?;
    let entry = |kind| Entry {
        kind,
        actor: Some(user.id),
        target: Some(user.id),
        email: Some(&user.email),
        address: Some(&address),
        ..Entry::default()
    };
    if !valid {
        let _ = accounts.login_account.take(&account, now);
        let _ = accounts.login_address.take(&address, now);
        audit::record(&state, entry("password_change_failed")).await;
        return Err(ApiError::forbidden("wrong_password", "The current password is wrong."));
    }
    credentials::password(&request.new_password, &user.email)?;
    accounts.login_account.forget(&account);
    let hash = hash_password(request.new_password).await?;
    if !state.store.set_password_hash(user.id, &hash).await? {
        return Err(ApiError::unauthorized("The account of this token no longer exists."));
    }
    let tokens = issue_tokens(&state, user.id).await?;
    tracing::info!(user_id = %user.id, "password changed");
    audit::record(&state, entry("password_changed")).await;
    Ok(Json(tokens))
}

/// Set a user's password. Every refresh token of theirs stops working (access tokens
/// already issued work until they expire).
#[utoipa::path(post, path = "/api/v1/admin/users/{user_id}/password", tag = "admin",
    params(("user_id" = Uuid, Path)), request_body = ResetPasswordRequest,
    responses((status = 204), (status = 401), (status = 403, description = "admin_only"),
              (status = 404, description = "user_not_found"),
              (status = 422, description = "invalid_password")),
    security(("bearer" = [])))]
async fn reset_password(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    UserId(user_id): UserId,
    ApiJson(request): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let user = state.store.user(user_id).await?.ok_or_else(user_not_found)?;
    credentials::password(&request.new_password, &user.email)?;
    let hash = hash_password(request.new_password).await?;
    if !state.store.set_password_hash(user_id, &hash).await? {
        return Err(user_not_found());
    }
    tracing::info!(admin = %admin.id, %user_id, "password reset by an administrator");
    audited(&state, "password_reset", admin.id, user_id, &address, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
