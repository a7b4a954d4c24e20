//! Administration through the whole router: the first account is the administrator, admin
//! routes refuse everyone else, a disabled account's tokens stop working at once and work
//! again after a re-enable, the last administrator stays one, registration modes and
//! single-use invites, deletion, and usage.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use agentbox_server::RegistrationMode;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use support::{App, PASSWORD};

async fn patch(app: &App, admin: &str, user: &str, body: Value) -> support::Answer {
    app.call(Method::PATCH, &format!("/api/v1/admin/users/{user}"), Some(admin), Some(&body)).await
}

#[tokio::test]
async fn the_first_account_administers_and_nobody_else_may() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let user = app.user("user@example.com").await;
    let me = |token: &str| {
        let (app, token) = (&app, token.to_owned());
        async move { app.call(Method::GET, "/api/v1/auth/me", Some(&token), None).await.json() }
    };
    assert_eq!(me(&admin.access).await["is_admin"], true);
    assert_eq!(me(&user.access).await["is_admin"], false);

    for (method, path) in [
        (Method::GET, "/api/v1/admin/users".to_owned()),
        (Method::GET, "/api/v1/admin/invites".to_owned()),
        (Method::GET, "/api/v1/admin/settings".to_owned()),
        (Method::DELETE, format!("/api/v1/admin/users/{}", admin.id)),
    ] {
        let refused = app.call(method.clone(), &path, Some(&user.access), None).await;
        assert_eq!(
            (refused.status, refused.code().as_str()),
            (StatusCode::FORBIDDEN, "admin_only"),
            "{method} {path}"
        );
    }
    let refused = patch(&app, &user.access, &user.id, json!({"is_admin": true})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(me(&user.access).await["is_admin"], false, "nothing changed");

    let listed = app.call(Method::GET, "/api/v1/admin/users", Some(&admin.access), None).await;
    let listed = listed.json();
    let emails: Vec<_> = listed.as_array().unwrap().iter().map(|u| u["email"].clone()).collect();
    assert_eq!(emails, [json!("admin@example.com"), json!("user@example.com")]);
    assert_eq!(listed[1]["usage"], json!({"chats": 0, "turns": 0, "cost_usd": 0.0}));
    let settings = app.call(Method::GET, "/api/v1/admin/settings", Some(&admin.access), None).await;
    assert_eq!(settings.json(), json!({"registration": "open", "invite_ttl_hours": 168}));

    // Making and unmaking administrators; never the last one.
    let made = patch(&app, &admin.access, &user.id, json!({"is_admin": true})).await;
    assert_eq!(made.json()["is_admin"], true);
    let unmade = patch(&app, &user.access, &admin.id, json!({"is_admin": false})).await;
    assert_eq!(unmade.json()["is_admin"], false);
    let last = patch(&app, &user.access, &user.id, json!({"is_admin": false})).await;
    assert_eq!((last.status, last.code().as_str()), (StatusCode::CONFLICT, "last_admin"));
    let last = patch(&app, &user.access, &user.id, json!({"disabled": true})).await;
    assert_eq!(last.code(), "last_admin");
    let last = app
        .call(Method::DELETE, &format!("/api/v1/admin/users/{}", user.id), Some(&user.access), None)
        .await;
    assert_eq!(last.code(), "last_admin");
    // The admin who was unmade lost the admin routes at once.
    let gone = app.call(Method::GET, "/api/v1/admin/users", Some(&admin.access), None).await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN);

    // Bad input: unknown users, ids that are not ids, unknown fields.
    let unknown =
        patch(&app, &user.access, &uuid::Uuid::new_v4().to_string(), json!({"disabled": true}))
            .await;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (StatusCode::NOT_FOUND, "user_not_found")
    );
    let not_an_id = patch(&app, &user.access, "nope", json!({"disabled": true})).await;
    assert_eq!(not_an_id.code(), "user_not_found");
    let typo = patch(&app, &user.access, &admin.id, json!({"disable": true})).await;
    assert_eq!(typo.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_disabled_account_stops_working_at_once_and_works_again_when_enabled() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let user = app.user("user@example.com").await;
    let chat = app.call(Method::POST, "/api/v1/chats", Some(&user.access), Some(&json!({}))).await;
    assert_eq!(chat.status, StatusCode::CREATED);

    let disabled = patch(&app, &admin.access, &user.id, json!({"disabled": true})).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.json());
    assert!(disabled.json()["disabled_at"].is_string());
    assert_eq!(disabled.json()["usage"]["chats"], 1);
    // The access token that was valid a moment ago, the refresh token, and the password.
    let refused = app.call(Method::GET, "/api/v1/chats", Some(&user.access), None).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::UNAUTHORIZED, "account_disabled")
    );
    let refreshed = app.refresh(&user.refresh).await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    let login = app.login("user@example.com", PASSWORD).await;
    assert_eq!((login.status, login.code().as_str()), (StatusCode::FORBIDDEN, "account_disabled"));
    // A wrong password says nothing about the account's state.
    assert_eq!(
        app.login("user@example.com", "not the password").await.code(),
        "invalid_credentials"
    );

    let enabled = patch(&app, &admin.access, &user.id, json!({"disabled": false})).await;
    assert!(enabled.json()["disabled_at"].is_null());
    let again = app.user("user@example.com").await;
    let chats = app.call(Method::GET, "/api/v1/chats", Some(&again.access), None).await;
    assert_eq!(chats.json().as_array().unwrap().len(), 1, "nothing was lost");
}

