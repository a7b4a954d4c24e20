//! Accounts and tokens: argon2 password hashes, short-lived HS256 JWT access tokens and
//! rotating refresh tokens (stored only as SHA-256 hashes).

use std::time::Duration;

use agentbox_protocol::api::{LoginRequest, RefreshRequest, RegisterRequest, TokenResponse, User};
use agentbox_store::{StoreError, UserRecord};
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

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// Signing keys and token lifetimes.
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl AuthKeys {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl,
            refresh_ttl,
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
    state
        .store
        .user(claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("The account of this token no longer exists."))
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
    }
}

fn validate_registration(request: &RegisterRequest) -> Result<(), ApiError> {
    let email = request.email.trim();
    let plausible = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !plausible {
        return Err(ApiError::unprocessable("invalid_email", "That is not a valid email address."));
    }
    let length = request.password.chars().count();
    if !(8..=1024).contains(&length) {
        return Err(ApiError::unprocessable(
            "invalid_password",
            "The password must be between 8 and 1024 characters long.",
        ));
    }
    if let Some(name) = &request.username
        && (name.trim().is_empty() || name.chars().count() > 64)
    {
        return Err(ApiError::unprocessable(
            "invalid_username",
            "The username must be between 1 and 64 characters long.",
        ));
    }
    Ok(())
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 409, description = "email_taken"),
              (status = 422, description = "invalid_email, invalid_password, invalid_username")))]
async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    validate_registration(&request)?;
    let hash = hash_password(request.password).await?;
    let user = state
        .store
        .create_user(request.email.trim(), request.username.as_deref().map(str::trim), &hash)
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => {
                ApiError::conflict("email_taken", "An account with this email already exists.")
            }
            other => other.into(),
        })?;
    tracing::info!(user_id = %user.id, "account created");
    Ok((StatusCode::CREATED, axum::Json(user_json(&user))))
}

/// Exchange email and password for tokens.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "invalid_credentials")))]
async fn login(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let user = state.store.user_by_email(request.email.trim()).await?;
    // Verify against a real hash even for an unknown email, so timing does not tell which
    // emails have accounts.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let valid = verify_password(request.password, stored).await?;
    match user {
        Some(user) if valid => Ok(axum::Json(issue_tokens(&state, user.id).await?)),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The email or password is wrong.",
        )),
    }
}

/// Exchange a refresh token for new tokens; the old refresh token stops working.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "invalid_refresh_token")))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let user_id = state.store.take_refresh_token(&token_hash(&request.refresh_token)).await?;
    match user_id {
        Some(user_id) => Ok(axum::Json(issue_tokens(&state, user_id).await?)),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            "The refresh token is invalid, used or expired; sign in again.",
        )),
    }
}

/// Revoke all of the user's refresh tokens. Access tokens stay valid until they expire.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401)), security(("bearer" = [])))]
async fn logout(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.store.remove_refresh_tokens(user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401)), security(("bearer" = [])))]
async fn me(CurrentUser(user): CurrentUser) -> axum::Json<User> {
    axum::Json(user_json(&user))
}

async fn issue_tokens(state: &AppState, user_id: Uuid) -> Result<TokenResponse, ApiError> {
    let now = Utc::now();
    let ttl = state.auth.access_ttl.as_secs();
    let claims = Claims {
        sub: user_id,
        iat: now.timestamp(),
        exp: now.timestamp().saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
    };
    let access_token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &state.auth.encoding)
            .map_err(ApiError::internal)?;
    let refresh_token = random_token();
    let refresh_ttl =
        chrono::Duration::from_std(state.auth.refresh_ttl).map_err(ApiError::internal)?;
    state.store.add_refresh_token(user_id, &token_hash(&refresh_token), now + refresh_ttl).await?;
    Ok(TokenResponse { access_token, refresh_token, token_type: "bearer".into(), expires_in: ttl })
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

fn token_hash(token: &str) -> String {
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
async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|hash| hash.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// A hash that no password matches, verified against when the account does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wGRXLi2jKMWSVhOvKXPn3KI0KL3pzkt2K11DTXCMxXk";

async fn verify_password(password: String, stored: Option<String>) -> Result<bool, ApiError> {
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
