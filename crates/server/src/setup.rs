//! `GET /api/v1/setup`: what a client needs to know before anyone has signed in.
//!
//! The web UI asks it on its first visit: on a server without accounts it goes straight to
//! creating the first one instead of showing a sign-in form that nobody can use. It says only
//! whether any account exists, never which.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(setup_status))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetupStatus {
    /// Whether at least one account exists. `false` on a fresh server: the first visitor
    /// creates the first account.
    pub has_accounts: bool,
    /// Who may create an account after the first: the sign-up form asks for an invite when
    /// it is `invite`, and is not offered when it is `closed`.
    pub registration: agentbox_protocol::api::Registration,
}

/// Whether this server has any account yet. Needs no sign-in.
#[utoipa::path(get, path = "/api/v1/setup", tag = "auth",
    responses((status = 200, body = SetupStatus)))]
async fn setup_status(State(state): State<AppState>) -> Result<Json<SetupStatus>, ApiError> {
    let users = state.store.count_users().await?;
    Ok(Json(SetupStatus {
        has_accounts: users > 0,
        registration: crate::accounts::registration_mode(&state).await?.api(),
    }))
}
