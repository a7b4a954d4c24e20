//! Changing a password (the user's own change and an administrator's reset) and the
//! registration mode at run time, through the whole router.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use agentbox_server::RegistrationMode;
use http::{Method, StatusCode};
use serde_json::json;

use support::{App, PASSWORD};

const NEW_PASSWORD: &str = "a much longer battery staple";

#[tokio::test]
async fn a_password_change_refuses_the_old_password_and_ends_the_other_sessions() {
    let app = App::new().await;
    let _admin = app.user("admin@example.com").await;
    let here = app.user("alice@example.com").await;
    let elsewhere = app.user("alice@example.com").await;
    let change = |current: &str, new: &str| {
        let body = json!({"current_password": current, "new_password": new});
        let (app, token) = (&app, here.access.clone());
        async move { app.call(Method::POST, "/api/v1/auth/password", Some(&token), Some(&body)).await }
    };

    let wrong = change("not it", NEW_PASSWORD).await;
    assert_eq!((wrong.status, wrong.code().as_str()), (StatusCode::FORBIDDEN, "wrong_password"));
    let weak = change(PASSWORD, "short").await;
    assert_eq!(
        (weak.status, weak.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_password")
    );
    assert_eq!(app.login("alice@example.com", PASSWORD).await.status, StatusCode::OK, "unchanged");

    let changed = change(PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json());
    let tokens = changed.json();
    assert_eq!(app.login("alice@example.com", PASSWORD).await.code(), "invalid_credentials");
    assert_eq!(app.login("alice@example.com", NEW_PASSWORD).await.status, StatusCode::OK);
    // Every refresh token from before is dead, this session's and the other one's ...
    for old in [&here.refresh, &elsewhere.refresh] {
        assert_eq!(app.refresh(old).await.status, StatusCode::UNAUTHORIZED);
    }
    // ... and this session goes on with the tokens of the answer.
    let renewed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(renewed.status, StatusCode::OK);
    let me = app.call(Method::GET, "/api/v1/auth/me", tokens["access_token"].as_str(), None).await;
    assert_eq!(me.json()["email"], "alice@example.com");
}

#[tokio::test]
async fn wrong_current_passwords_are_rate_limited_like_sign_in() {
    let app = App::new().await;
    let _admin = app.user("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let body = json!({"current_password": "guess", "new_password": NEW_PASSWORD});
    let mut codes = Vec::new();
    for _ in 0..6 {
        let answer =
            app.call(Method::POST, "/api/v1/auth/password", Some(&alice.access), Some(&body)).await;
        codes.push(answer.code());
    }
    assert_eq!(codes[..5], ["wrong_password"; 5]);
    assert_eq!(codes[5], "rate_limited");
    // The same account's sign-in is held back too: one bucket per account.
    assert_eq!(app.login("alice@example.com", "guess").await.code(), "rate_limited");
}

#[tokio::test]
async fn an_administrator_resets_a_password_and_it_is_audited() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let uri = format!("/api/v1/admin/users/{}/password", alice.id);
    let body = json!({"new_password": NEW_PASSWORD});
    let refused = app.call(Method::POST, &uri, Some(&alice.access), Some(&body)).await;
    assert_eq!(refused.code(), "admin_only");
    let weak = app
        .call(Method::POST, &uri, Some(&admin.access), Some(&json!({"new_password": "x"})))
        .await;
    assert_eq!(weak.code(), "invalid_password");
    let reset = app.call(Method::POST, &uri, Some(&admin.access), Some(&body)).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert_eq!(app.login("alice@example.com", PASSWORD).await.code(), "invalid_credentials");
    assert_eq!(app.login("alice@example.com", NEW_PASSWORD).await.status, StatusCode::OK);
    assert_eq!(app.refresh(&alice.refresh).await.status, StatusCode::UNAUTHORIZED);
    let audit = app
        .call(Method::GET, "/api/v1/admin/audit?kind=password_reset", Some(&admin.access), None)
        .await
        .json();
    assert_eq!(audit[0]["target_id"], json!(alice.id));
    assert_eq!(audit[0]["actor_id"], json!(admin.id));
}

#[tokio::test]
async fn the_registration_mode_set_by_an_administrator_holds_and_survives_a_restart() {
    let app = App::with(RegistrationMode::Open).await;
    let admin = app.user("admin@example.com").await;
    let user = app.user("user@example.com").await;
    let put = |token: &str, body| {
        let (app, token) = (&app, token.to_owned());
        async move { app.call(Method::PUT, "/api/v1/admin/settings", Some(&token), Some(&body)).await }
    };
    assert_eq!(put(&user.access, json!({"registration": "closed"})).await.code(), "admin_only");
    assert_eq!(
        put(&admin.access, json!({"registration": "sometimes"})).await.status.as_u16() / 100,
        4
    );
    assert_eq!(app.register("second@example.com").await.status, StatusCode::CREATED);

    let closed = put(&admin.access, json!({"registration": "closed"})).await;
    assert_eq!(closed.json(), json!({"registration": "closed", "invite_ttl_hours": 168}));
    assert_eq!(app.register("third@example.com").await.code(), "registration_closed");
    let setup = app.call(Method::GET, "/api/v1/setup", None, None).await.json();
    assert_eq!(setup["registration"], "closed");
    let audit = app
        .call(Method::GET, "/api/v1/admin/audit?kind=settings_changed", Some(&admin.access), None)
        .await
        .json();
    assert_eq!(audit[0]["detail"], json!({"registration": "closed"}));

    // Restarted with `--registration open`: the administrator's choice still holds.
    let app = app.restarted(RegistrationMode::Open).await;
    assert_eq!(app.register("third@example.com").await.code(), "registration_closed");
    let admin = app.user("admin@example.com").await;
    let invite = app
        .call(
            Method::PUT,
            "/api/v1/admin/settings",
            Some(&admin.access),
            Some(&json!({"registration": "invite"})),
        )
        .await;
    assert_eq!(invite.json()["registration"], "invite");
    assert_eq!(app.register("third@example.com").await.code(), "invite_required");
}
