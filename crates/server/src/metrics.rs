//! `/metrics`: the process's Prometheus metrics in the text format, and the HTTP metrics
//! this crate owns (requests by route template and status, open SSE and terminal
//! connections). The other layers count their own facts through the `metrics` facade
//! (runs, sandbox, bus); this module installs the one recorder and renders it.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Seconds: from a few milliseconds (a kept CLI's short turn) to minutes (long turns).
const SECONDS_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Bytes a checkpoint added: 0 (nothing changed) to a gigabyte.
const BYTES_BUCKETS: &[f64] = &[0.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Who may read `/metrics`: anyone, or whoever sends the bearer token.
#[derive(Clone)]
pub struct MetricsAccess {
    handle: PrometheusHandle,
    /// SHA-256 of the token: compared in constant time, never kept in the clear.
    token: Option<[u8; 32]>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess").field("token", &self.token.map(|_| "[set]")).finish()
    }
}

impl MetricsAccess {
    /// The process's recorder (installed at the first call; every server of the process
    /// shares it, as it shares the `metrics` facade), gated by `token` when one is set.
    pub fn new(token: Option<&str>) -> Self {
        Self { handle: recorder().clone(), token: token.map(digest) }
    }

    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token else { return true };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(digest);
        sent.is_some_and(|sent| constant_time_eq(&sent, expected))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS)
            });
        match builder.map(PrometheusBuilder::install_recorder) {
            Ok(Ok(handle)) => handle,
            // Another recorder is installed (a test harness's): render what this one sees.
            Ok(Err(err)) | Err(err) => {
                tracing::warn!(%err, "could not install the Prometheus recorder");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// The metrics in the Prometheus text format (version 0.0.4). With `--metrics-token`, only
/// for a request that sends it as a bearer token; 401 otherwise.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.metrics.allows(&headers) {
        return ApiError::unauthorized("Send the metrics token as a bearer token.").into_response();
    }
    state.runner.report_gauges();
    match state.store.info().await {
        Ok(info) => {
            metrics::gauge!("agentbox_db_pool_connections", "state" => "open")
                .set(f64::from(info.pool.open));
            metrics::gauge!("agentbox_db_pool_connections", "state" => "idle")
                .set(f64::from(info.pool.idle));
            metrics::gauge!("agentbox_db_pool_max_connections").set(f64::from(info.pool.max));
            metrics::gauge!("agentbox_db_up").set(1.0);
        }
        Err(err) => {
            tracing::warn!(%err, "the database did not answer a metrics scrape");
            metrics::gauge!("agentbox_db_up").set(0.0);
        }
    }
    state.metrics.handle.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.handle.render(),
    )
        .into_response()
}

/// Counts every request by its route template (`/api/v1/chats/{chat_id}`, never the raw
/// path, so the number of series stays bounded), method and status, with its duration.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    // Any token is a method to hyper; only the standard ones become label values.
    let method: &'static str = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let began = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "agentbox_http_requests_total",
        "route" => route.clone(), "method" => method, "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "agentbox_http_request_duration_seconds", "route" => route, "method" => method
    )
    .record(began.elapsed().as_secs_f64());
    response
}

/// An open connection of a kind (`sse`, `terminal`), counted while this value lives.
pub(crate) struct OpenConnection(&'static str);

impl OpenConnection {
    pub fn new(kind: &'static str) -> Self {
        metrics::gauge!("agentbox_open_connections", "kind" => kind).increment(1.0);
        Self(kind)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("agentbox_open_connections", "kind" => self.0).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_gate_compares_the_bearer_token() {
        let access = MetricsAccess::new(Some("s3cret"));
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert!(access.allows(&with("Bearer s3cret")));
        assert!(!access.allows(&with("Bearer s3cre")));
        assert!(!access.allows(&with("s3cret")));
        assert!(!access.allows(&HeaderMap::new()));
        assert!(MetricsAccess::new(None).allows(&HeaderMap::new()));
    }
}
