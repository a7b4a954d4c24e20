//! The request log, in process and over `/_mock/requests`.

use mock_llm::{MockLlm, RecordedRequest};
use serde_json::json;

use super::support::{cli_body, continue_after_tools, post, stream};

#[tokio::test]
async fn every_request_is_recorded_in_order() {
    let mock = MockLlm::start().await.unwrap();
    let first = cli_body("[[bash:ls]] look", true);
    let blocks = stream(&mock, &first).await.blocks();
    post(&mock, "/v1/messages/count_tokens", &json!({"model": "m", "messages": []})).await;
    let second = continue_after_tools(first, &blocks, "file.txt");
    stream(&mock, &second).await;
    reqwest::get(format!("{}/elsewhere?x=1", mock.base_url())).await.unwrap();

    let requests = mock.requests();
    let summary: Vec<(u64, &str, &str)> =
        requests.iter().map(|r| (r.seq, r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            (1, "POST", "/v1/messages?beta=true"),
            (2, "POST", "/v1/messages/count_tokens"),
            (3, "POST", "/v1/messages?beta=true"),
            (4, "GET", "/elsewhere?x=1"),
        ]
    );
    assert_eq!(requests[3].body, serde_json::Value::Null);

    let messages = mock.message_requests();
    assert_eq!(messages.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 3]);
    let last = &messages[1];
    assert_eq!(last.model(), Some("claude-sonnet-4-5"));
    assert_eq!(last.system_text(), "You are Claude Code.\nBe helpful.");
    assert_eq!(last.messages().len(), 3);
    assert_eq!(last.prompt().as_deref(), Some("[[bash:ls]] look"));
    assert_eq!(last.user_texts(), vec!["[[bash:ls]] look".to_owned()]);
    assert_eq!(last.tool_results().len(), 1);
    assert_eq!(last.tool_results()[0]["content"], "file.txt");
    assert_eq!(last.tool_results()[0]["tool_use_id"], "toolu_mock_1");
    assert_eq!(last.header("X-Api-Key"), Some("test-key"));
    assert!(
        last.headers
            .iter()
            .any(|(name, value)| name == "anthropic-version" && value == "2023-06-01")
    );
    assert!(last.headers.iter().all(|(name, _)| *name == name.to_lowercase()));
}

#[tokio::test]
async fn the_log_is_served_and_cleared_over_http() {
    let mock = MockLlm::start().await.unwrap();
    stream(&mock, &cli_body("[[text:one]]", true)).await;
    stream(&mock, &cli_body("[[text:two]]", true)).await;

    let client = reqwest::Client::new();
    let url = format!("{}/_mock/requests", mock.base_url());
    let listed = client.get(&url).send().await.unwrap();
    assert_eq!(listed.headers()["x-mock-llm"], "scripted");
    let listed: Vec<RecordedRequest> = listed.json().await.unwrap();
    assert_eq!(listed, mock.requests(), "reading the log over HTTP does not add to it");
    let prompts: Vec<Option<String>> = listed.iter().map(RecordedRequest::prompt).collect();
    assert_eq!(prompts, vec![Some("[[text:one]]".to_owned()), Some("[[text:two]]".to_owned())]);

    let cleared = client.delete(&url).send().await.unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(mock.requests().is_empty());
    let listed: Vec<RecordedRequest> = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(listed.is_empty());

    stream(&mock, &cli_body("[[text:three]]", true)).await;
    assert_eq!(mock.requests()[0].seq, 3, "sequence numbers keep counting after a clear");
}
