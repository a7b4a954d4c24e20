//! Limits per user on turns, through the whole router: running turns at once, turns per
//! day and spend per day refuse a new prompt with `429 limit_reached`, naming the limit and
//! when it resets; another user is not affected. Turns are recorded through the store (this
//! router has no CLI), as the runner records them.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::MessageStatus;
use agentbox_server::{RegistrationMode, TurnLimits};
use agentbox_store::TurnResult;
use http::{Method, StatusCode, header};
use serde_json::json;
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

async fn finished_turn(app: &App, chat: Uuid, cost: Option<f64>) {
    let turn = app.store.begin_turn(chat, "p", "m", PermissionMode::Ask).await.unwrap();
    let result =
        TurnResult { total_cost_usd: cost, ..TurnResult::status(MessageStatus::Completed) };
    app.store.finish_turn(chat, turn.message_id, result).await.unwrap();
}

#[tokio::test]
async fn turns_per_day_and_spend_per_day_refuse_a_new_turn_until_the_day_ends() {
    let limits = TurnLimits { turns_per_day: Some(2), ..TurnLimits::default() };
    let app = App::with_limits(RegistrationMode::Open, limits).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let chat = chat_of(&app, &alice).await;
    finished_turn(&app, chat, None).await;
    finished_turn(&app, chat, None).await;
    let refused = post(&app, &alice, chat).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "limit_reached")
    );
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("turns per day (2)") && message.contains("resets at"), "{message}");
    let wait: u64 = refused.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&wait), "{wait}");
    assert_eq!(app.store.messages(chat).await.unwrap().len(), 4, "nothing was started");
    // Queuing on an idle chat would start the prompt at once: refused the same way.
    let queued = app
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/queue"),
            Some(&alice.access),
            Some(&json!({"prompt": "later"})),
        )
        .await;
    assert_eq!(queued.code(), "limit_reached");
    // Bob has his own day.
    let bobs = chat_of(&app, &bob).await;
    assert_eq!(post(&app, &bob, bobs).await.status, StatusCode::ACCEPTED);

    let limits = TurnLimits { spend_per_day_usd: Some(1.0), ..TurnLimits::default() };
    let app = App::with_limits(RegistrationMode::Open, limits).await;
    let carol = app.user("carol@example.com").await;
    let chat = chat_of(&app, &carol).await;
    finished_turn(&app, chat, Some(0.4)).await;
    finished_turn(&app, chat, Some(0.6)).await;
    let refused = post(&app, &carol, chat).await;
    assert_eq!(refused.code(), "limit_reached");
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("spend per day ($1.00; $1.00 spent today)"), "{message}");
}

#[tokio::test]
async fn a_user_at_their_running_turns_limit_waits_for_one_to_end() {
    let limits = TurnLimits { running_turns: Some(1), ..TurnLimits::default() };
    let app = App::with_limits(RegistrationMode::Open, limits).await;
    let alice = app.user("alice@example.com").await;
    let (first, second) = (chat_of(&app, &alice).await, chat_of(&app, &alice).await);
    // A turn in progress in one chat (as the runner leaves it while the CLI works).
    let running = app.store.begin_turn(first, "p", "m", PermissionMode::Ask).await.unwrap();
    let refused = post(&app, &alice, second).await;
    assert_eq!(refused.code(), "limit_reached");
    assert!(
        refused.headers.get(header::RETRY_AFTER).is_none(),
        "it ends when a turn ends, not at a time"
    );
    app.store
        .finish_turn(first, running.message_id, TurnResult::status(MessageStatus::Completed))
        .await
        .unwrap();
    assert_eq!(post(&app, &alice, second).await.status, StatusCode::ACCEPTED);
}