#[tokio::test]
async fn admins_create_and_delete_accounts() {
    let app = App::with(RegistrationMode::Closed).await;
    let admin = app.user("admin@example.com").await;
    // Closed: nobody registers after the first account.
    let closed = app.register("late@example.com").await;
    assert_eq!(
        (closed.status, closed.code().as_str()),
        (StatusCode::FORBIDDEN, "registration_closed")
    );

    let body = json!({"email": "new@example.com", "password": PASSWORD, "is_admin": true});
    let created =
        app.call(Method::POST, "/api/v1/admin/users", Some(&admin.access), Some(&body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    assert_eq!(created.json()["is_admin"], true);
    let taken =
        app.call(Method::POST, "/api/v1/admin/users", Some(&admin.access), Some(&body)).await;
    assert_eq!(taken.code(), "email_taken");
    let bad = json!({"email": "x@b@c.example", "password": PASSWORD});
    let bad = app.call(Method::POST, "/api/v1/admin/users", Some(&admin.access), Some(&bad)).await;
    assert_eq!(bad.code(), "invalid_email");

    let new = app.user("new@example.com").await;
    let chat = app.call(Method::POST, "/api/v1/chats", Some(&new.access), Some(&json!({}))).await;
    assert_eq!(chat.status, StatusCode::CREATED);
    let path = format!("/api/v1/admin/users/{}", new.id);
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&admin.access), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/chats", Some(&new.access), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&admin.access), None).await.code(),
        "user_not_found"
    );
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn invites_let_one_person_register_once_and_tell_nothing_about_emails() {
    let app = App::with(RegistrationMode::Invite).await;
    // The first account needs no invite.
    let admin = app.user("admin@example.com").await;
    let setup = app.call(Method::GET, "/api/v1/setup", None, None).await;
    assert_eq!(setup.json()["registration"], "invite");
    let register = |email: &str, invite: Option<&str>| {
        let body = json!({"email": email, "password": PASSWORD, "invite": invite});
        let app = &app;
        async move { app.call(Method::POST, "/api/v1/auth/register", None, Some(&body)).await }
    };
    let none = register("a@example.com", None).await;
    assert_eq!((none.status, none.code().as_str()), (StatusCode::FORBIDDEN, "invite_required"));
    // Without a valid invite a taken email answers like a free one.
    let bad_free = register("free@example.com", Some("made-up")).await;
    let bad_taken = register("admin@example.com", Some("made-up")).await;
    assert_eq!((bad_free.status, bad_free.json()), (bad_taken.status, bad_taken.json()));
    assert_eq!(bad_free.code(), "invalid_invite");

    let create = |body: Value| {
        let (app, token) = (&app, admin.access.clone());
        async move { app.call(Method::POST, "/api/v1/admin/invites", Some(&token), Some(&body)).await }
    };
    let invite = create(json!({"expires_in_hours": 2})).await;
    assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.json());
    let token = invite.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(invite.json()["path"], format!("/?invite={token}"));
    let registered = register("a@example.com", Some(&token)).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.json());
    assert_eq!(registered.json()["is_admin"], false);
    let again = register("b@example.com", Some(&token)).await;
    assert_eq!(again.code(), "invalid_invite");

    // A valid invite on a taken email: the same answer as a bad invite, and it is spent.
    let second = create(json!({})).await.json()["token"].as_str().unwrap().to_owned();
    let taken = register("admin@example.com", Some(&second)).await;
    assert_eq!((taken.status, taken.json()), (bad_free.status, bad_free.json()));
    assert_eq!(register("c@example.com", Some(&second)).await.code(), "invalid_invite");

    for hours in [json!({"expires_in_hours": 0}), json!({"expires_in_hours": 9000})] {
        assert_eq!(create(hours).await.code(), "invalid_expiry");
    }
    let listed =
        app.call(Method::GET, "/api/v1/admin/invites", Some(&admin.access), None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(listed.as_array().unwrap().iter().all(|i| i["used_at"].is_string()));
    assert!(!listed.to_string().contains(&token), "tokens are never listed");
    let id = listed[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/admin/invites/{id}");
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&admin.access), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&admin.access), None).await.code(),
        "invite_not_found"
    );
    assert_eq!(app.store.count_users().await.unwrap(), 2);
}

