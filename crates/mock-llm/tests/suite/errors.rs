//! Scripted failures: HTTP errors, errors that clear after N requests, cut streams, and bad
//! requests.

use mock_llm::MockLlm;
use serde_json::{Value, json};

use super::support::{cli_body, post, read_stream, stream};

async fn error_of(mock: &MockLlm, prompt: &str) -> (u16, Value) {
    let response = post(mock, "/v1/messages?beta=true", &cli_body(prompt, true)).await;
    assert_eq!(response.headers()["x-mock-llm"], "scripted");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn each_error_status_has_the_api_error_body() {
    let mock = MockLlm::start().await.unwrap();
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let (got, body) = error_of(&mock, &format!("[[error:{status}]] x")).await;
        assert_eq!(got, status);
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": kind, "message": format!("scripted {status}")}})
        );
    }
}

#[tokio::test]
async fn an_unlimited_error_never_clears() {
    let mock = MockLlm::start().await.unwrap();
    for _ in 0..3 {
        assert_eq!(error_of(&mock, "[[error:500]] again").await.0, 500);
    }
}

#[tokio::test]
async fn a_counted_error_fails_then_clears() {
    let mock = MockLlm::start().await.unwrap();
    assert_eq!(error_of(&mock, "[[error:500:1]] retry me").await.0, 500);
    // Another prompt has its own count and is not affected.
    assert_eq!(error_of(&mock, "[[error:529:2]] other").await.0, 529);
    let streamed = stream(&mock, &cli_body("[[error:500:1]] retry me", true)).await;
    assert_eq!(streamed.blocks()[0]["text"], "Done. (scripted reply) ok: [[error:500:1]] retry me");
    assert_eq!(error_of(&mock, "[[error:529:2]] other").await.0, 529);
    assert_eq!(
        stream(&mock, &cli_body("[[error:529:2]] other", true)).await.stop_reason(),
        Some("end_turn")
    );

    // Clearing the log also forgets the counts.
    mock.clear_requests();
    assert_eq!(error_of(&mock, "[[error:500:1]] retry me").await.0, 500);
}

#[tokio::test]
async fn a_disconnect_cuts_the_first_stream_only() {
    let mock = MockLlm::start().await.unwrap();
    let body = cli_body("[[disconnect]] [[text:the whole reply]]", true);
    let response = post(&mock, "/v1/messages?beta=true", &body).await;
    assert_eq!(response.status(), 200);
    let cut = read_stream(response).await;
    assert!(cut.broke_off, "the client sees the connection break");
    assert!(cut.has("message_start"));
    assert!(!cut.has("message_stop"));
    assert!(!cut.has("message_delta"));
    assert_eq!(cut.blocks(), vec![json!({"type": "text", "text": "the who"})]);

    let retry = stream(&mock, &body).await;
    assert!(!retry.broke_off);
    assert!(retry.has("message_stop"));
    assert_eq!(retry.blocks(), vec![json!({"type": "text", "text": "the whole reply"})]);
}

#[tokio::test]
async fn a_disconnect_also_cuts_a_whole_reply() {
    let mock = MockLlm::start().await.unwrap();
    let response = post(&mock, "/v1/messages", &cli_body("[[disconnect]] x", false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "the body breaks off");
    let response = post(&mock, "/v1/messages", &cli_body("[[disconnect]] x", false)).await;
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["stop_reason"], "end_turn");
}

#[tokio::test]
async fn bad_requests_get_api_errors() {
    let mock = MockLlm::start().await.unwrap();
    let client = reqwest::Client::new();

    let not_json = client
        .post(format!("{}/v1/messages", mock.base_url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let no_messages = post(&mock, "/v1/messages", &json!({"model": "m", "messages": []})).await;
    assert_eq!(no_messages.status(), 400);

    let unknown = client.get(format!("{}/v1/nothing", mock.base_url())).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.headers()["x-mock-llm"], "scripted");
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");

    let (status, body) = error_of(&mock, "[[scenario:nope]] x").await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("\"nope\""));
}
