//! The signed-in user's settings: custom instructions appended to the agent's system prompt
//! in all of the user's chats (before each chat's own).

use agentbox_protocol::api::{UpdateUserSettingsRequest, UserSettings};
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::chats::valid_instructions;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

/// The user's settings.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = UserSettings)), security(("bearer" = [])))]
async fn get_settings(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<UserSettings>, ApiError> {
    Ok(Json(state.store.user_settings(user.0.id).await?))
}

/// Change the user's settings; absent fields stay as they are, an empty string clears.
/// Instructions take effect with each chat's next turn.
#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings",
    request_body = UpdateUserSettingsRequest,
    responses((status = 200, body = UserSettings),
              (status = 422, description = "instructions_too_long")),
    security(("bearer" = [])))]
async fn update_settings(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(request): ApiJson<UpdateUserSettingsRequest>,
) -> Result<Json<UserSettings>, ApiError> {
    let Some(text) = request.custom_instructions else {
        return Ok(Json(state.store.user_settings(user.0.id).await?));
    };
    let instructions = valid_instructions(&text)?;
    Ok(Json(state.store.set_user_instructions(user.0.id, instructions.as_deref()).await?))
}
