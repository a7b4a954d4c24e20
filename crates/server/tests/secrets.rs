//! The secrets API at router level: masked answers, names and values checked before
//! anything changes, bounds, per-chat overrides that only the chat's owner reaches, and
//! audit entries that name a secret but never hold its value.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use agentbox_store::AuditFilter;
use http::{Method, StatusCode};
use serde_json::json;
use support::App;

const MARKER: &str = "sk-ant-router-marker-0123456789-abcd";

#[tokio::test]
async fn secrets_are_set_listed_masked_replaced_and_deleted() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let token = Some(alice.access.as_str());
    let app = &app;
    let put = |name: &str, value: &str| {
        let uri = format!("/api/v1/secrets/{name}");
        let body = json!({ "value": value });
        async move { app.call(Method::PUT, &uri, token, Some(&body)).await }
    };

    let set = put("ANTHROPIC_API_KEY", MARKER).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.json());
    let body = set.json();
    assert_eq!(body["name"], "ANTHROPIC_API_KEY");
    assert_eq!(body["kind"], "model_credential");
    assert_eq!(body["scope"], "user");
    assert_eq!(body["masked"], "sk-…abcd");
    assert_eq!(put("GITHUB_TOKEN", "ghp_0123456789abcdefXYZW").await.json()["kind"], "environment");

    let list = app.call(Method::GET, "/api/v1/secrets", token, None).await;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<_> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ANTHROPIC_API_KEY", "GITHUB_TOKEN"]);
    assert!(!String::from_utf8_lossy(&list.body).contains("router-marker"), "never the value");

    let replaced = put("ANTHROPIC_API_KEY", "sk-ant-another-value-wxyz").await.json();
    assert_eq!(replaced["masked"], "sk-…wxyz");
    assert_eq!(replaced["created_at"], body["created_at"], "the same secret");

    // Another user sees none of it.
    let bob = app.user("bob@example.com").await;
    let theirs = app.call(Method::GET, "/api/v1/secrets", Some(&bob.access), None).await;
    assert_eq!(theirs.json(), json!([]));
    let gone =
        app.call(Method::DELETE, "/api/v1/secrets/GITHUB_TOKEN", Some(&bob.access), None).await;
    assert_eq!((gone.status, gone.code().as_str()), (StatusCode::NOT_FOUND, "secret_not_found"));

    let deleted = app.call(Method::DELETE, "/api/v1/secrets/GITHUB_TOKEN", token, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = app.call(Method::DELETE, "/api/v1/secrets/GITHUB_TOKEN", token, None).await;
    assert_eq!(again.code(), "secret_not_found");

    // The audit log names each change, and holds no value.
    let user_id = uuid::Uuid::parse_str(&alice.id).unwrap();
    let events = app
        .store
        .audit_events(&AuditFilter { user_id: Some(user_id), limit: 50, ..Default::default() })
        .await
        .unwrap();
    let secret_events: Vec<_> = events
        .iter()
        .filter(|e| e.kind.starts_with("secret_"))
        .map(|e| (e.kind.as_str(), e.detail.clone().unwrap()))
        .collect();
    assert_eq!(secret_events.len(), 4, "{secret_events:?}");
    assert_eq!(secret_events[0].0, "secret_deleted");
    assert_eq!(secret_events[1].0, "secret_changed");
    assert_eq!(secret_events[3].0, "secret_created");
    assert!(secret_events[0].1.contains("GITHUB_TOKEN"));
    assert!(events.iter().all(
        |e| !format!("{e:?}").contains("marker") && !format!("{e:?}").contains("another-value")
    ));
}

#[tokio::test]
async fn bad_names_and_values_are_refused_and_change_nothing() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let token = Some(alice.access.as_str());
    let app = &app;
    let put = |name: String, body: serde_json::Value| async move {
        app.call(Method::PUT, &format!("/api/v1/secrets/{name}"), token, Some(&body)).await
    };
    let cases = [
        ("1ABC".to_owned(), json!({"value": "v"}), "invalid_secret_name"),
        ("A-B".to_owned(), json!({"value": "v"}), "invalid_secret_name"),
        ("A".repeat(129), json!({"value": "v"}), "invalid_secret_name"),
        ("PATH".to_owned(), json!({"value": "/evil"}), "reserved_secret_name"),
        ("LD_PRELOAD".to_owned(), json!({"value": "/evil.so"}), "reserved_secret_name"),
        ("https_proxy".to_owned(), json!({"value": "http://evil"}), "reserved_secret_name"),
        ("OK_NAME".to_owned(), json!({"value": ""}), "invalid_secret_value"),
        ("OK_NAME".to_owned(), json!({"value": "a\u{0}b"}), "invalid_secret_value"),
        ("OK_NAME".to_owned(), json!({"value": "x".repeat(32 * 1024 + 1)}), "secret_too_large"),
        (
            "ANTHROPIC_BASE_URL".to_owned(),
            json!({"value": "file:///etc/passwd"}),
            "invalid_secret_value",
        ),
        ("ANTHROPIC_BASE_URL".to_owned(), json!({"value": "not a url"}), "invalid_secret_value"),
    ];
    for (name, body, code) in cases {
        let answer = put(name.clone(), body).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {}", answer.json());
        assert_eq!(answer.code(), code, "{name}");
    }
    let unknown_field = put("OK_NAME".into(), json!({"value": "v", "scope": "all"})).await;
    assert_eq!(unknown_field.status, StatusCode::UNPROCESSABLE_ENTITY);
    let list = app.call(Method::GET, "/api/v1/secrets", token, None).await;
    assert_eq!(list.json(), json!([]), "nothing was stored");

    // At most 64 per scope; replacing one of them still works.
    for i in 0..64 {
        assert_eq!(put(format!("S{i}"), json!({"value": "v"})).await.status, StatusCode::OK);
    }
    assert_eq!(put("S64".into(), json!({"value": "v"})).await.code(), "too_many_secrets");
    assert_eq!(put("S0".into(), json!({"value": "w"})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_chat_overrides_only_for_its_owner() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let token = Some(alice.access.as_str());
    let chat = app.call(Method::POST, "/api/v1/chats", token, Some(&json!({}))).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = format!("/api/v1/chats/{chat}/secrets/MY_SECRET");
    let body = json!({"value": "chat-value-0123456789"});
    let set = app.call(Method::PUT, &uri, token, Some(&body)).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.json());
    assert_eq!(set.json()["scope"], "chat");

    let list = app.call(Method::GET, &format!("/api/v1/chats/{chat}/secrets"), token, None).await;
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    // The user's own list is another scope.
    assert_eq!(app.call(Method::GET, "/api/v1/secrets", token, None).await.json(), json!([]));

    // Another user's chat is a chat that does not exist.
    for (method, body) in [(Method::GET, None), (Method::PUT, Some(&body)), (Method::DELETE, None)]
    {
        let path = if method == Method::GET {
            format!("/api/v1/chats/{chat}/secrets")
        } else {
            uri.clone()
        };
        let answer = app.call(method.clone(), &path, Some(&bob.access), body).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (StatusCode::NOT_FOUND, "chat_not_found"),
            "{method}"
        );
    }
    let deleted = app.call(Method::DELETE, &uri, token, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}
