//! `/health`: what works and what does not, per dependency.

use std::time::Duration;

use agentbox_protocol::api::{ComponentHealth, Health, HealthStatus};
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

/// Checks the database and the sandbox provider now; reports the CLI and model access as
/// found at start-up. `degraded` means turns cannot run; 503 means the database is down.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = match tokio::time::timeout(Duration::from_secs(3), state.store.ping()).await {
        Ok(Ok(())) => component("ok", "sqlite"),
        Ok(Err(err)) => component("error", err.to_string()),
        Err(_) => component("error", "the database did not answer within 3 s"),
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
    let turns_can_run = database.status == "ok"
        && sandbox.status == "ok"
        && info.cli.status == "ok"
        && matches!(info.model.status.as_str(), "ok" | "demo");
    let database_up = database.status == "ok";
    let body = Health {
        status: if turns_can_run { HealthStatus::Healthy } else { HealthStatus::Degraded },
        version: info.version.clone(),
        database,
        redis: component("not_configured", "single node: in-process event bus and run queue"),
        sandbox,
        cli: info.cli.clone(),
        model: info.model.clone(),
    };
    let status = if database_up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}
