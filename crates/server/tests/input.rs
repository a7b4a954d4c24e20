//! Bad input through the whole router (`agentbox_server::app` driven with
//! `tower::ServiceExt::oneshot`): every refusal is a 4xx in the API's JSON error format.
//! The state is real (SQLite, the turn runner, checkpoints) on the `host` provider without
//! a CLI, so no request here can run anything.
//!
//! Besides the regression tests, two property tests take every route from the OpenAPI
//! document and send it arbitrary JSON bodies, bytes and content types, and arbitrary path
//! segments, query strings and headers. Their seed is fixed, so every run tries the same
//! cases; `PROPTEST_CASES=5000 cargo test -p agentbox-server --test input` tries more.

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
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseError, TestRng, TestRunner};
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
        let scheduler = agentbox_runs::schedule::Scheduler::new(
            store.clone(),
            runner.clone(),
            Arc::new(agentbox_runs::schedule::SystemWallClock),
            Default::default(),
        );
        let state = AppState {
            scheduler,
            store,
            bus,
            runner,
            auth: Arc::new(AuthKeys::new(&[7; 32], hour, hour)),
            accounts: Arc::new(agentbox_server::Accounts::default()),
            limits: Limits::default(),
            info: Arc::new(ServerInfo {
                version: "test".into(),
                default_model: "claude-test".into(),
                cli: component("unavailable", "no CLI in these tests"),
                model: component("not_configured", "no model in these tests"),
            }),
            shutdown: CancellationToken::new(),
            draining: CancellationToken::new(),
            metrics: agentbox_server::MetricsAccess::new(None),
            terminals: TerminalRegistry::new(Duration::from_secs(1)),
            previews: Arc::new(agentbox_server::Previews::new(&[7; 32], None)),
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
        self.answer(request.body(Body::from(body)).unwrap()).await
    }

    /// The router's answer to `request`, with its body unless it is an event stream (which
    /// never ends).
    async fn answer(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let body = if content_type.as_deref() == Some("text/event-stream") {
            Vec::new()
        } else {
            axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()
        };
        Answer { status, content_type, body }
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

/// A route of the API as the OpenAPI document lists it.
#[derive(Clone, Debug)]
struct Route {
    method: Method,
    /// With `{placeholders}`.
    path: String,
    /// The fields of its JSON body's object, when it takes one.
    json_fields: Option<Vec<Field>>,
}

/// A field of a JSON body.
#[derive(Clone, Debug)]
struct Field {
    name: String,
    /// Its schema, `$ref`s resolved.
    schema: Value,
    required: bool,
}

fn routes() -> Vec<Route> {
    let document = serde_json::to_value(agentbox_server::openapi::document()).unwrap();
    let mut routes = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            let json_fields = (!schema.is_null()).then(|| {
                let schema = resolved(&document, schema);
                let required = schema["required"].as_array().cloned().unwrap_or_default();
                let properties = schema["properties"].as_object().cloned().unwrap_or_default();
                properties
                    .into_iter()
                    .map(|(name, schema)| Field {
                        required: required.iter().any(|r| r == name.as_str()),
                        name,
                        schema,
                    })
                    .collect()
            });
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            routes.push(Route { method, path: path.clone(), json_fields });
        }
    }
    routes
}

/// `schema` with every `$ref` in it replaced by what it names.
fn resolved(document: &Value, schema: &Value) -> Value {
    match schema {
        Value::Object(fields) => match fields.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap();
                resolved(document, &document["components"]["schemas"][name])
            }
            None => Value::Object(
                fields.iter().map(|(k, v)| (k.clone(), resolved(document, v))).collect(),
            ),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| resolved(document, v)).collect()),
        other => other.clone(),
    }
}

/// Values that fit `schema` (its types, its enum's values), and now and then any value.
fn value_for(schema: &Value) -> BoxedStrategy<Value> {
    let mut fitting: Vec<BoxedStrategy<Value>> = Vec::new();
    if let Some(values) = schema["enum"].as_array() {
        fitting.push(prop::sample::select(values.clone()).boxed());
    }
    for alternative in schema["oneOf"].as_array().into_iter().flatten() {
        fitting.push(value_for(alternative));
    }
    let types = match &schema["type"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    for kind in types {
        fitting.push(match kind.as_str() {
            "string" if schema["format"] == "uuid" => any::<u128>()
                .prop_map(|n| Value::from(uuid::Uuid::from_u128(n).to_string()))
                .boxed(),
            "string" if schema["enum"].is_array() => continue,
            "string" => text().prop_map(Value::String).boxed(),
            "integer" => prop_oneof![
                (0u64..300_000).prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
            ]
            .boxed(),
            "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
            "array" => prop::collection::vec(value_for(&schema["items"]), 0..4)
                .prop_map(Value::Array)
                .boxed(),
            "object" => prop::collection::btree_map(text(), json_value(), 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect()))
                .boxed(),
            _ => Just(Value::Null).boxed(),
        });
    }
    if fitting.is_empty() {
        return json_value().boxed();
    }
    let fitting = prop::strategy::Union::new(fitting);
    prop_oneof![6 => fitting, 1 => json_value()].boxed()
}

