//! Sign-in hardening through the whole router: rate limits on login, register and refresh
//! (on a clock the test moves, never by sleeping), access-token checks (expiry, tampering,
//! another key), refresh rotation with reuse detection, logout, and the rules for emails
//! and passwords.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use http::{Method, StatusCode, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use support::{App, KEY, PASSWORD};

fn retry_after(answer: &support::Answer) -> u64 {
    answer.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_sixth_quick_wrong_password_is_refused_and_the_right_one_works_after_the_window() {
    let app = App::new().await;
    app.user("alice@example.com").await;
    app.user("bob@example.com").await;
    for attempt in 1..=5 {
        let wrong = app.login("alice@example.com", "wrong password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(wrong.code(), "invalid_credentials");
    }
    let sixth = app.login("alice@example.com", "wrong password").await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sixth.code(), "rate_limited");
    assert_eq!(retry_after(&sixth), 30);
    // Even the right password waits out the window: the limit must not tell it apart.
    let right = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    // Another account from the same address is not blocked, nor is its case-variant email
    // a way around the limit.
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        app.login("ALICE@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    app.clock.advance(Duration::from_secs(29));
    let still = app.login("alice@example.com", PASSWORD).await;
    assert_eq!((still.status, retry_after(&still)), (StatusCode::TOO_MANY_REQUESTS, 1));
    app.clock.advance(Duration::from_secs(1));
    let after = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.json());
    // The success forgave the earlier failures: five more mistakes before the next wait.
    for _ in 0..5 {
        assert_eq!(
            app.login("alice@example.com", "wrong again").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login("alice@example.com", "wrong again").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_limited_too() {
    let app = App::new().await;
    // 50 failures from one address over different (unknown) accounts, then 429.
    for i in 0..50 {
        let answer = app.login(&format!("nobody{i}@example.com"), "wrong password").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let blocked = app.login("someone-else@example.com", "wrong password").await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(Duration::from_secs(6));
    assert_eq!(
        app.login("someone-else@example.com", "wrong password").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn registrations_and_refreshes_are_limited_per_address() {
    let app = App::new().await;
    for i in 0..20 {
        assert_eq!(app.register(&format!("u{i}@example.com")).await.status, StatusCode::CREATED);
    }
    let limited = app.register("u20@example.com").await;
    assert_eq!(
        (limited.status, limited.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(app.store.user_by_email("u20@example.com").await.unwrap().is_none(), "nothing made");
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(app.register("u20@example.com").await.status, StatusCode::CREATED);

    for _ in 0..60 {
        assert_eq!(app.refresh("not a token").await.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app.refresh("not a token").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&limited), 1);
}

fn signed(claims: &serde_json::Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(key))
        .unwrap()
}

#[tokio::test]
async fn access_tokens_that_expired_were_tampered_with_or_signed_by_another_key_are_refused() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let me = |token: String| {
        let app = &app;
        async move { app.call(Method::GET, "/api/v1/auth/me", Some(&token), None).await }
    };
    assert_eq!(me(alice.access.clone()).await.status, StatusCode::OK);

    let now = chrono::Utc::now().timestamp();
    let valid = signed(&json!({"sub": alice.id, "iat": now, "exp": now + 600}), &KEY);
    assert_eq!(me(valid).await.json()["id"], alice.id.as_str());
    let expired = signed(&json!({"sub": alice.id, "iat": now - 7200, "exp": now - 3600}), &KEY);
    let other_key = signed(&json!({"sub": alice.id, "iat": now, "exp": now + 600}), &[8; 32]);
    // Bob's claims under Alice's signature.
    let forged = signed(&json!({"sub": bob.id, "iat": now, "exp": now + 600}), &[9; 32]);
    let (forged_head, _) = forged.rsplit_once('.').unwrap();
    let (_, alice_signature) = alice.access.rsplit_once('.').unwrap();
    let tampered = format!("{forged_head}.{alice_signature}");
    let none_alg =
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", forged_head.split_once('.').unwrap().1);
    for token in [expired, other_key, tampered, none_alg, "garbage".into(), String::new()] {
        let answer = me(token.clone()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(answer.code(), "unauthorized");
    }
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_signs_out_its_whole_sign_in() {
    let app = App::new().await;
    let laptop = app.user("alice@example.com").await;
    let phone = app.user("alice@example.com").await;

    let first = app.refresh(&laptop.refresh).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    let second_token = first.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, laptop.refresh);
    let access = first.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", Some(&access), None).await.status,
        StatusCode::OK
    );
    let second = app.refresh(&second_token).await;
    assert_eq!(second.status, StatusCode::OK);
    let third_token = second.json()["refresh_token"].as_str().unwrap().to_owned();

    // The first token again: reuse. Every token of that sign-in dies, the phone's lives.
    let reused = app.refresh(&laptop.refresh).await;
    assert_eq!(
        (reused.status, reused.code().as_str()),
        (StatusCode::UNAUTHORIZED, "refresh_token_reused")
    );
    let dead = app.refresh(&third_token).await;
    assert_eq!(
        (dead.status, dead.code().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token")
    );
    let phone_next = app.refresh(&phone.refresh).await;
    assert_eq!(phone_next.status, StatusCode::OK);
    let phone_token = phone_next.json()["refresh_token"].as_str().unwrap().to_owned();

    // Logout with the session's refresh token ends that sign-in only.
    let tablet = app.user("alice@example.com").await;
    let out = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&tablet.access),
            Some(&json!({"refresh_token": tablet.refresh})),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(app.refresh(&tablet.refresh).await.status, StatusCode::UNAUTHORIZED);
    // Someone else's token in the body revokes nothing of theirs.
    let bob = app.user("bob@example.com").await;
    let out = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&tablet.access),
            Some(&json!({"refresh_token": bob.refresh})),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(app.refresh(&bob.refresh).await.status, StatusCode::OK);
    // The phone is still signed in; logout without a body signs out everywhere.
    let everywhere =
        app.call(Method::POST, "/api/v1/auth/logout", Some(&tablet.access), None).await;
    assert_eq!(everywhere.status, StatusCode::NO_CONTENT);
    assert_eq!(app.refresh(&phone_token).await.status, StatusCode::UNAUTHORIZED);
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&tablet.access),
            Some(&json!({"all": true})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn emails_and_passwords_are_checked_with_a_clear_message_and_nothing_is_made() {
    let app = App::new().await;
    for email in [
        "x@b@c.example",
        "a\u{0}b@example.com",
        "<script>alert(1)</script>@example.com",
        "\"q\"@example.com",
        "a@b",
    ] {
        let answer = app
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(&json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_email"),
            "{email:?}"
        );
    }
    for (password, why) in
        [("short", "too short"), ("password123", "common"), ("aaaaaaaaaa", "repeated")]
    {
        let answer = app
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(&json!({"email": "a@example.com", "password": password})),
            )
            .await;
        assert_eq!(answer.code(), "invalid_password");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(why), "{message}");
    }
    assert_eq!(app.store.count_users().await.unwrap(), 0);
}

/// A failed sign-in arriving from `peer` with `X-Forwarded-For: forwarded`.
async fn wrong_login_via(app: &App, peer: &str, forwarded: &str, n: usize) -> StatusCode {
    use tower::ServiceExt as _;
    let body = json!({"email": format!("nobody{n}@example.com"), "password": "wrong password"});
    let mut request = http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", forwarded)
        .body(axum::body::Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let peer = agentbox_server::PeerAddress(format!("{peer}:40000").parse().unwrap());
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    app.router.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    // By default the header is ignored: one peer is one address, whatever it claims.
    let app = App::new().await;
    for i in 0..50 {
        let status = wrong_login_via(&app, "10.0.0.2", &format!("198.51.100.{i}"), i).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        wrong_login_via(&app, "10.0.0.2", "198.51.100.200", 50).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Behind a trusted proxy, the rightmost untrusted hop is the client: one client is
    // limited, another behind the same proxy is not, and a forged left part changes nothing.
    let app = App::with_state(|state| {
        std::sync::Arc::get_mut(&mut state.accounts).unwrap().trusted_proxies =
            agentbox_server::parse_trusted_proxies("10.0.0.0/8").unwrap();
    })
    .await;
    for i in 0..50 {
        let forged = format!("192.0.2.{i}, 198.51.100.1, 10.0.0.9");
        let status = wrong_login_via(&app, "10.0.0.2", &forged, i).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        wrong_login_via(&app, "10.0.0.2", "198.51.100.1", 50).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        wrong_login_via(&app, "10.0.0.2", "198.51.100.2", 51).await,
        StatusCode::UNAUTHORIZED
    );
    // A peer outside the trusted ranges is itself the client.
    assert_eq!(
        wrong_login_via(&app, "203.0.113.5", "198.51.100.1", 52).await,
        StatusCode::UNAUTHORIZED
    );
}
