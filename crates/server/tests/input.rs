//! Bad input through the whole router (`agentbox_server::app` driven with
//! `tower::ServiceExt::oneshot`): every refusal is a 4xx in the API's JSON error format.
//! The state is real (SQLite, the turn runner, checkpoints) on the `host` provider without
//! a CLI, so no request here can run anything.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use agentbox_bus::EventBus;
use agentbox_runs::{CheckpointSettings, RunnerConfig, TurnRunner};
use agentbox_sandbox::host::HostProvider;
use agentbox_server::{AppState, AuthKeys, Limits, ServerInfo, TerminalRegistry, component};
use agentbox_store::Store;
use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The router on a fresh data directory, with one signed-in user who owns one chat.
struct App {
    router: Router,
    token: String,
    chat: String,
    _dir: tempfile::TempDir,
}

/// A response as the tests look at it.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Panics unless this is a 4xx in the API's error format; returns its code.
    fn error_code(&self) -> String {
        let body = self.json();
        assert!(self.status.is_client_error(), "{} {body}", self.status);
        assert_eq!(self.content_type.as_deref(), Some("application/json"), "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        body["error"]["code"].as_str().expect("an error code").to_owned()
    }
}

impl App {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db.sqlite").to_str().unwrap()).await.unwrap();
        let bus = Arc::new(EventBus::new());
        let sandboxes =
            Arc::new(HostProvider::new(dir.path().join("sandboxes"), Default::default()));
        let runner = TurnRunner::new(
            store.clone(),
            bus.clone(),
            sandboxes,
            RunnerConfig {
                checkpoints: CheckpointSettings {
                    root: Some(dir.path().join("checkpoints")),
                    ..CheckpointSettings::default()
                },
                ..RunnerConfig::default()
            },
        );
        let hour = Duration::from_secs(3600);
        let state = AppState {
            store,
            bus,
            runner,
            auth: Arc::new(AuthKeys::new(&[7; 32], hour, hour)),
            limits: Limits::default(),
            info: Arc::new(ServerInfo {
                version: "test".into(),
                default_model: "claude-test".into(),
                cli: component("unavailable", "no CLI in these tests"),
                model: component("not_configured", "no model in these tests"),
            }),
            shutdown: CancellationToken::new(),
            terminals: TerminalRegistry::new(Duration::from_secs(1)),
        };
        let mut app = Self {
            router: agentbox_server::app(state),
            token: String::new(),
            chat: String::new(),
            _dir: dir,
        };
        let account = json!({"email": "fuzz@example.com", "password": "correct horse"});
        let registered = app.send_json(Method::POST, "/api/v1/auth/register", &account).await;
        assert_eq!(registered.status, StatusCode::CREATED);
        let tokens = app.send_json(Method::POST, "/api/v1/auth/login", &account).await.json();
        app.token = tokens["access_token"].as_str().unwrap().to_owned();
        let chat = app.send_json(Method::POST, "/api/v1/chats", &json!({})).await;
        assert_eq!(chat.status, StatusCode::CREATED);
        app.chat = chat.json()["id"].as_str().unwrap().to_owned();
        app
    }

    /// One request, signed in as the app's user.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if !self.token.is_empty() {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response =
            self.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer { status, content_type, body: body.to_vec() }
    }

    async fn send_json(&self, method: Method, uri: &str, body: &Value) -> Answer {
        self.send(method, uri, Some("application/json"), serde_json::to_vec(body).unwrap()).await
    }

    /// The user's chats, to check that bad input changed nothing.
    async fn chat_count(&self) -> usize {
        let chats = self.send(Method::GET, "/api/v1/chats", None, Vec::new()).await;
        chats.json().as_array().unwrap().len()
    }
}

#[tokio::test]
async fn ids_in_paths_that_do_not_parse_name_nothing() {
    let app = App::new().await;
    let chat = &app.chat;
    let id = uuid::Uuid::new_v4();
    // The second id of each route that names something in a chat: not UTF-8, not a UUID.
    let routes = [
        (Method::POST, "checkpoints/{}/restore", "checkpoint_not_found"),
        (Method::DELETE, "permissions/rules/{}", "rule_not_found"),
        (Method::POST, "permissions/{}", "permission_request_not_found"),
        (Method::PATCH, "queue/{}", "queued_message_not_found"),
        (Method::DELETE, "queue/{}", "queued_message_not_found"),
        (Method::POST, "queue/{}/send", "queued_message_not_found"),
    ];
    for (method, route, code) in routes {
        // A body that would pass, so that only the path is wrong.
        let body = match route {
            "permissions/{}" => json!({"approved": true}),
            "queue/{}" => json!({"prompt": "later"}),
            _ => json!({}),
        };
        let body = serde_json::to_vec(&body).unwrap();
        let json = Some("application/json");
        for segment in ["%FF", "%C3%28abc", "not-a-uuid"] {
            if segment == "not-a-uuid" && code == "permission_request_not_found" {
                // Any text is a request id; this one names no open request.
                continue;
            }
            let uri = format!("/api/v1/chats/{chat}/{}", route.replace("{}", segment));
            let answer = app.send(method.clone(), &uri, json, body.clone()).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert_eq!(answer.error_code(), code, "{method} {uri}");
            // The chat's id is checked first, and the same way.
            let uri = format!("/api/v1/chats/%FF/{}", route.replace("{}", &id.to_string()));
            let answer = app.send(method.clone(), &uri, json, body.clone()).await;
            assert_eq!(answer.error_code(), "chat_not_found", "{method} {uri}");
        }
    }
    let uri = format!("/api/v1/chats/{chat}/permissions/unknown-call");
    let answer = app.send_json(Method::POST, &uri, &json!({"approved": true})).await;
    assert_eq!(answer.error_code(), "permission_request_not_found");
}

#[tokio::test]
async fn a_body_must_be_a_json_object() {
    let app = App::new().await;
    let chats = app.chat_count().await;
    let settings = app.send(Method::GET, "/api/v1/settings", None, Vec::new()).await.json();
    // serde reads a struct from an array of its fields in order: ["x"] would set the first.
    for body in [json!([]), json!(["x"]), json!("x"), json!(1), json!(null), json!(true)] {
        let created = app.send_json(Method::POST, "/api/v1/chats", &body).await;
        assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(created.error_code(), "invalid_request", "{body}");
        let changed = app.send_json(Method::PATCH, "/api/v1/settings", &body).await;
        assert_eq!(changed.error_code(), "invalid_request", "{body}");
    }
    assert_eq!(app.chat_count().await, chats, "an array created a chat");
    let after = app.send(Method::GET, "/api/v1/settings", None, Vec::new()).await.json();
    assert_eq!(after, settings, "an array changed the settings");

    // What is not JSON at all stays a 400, a missing content type a 415.
    let json = Some("application/json");
    for body in ["", "[1,", "{", "hello", "  ", "[\"x\"] trailing"] {
        let answer = app.send(Method::POST, "/api/v1/chats", json, body.into()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(answer.error_code(), "invalid_json", "{body:?}");
    }
    let answer = app.send(Method::POST, "/api/v1/chats", None, b"{}".to_vec()).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer.error_code(), "unsupported_media_type");
    // An object with whitespace before it, and a JSON content type with parameters, pass.
    let spaced = b" \n\t{\"title\": \"spaced\"}".to_vec();
    let answer = app.send(Method::POST, "/api/v1/chats", json, spaced).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let charset = Some("application/json; charset=utf-8");
    let answer = app.send(Method::POST, "/api/v1/chats", charset, b"{}".to_vec()).await;
    assert_eq!(answer.status, StatusCode::CREATED);
}
