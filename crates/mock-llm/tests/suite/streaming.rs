//! Replies: streamed and whole, step by step through a tool loop, and the side endpoints.

use mock_llm::{MOCK_SIGNATURE, MockLlm, MockOptions, Script, built_in_default};
use serde_json::{Value, json};

use super::support::{cli_body, continue_after_tools, post, stream};

#[tokio::test]
async fn streams_thinking_text_and_a_tool_call() {
    let mock = MockLlm::start().await.unwrap();
    let response = post(
        &mock,
        "/v1/messages?beta=true",
        &cli_body("[[think]] [[write:hello.txt:hi]] go", true),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-mock-llm"], "scripted");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let streamed = super::support::read_stream(response).await;

    assert!(!streamed.broke_off);
    let names = streamed.names();
    assert_eq!(names[0], "message_start");
    assert!(names.contains(&"ping"));
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    assert_eq!(streamed.message()["model"], "claude-sonnet-4-5");
    assert_eq!(streamed.message()["id"], "msg_mock_1");
    assert_eq!(streamed.stop_reason(), Some("tool_use"));

    let blocks = streamed.blocks();
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        blocks[0],
        json!({"type": "thinking", "thinking": "Considering the request carefully.", "signature": MOCK_SIGNATURE})
    );
    assert_eq!(blocks[1], json!({"type": "text", "text": "Writing the file now."}));
    assert_eq!(
        blocks[2],
        json!({
            "type": "tool_use",
            "id": "toolu_mock_1",
            "name": "Bash",
            "input": {"command": "printf '%s' 'hi' > hello.txt && echo written", "description": "write file"},
        })
    );
    let json_deltas = streamed
        .events
        .iter()
        .filter(|(_, data)| data["delta"]["type"] == "input_json_delta")
        .count();
    assert!(json_deltas > 1, "the tool input arrives in several partial_json chunks");
}

#[tokio::test]
async fn a_tool_result_advances_to_the_next_step() {
    let mock = MockLlm::start().await.unwrap();
    let prompt = "[[think]] [[write:hello.txt:hi]] write a file";
    let first = cli_body(prompt, true);
    let blocks = stream(&mock, &first).await.blocks();

    let second = continue_after_tools(first, &blocks, "written");
    let streamed = stream(&mock, &second).await;
    assert_eq!(streamed.stop_reason(), Some("end_turn"));
    assert_eq!(streamed.message()["id"], "msg_mock_2");
    assert_eq!(
        streamed.blocks(),
        vec![
            json!({"type": "text", "text": "Done. (after tool) ok: [[think]] [[write:hello.txt:hi]] write a"})
        ]
    );
}

#[tokio::test]
async fn steps_run_one_tool_call_per_request_then_finish() {
    let mock = MockLlm::start().await.unwrap();
    let mut body = cli_body("[[steps:3]] go", true);
    let mut commands = Vec::new();
    loop {
        let streamed = stream(&mock, &body).await;
        let blocks = streamed.blocks();
        if streamed.stop_reason() == Some("end_turn") {
            assert_eq!(blocks[0]["text"], "Done. (after tool) ok: [[steps:3]] go");
            break;
        }
        assert_eq!(streamed.stop_reason(), Some("tool_use"));
        commands.push(blocks[0]["input"]["command"].as_str().unwrap().to_owned());
        assert!(commands.len() <= 3, "the script ends after three steps");
        body = continue_after_tools(body, &blocks, "ok");
    }
    assert_eq!(commands, ["echo step-1", "echo step-2", "echo step-3"]);
    let ids: Vec<String> = mock
        .message_requests()
        .iter()
        .flat_map(|request| request.tool_results())
        .map(|result| result["tool_use_id"].as_str().unwrap().to_owned())
        .collect();
    // The last request carries all three results in its history.
    assert_eq!(ids[ids.len() - 3..], ["toolu_mock_1", "toolu_mock_2", "toolu_mock_3"]);
}

