//! `/readyz` and `/livez`, the probes of a load balancer or an orchestrator, and the route
//! of `/metrics`: unlike `/health` (a report for people) they answer with a status only.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a dependency may take to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(readyz)).routes(routes!(livez)).routes(routes!(metrics))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Probe {
    /// `ready` or `live`.
    pub status: &'static str,
}

/// Whether this node should get traffic: 200 when the database answers (and Redis, when
/// the server uses it); 503 `not_ready` naming what did not answer, or `shutting_down`
/// once a shutdown has begun.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Probe),
              (status = 503, description = "not_ready, shutting_down", body = agentbox_protocol::api::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Probe>, ApiError> {
    if state.draining.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    match tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(ApiError::not_ready(format!("the database: {err}"))),
        Err(_) => {
            return Err(ApiError::not_ready(format!(
                "the database did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            )));
        }
    }
    let bus = tokio::time::timeout(PROBE_TIMEOUT, state.bus.health()).await;
    match bus {
        Ok(health) if health.reachable != Some(false) => Ok(Json(Probe { status: "ready" })),
        Ok(health) => Err(ApiError::not_ready(format!("Redis: {}", health.detail))),
        Err(_) => Err(ApiError::not_ready(format!(
            "Redis did not answer within {} s",
            PROBE_TIMEOUT.as_secs()
        ))),
    }
}

/// 200 while the process serves HTTP at all.
#[utoipa::path(get, path = "/livez", tag = "operations", responses((status = 200, body = Probe)))]
pub async fn livez() -> (StatusCode, Json<Probe>) {
    (StatusCode::OK, Json(Probe { status: "live" }))
}

/// The process's metrics in the Prometheus text format (ARCHITECTURE.md, "Metrics and
/// shutdown", lists them). With `--metrics-token`, only with that bearer token.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String),
              (status = 401, description = "unauthorized: the metrics token is missing or wrong")))]
pub async fn metrics(
    state: State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    crate::metrics::metrics(state, headers).await
}
