//! Limits an administrator sets for one user, through the whole router: the user (not
//! another) is refused at their own limit, clearing puts the default back, bad values are
//! refused and change nothing, the user reads their own limits, and the change is audited.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::MessageStatus;
use agentbox_server::{RegistrationMode, TurnLimits};
use agentbox_store::TurnResult;
use http::{Method, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

use support::{App, Tokens};

async fn chat_of(app: &App, user: &Tokens) -> Uuid {
    let chat = app.call(Method::POST, "/api/v1/chats", Some(&user.access), Some(&json!({}))).await;
    chat.json()["id"].as_str().unwrap().parse().unwrap()
}

async fn post(app: &App, user: &Tokens, chat: Uuid) -> support::Answer {
    let uri = format!("/api/v1/chats/{chat}/messages");
    app.call(Method::POST, &uri, Some(&user.access), Some(&json!({"prompt": "hello"}))).await
}

async fn finished_turn(app: &App, chat: Uuid) {
    let turn = app.store.begin_turn(chat, "p", "m", PermissionMode::Ask).await.unwrap();
    app.store
        .finish_turn(chat, turn.message_id, TurnResult::status(MessageStatus::Completed))
        .await
        .unwrap();
}

async fn put_limits(app: &App, admin: &Tokens, user: &Tokens, body: Value) -> support::Answer {
    let uri = format!("/api/v1/admin/users/{}/limits", user.id);
    app.call(Method::PUT, &uri, Some(&admin.access), Some(&body)).await
}

#[tokio::test]
async fn an_administrator_sets_one_users_turn_limit_and_clearing_restores_the_default() {
    let defaults = TurnLimits { turns_per_day: Some(5), ..TurnLimits::default() };
    let app = App::with_limits(RegistrationMode::Open, defaults).await;
    let admin = app.user("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (alices, bobs) = (chat_of(&app, &alice).await, chat_of(&app, &bob).await);
    for chat in [alices, alices, bobs, bobs] {
        finished_turn(&app, chat).await;
    }

    let set =
        put_limits(&app, &admin, &alice, json!({"turns_per_day": 2, "running_turns": null})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.json());
    let body = set.json();
    assert_eq!(body["effective"]["turns_per_day"], 2);
    assert_eq!(body["effective"]["running_turns"], Value::Null);
    assert_eq!(body["defaults"]["turns_per_day"], 5);
    assert_eq!(body["set_by_admin"], json!(["running_turns", "turns_per_day"]));
    assert_eq!(body["usage"]["turns_today"], 2);

    let refused = post(&app, &alice, alices).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "limit_reached")
    );
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("turns per day (2)") && message.contains("resets at"), "{message}");
    // Bob has the default of 5, and has used 2.
    assert_eq!(post(&app, &bob, bobs).await.status, StatusCode::ACCEPTED);

    // Alice sees her own limits; the admin route is not hers.
    let mine = app.call(Method::GET, "/api/v1/limits", Some(&alice.access), None).await.json();
    assert_eq!(
        (mine["effective"]["turns_per_day"].clone(), mine["user_id"].clone()),
        (json!(2), json!(alice.id))
    );
    let uri = format!("/api/v1/admin/users/{}/limits", alice.id);
    assert_eq!(app.call(Method::GET, &uri, Some(&alice.access), None).await.code(), "admin_only");

    // Back to the default ("default" or left out): her third turn of the day may start.
    let cleared = put_limits(&app, &admin, &alice, json!({"turns_per_day": "default"})).await;
    assert_eq!(cleared.json()["effective"]["turns_per_day"], 5);
    assert_eq!(cleared.json()["set_by_admin"], json!([]));
    assert_eq!(post(&app, &alice, alices).await.status, StatusCode::ACCEPTED);

    let audit = app
        .call(
            Method::GET,
            "/api/v1/admin/audit?kind=user_limits_changed",
            Some(&admin.access),
            None,
        )
        .await
        .json();
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["detail"], json!({"turns_per_day": 2.0, "running_turns": null}));
    assert_eq!(entries[1]["target_id"], json!(alice.id));
}

#[tokio::test]
async fn bad_limits_are_refused_and_change_nothing() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    put_limits(&app, &admin, &alice, json!({"turns_per_day": 3})).await;
    for body in [
        json!({"turns_per_day": 2.5}),
        json!({"turns_per_day": -1}),
        json!({"running_turns": 1e12}),
        json!({"turns_per_day": "lots"}),
        json!({"turns_a_day": 3}),
        json!({"spend_per_day_usd": true}),
    ] {
        let refused = put_limits(&app, &admin, &alice, body.clone()).await;
        assert!(refused.status.is_client_error(), "{body}: {}", refused.status);
        assert!(!refused.code().is_empty());
    }
    let uri = format!("/api/v1/admin/users/{}/limits", alice.id);
    let now = app.call(Method::GET, &uri, Some(&admin.access), None).await.json();
    assert_eq!(now["effective"]["turns_per_day"], 3, "nothing changed");
    let nobody = format!("/api/v1/admin/users/{}/limits", Uuid::now_v7());
    let missing = app.call(Method::PUT, &nobody, Some(&admin.access), Some(&json!({}))).await;
    assert_eq!(missing.code(), "user_not_found");
}

