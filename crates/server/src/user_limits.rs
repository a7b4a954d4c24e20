//! The limits of one user: administrators read and set them
//! (`GET|PUT /api/v1/admin/users/{user_id}/limits`), every user reads their own with their
//! usage (`GET /api/v1/limits`). What is set is stored as the request's JSON, the limits
//! that are not `"default"`; the defaults are the server's flags, read at each use.

use agentbox_protocol::api::{LimitSetting, LimitUsage, UserLimits, UserLimitsRequest};
use axum::Json;
use axum::extract::State;
use chrono::{Days, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::accounts::ClientAddress;
use crate::admin::{AdminUserOnly, UserId, audited, user_not_found};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::limits;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(user_limits, set_user_limits)).routes(routes!(my_limits))
}

/// The names of the limits set (not `"default"`), in the order of the API.
fn set_names(set: &UserLimitsRequest) -> Vec<String> {
    [
        ("running_turns", set.running_turns),
        ("turns_per_day", set.turns_per_day),
        ("spend_per_day_usd", set.spend_per_day_usd),
        ("running_sandboxes", set.running_sandboxes),
        ("workspace_bytes_per_chat", set.workspace_bytes_per_chat),
        ("workspace_bytes_total", set.workspace_bytes_total),
    ]
    .into_iter()
    .filter(|(_, setting)| !setting.is_default())
    .map(|(name, _)| name.to_owned())
    .collect()
}

/// `invalid_limit` unless every count is a whole number that fits.
fn validate(set: &UserLimitsRequest) -> Result<(), ApiError> {
    let whole = |name: &str, setting: LimitSetting, max: f64| match setting {
        LimitSetting::Value(value) if value.fract() != 0.0 || value > max => {
            Err(ApiError::unprocessable(
                "invalid_limit",
                format!(
                    "{name} must be a whole number from 0 to {max}, null (no limit) or \"default\"."
                ),
            ))
        }
        _ => Ok(()),
    };
    let counts = f64::from(u32::MAX);
    // 2^53: every whole number up to it is exact in JSON's doubles.
    let bytes = 9_007_199_254_740_992.0;
    whole("running_turns", set.running_turns, counts)?;
    whole("turns_per_day", set.turns_per_day, counts)?;
    whole("running_sandboxes", set.running_sandboxes, counts)?;
    whole("workspace_bytes_per_chat", set.workspace_bytes_per_chat, bytes)?;
    whole("workspace_bytes_total", set.workspace_bytes_total, bytes)?;
    if let LimitSetting::Value(usd) = set.spend_per_day_usd
        && usd > 1e12
    {
        return Err(ApiError::unprocessable(
            "invalid_limit",
            "spend_per_day_usd must be at most 1e12, null (no limit) or \"default\".",
        ));
    }
    Ok(())
}

async fn limits_json(state: &AppState, user_id: Uuid) -> Result<UserLimits, ApiError> {
    let set = limits::overrides(&state.store, user_id).await?;
    let defaults = state.accounts.limits.values();
    let now = Utc::now();
    let today = limits::start_of_day(now);
    let activity = state.store.user_activity(user_id, today).await?;
    Ok(UserLimits {
        user_id,
        effective: limits::effective(&defaults, &set),
        defaults,
        set_by_admin: set_names(&set),
        usage: LimitUsage {
            running_turns: activity.running_turns,
            turns_today: activity.turns,
            spend_today_usd: activity.cost_usd,
        },
        day_resets_at: today.checked_add_days(Days::new(1)).unwrap_or(today),
    })
}

/// A user's limits: those in force, the defaults, which ones were set for the user, and
/// their usage today.
#[utoipa::path(get, path = "/api/v1/admin/users/{user_id}/limits", tag = "admin",
    params(("user_id" = Uuid, Path)),
    responses((status = 200, body = UserLimits), (status = 401),
              (status = 403, description = "admin_only"), (status = 404, description = "user_not_found")),
    security(("bearer" = [])))]
async fn user_limits(
    State(state): State<AppState>,
    _admin: AdminUserOnly,
    UserId(user_id): UserId,
) -> Result<Json<UserLimits>, ApiError> {
    state.store.user(user_id).await?.ok_or_else(user_not_found)?;
    Ok(Json(limits_json(&state, user_id).await?))
}

/// Set a user's limits, replacing what was set before: each field a number, `null` (no
/// limit) or `"default"`/left out (the server's flag). `{}` puts every limit back to the
/// default. Takes effect at the user's next prompt.
#[utoipa::path(put, path = "/api/v1/admin/users/{user_id}/limits", tag = "admin",
    params(("user_id" = Uuid, Path)), request_body = UserLimitsRequest,
    responses((status = 200, body = UserLimits), (status = 401),
              (status = 403, description = "admin_only"), (status = 404, description = "user_not_found"),
              (status = 422, description = "invalid_limit")),
    security(("bearer" = [])))]
async fn set_user_limits(
    State(state): State<AppState>,
    AdminUserOnly(admin): AdminUserOnly,
    ClientAddress(address): ClientAddress,
    UserId(user_id): UserId,
    ApiJson(request): ApiJson<UserLimitsRequest>,
) -> Result<Json<UserLimits>, ApiError> {
    validate(&request)?;
    state.store.user(user_id).await?.ok_or_else(user_not_found)?;
    let serde_json::Value::Object(stored) =
        serde_json::to_value(&request).map_err(ApiError::internal)?
    else {
        return Err(ApiError::internal("limits did not serialize as an object"));
    };
    state.store.set_user_limits(user_id, &stored).await?;
    tracing::info!(admin = %admin.id, %user_id, "limits changed by an administrator");
    audited(
        &state,
        "user_limits_changed",
        admin.id,
        user_id,
        &address,
        serde_json::Value::Object(stored),
    )
    .await;
    Ok(Json(limits_json(&state, user_id).await?))
}

/// Your own limits and what you have used of them today.
#[utoipa::path(get, path = "/api/v1/limits", tag = "auth",
    responses((status = 200, body = UserLimits), (status = 401)),
    security(("bearer" = [])))]
async fn my_limits(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<UserLimits>, ApiError> {
    Ok(Json(limits_json(&state, user.id).await?))
}