/// The property every answer keeps: no server fault, and an error in the API's format. A
/// 501 is the `host` provider saying it cannot pause, which is no fault either.
fn check(answer: &Answer, what: &str) -> Result<(), TestCaseError> {
    let status = answer.status;
    if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
        return Err(TestCaseError::fail(format!("{what}: {status} {}", answer.json())));
    }
    if status.as_u16() >= 400 {
        let body = answer.json();
        let shaped = body["error"]["code"].is_string() && body["error"]["message"].is_string();
        let json = answer.content_type.as_deref() == Some("application/json");
        if !(shaped && json) {
            let text = String::from_utf8_lossy(&answer.body);
            return Err(TestCaseError::fail(format!(
                "{what}: {status} {:?} {text}",
                answer.content_type
            )));
        }
    }
    Ok(())
}

/// Strings with a meaning somewhere in the API, and arbitrary ones.
fn text() -> impl Strategy<Value = String> {
    let meaningful = prop::sample::select(vec![
        "",
        " ",
        "auto",
        "ask",
        "plan",
        "bypassPermissions",
        "acceptEdits",
        "a@b.c",
        "correct horse",
        "claude-test",
        "../../etc/passwd",
        "/home/user/x",
        "x\0y",
        "00000000-0000-0000-0000-000000000000",
        "example.com:443",
        "localhost",
    ]);
    prop_oneof![meaningful.prop_map(str::to_owned), any::<String>()]
}

/// JSON values of every shape: scalars, arrays, objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0u64..300_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Objects with the required ones of `fields` and some others (so that they often get past
/// serde to the handler's own checks) holding values that mostly fit them; now and then a
/// required field is missing or a field of no body is there.
fn object_of(fields: Vec<Field>) -> impl Strategy<Value = Value> {
    let values: Vec<_> =
        fields.iter().map(|field| (Just(field.name.clone()), value_for(&field.schema))).collect();
    let count = fields.len();
    let chosen = prop::sample::subsequence((0..count).collect::<Vec<_>>(), 0..=count);
    let all_required = prop::bool::weighted(0.85);
    let stranger = prop::option::weighted(0.1, (text(), json_value()));
    (values, chosen, all_required, stranger).prop_map(
        move |(values, chosen, all_required, stranger)| {
            let mut object: serde_json::Map<String, Value> = values
                .into_iter()
                .enumerate()
                .filter(|(i, _)| chosen.contains(i) || (all_required && fields[*i].required))
                .map(|(_, field)| field)
                .collect();
            object.extend(stranger);
            Value::Object(object)
        },
    )
}

/// A request body with its content type: JSON of any shape, objects with the route's
/// fields, bytes that are not JSON, a body over the size limit, and other content types.
fn body(fields: Vec<Field>) -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    let content_type = prop_oneof![
        40 => Just(Some("application/json".to_owned())),
        1 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,40}".prop_map(Some),
    ];
    let to_bytes = |value: Value| serde_json::to_vec(&value).unwrap();
    let content = prop_oneof![
        8 => object_of(fields).prop_map(to_bytes),
        4 => json_value().prop_map(to_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..200),
        1 => Just(vec![b' '; 1024 * 1024 + 1]),
    ];
    (content_type, content)
}

/// `bytes` percent-encoded, with unreserved characters left as they are.
fn encoded(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What goes into a `{placeholder}` of a route.
#[derive(Clone, Debug)]
enum Segment {
    /// The test user's chat.
    OwnChat,
    Uuid(uuid::Uuid),
    /// Any bytes, percent-encoded: not UTF-8, `/`, `%00`, ...
    Bytes(Vec<u8>),
    /// Thousands of bytes.
    Long(usize),
}

fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        6 => Just(Segment::OwnChat),
        2 => any::<u128>().prop_map(|n| Segment::Uuid(uuid::Uuid::from_u128(n))),
        4 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Segment::Bytes),
        1 => (1000usize..20_000).prop_map(Segment::Long),
    ]
}

