//! `/health`: what works and what does not, per dependency.

use std::time::Duration;

use agentbox_protocol::api::{
    ComponentHealth, DatabaseHealth, Health, HealthStatus, NodeHealth, PeerHealth, PoolHealth,
    QueueHealth,
};
use agentbox_store::{NodeRecord, NodeRole, TurnQueueSummary};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};

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
async fn bus_health(state: &AppState, peers: &[PeerHealth]) -> ComponentHealth {
    let bus = state.bus.health().await;
    let alone =
        state.runner.config().node.role == NodeRole::All && !peers.iter().any(|peer| peer.alive);
    match bus.reachable {
        // Without Redis, a node's live streams do not show the turns another node runs
        // (the log does): say so wherever another node shares the database.
        None if alone => component("not_configured", format!("single node: {}", bus.detail)),
        None => component(
            "not_configured",
            format!(
                "{}: live events stay on the node that runs the turn; set REDIS_URL on every node",
                bus.detail
            ),
        ),
        Some(true) => component("ok", bus.detail),
        Some(false) => component("error", bus.detail),
    }
}

/// This node, the durable queue and the other registered nodes, read from the store at
/// `now`. `None` for the queue and no peers when the database does not answer.
async fn cluster_health(
    state: &AppState,
    now: DateTime<Utc>,
) -> (NodeHealth, Option<QueueHealth>, Vec<PeerHealth>) {
    let settings = &state.runner.config().node;
    let node = NodeHealth {
        id: settings.id.clone(),
        role: settings.role.as_str().to_owned(),
        expiry_secs: settings.expiry.as_secs(),
    };
    let read = async {
        Ok::<_, agentbox_store::StoreError>((
            state.store.turn_queue_summary().await?,
            state.store.nodes().await?,
        ))
    };
    let Ok(Ok((summary, nodes))) = tokio::time::timeout(Duration::from_secs(3), read).await else {
        return (node, None, Vec::new());
    };
    let queue = queue_health(settings.role, &summary, now);
    let expiry = chrono::TimeDelta::from_std(settings.expiry).unwrap_or(chrono::TimeDelta::MAX);
    let peers = nodes
        .iter()
        .filter(|peer| peer.id != settings.id)
        .map(|peer| peer_health(peer, now, expiry))
        .collect();
    (node, Some(queue), peers)
}

fn queue_health(role: NodeRole, summary: &TurnQueueSummary, now: DateTime<Utc>) -> QueueHealth {
    QueueHealth {
        kind: if role == NodeRole::All { "in_process" } else { "durable" }.to_owned(),
        depth: summary.jobs,
        claimed: summary.claimed,
        oldest_job_age_ms: summary.oldest_queued_at.map(|at| age_ms(at, now)),
    }
}

/// A peer is alive while its heartbeat is within the expiry, the sweep's own rule.
fn peer_health(peer: &NodeRecord, now: DateTime<Utc>, expiry: chrono::TimeDelta) -> PeerHealth {
    PeerHealth {
        id: peer.id.clone(),
        role: peer.role.as_str().to_owned(),
        address: peer.address.clone(),
        heartbeat_age_ms: age_ms(peer.heartbeat_at, now),
        alive: now.signed_duration_since(peer.heartbeat_at) <= expiry,
    }
}

/// Milliseconds from `at` to `now`; 0 when `at` is later (another node's clock ahead).
fn age_ms(at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from(now.signed_duration_since(at).num_milliseconds()).unwrap_or(0)
}

/// Checks the database (its backend, version and pool use) and the sandbox provider now;
/// reports the CLI and model access as found at start-up, this node, the turn queue and
/// the other nodes. `degraded` means turns cannot run (on an API node, also: no live
/// worker); 503 means the database is down.
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
    let (node, queue, peers) = cluster_health(&state, Utc::now()).await;
    // An API node runs no turn itself: turns run only while some worker is alive.
    let workers_alive = state.runner.config().node.role != NodeRole::Api
        || peers.iter().any(|peer| peer.alive && peer.role == NodeRole::Worker.as_str());
    let turns_can_run = database.component.status == "ok"
        && sandbox.status == "ok"
        && info.cli.status == "ok"
        && matches!(info.model.status.as_str(), "ok" | "demo")
        && workers_alive;
    let database_up = database.component.status == "ok";
    let body = Health {
        status: if turns_can_run { HealthStatus::Healthy } else { HealthStatus::Degraded },
        version: info.version.clone(),
        database,
        redis: bus_health(&state, &peers).await,
        sandbox,
        cli: info.cli.clone(),
        model: info.model.clone(),
        node,
        queue,
        peers,
    };
    let status = if database_up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_peer_is_alive_while_its_heartbeat_is_within_the_expiry() {
        let peer = |beat| NodeRecord {
            id: "w-1".into(),
            role: NodeRole::Worker,
            address: Some("http://10.0.0.2:8081".into()),
            started_at: at(0),
            heartbeat_at: beat,
        };
        let expiry = chrono::TimeDelta::seconds(30);
        let fresh = peer_health(&peer(at(95)), at(100), expiry);
        assert_eq!((fresh.heartbeat_age_ms, fresh.alive), (5_000, true));
        assert_eq!(
            (fresh.role.as_str(), fresh.address.as_deref()),
            ("worker", Some("http://10.0.0.2:8081"))
        );
        let edge = peer_health(&peer(at(70)), at(100), expiry);
        assert!(edge.alive, "exactly the expiry is not yet gone, as the sweep counts");
        let gone = peer_health(&peer(at(69)), at(100), expiry);
        assert_eq!((gone.heartbeat_age_ms, gone.alive), (31_000, false));
        let ahead = peer_health(&peer(at(102)), at(100), expiry);
        assert_eq!((ahead.heartbeat_age_ms, ahead.alive), (0, true), "a clock ahead is no age");
    }

    #[test]
    fn the_queue_reports_its_kind_depth_and_oldest_age() {
        let summary = TurnQueueSummary { jobs: 3, claimed: 1, oldest_queued_at: Some(at(40)) };
        let queue = queue_health(NodeRole::Api, &summary, at(100));
        assert_eq!(
            queue,
            QueueHealth {
                kind: "durable".into(),
                depth: 3,
                claimed: 1,
                oldest_job_age_ms: Some(60_000)
            }
        );
        let empty = queue_health(NodeRole::All, &TurnQueueSummary::default(), at(100));
        assert_eq!(
            (empty.kind.as_str(), empty.depth, empty.oldest_job_age_ms),
            ("in_process", 0, None)
        );
    }
}
