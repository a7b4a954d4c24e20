//! The signed-in user's settings: custom instructions appended to the agent's system prompt
//! in all of the user's chats (before each chat's own), and hosts their sandboxes may reach
//! besides the server's allow-list.

use agentbox_protocol::api::{UpdateUserSettingsRequest, UserSettings};
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use agentbox_sandbox::egress::AllowList;

use crate::auth::CurrentUser;
use crate::chats::{allowed_mode, valid_instructions, valid_model};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// How many hosts a user may add to their sandboxes' allow-list.
const MAX_ALLOWED_HOSTS: usize = 100;

/// The user's settings, and what applies where they set nothing.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UserSettingsResponse {
    #[serde(flatten)]
    pub settings: UserSettings,
    /// The model a new chat starts with when neither its request nor `default_model` names
    /// one.
    pub server_default_model: String,
}

fn answer(state: &AppState, settings: UserSettings) -> Json<UserSettingsResponse> {
    Json(UserSettingsResponse { settings, server_default_model: state.info.default_model.clone() })
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

/// The user's settings.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = UserSettingsResponse)), security(("bearer" = [])))]
async fn get_settings(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<UserSettingsResponse>, ApiError> {
    Ok(answer(&state, state.store.user_settings(user.0.id).await?))
}

/// Change the user's settings; absent fields stay as they are, an empty string clears.
/// Instructions take effect with each chat's next turn; allowed hosts with the next
/// connection a sandbox makes; the default model and mode with the next chat created.
#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings",
    request_body = UpdateUserSettingsRequest,
    responses((status = 200, body = UserSettingsResponse),
              (status = 403, description = "bypass_not_allowed"),
              (status = 422, description = "instructions_too_long, invalid_host, invalid_model")),
    security(("bearer" = [])))]
async fn update_settings(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(request): ApiJson<UpdateUserSettingsRequest>,
) -> Result<Json<UserSettingsResponse>, ApiError> {
    // Check everything before changing anything.
    let instructions =
        request.custom_instructions.as_deref().map(valid_instructions).transpose()?;
    if let Some(hosts) = &request.sandbox_allowed_hosts {
        if hosts.len() > MAX_ALLOWED_HOSTS {
            return Err(ApiError::unprocessable(
                "invalid_host",
                format!("At most {MAX_ALLOWED_HOSTS} hosts can be allowed."),
            ));
        }
        AllowList::parse(hosts)
            .map_err(|reason| ApiError::unprocessable("invalid_host", reason))?;
    }
    let default_model = match request.default_model.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(model) => Some(Some(valid_model(model)?)),
    };
    allowed_mode(&state, request.default_permission_mode)?;
    if let Some(instructions) = instructions {
        state.store.set_user_instructions(user.0.id, instructions.as_deref()).await?;
    }
    if let Some(hosts) = &request.sandbox_allowed_hosts {
        let hosts: Vec<String> =
            hosts.iter().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).collect();
        state.store.set_user_allowed_hosts(user.0.id, &hosts).await?;
    }
    if default_model.is_some() || request.default_permission_mode.is_some() {
        let current = state.store.user_settings(user.0.id).await?;
        let model = default_model.unwrap_or(current.default_model);
        let mode = request.default_permission_mode.or(current.default_permission_mode);
        state.store.set_user_defaults(user.0.id, model.as_deref(), mode).await?;
    }
    Ok(answer(&state, state.store.user_settings(user.0.id).await?))
}