/// A query string: pairs of the API's parameters and others with any values, or raw
/// characters (stray `%`, `&&`, `=` without a name).
fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "path",
            "session",
            "cols",
            "rows",
            "access_token",
            "last_event_id",
            "deltas",
        ])
        .prop_map(str::to_owned),
        prop::collection::vec(any::<u8>(), 0..10).prop_map(|b| encoded(&b)),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "-1",
            "1",
            "80",
            "1001",
            "65536",
            "99999999999",
            "true",
            "maybe",
            "..",
            "../..",
            "%2e%2e/%2e%2e",
            "a/b",
            "%FF",
        ])
        .prop_map(str::to_owned),
        prop::collection::vec(any::<u8>(), 0..60).prop_map(|b| encoded(&b)),
    ];
    let pairs = prop::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("&")
    });
    prop_oneof![1 => Just(String::new()), 4 => pairs, 1 => "[a-z0-9=&%+;./~-]{0,60}"]
}

/// How a request is signed: as the user, not at all, or with a header that is no token.
fn authorization() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        6 => Just(Some(Vec::new())),
        1 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 0..40)
            .prop_filter("a header value", |v| http::HeaderValue::from_bytes(v).is_ok())
            .prop_map(Some),
    ]
}

/// Runs `property` over `strategy` with a fixed seed (the same cases every run), on one
/// app and one runtime. `PROPTEST_CASES` runs more cases.
fn run_property<S: Strategy>(
    strategy: S,
    property: impl Fn(&App, &tokio::runtime::Runtime, S::Value) -> Result<(), TestCaseError>,
) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = runtime.block_on(App::new());
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(500);
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    if let Err(failure) = runner.run(&strategy, |value| property(&app, &runtime, value)) {
        panic!("{failure}");
    }
}

#[test]
fn json_bodies_of_any_shape_get_an_answer_in_the_api_format() {
    let routes: Vec<_> = routes().into_iter().filter(|r| r.json_fields.is_some()).collect();
    assert!(routes.len() >= 10, "the document lists too few JSON-body routes: {routes:?}");
    let strategy = prop::sample::select(routes).prop_flat_map(|route| {
        let fields = route.json_fields.clone().unwrap_or_default();
        (Just(route), body(fields))
    });
    run_property(strategy, |app, runtime, (route, (content_type, body))| {
        let uri = route.path.replace("{chat_id}", &app.chat).replace("{request_id}", "call-1");
        let uri = uri.replace("{queued_id}", &uuid::Uuid::nil().to_string());
        let what =
            format!("{} {uri} {content_type:?} {:?}", route.method, String::from_utf8_lossy(&body));
        let not_an_object = serde_json::from_slice::<Value>(&body).is_ok_and(|v| !v.is_object());
        let answer = runtime.block_on(app.send(route.method, &uri, content_type.as_deref(), body));
        if not_an_object && answer.status.is_success() {
            return Err(TestCaseError::fail(format!("{what}: accepted as {}", answer.status)));
        }
        check(&answer, &what)
    });
}

#[test]
fn any_path_segment_query_and_header_gets_an_answer_in_the_api_format() {
    let routes = routes();
    let strategy = (
        prop::sample::select(routes),
        prop::collection::vec(segment(), 2),
        query(),
        authorization(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
    );
    run_property(strategy, |app, runtime, (route, segments, query, auth, last_event_id)| {
        let Route { method, path: template, .. } = route;
        let mut uri = String::new();
        let mut next = segments.iter();
        for part in template.split('/').skip(1) {
            uri.push('/');
            if !part.starts_with('{') {
                uri.push_str(part);
                continue;
            }
            let segment = match next.next().unwrap_or(&Segment::OwnChat) {
                // Deleting the user's chat would leave later cases nothing to work on.
                Segment::OwnChat if method == Method::DELETE && template.ends_with("{chat_id}") => {
                    uuid::Uuid::nil().to_string()
                }
                Segment::OwnChat => app.chat.clone(),
                Segment::Uuid(id) => id.to_string(),
                Segment::Bytes(bytes) => encoded(bytes),
                Segment::Long(len) => "x".repeat(*len),
            };
            uri.push_str(&segment);
        }
        if !query.is_empty() {
            uri = format!("{uri}?{query}");
        }
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        match auth {
            Some(value) if value.is_empty() => {
                request = request.header(header::AUTHORIZATION, format!("Bearer {}", app.token));
            }
            Some(value) => {
                request = request.header(header::AUTHORIZATION, value);
            }
            None => {}
        }
        if let Some(value) = last_event_id.filter(|v| http::HeaderValue::from_bytes(v).is_ok()) {
            request = request.header("last-event-id", value);
        }
        let request = request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .map_err(|err| TestCaseError::fail(format!("{uri}: {err}")))?;
        let answer = runtime.block_on(app.answer(request));
        check(&answer, &format!("{method} {uri}"))
    });
}