async fn upload(app: &App, user: &Tokens, chat: Uuid, path: &str, text: &str) -> support::Answer {
    // The body is the JSON string: its bytes are the text and two quotes.
    let uri = format!("/api/v1/chats/{chat}/files/content?path={path}");
    app.call(Method::PUT, &uri, Some(&user.access), Some(&json!(text))).await
}

#[tokio::test]
async fn workspace_disk_limits_refuse_an_upload_or_a_turn_past_them() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let (first, second) = (chat_of(&app, &alice).await, chat_of(&app, &alice).await);
    let set = put_limits(&app, &admin, &alice, json!({"workspace_bytes_per_chat": 20})).await;
    assert_eq!(set.json()["effective"]["workspace_bytes_per_chat"], 20);

    assert_eq!(upload(&app, &alice, first, "a.txt", &"x".repeat(16)).await.status, StatusCode::OK);
    let refused = upload(&app, &alice, first, "b.txt", "yyy").await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "limit_reached")
    );
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("workspace disk per chat (20 bytes; 23 bytes"), "{message}");
    let missing = app
        .call(
            Method::GET,
            &format!("/api/v1/chats/{first}/files/stat?path=b.txt"),
            Some(&alice.access),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "nothing was written");
    // A file replaced gives its bytes back: 18 - 18 + 19.
    assert_eq!(upload(&app, &alice, first, "a.txt", &"x".repeat(17)).await.status, StatusCode::OK);

    // At the limit, a turn does not start in that chat.
    put_limits(&app, &admin, &alice, json!({"workspace_bytes_per_chat": 19})).await;
    let turn = post(&app, &alice, first).await;
    assert_eq!(turn.code(), "limit_reached");
    assert!(app.store.messages(first).await.unwrap().is_empty(), "nothing was started");

    // The total counts every chat of the user.
    put_limits(&app, &admin, &alice, json!({"workspace_bytes_total": 25})).await;
    let refused = upload(&app, &alice, second, "c.txt", "zzzzzz").await;
    assert_eq!(refused.code(), "limit_reached");
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("workspace disk in total (25 bytes; 27 bytes"), "{message}");
    assert_eq!(upload(&app, &alice, second, "c.txt", "zzzz").await.status, StatusCode::OK);
}

/// Read the chat's event stream (from its start) until an event's data holds `needle`; the
/// whole text read so far.
async fn stream_until(app: &App, user: &Tokens, chat: Uuid, needle: &str) -> String {
    use futures::StreamExt;
    let request = http::Request::builder()
        .uri(format!("/api/v1/chats/{chat}/stream"))
        .header(header::AUTHORIZATION, format!("Bearer {}", user.access))
        .header("Last-Event-ID", "0")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let mut seen = String::new();
    // A guard against a hang only: the stream is what the test waits on.
    let read = async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains(needle) {
                return;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), read)
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} in the stream: {seen}"));
    seen
}

#[tokio::test]
async fn a_queued_prompt_over_a_limit_pauses_the_queue_with_a_notice_instead_of_starting() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let chat = chat_of(&app, &alice).await;
    put_limits(&app, &admin, &alice, json!({"turns_per_day": 1})).await;
    // A prompt waiting in the queue when the turn ends (this router's turns end at once:
    // it has no CLI).
    let queued = app.store.enqueue(chat, "the next one", None, None).await.unwrap();
    assert_eq!(post(&app, &alice, chat).await.status, StatusCode::ACCEPTED);

    let seen = stream_until(&app, &alice, chat, "queue_paused").await;
    assert!(seen.contains("The queue is paused: Limit reached: turns per day (1)"), "{seen}");
    assert!(seen.contains("resets at"), "{seen}");
    // It did not start: still queued, the queue paused, one turn in the chat.
    let queue = app.store.queue(chat).await.unwrap();
    assert_eq!(queue.iter().map(|q| q.id).collect::<Vec<_>>(), [queued.id]);
    assert!(app.store.queue_paused(chat).await.unwrap());
    let turns = app.store.messages(chat).await.unwrap();
    assert_eq!(
        turns.iter().filter(|m| m.role == agentbox_protocol::api::Role::Assistant).count(),
        1
    );
}
