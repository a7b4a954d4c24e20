//! Accounts and tokens: argon2 password hashes, short-lived HS256 JWT access tokens and
//! rotating refresh tokens (stored only as SHA-256 hashes) in families, one per sign-in.
//!
//! Every request reads the user's row: a disabled or deleted account's tokens stop working
//! at once, and nothing about a user is cached. Secrets are never compared byte by byte
//! with a stored secret: passwords go through argon2's verifier, signatures through the JWT
//! library's constant-time check, and refresh tokens and invites are looked up by the
//! SHA-256 of a 256-bit random value, so timing tells nothing about a valid one.

use std::time::Duration;

use agentbox_protocol::api::{
    LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest, TokenResponse, User,
};
use agentbox_store::{RefreshRotation, StoreError, UserRecord};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::accounts::{ClientAddress, RegistrationMode, rate_limited};
use crate::audit::{self, Entry};
use crate::credentials;
use crate::error::ApiError;
use crate::extract::{ApiJson, OptionalJson};
use crate::state::AppState;

/// Signing keys and token lifetimes.
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// The key of the credential API nodes present to workers (`internal`), from the same
    /// secret under a label of its own.
    pub internal: crate::internal::InternalKey,
}

impl AuthKeys {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl,
            refresh_ttl,
            internal: crate::internal::InternalKey::derive(secret),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iat: i64,
    exp: i64,
}

/// The signed-in user of a request, from its bearer token.
pub struct CurrentUser(pub UserRecord);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A worker serving an API node's request: the node credential was checked by
        // `internal::dispatch`, the only place that sets this.
        if let Some(caller) = parts.extensions.get::<crate::internal::InternalCaller>() {
            return Ok(Self(user_by_id(state, caller.user_id).await?));
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("Sign in first: no Authorization header."))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::unauthorized("The Authorization header must be `Bearer <token>`.")
            })?;
        Ok(Self(user_from_token(state, token).await?))
    }
}

/// The user an access token was issued to, if the token is valid and the account exists.
pub async fn user_from_token(state: &AppState, token: &str) -> Result<UserRecord, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    let claims = jsonwebtoken::decode::<Claims>(token.trim(), &state.auth.decoding, &validation)
        .map_err(|_| ApiError::unauthorized("The access token is invalid or has expired."))?
        .claims;
    user_by_id(state, claims.sub).await
}

/// The account `id`, if it exists and is not disabled.
pub async fn user_by_id(state: &AppState, id: Uuid) -> Result<UserRecord, ApiError> {
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("The account of this token no longer exists."))?;
    if user.disabled_at.is_some() {
        return Err(account_disabled());
    }
    Ok(user)
}

/// What a disabled account's tokens get: 401, so that clients sign out.
pub fn account_disabled() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "account_disabled",
        "An administrator has disabled this account.",
    )
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

pub fn user_json(user: &UserRecord) -> User {
    User {
        id: user.id,
        email: user.email.clone(),
        username: user.username.clone(),
        created_at: user.created_at,
        is_admin: user.is_admin,
    }
}

/// The answer for a refused invite, also given in invite mode when the email has an
/// account: someone probing emails with an invite learns nothing, and spends the invite.
fn invalid_invite() -> ApiError {
    ApiError::forbidden(
        "invalid_invite",
        "This invite cannot be used: it is unknown, used or expired, or it was spent on an \
         email that cannot register. Ask an administrator for a new one.",
    )
}

/// Create an account. The first account of an installation is an administrator and can
/// always be created; after it, the registration mode decides (`open`, `closed`, `invite`:
/// `--registration`, or what an administrator set with `PUT /api/v1/admin/settings`).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses((status = 201, body = User),
              (status = 403, description = "registration_closed, invite_required, invalid_invite"),
              (status = 409, description = "email_taken (open registration only)"),
              (status = 422, description = "invalid_email, invalid_password, invalid_username"),
              (status = 429, description = "rate_limited, with Retry-After")))]
