//! The audit log of security events: recording them (a failure to record is logged, never
//! the request's failure: an unreachable log must not lock everyone out), deleting those
//! past the retention time, and `GET /api/v1/admin/audit` for administrators.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use agentbox_protocol::api::AuditEvent;
use agentbox_store::{AuditFilter, AuditRecord};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::AdminUserOnly;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// How long entries are kept, and when they were last purged.
pub struct AuditRetention {
    pub keep: Option<Duration>,
    last_purge: AtomicI64,
}

impl AuditRetention {
    pub fn new(keep: Option<Duration>) -> Self {
        Self { keep, last_purge: AtomicI64::new(0) }
    }
}

impl Default for AuditRetention {
    fn default() -> Self {
        Self::new(Some(Duration::from_secs(90 * 24 * 3600)))
    }
}

/// One event to record.
#[derive(Default)]
pub struct Entry<'a> {
    pub kind: &'static str,
    pub actor: Option<Uuid>,
    pub target: Option<Uuid>,
    pub email: Option<&'a str>,
    pub address: Option<&'a str>,
    pub detail: Option<Value>,
}

/// Purge at most this often: each entry would be too often, a timer is another task to run.
const PURGE_EVERY_SECS: i64 = 3600;

pub async fn record(state: &AppState, entry: Entry<'_>) {
    let written = state
        .store
        .audit(
            entry.kind,
            entry.actor,
            entry.target,
            entry.email,
            entry.address,
            entry.detail.as_ref(),
        )
        .await;
    if let Err(err) = written {
        tracing::warn!(kind = entry.kind, %err, "could not write to the audit log");
    }
    let retention = &state.accounts.audit;
    let Some(keep) = retention.keep else { return };
    let now = Utc::now().timestamp();
    let last = retention.last_purge.load(Ordering::Relaxed);
    if now - last >= PURGE_EVERY_SECS
        && retention
            .last_purge
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let Ok(keep) = chrono::Duration::from_std(keep) else { return };
        match state.store.purge_audit(Utc::now() - keep).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "deleted audit events past their retention"),
            Err(err) => tracing::warn!(%err, "could not purge the audit log"),
        }
    }
}

/// Record a rate-limit refusal, once a minute per limit and key, so a flood of refused
/// attempts does not become a flood of log entries.
pub async fn rate_limited(
    state: &AppState,
    route: &'static str,
    key: &str,
    address: &str,
    email: Option<&str>,
) {
    let accounts = &state.accounts;
    if accounts.audited_limits.take(&format!("{route}:{key}"), accounts.now()).is_ok() {
        let detail = serde_json::json!({"route": route});
        record(
            state,
            Entry {
                kind: "rate_limited",
                address: Some(address),
                email,
                detail: Some(detail),
                ..Entry::default()
            },
        )
        .await;
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events of this kind.
    kind: Option<String>,
    /// Only events whose actor or target is this user.
    user_id: Option<Uuid>,
    /// Only events at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only events before this time: the `created_at` of the last event of a page gives
    /// the next page.
    before: Option<DateTime<Utc>>,
    /// At most this many (1 to 1000, default 100).
    limit: Option<i64>,
}

fn event_json(record: AuditRecord) -> AuditEvent {
    AuditEvent {
        id: record.id,
        created_at: record.created_at,
        kind: record.kind,
        actor_id: record.actor_id,
        target_id: record.target_id,
        email: record.email,
        address: record.address,
        detail: record.detail.and_then(|text| serde_json::from_str(&text).ok()),
    }
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = [AuditEvent]), (status = 400, description = "invalid_query"),
              (status = 401), (status = 403, description = "admin_only")),
    security(("bearer" = [])))]
async fn audit_log(
    State(state): State<AppState>,
    _admin: AdminUserOnly,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 1000."));
    }
    let filter = AuditFilter {
        kind: query.kind,
        user_id: query.user_id,
        since: query.since,
        before: query.before,
        limit,
    };
    let events = state.store.audit_events(&filter).await?;
    Ok(Json(events.into_iter().map(event_json).collect()))
}
