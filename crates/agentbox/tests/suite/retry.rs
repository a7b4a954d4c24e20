//! Retry: a failed turn runs again with the same prompt as a new turn; only the latest turn,
//! and only a failed or stopped one, can be retried.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::support::TestServer;

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[tokio::test]
async fn a_failed_turn_is_retried_with_its_prompt() {
    let server = TestServer::start().await;
    let api = server.user("retry@example.com").await;
    let chat = api.new_chat().await;
    // The model API fails the first request only: the retry gets an answer.
    let prompt = "[[error:500:1]] [[text:it worked]] try this";
    let failed = api.send(&chat, prompt).await;
    let events = api.turn_events(&chat, &failed).await;
    assert_eq!(events.last().unwrap().data["status"], "failed");

    let path = |id: &str| format!("/api/v1/chats/{chat}/messages/{id}/retry");
    let (status, body) = api.call(Method::POST, &path(&failed), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let retried = body["message_id"].as_str().unwrap().to_owned();
    assert_ne!(retried, failed);
    let events = api.turn_events(&chat, &retried).await;
    assert_eq!(events.last().unwrap().data["status"], "completed");

    // The failed turn stays; the retry is a new turn with the same prompt.
    let messages = api.messages(&chat).await;
    let roles: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("user", "completed"),
            ("assistant", "failed"),
            ("user", "completed"),
            ("assistant", "completed")
        ]
    );
    assert_eq!(messages[2]["content"][0]["text"], prompt);
    let requests = server.mock.message_requests();
    assert_eq!(requests.last().unwrap().prompt().as_deref(), Some(prompt));

    // Refusals: a turn that did not fail, a turn that is no longer the latest, a message
    // that is not a turn, ids that name nothing, another user's chat.
    for (id, status, expected) in [
        (retried.as_str(), StatusCode::CONFLICT, "not_retryable"),
        (failed.as_str(), StatusCode::CONFLICT, "not_latest_turn"),
        (messages[0]["id"].as_str().unwrap(), StatusCode::NOT_FOUND, "message_not_found"),
        ("0190e7a5-0000-7000-8000-000000000000", StatusCode::NOT_FOUND, "message_not_found"),
        ("not-a-uuid", StatusCode::NOT_FOUND, "message_not_found"),
    ] {
        let (actual, body) = api.call(Method::POST, &path(id), None).await;
        assert_eq!((actual, code(&body)), (status, Some(expected)), "{id}: {body}");
    }
    let stranger = server.user("retry-stranger@example.com").await;
    let (actual, body) = stranger.call(Method::POST, &path(&failed), None).await;
    assert_eq!((actual, code(&body)), (StatusCode::NOT_FOUND, Some("chat_not_found")));
    // Nothing changed.
    assert_eq!(api.messages(&chat).await.len(), 4);
}
