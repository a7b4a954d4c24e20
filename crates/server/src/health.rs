//! `/health`: what works and what does not, per dependency.

use std::time::Duration;

use agentbox_protocol::api::{ComponentHealth, DatabaseHealth, Health, HealthStatus, PoolHealth};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::state::AppState;

/// Facts gathered once at start-up, reported by `/health` and used as defaults.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub version: String,
    /// The model of a chat created without one.
    pub default_model: String,
    /// The Claude Code CLI: found (with version and path) or not.
    pub cli: ComponentHealth,
    /// Model access: configured, demo (scripted mock), or not configured.
    pub model: ComponentHealth,
}

pub fn component(status: &str, detail: impl Into<String>) -> ComponentHealth {
    ComponentHealth {
        status: status.to_owned(),
        detail: Some(detail.into()),
        version: None,
        isolated: None,
    }
}

/// The event bus: not configured (in-process), or Redis and whether it answers now. An
/// unreachable Redis does not degrade the server: turns run, and streams read the log.
async fn bus_health(state: &AppState) -> ComponentHealth {
    let bus = state.bus.health().await;
    match bus.reachable {
        None => component(
            "not_configured",
            format!("single node: {}, in-process run queue", bus.detail),
        ),
        Some(true) => component("ok", bus.detail),
        Some(false) => component("error", bus.detail),
    }
}

/// Checks the database (its backend, version and pool use) and the sandbox provider now; reports the CLI and model access as
/// found at start-up. `degraded` means turns cannot run; 503 means the database is down.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let backend = state.store.backend().as_str().to_owned();
    let database = match tokio::time::timeout(Duration::from_secs(3), state.store.info()).await {
        Ok(Ok(info)) => DatabaseHealth {
            component: ComponentHealth {
                version: Some(info.version),
                ..component(
                    "ok",
                    format!(
                        "{backend}: {} of {} connections open, {} idle",
                        info.pool.open, info.pool.max, info.pool.idle
                    ),
                )
            },
            backend,
            pool: Some(PoolHealth {
                open: info.pool.open,
                idle: info.pool.idle,
                min: info.pool.min,
                max: info.pool.max,
            }),
        },
        Ok(Err(err)) => {
            DatabaseHealth { component: component("error", err.to_string()), backend, pool: None }
        }
        Err(_) => DatabaseHealth {
            component: component("error", "the database did not answer within 3 s"),
            backend,
            pool: None,
        },
    };
    let provider = state.runner.sandbox_provider();
    let provider_health = provider.health().await;
    let sandbox = ComponentHealth {
        status: if provider_health.ok { "ok" } else { "error" }.to_owned(),
        detail: Some(format!("{}: {}", provider.name(), provider_health.detail)),
        version: None,
        isolated: Some(provider.isolates()),
    };
    let info = &state.info;
    let turns_can_run = database.component.status == "ok"
        && sandbox.status == "ok"
        && info.cli.status == "ok"
        && matches!(info.model.status.as_str(), "ok" | "demo");
    let database_up = database.component.status == "ok";
    let body = Health {
        status: if turns_can_run { HealthStatus::Healthy } else { HealthStatus::Degraded },
        version: info.version.clone(),
        database,
        redis: bus_health(&state).await,
        sandbox,
        cli: info.cli.clone(),
        model: info.model.clone(),
    };
    let status = if database_up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}
