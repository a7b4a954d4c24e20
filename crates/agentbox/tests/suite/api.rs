//! The API's promises that need no model: accounts, ownership, bad input, health, OpenAPI.
//! Every bad request must get a clear 4xx `{"error": {"code", "message"}}` and change nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, TestServer};

/// Asserts the status and error code, and that the body has the contract's error shape.
fn assert_error(actual: (StatusCode, Value), status: StatusCode, code: &str) {
    let (got, body) = actual;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

async fn raw(
    api: &Api,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = api.request(method, path).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn accounts_register_sign_in_refresh_and_sign_out() {
    let server = TestServer::start().await;
    let api = server.api();
    let register = |email: &str, password: &str| {
        let api = api.clone();
        let body = json!({"email": email, "password": password});
        async move { api.call(Method::POST, "/api/v1/auth/register", Some(body)).await }
    };
    let (status, user) = register("Ada@Example.com", "long enough").await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["email"], "ada@example.com");
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));
    assert_error(
        register("ada@EXAMPLE.com", "another one").await,
        StatusCode::CONFLICT,
        "email_taken",
    );
    assert_error(
        register("not-an-email", "long enough").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
    );
    assert_error(
        register("b@example.com", "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_password",
    );

    let login = |password: &str| {
        let api = api.clone();
        let body = json!({"email": "ada@example.com", "password": password});
        async move { api.call(Method::POST, "/api/v1/auth/login", Some(body)).await }
    };
    assert_error(login("wrong password").await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let unknown = api
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": "nobody@example.com", "password": "whatever1"})),
        )
        .await;
    assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let (status, tokens) = login("long enough").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tokens["token_type"], "bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);

    let signed_in =
        Api { token: Some(tokens["access_token"].as_str().unwrap().into()), ..api.clone() };
    let (status, me) = signed_in.get("/api/v1/auth/me").await;
    assert_eq!((status, &me["email"]), (StatusCode::OK, &json!("ada@example.com")));

    // A refresh token works once; presenting it again revokes its sign-in (so `renewed` is
    // dead too, see crates/server/tests/auth.rs), and a new sign-in starts a new family.
    let refresh = json!({"refresh_token": tokens["refresh_token"]});
    let (status, renewed) =
        api.call(Method::POST, "/api/v1/auth/refresh", Some(refresh.clone())).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_error(
        api.call(Method::POST, "/api/v1/auth/refresh", Some(refresh)).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    );
    let (_, renewed) = login("long enough").await;

    // Signing out revokes refresh tokens.
    let (status, _) = signed_in.call(Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = api
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({"refresh_token": renewed["refresh_token"]})),
        )
        .await;
    assert_error(after, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn missing_or_bad_tokens_are_refused() {
    let server = TestServer::start().await;
    let anonymous = server.api();
    assert_error(anonymous.get("/api/v1/chats").await, StatusCode::UNAUTHORIZED, "unauthorized");
    let forged =
        Api { token: Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad".into()), ..anonymous.clone() };
    assert_error(forged.get("/api/v1/chats").await, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = raw(&anonymous, Method::GET, "/api/v1/auth/me", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let response = anonymous
        .request(Method::GET, "/api/v1/chats")
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Without a token nothing is created.
    assert_error(
        anonymous.call(Method::POST, "/api/v1/chats", Some(json!({}))).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn chats_belong_to_their_user_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let bob = server.user("bob@example.com").await;
    let (status, chat) = alice
        .call(
            Method::POST,
            "/api/v1/chats",
            Some(json!({"title": "Plans", "permission_mode": "ask", "model": "claude-opus-4-5"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    assert_eq!(
        (chat["title"].as_str(), chat["permission_mode"].as_str()),
        (Some("Plans"), Some("ask"))
    );
    assert_eq!(
        (chat["status"].as_str(), chat["sandbox_provider"].as_str()),
        (Some("idle"), Some("local"))
    );
    let id = chat["id"].as_str().unwrap();

    let (_, list) = alice.get("/api/v1/chats").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = bob.get("/api/v1/chats").await;
    assert_eq!(list, json!([]));

    // Everything about Alice's chat is "not found" for Bob, and he changes nothing.
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/chats/{id}"), None),
        (Method::PATCH, format!("/api/v1/chats/{id}"), Some(json!({"title": "mine"}))),
        (Method::DELETE, format!("/api/v1/chats/{id}"), None),
        (Method::GET, format!("/api/v1/chats/{id}/messages"), None),
        (Method::POST, format!("/api/v1/chats/{id}/messages"), Some(json!({"prompt": "hi"}))),
        (Method::GET, format!("/api/v1/chats/{id}/stream"), None),
        (Method::DELETE, format!("/api/v1/chats/{id}/stream"), None),
    ] {
        assert_error(bob.call(method, &path, body).await, StatusCode::NOT_FOUND, "chat_not_found");
    }
    let (_, still) = alice.get(&format!("/api/v1/chats/{id}")).await;
    assert_eq!(still["title"], "Plans");
    assert!(alice.messages(id).await.is_empty());

    // Unknown and malformed ids are simply not found.
    let unknown = uuid::Uuid::new_v4();
    assert_error(
        alice.get(&format!("/api/v1/chats/{unknown}")).await,
        StatusCode::NOT_FOUND,
        "chat_not_found",
    );
    assert_error(
        alice.get("/api/v1/chats/not-a-uuid").await,
        StatusCode::NOT_FOUND,
        "chat_not_found",
    );

    // Alice can rename and delete it.
    let (status, renamed) = alice
        .call(Method::PATCH, &format!("/api/v1/chats/{id}"), Some(json!({"title": "  Better  "})))
        .await;
    assert_eq!((status, renamed["title"].as_str()), (StatusCode::OK, Some("Better")));
    assert_eq!(renamed["permission_mode"], "ask");
    let (status, _) = alice.call(Method::DELETE, &format!("/api/v1/chats/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        alice.get(&format!("/api/v1/chats/{id}")).await,
        StatusCode::NOT_FOUND,
        "chat_not_found",
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.user("careful@example.com").await;
    let chat = api.new_chat().await;
    let messages = format!("/api/v1/chats/{chat}/messages");
    let json_type = Some("application/json");

    assert_error(
        raw(&api, Method::POST, &messages, json_type, "{\"prompt\": ").await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        raw(&api, Method::POST, &messages, None, "{\"prompt\":\"hi\"}").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_error(
        api.call(Method::POST, &messages, Some(json!({"promt": "typo"}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_error(
        api.call(Method::POST, &messages, Some(json!({"prompt": 42}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_error(
        api.call(Method::POST, &messages, Some(json!({"prompt": "  \n "}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_prompt",
    );
    let long = "x".repeat(256 * 1024 + 1);
    assert_error(
        api.call(Method::POST, &messages, Some(json!({"prompt": long}))).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "prompt_too_long",
    );
    let huge = "y".repeat(2 * 1024 * 1024);
    assert_error(
        api.call(Method::POST, &messages, Some(json!({"prompt": huge}))).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
    assert_error(
        api.call(
            Method::POST,
            &messages,
            Some(json!({"prompt": "hi", "attachments": [{"name": "a.txt"}]})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attachments_unsupported",
    );
    assert_error(
        api.call(
            Method::POST,
            &messages,
            Some(json!({"prompt": "hi", "model": "bad model; rm -rf /"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_model",
    );
    assert_error(
        api.call(Method::POST, &messages, Some(json!({"prompt": "hi", "permission_mode": "yolo"})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert!(api.messages(&chat).await.is_empty(), "a refused prompt left a message behind");
    assert!(server.mock.requests().is_empty(), "a refused prompt reached the model");

    let chat_path = format!("/api/v1/chats/{chat}");
    assert_error(
        api.call(Method::PATCH, &chat_path, Some(json!({"title": ""}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_title",
    );
    assert_error(
        api.call(Method::PATCH, &chat_path, Some(json!({"colour": "red"}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_error(
        api.call(Method::POST, "/api/v1/chats", Some(json!({"title": "t".repeat(201)}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_title",
    );
    let (_, after) = api.get(&chat_path).await;
    assert_eq!(after["title"], "New chat");
    let (_, list) = api.get("/api/v1/chats").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    assert_error(api.get("/api/v1/nothing-here").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        api.call(Method::PUT, "/api/v1/chats", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn health_reports_each_dependency_and_openapi_describes_the_api() {
    let server = TestServer::start().await;
    let api = server.api();
    let (status, health) = api.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["database"]["status"], "ok");
    assert_eq!(health["cli"]["status"], "ok");
    assert_eq!(health["cli"]["version"], agentbox_agent::PINNED_CLI_VERSION);
    assert_eq!(health["sandbox"]["isolated"], true, "{health}");
    let detail = health["sandbox"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("local: bubblewrap"), "{detail}");
    // This machine kind has cgroup v1 only: the degraded mode must say so.
    assert!(detail.contains("cgroup v2") || detail.contains("degraded"), "{detail}");
    assert_eq!(health["redis"]["status"], "not_configured");

    let (status, doc) = api.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/chats",
        "/api/v1/chats/{chat_id}",
        "/api/v1/chats/{chat_id}/messages",
        "/api/v1/chats/{chat_id}/stream",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    assert!(doc["paths"]["/api/v1/chats/{chat_id}/stream"].get("delete").is_some());
    assert!(doc["components"]["schemas"].get("ChatEvent").is_some());
}

#[tokio::test]
async fn a_missing_cli_is_reported_and_fails_turns_clearly() {
    let server = TestServer::start_with(|config| {
        config.claude_path = Some("/nonexistent/claude".into());
    })
    .await;
    let (_, health) = server.api().get("/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["cli"]["status"], "unavailable");
    assert!(health["cli"]["detail"].as_str().unwrap().contains("/nonexistent/claude"));
    let api = server.user("nocli@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "hello").await;
    let events = api.turn_events(&chat, &message).await;
    let error = events.iter().find(|e| e.event == "error").expect("an error event");
    assert_eq!(error.data["code"], "cli_unavailable");
    assert_eq!(events.last().unwrap().data["status"], "failed");
}

#[tokio::test]
async fn first_start_creates_a_private_data_directory_and_secret_key() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start().await;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let key = server.data_dir.as_path().join("secret.key");
    assert_eq!(mode(&key), 0o600, "the secret key must be readable by its owner only");
    assert!(std::fs::read_to_string(&key).unwrap().trim().len() >= 32);
    assert!(server.data_dir.as_path().join("agentbox.sqlite").exists());
    let sandboxes = server.data_dir.as_path().join("sandboxes");
    let api = server.user("dirs@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[text:ok]] hi").await;
    api.turn_events(&chat, &message).await;
    // Sandbox users walk to their workspace through these directories, so they can be
    // traversed but not listed; every file in them is private to the server.
    assert_eq!(mode(&sandboxes), 0o711);
    assert_eq!(mode(server.data_dir.as_path()), 0o711);
    for entry in std::fs::read_dir(server.data_dir.as_path()).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            assert_eq!(mode(&entry.path()), 0o600, "{} is not private", entry.path().display());
        }
    }
}

#[tokio::test]
async fn the_host_provider_says_it_isolates_nothing() {
    let server = TestServer::start_with(|config| config.sandbox_provider = "host".into()).await;
    let (_, health) = server.api().get("/health").await;
    assert_eq!(health["sandbox"]["isolated"], false, "{health}");
    assert!(health["sandbox"]["detail"].as_str().unwrap().starts_with("host"));
    let api = server.user("host@example.com").await;
    let (_, chat) = api.call(Method::POST, "/api/v1/chats", Some(json!({}))).await;
    assert_eq!(chat["sandbox_provider"], "host");
}

#[tokio::test]
async fn demo_mode_runs_turns_offline_and_says_they_are_scripted() {
    let server = TestServer::start_with(|config| {
        config.anthropic_api_key = None;
        config.anthropic_base_url = None;
        config.demo = true;
    })
    .await;
    let (_, health) = server.api().get("/health").await;
    assert_eq!(health["model"]["status"], "demo");
    assert_eq!(health["status"], "healthy");
    let api = server.user("demo@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "hello, who are you?").await;
    let events = api.turn_events(&chat, &message).await;
    let notice = events.iter().find(|e| e.data["subtype"] == "demo").expect("a demo notice");
    assert!(notice.data["text"].as_str().unwrap().contains("scripted"));
    let reply = events.iter().find(|e| e.event == "assistant_text").expect("a reply");
    assert!(reply.data["text"].as_str().unwrap().contains("scripted"), "{}", reply.data);
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert!(server.mock.requests().is_empty(), "demo mode must use its own in-process mock");
}

/// The status and JSON body of the one answer on `stream` after `request` was sent on it.
async fn raw_answer(stream: &mut tokio::net::TcpStream, request: &[u8]) -> (u16, String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The server may answer and close before it has read all of a request that large.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let read = stream.read_to_end(&mut out);
    tokio::time::timeout(super::support::PATIENCE, read).await.expect("no answer").unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), serde_json::from_str(body).unwrap_or(Value::Null))
}

/// hyper refuses some requests before any routing: a URL longer than `http::Uri` can hold,
/// headers too large, bytes that are not HTTP. Those answers are JSON too, on a new
/// connection and on one that already served a request.
#[tokio::test]
async fn requests_hyper_refuses_before_routing_get_json_errors_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let address = server._server.address;
    let long_url = format!("GET /api/v1/chats?{} HTTP/1.1\r\nhost: x\r\n\r\n", "q".repeat(70_000));
    let large_header =
        format!("GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "h".repeat(500_000));
    let many_headers: String = (0..200).map(|n| format!("x-{n}: v\r\n")).collect();
    let many_headers = format!("GET /health HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n");
    let cases = [
        (long_url.as_str(), 414, "uri_too_long"),
        (large_header.as_str(), 431, "headers_too_large"),
        (many_headers.as_str(), 431, "headers_too_large"),
        ("GET /health HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed_request"),
        ("\x16\x03\x01 not http at all\r\n\r\n", 400, "malformed_request"),
    ];
    for (request, status, code) in cases {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (got, head, body) = raw_answer(&mut stream, request.as_bytes()).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{head}\n{body}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }

    // After a served request on the same connection.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut served = Vec::new();
    while !served.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        served.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8(served.clone()).unwrap().to_ascii_lowercase();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut rest = vec![0u8; length - body.len()];
    stream.read_exact(&mut rest).await.unwrap();
    let (got, head, body) = raw_answer(&mut stream, long_url.as_bytes()).await;
    assert_eq!((got, body["error"]["code"].as_str()), (414, Some("uri_too_long")), "{head}");
}