#[tokio::test]
async fn ask_and_exitplan_call_their_tools() {
    let mock = MockLlm::start().await.unwrap();
    let mut body = cli_body("[[ask]] [[exitplan]] plan", true);
    let asked = stream(&mock, &body).await.blocks();
    assert_eq!(asked[0]["name"], "AskUserQuestion");
    assert_eq!(asked[0]["input"]["questions"][0]["question"], "Which color?");
    assert_eq!(asked[0]["input"]["questions"][0]["options"][1]["label"], "blue");
    body = continue_after_tools(body, &asked, "Your questions have been answered");
    let planned = stream(&mock, &body).await.blocks();
    assert_eq!(planned[0]["name"], "ExitPlanMode");
    assert_eq!(planned[0]["input"], json!({"plan": "1. Write plan.txt\n2. Report back"}));
}

#[tokio::test]
async fn replies_whole_when_not_streaming() {
    let mock = MockLlm::start().await.unwrap();
    let response = post(&mock, "/v1/messages", &cli_body("[[bash:echo a:b]] now", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-mock-llm"], "scripted");
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["content"][0]["type"], "tool_use");
    assert_eq!(message["content"][0]["id"], "toolu_mock_1");
    assert_eq!(message["content"][0]["input"]["command"], "echo a:b");
    assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn prompts_without_markers_get_the_default_reply() {
    let mock = MockLlm::start().await.unwrap();
    let blocks = stream(&mock, &cli_body("hello there", true)).await.blocks();
    let Some(mock_llm::Block::Text { text }) = built_in_default().steps[0].blocks.first().cloned()
    else {
        panic!("the built-in default is a text reply");
    };
    assert!(text.contains("scripted reply"));
    assert_eq!(blocks, vec![json!({"type": "text", "text": text})]);

    let options = MockOptions {
        default_script: Some(Script::text("custom default")),
        ..MockOptions::default()
    };
    let custom = MockLlm::start_with("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    let blocks = stream(&custom, &cli_body("hello there", true)).await.blocks();
    assert_eq!(blocks, vec![json!({"type": "text", "text": "custom default"})]);
}

#[tokio::test]
async fn long_text_arrives_whole() {
    let mock = MockLlm::start().await.unwrap();
    let streamed = stream(&mock, &cli_body("[[long:200000]] x", true)).await;
    let blocks = streamed.blocks();
    let text = blocks[0]["text"].as_str().unwrap();
    assert_eq!(text.len(), 200_000);
    assert!(text.starts_with("Done. (scripted reply) ok: [[long:200000]] x"));
}

#[tokio::test]
async fn slow_replies_still_arrive_complete() {
    let mock = MockLlm::start().await.unwrap();
    let streamed = stream(&mock, &cli_body("[[slow:2]] [[text:slowly]]", true)).await;
    assert!(streamed.has("message_stop"));
    assert_eq!(streamed.blocks(), vec![json!({"type": "text", "text": "slowly"})]);
}

#[tokio::test]
async fn count_tokens_estimates_from_the_body() {
    let mock = MockLlm::start().await.unwrap();
    let small = post(&mock, "/v1/messages/count_tokens?beta=true", &cli_body("hi", false)).await;
    assert_eq!(small.status(), 200);
    assert_eq!(small.headers()["x-mock-llm"], "scripted");
    let small: Value = small.json().await.unwrap();
    let large =
        post(&mock, "/v1/messages/count_tokens", &cli_body(&"word ".repeat(1000), false)).await;
    let large: Value = large.json().await.unwrap();
    let (small, large) =
        (small["input_tokens"].as_u64().unwrap(), large["input_tokens"].as_u64().unwrap());
    assert!(small > 0);
    assert!(
        large >= small + 1000,
        "5000 more bytes are about 1250 more tokens: {small} vs {large}"
    );
}

#[tokio::test]
async fn the_index_page_says_it_is_a_mock() {
    let mock = MockLlm::start().await.unwrap();
    let response = reqwest::get(format!("{}/", mock.base_url())).await.unwrap();
    assert_eq!(response.headers()["x-mock-llm"], "scripted");
    assert!(response.text().await.unwrap().contains("not a real model"));
}

#[tokio::test]
async fn the_cli_connectivity_check_succeeds() {
    let mock = MockLlm::start().await.unwrap();
    let url = format!("{}/api/hello", mock.base_url());
    let response = reqwest::Client::new().head(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-mock-llm"], "scripted");
    assert_eq!(mock.requests()[0].method, "HEAD");
    assert_eq!(mock.requests()[0].path, "/api/hello");
}
