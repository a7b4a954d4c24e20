//! The HTTP face of agentbox (API contract v1, DESIGN §4). This is the only crate that
//! knows HTTP: handlers check input, authenticate, scope everything by the signed-in user
//! and call the store and the turn runner.
//!
//! [`app`] builds the whole router from an [`AppState`]; [`openapi`] publishes the contract
//! that the same handler annotations describe; [`ApiListener`] makes the errors that hyper
//! answers before any routing JSON too.

mod accounts;
mod admin;
mod admission;
mod audit;
mod auth;
mod chats;
mod checkpoints;
mod connection;
mod costs;
mod credentials;
mod disk;
mod error;
mod extract;
mod git;
mod health;
mod limits;
mod messages;
mod metrics;
pub mod openapi;
mod password;
mod permissions;
mod queue;
mod ratelimit;
mod ready;
mod retry;
mod sandbox;
mod sandbox_limit;
mod secrets;
mod settings;
mod setup;
mod spa;
mod sse;
mod state;
mod stream;
mod tasks;
mod terminal;
mod user_limits;
mod workspace;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use accounts::{Accounts, RegistrationMode, SignInLimits};
pub use admission::LimitAdmission;
pub use audit::AuditRetention;
pub use auth::AuthKeys;
pub use connection::{ApiConnection, ApiListener, PeerAddress};
pub use error::ApiError;
pub use health::{ServerInfo, component};
pub use limits::TurnLimits;
pub use metrics::MetricsAccess;
pub use ratelimit::{Clock, ManualClock, Rate, SystemClock};
pub use state::{AppState, Limits};
pub use terminal::TerminalRegistry;

/// The complete router: API, health, OpenAPI document, the web UI (`spa`), and JSON errors
/// for unknown API paths.
pub fn app(state: AppState) -> Router {
    let (router, api) = api_router().split_for_parts();
    // Serialised once: the document does not change while the server runs.
    let openapi = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        api.to_json().unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}")),
    );
    let body_limit = state.limits.max_body_bytes;
    let router = router
        .route("/", axum::routing::get(spa::index))
        .route("/health", axum::routing::get(health::health))
        .route("/api/v1/openapi.json", axum::routing::get(move || async move { openapi }))
        .fallback(spa::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit));
    observed(router).with_state(state)
}

/// Request ids and the request's span, around everything: an `x-request-id` the client
/// sent is kept, else one is made (a UUID); it is in every log line of the request (and of
/// the turn it starts) and returned in the response. Counted by route, too.
fn observed(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(axum::middleware::from_fn(metrics::count_requests))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!(
                "request", method = %request.method(), uri = %request.uri(), request_id = %id
            )
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// A worker node's HTTP: `/health`, `/readyz`, `/livez`, `/metrics` and JSON 404s, nothing else (it runs turns, the API
/// nodes serve people).
pub fn worker_app(state: AppState) -> Router {
    let router = Router::new()
        .route("/health", axum::routing::get(health::health))
        .route("/readyz", axum::routing::get(ready::readyz))
        .route("/livez", axum::routing::get(ready::livez))
        .route("/metrics", axum::routing::get(ready::metrics))
        .fallback(|| async { error::not_found() })
        .method_not_allowed_fallback(error::method_not_allowed);
    observed(router).with_state(state)
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .merge(auth::routes())
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(password::routes())
        .merge(user_limits::routes())
        .merge(setup::routes())
        .merge(chats::routes())
        .merge(costs::routes())
        .merge(messages::routes())
        .merge(retry::routes())
        .merge(stream::routes())
        .merge(permissions::routes())
        .merge(queue::routes())
        .merge(settings::routes())
        .merge(secrets::routes())
        .merge(sandbox::routes())
        .merge(checkpoints::routes())
        .merge(terminal::routes())
        .merge(workspace::routes())
        .merge(ready::routes())
        .merge(tasks::routes())
        .merge(git::routes())
}
