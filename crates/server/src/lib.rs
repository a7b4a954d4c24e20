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
mod extensions;
mod extract;
mod forward;
mod git;
mod health;
mod internal;
mod limits;
mod messages;
mod metrics;
pub mod openapi;
mod password;
mod permissions;
mod preview;
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

pub use accounts::{Accounts, RegistrationMode, SignInLimits, client_ip, parse_trusted_proxies};
pub use admission::LimitAdmission;
pub use audit::AuditRetention;
pub use auth::AuthKeys;
pub use connection::{ApiConnection, ApiListener, PeerAddress};
pub use error::ApiError;
pub use health::{ServerInfo, component};
pub use internal::{InternalCaller, InternalKey};
pub use ipnet::IpNet;
pub use limits::TurnLimits;
pub use metrics::MetricsAccess;
pub use preview::{DomainPattern, Previews, warn_if_not_isolated};
pub use ratelimit::{Clock, ManualClock, Rate, SystemClock};
pub use state::{AppState, Limits};
pub use terminal::TerminalRegistry;

/// The account rules the admin API keeps, for `agentbox user` (the operator's CLI, which
/// works on the store directly): one definition of a valid email, password and username,
/// and the one password hash, so an account made either way is the same.
pub mod account_rules {
    pub use crate::auth::hash_password;
    pub use crate::credentials::{email, password, username};
}

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
        .layer(DefaultBodyLimit::max(body_limit))
        // A chat bound to another node (a worker) has its files, terminals and sandbox
        // there; this node passes those requests on.
        .layer(axum::middleware::from_fn_with_state(state.clone(), forward::to_sandbox_node))
        // Outermost but for the request ids: a preview's requests (by `Host`, or under
        // `/preview/`) never reach agentbox's own routes.
        .layer(axum::middleware::from_fn_with_state(state.clone(), preview::intercept));
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

/// A worker node's HTTP: `/health`, `/readyz`, `/livez`, `/metrics`, the internal API that
/// API nodes forward a chat's files, terminals and sandbox to (`/internal/v1/...`, behind
/// the node credential; see [`internal`]) and JSON 404s, nothing else (it runs turns, the
/// API nodes serve people).
pub fn worker_app(state: AppState) -> Router {
    let (routes, _) = OpenApiRouter::<AppState>::new()
        .merge(workspace::routes())
        .merge(terminal::routes())
        .merge(sandbox::routes())
        .merge(checkpoints::restore_route())
        .split_for_parts();
    let routes: Router = routes
        .fallback(|| async { error::not_found() })
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state.clone());
    let internal_state = state.clone();
    let dispatch = move |request: Request<axum::body::Body>| {
        let (state, routes) = (internal_state.clone(), routes.clone());
        async move { internal::dispatch(state, routes, request).await }
    };
    let router = Router::new()
        .route("/health", axum::routing::get(health::health))
        .route("/readyz", axum::routing::get(ready::readyz))
        .route("/livez", axum::routing::get(ready::livez))
        .route("/metrics", axum::routing::get(ready::metrics))
        // The internal API is the fallback, not a route: a route's path parameters would
        // stay in the request and confuse the public handlers' own (axum appends them).
        // `dispatch` answers 404 for anything outside `/internal/v1/`.
        .fallback(dispatch)
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
        .merge(preview::routes())
        .merge(costs::routes())
        .merge(messages::routes())
        .merge(retry::routes())
        .merge(stream::routes())
        .merge(permissions::routes())
        .merge(queue::routes())
        .merge(settings::routes())
        .merge(secrets::routes())
        .merge(extensions::routes())
        .merge(sandbox::routes())
        .merge(checkpoints::routes())
        .merge(terminal::routes())
        .merge(workspace::routes())
        .merge(ready::routes())
        .merge(tasks::routes())
        .merge(git::routes())
}
