//! The user's settings through the whole router: the model and permission mode new chats
//! start with.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http::{Method, StatusCode};
use serde_json::json;

use support::App;

#[tokio::test]
async fn new_chats_start_with_the_users_default_model_and_mode() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let call = |token: &str, method: Method, uri: &'static str, body: serde_json::Value| {
        let (app, token) = (&app, token.to_owned());
        async move { app.call(method, uri, Some(&token), Some(&body)).await }
    };
    let settings = |token: &str| {
        let (app, token) = (&app, token.to_owned());
        async move { app.call(Method::GET, "/api/v1/settings", Some(&token), None).await.json() }
    };
    let new_chat = |token: &str, body: serde_json::Value| {
        let call = &call;
        let token = token.to_owned();
        async move {
            let answer = call(&token, Method::POST, "/api/v1/chats", body).await;
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.json());
            let chat = answer.json();
            (
                chat["model"].as_str().unwrap().to_owned(),
                chat["permission_mode"].as_str().unwrap().to_owned(),
            )
        }
    };

    // Nothing set: the server's model and `auto`.
    let fresh = settings(&alice.access).await;
    assert_eq!(
        (&fresh["default_model"], &fresh["default_permission_mode"]),
        (&json!(null), &json!(null))
    );
    assert_eq!(new_chat(&alice.access, json!({})).await, ("claude-test".into(), "auto".into()));

    let set = call(
        &alice.access,
        Method::PATCH,
        "/api/v1/settings",
        json!({"default_model": "claude-opus-4-1", "default_permission_mode": "plan"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.json());
    assert_eq!(
        (set.json()["default_model"].clone(), set.json()["default_permission_mode"].clone()),
        (json!("claude-opus-4-1"), json!("plan"))
    );
    assert_eq!(new_chat(&alice.access, json!({})).await, ("claude-opus-4-1".into(), "plan".into()));
    // What a request names wins over the defaults ...
    assert_eq!(
        new_chat(&alice.access, json!({"model": "claude-haiku-4-5", "permission_mode": "ask"}))
            .await,
        ("claude-haiku-4-5".into(), "ask".into())
    );
    // ... and another user's chats know nothing of them.
    assert_eq!(new_chat(&bob.access, json!({})).await, ("claude-test".into(), "auto".into()));

    // Bad input is refused and changes nothing: a model name the API refuses, and a mode this
    // server (no isolating sandbox) does not offer.
    let bad_model = call(
        &alice.access,
        Method::PATCH,
        "/api/v1/settings",
        json!({"default_model": "no spaces"}),
    )
    .await;
    assert_eq!(
        (bad_model.status, bad_model.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_model")
    );
    let bypass = call(
        &alice.access,
        Method::PATCH,
        "/api/v1/settings",
        json!({"default_model": "claude-haiku-4-5", "default_permission_mode": "bypassPermissions"}),
    )
    .await;
    assert_eq!(
        (bypass.status, bypass.code().as_str()),
        (StatusCode::FORBIDDEN, "bypass_not_allowed")
    );
    let kept = settings(&alice.access).await;
    assert_eq!(
        (kept["default_model"].clone(), kept["default_permission_mode"].clone()),
        (json!("claude-opus-4-1"), json!("plan"))
    );

    // One field at a time leaves the other; an empty model goes back to the server's.
    call(
        &alice.access,
        Method::PATCH,
        "/api/v1/settings",
        json!({"default_permission_mode": "ask"}),
    )
    .await;
    assert_eq!(new_chat(&alice.access, json!({})).await, ("claude-opus-4-1".into(), "ask".into()));
    let cleared =
        call(&alice.access, Method::PATCH, "/api/v1/settings", json!({"default_model": ""})).await;
    assert_eq!(cleared.json()["default_model"], json!(null));
    assert_eq!(new_chat(&alice.access, json!({})).await, ("claude-test".into(), "ask".into()));
}
