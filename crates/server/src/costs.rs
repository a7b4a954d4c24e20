//! What a user's turns cost: a chat's total and the user's total since a moment (the
//! browser's start of the day, which only it knows), beside each turn's own figure.

use agentbox_protocol::api::ChatCosts;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::ApiError;
use crate::extract::{ApiQuery, ChatId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(chat_costs))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CostsQuery {
    /// Where the user's total starts (RFC 3339); today's start in UTC without it.
    since: Option<DateTime<Utc>>,
}

/// The chat's total cost and the user's total since `since`, in US dollars.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/costs", tag = "chats",
    params(("chat_id" = uuid::Uuid, Path), CostsQuery),
    responses((status = 200, body = ChatCosts), (status = 400, description = "invalid_query"),
              (status = 404, description = "chat_not_found")),
    security(("bearer" = [])))]
async fn chat_costs(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<CostsQuery>,
) -> Result<Json<ChatCosts>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    let since = query.since.unwrap_or_else(start_of_today);
    let spent = state.store.spending(user.0.id, chat_id, since).await?;
    Ok(Json(ChatCosts { chat_total_usd: spent.chat_usd, user_total_usd: spent.since_usd, since }))
}

fn start_of_today() -> DateTime<Utc> {
    let now = Utc::now();
    now.date_naive().and_hms_opt(0, 0, 0).map_or(now, |midnight| midnight.and_utc())
}