async fn register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let email = credentials::email(&request.email)?;
    credentials::password(&request.password, email)?;
    credentials::username(request.username.as_deref())?;
    let accounts = &state.accounts;
    if let Err(wait) = accounts.register_address.take(&address, accounts.now()) {
        audit::rate_limited(&state, "register", &address, &address, None).await;
        return Err(rate_limited(wait));
    }
    let first = state.store.count_users().await? == 0;
    let mode = if first {
        RegistrationMode::Open
    } else {
        crate::accounts::registration_mode(&state).await?
    };
    let invite = match mode {
        RegistrationMode::Open => None,
        RegistrationMode::Closed => {
            return Err(ApiError::forbidden(
                "registration_closed",
                "Registration is closed on this server; an administrator can create your account.",
            ));
        }
        RegistrationMode::Invite => match &request.invite {
            Some(token) => Some(token_hash(token.trim())),
            None => {
                return Err(ApiError::forbidden(
                    "invite_required",
                    "Registration on this server is by invite: open the invite link you were given.",
                ));
            }
        },
    };
    let hash = hash_password(request.password).await?;
    let user = state
        .store
        .create_user_with(
            email,
            request.username.as_deref().map(str::trim),
            &hash,
            invite.as_deref(),
        )
        .await
        .map_err(|err| match err {
            StoreError::Conflict("invalid_invite") => invalid_invite(),
            StoreError::Conflict(_) if invite.is_some() => invalid_invite(),
            StoreError::Conflict(_) => {
                ApiError::conflict("email_taken", "An account with this email already exists.")
            }
            other => other.into(),
        })?;
    tracing::info!(user_id = %user.id, admin = user.is_admin, "account created");
    let detail = serde_json::json!({"admin": user.is_admin, "invite": invite.is_some()});
    audit::record(
        &state,
        Entry {
            kind: "account_created",
            actor: Some(user.id),
            email: Some(&user.email),
            address: Some(&address),
            detail: Some(detail),
            ..Entry::default()
        },
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(user_json(&user))))
}

/// Exchange email and password for tokens. Failed attempts are limited per account and per
/// address (then `429` with `Retry-After`); a success forgives the account's failures.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "invalid_credentials"),
              (status = 403, description = "account_disabled"),
              (status = 429, description = "rate_limited, with Retry-After")))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let accounts = &state.accounts;
    let now = accounts.now();
    // Keyed by a hash: an attacker's megabyte-long "emails" cost the map 64 bytes each.
    let account = token_hash(&request.email.trim().to_lowercase());
    let waits = [
        accounts.login_account.blocked(&account, now),
        accounts.login_address.blocked(&address, now),
    ];
    if let Some(wait) = waits.into_iter().flatten().max() {
        tracing::warn!(%address, "sign-in refused: too many failed attempts");
        audit::rate_limited(&state, "login", &account, &address, Some(request.email.trim())).await;
        return Err(rate_limited(wait));
    }
    let user = state.store.user_by_email(request.email.trim()).await?;
    // Verify against a real hash even for an unknown email, so timing does not tell which
    // emails have accounts.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let valid = verify_password(request.password, stored).await?;
    match user {
        Some(user) if valid => {
            accounts.login_account.forget(&account);
            let entry = |kind| Entry {
                kind,
                actor: Some(user.id),
                email: Some(&user.email),
                address: Some(&address),
                ..Entry::default()
            };
            if user.disabled_at.is_some() {
                audit::record(
                    &state,
                    Entry {
                        detail: Some(serde_json::json!({"reason": "account_disabled"})),
                        ..entry("sign_in_refused")
                    },
                )
                .await;
                return Err(ApiError::forbidden(
                    "account_disabled",
                    "An administrator has disabled this account.",
                ));
            }
            let tokens = issue_tokens(&state, user.id).await?;
            audit::record(&state, entry("sign_in")).await;
            Ok(axum::Json(tokens))
        }
        _ => {
            // Both are counted even when one is already empty: the wait is the longer one.
            let _ = accounts.login_account.take(&account, now);
            let _ = accounts.login_address.take(&address, now);
            tracing::info!(%address, "failed sign-in");
            audit::record(
                &state,
                Entry {
                    kind: "sign_in_failed",
                    actor: user.as_ref().map(|user| user.id),
                    email: Some(request.email.trim()),
                    address: Some(&address),
                    ..Entry::default()
                },
            )
            .await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The email or password is wrong.",
            ))
        }
    }
}

/// Exchange a refresh token for new tokens; the old refresh token stops working. Presenting
/// a token that was already exchanged revokes every token of its sign-in.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "invalid_refresh_token, refresh_token_reused, account_disabled"),
              (status = 429, description = "rate_limited, with Retry-After")))]
