//! The operations endpoints on the real router: `/metrics` in the Prometheus text format and
//! its token, `/readyz` and `/livez` (ready only while the store and Redis answer), and the
//! request id every answer carries.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/prometheus.rs"]
mod prometheus;
mod support;

use std::sync::Arc;

use agentbox_bus::{EventBus, RedisConfig};
use agentbox_server::MetricsAccess;
use http::{Method, StatusCode, header};
use support::App;
use tower::ServiceExt;

fn parse(body: &[u8]) -> prometheus::Scrape {
    prometheus::parse(std::str::from_utf8(body).unwrap())
}

fn counter(scrape: &prometheus::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    assert_eq!(scrape.types.get(name).map(String::as_str), Some("counter"), "{name}");
    scrape.value(name, labels)
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_requests_by_route_template() {
    let app = App::new().await;
    let owner = app.user("owner@example.com").await;
    let chat_path = |id: &str| format!("/api/v1/chats/{id}");
    let route = [("route", "/api/v1/chats/{chat_id}"), ("method", "GET"), ("status", "404")];

    let before = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(
        before.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"),
        "{:?}",
        before.headers
    );
    let before = parse(&before.body);
    for id in [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()] {
        let answer =
            app.call(Method::GET, &chat_path(&id.to_string()), Some(&owner.access), None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
    }
    let after = app.call(Method::GET, "/metrics", None, None).await;
    let text = String::from_utf8(after.body.clone()).unwrap();
    let after = parse(&after.body);

    // Two different chat ids, one series: the template, never the raw path.
    assert_eq!(
        counter(&after, "agentbox_http_requests_total", &route)
            - counter(&before, "agentbox_http_requests_total", &route),
        2.0,
        "{text}"
    );
    assert!(!text.contains("/api/v1/chats/0"), "a raw path is a label: {text}");
    // A made-up method is one more request, not one more series.
    let odd = http::Method::from_bytes(b"BREW").unwrap();
    app.call(odd, "/api/v1/chats", Some(&owner.access), None).await;
    let text = String::from_utf8(app.call(Method::GET, "/metrics", None, None).await.body).unwrap();
    assert!(!text.contains("BREW") && text.contains("method=\"other\""), "{text}");
    // The node's state, read at the scrape.
    for gauge in ["agentbox_turns_running", "agentbox_kept_cli_processes", "agentbox_db_up"] {
        assert!(after.has(gauge), "no {gauge} in {text}");
    }
    assert!(text.contains("# TYPE agentbox_http_request_duration_seconds histogram"), "{text}");
}

#[tokio::test]
async fn the_metrics_token_is_required_when_set() {
    let app = App::with_state(|state| state.metrics = MetricsAccess::new(Some("scrape-me"))).await;
    let without = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    assert_eq!(without.code(), "unauthorized");
    let wrong = app.call(Method::GET, "/metrics", Some("scrape-you"), None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = app.call(Method::GET, "/metrics", Some("scrape-me"), None).await;
    assert_eq!(right.status, StatusCode::OK);
    parse(&right.body);
}

#[tokio::test]
async fn ready_while_the_store_answers_and_not_after() {
    let app = App::new().await;
    let live = app.call(Method::GET, "/livez", None, None).await;
    assert_eq!((live.status, live.json()["status"].as_str()), (StatusCode::OK, Some("live")));
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((ready.status, ready.json()["status"].as_str()), (StatusCode::OK, Some("ready")));

    app.store.close().await;
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.code(), "not_ready");
    let message = ready.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("database"), "{message}");
    // The process still runs.
    assert_eq!(app.call(Method::GET, "/livez", None, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn not_ready_while_redis_does_not_answer() {
    // Nothing listens on port 1: the configured Redis is down.
    let bus = EventBus::redis(RedisConfig {
        url: "redis://127.0.0.1:1/0".into(),
        prefix: format!("agentbox-test:{}:ops:", std::process::id()),
    })
    .unwrap();
    let app = App::with_state(|state| state.bus = Arc::new(bus)).await;
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.code(), "not_ready");
    let message = ready.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("Redis"), "{message}");
}

#[tokio::test]
async fn not_ready_once_draining() {
    let draining = tokio_util::sync::CancellationToken::new();
    let app = App::with_state(|state| state.draining = draining.clone()).await;
    assert_eq!(app.call(Method::GET, "/readyz", None, None).await.status, StatusCode::OK);
    draining.cancel();
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.code(), "shutting_down");
    assert!(ready.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_sent_one_is_kept() {
    let app = App::new().await;
    let first = app.call(Method::GET, "/livez", None, None).await;
    let second = app.call(Method::GET, "/api/v1/no-such-route", None, None).await;
    let id = |answer: &support::Answer| {
        answer.headers.get("x-request-id").expect("no x-request-id").to_str().unwrap().to_owned()
    };
    let (a, b) = (id(&first), id(&second));
    assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
    assert_ne!(a, b, "each request gets an id of its own");

    let sent = app
        .router
        .clone()
        .oneshot(
            http::Request::get("/livez")
                .header("x-request-id", "from-the-proxy-42")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(sent.headers()["x-request-id"], "from-the-proxy-42");
}

#[tokio::test]
async fn a_worker_node_serves_the_probes_and_metrics_too() {
    let app = App::new().await;
    let get = |path: &'static str| {
        app.worker
            .clone()
            .oneshot(http::Request::get(path).body(axum::body::Body::empty()).unwrap())
    };
    for path in ["/readyz", "/livez", "/health"] {
        assert_eq!(get(path).await.unwrap().status(), StatusCode::OK, "{path}");
    }
    let metrics = get("/metrics").await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers().contains_key("x-request-id"));
    let body = axum::body::to_bytes(metrics.into_body(), usize::MAX).await.unwrap();
    assert!(parse(&body).has("agentbox_turns_running"));
    // Nothing of the API is served there.
    assert_eq!(get("/api/v1/chats").await.unwrap().status(), StatusCode::NOT_FOUND);
}