#[tokio::test]
async fn the_audit_log_records_sign_ins_failures_limits_reuse_and_admin_actions() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let user = app.user("user@example.com").await;
    for _ in 0..6 {
        app.login("user@example.com", "not the password").await;
    }
    let first = app.refresh(&user.refresh).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(app.refresh(&user.refresh).await.code(), "refresh_token_reused");
    patch(&app, &admin.access, &user.id, json!({"disabled": true})).await;

    let audit = |query: &str| {
        let (app, token, query) = (&app, admin.access.clone(), query.to_owned());
        async move {
            let answer = app
                .call(Method::GET, &format!("/api/v1/admin/audit{query}"), Some(&token), None)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
            answer.json().as_array().unwrap().clone()
        }
    };
    let all = audit("").await;
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    // Newest first.
    assert_eq!(kinds[0], "user_updated", "{kinds:?}");
    for kind in
        ["account_created", "sign_in", "sign_in_failed", "rate_limited", "refresh_token_reused"]
    {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "sign_in_failed").count(), 5);
    assert_eq!(kinds.iter().filter(|k| **k == "rate_limited").count(), 1);
    let update = &all[0];
    assert_eq!(
        (update["actor_id"].as_str(), update["target_id"].as_str()),
        (Some(admin.id.as_str()), Some(user.id.as_str()))
    );
    assert_eq!(update["detail"]["disabled"], true);
    assert_eq!(update["address"], "unknown", "the router in tests has no peer address");

    let failed = audit("?kind=sign_in_failed&limit=2").await;
    assert_eq!(failed.len(), 2);
    assert!(
        failed
            .iter()
            .all(|e| e["email"] == "user@example.com" && e["actor_id"] == user.id.as_str())
    );
    let of_user = audit(&format!("?user_id={}", user.id)).await;
    assert!(
        of_user
            .iter()
            .all(|e| e["actor_id"] == user.id.as_str() || e["target_id"] == user.id.as_str())
    );
    let oldest = all.last().unwrap()["created_at"].as_str().unwrap().to_owned();
    let before = audit(&format!("?before={}", oldest.replace('+', "%2B"))).await;
    assert!(before.is_empty(), "{before:?}");
    for bad in ["?limit=0", "?limit=5000", "?user_id=nope", "?since=yesterday", "?colour=red"] {
        let answer = app
            .call(Method::GET, &format!("/api/v1/admin/audit{bad}"), Some(&admin.access), None)
            .await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
}