async fn refresh(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let accounts = &state.accounts;
    if let Err(wait) = accounts.refresh_address.take(&address, accounts.now()) {
        audit::rate_limited(&state, "refresh", &address, &address, None).await;
        return Err(rate_limited(wait));
    }
    let refresh_token = random_token();
    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.auth.refresh_ttl).map_err(ApiError::internal)?;
    let rotation = state
        .store
        .rotate_refresh_token(
            &token_hash(request.refresh_token.trim()),
            &token_hash(&refresh_token),
            expires_at,
        )
        .await?;
    match rotation {
        RefreshRotation::Rotated { user_id } => {
            match state.store.user(user_id).await? {
                Some(user) if user.disabled_at.is_none() => {}
                _ => {
                    state.store.remove_refresh_tokens(user_id).await?;
                    return Err(account_disabled());
                }
            }
            let (access_token, expires_in) = access_token(&state, user_id)?;
            Ok(axum::Json(TokenResponse {
                access_token,
                refresh_token,
                token_type: "bearer".into(),
                expires_in,
            }))
        }
        RefreshRotation::Reused { user_id } => {
            tracing::warn!(%user_id, %address, "a used refresh token was presented again; its sign-in is revoked");
            audit::record(
                &state,
                Entry {
                    kind: "refresh_token_reused",
                    actor: Some(user_id),
                    address: Some(&address),
                    ..Entry::default()
                },
            )
            .await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "This refresh token was already used, so it may have been stolen: every \
                 session of that sign-in is signed out. Sign in again.",
            ))
        }
        RefreshRotation::Invalid => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            "The refresh token is invalid, used or expired; sign in again.",
        )),
    }
}

/// Sign out. With the session's `refresh_token`, that sign-in's refresh tokens are revoked;
/// without a body, all of the user's. Access tokens stay valid until they expire.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body(content = Option<LogoutRequest>),
    responses((status = 204), (status = 401)), security(("bearer" = [])))]
async fn logout(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    CurrentUser(user): CurrentUser,
    OptionalJson(request): OptionalJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    let everywhere = match request.and_then(|request| request.refresh_token) {
        Some(token) => {
            state.store.revoke_refresh_family(user.id, &token_hash(token.trim())).await?;
            false
        }
        None => {
            state.store.remove_refresh_tokens(user.id).await?;
            true
        }
    };
    let detail = serde_json::json!({"everywhere": everywhere});
    audit::record(
        &state,
        Entry {
            kind: "sign_out",
            actor: Some(user.id),
            address: Some(&address),
            detail: Some(detail),
            ..Entry::default()
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401)), security(("bearer" = [])))]
async fn me(CurrentUser(user): CurrentUser) -> axum::Json<User> {
    axum::Json(user_json(&user))
}

/// A signed access token for the user, and its lifetime in seconds.
fn access_token(state: &AppState, user_id: Uuid) -> Result<(String, u64), ApiError> {
    let now = Utc::now();
    let ttl = state.auth.access_ttl.as_secs();
    let claims = Claims {
        sub: user_id,
        iat: now.timestamp(),
        exp: now.timestamp().saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &state.auth.encoding)
        .map_err(ApiError::internal)?;
    Ok((token, ttl))
}

/// Tokens for a new sign-in: its refresh token starts a family of its own.
pub(crate) async fn issue_tokens(
    state: &AppState,
    user_id: Uuid,
) -> Result<TokenResponse, ApiError> {
    let (access_token, expires_in) = access_token(state, user_id)?;
    let refresh_token = random_token();
    let refresh_ttl =
        chrono::Duration::from_std(state.auth.refresh_ttl).map_err(ApiError::internal)?;
    let family = random_token();
    state
        .store
        .add_refresh_token(user_id, &token_hash(&refresh_token), &family, Utc::now() + refresh_ttl)
        .await?;
    Ok(TokenResponse { access_token, refresh_token, token_type: "bearer".into(), expires_in })
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub(crate) fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Hashing is CPU-bound on purpose; keep it off the async workers.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|hash| hash.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// A hash that no password matches, verified against when the account does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wGRXLi2jKMWSVhOvKXPn3KI0KL3pzkt2K11DTXCMxXk";

pub(crate) async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, ApiError> {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let valid = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
            .unwrap_or(false)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(known && valid)
}
