//! Helpers: request bodies shaped like the CLI's, and a small SSE reader that reassembles the
//! streamed content blocks the way a client must.

use futures::StreamExt;
use mock_llm::MockLlm;
use serde_json::{Value, json};

/// A Messages API body like the Claude Code CLI's first request: system-reminder blocks
/// before the prompt, which is the last text block.
pub fn cli_body(prompt: &str, stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be helpful."},
        ],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nAvailable skills: none\n</system-reminder>"},
            {"type": "text", "text": "<system-reminder>\nToday's date is 2026-11-26.\n</system-reminder>"},
            {"type": "text", "text": prompt},
        ]}],
    })
}

/// The same conversation continued the way the CLI continues it after running tools: the
/// assistant's reply, then a user message of `tool_result` blocks, one per tool call.
pub fn continue_after_tools(mut body: Value, reply_blocks: &[Value], output: &str) -> Value {
    let results: Vec<Value> = reply_blocks
        .iter()
        .filter(|block| block["type"] == "tool_use")
        .map(|block| {
            json!({"type": "tool_result", "tool_use_id": block["id"], "content": output, "is_error": false})
        })
        .collect();
    let messages = body["messages"].as_array_mut().expect("messages is an array");
    messages.push(json!({"role": "assistant", "content": reply_blocks}));
    messages.push(json!({"role": "user", "content": results}));
    body
}

pub async fn post(mock: &MockLlm, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", mock.base_url()))
        .header("x-api-key", "test-key")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("the mock answers")
}

/// What a client read from a streamed reply.
#[derive(Debug)]
pub struct Streamed {
    /// Every event as (event name, data).
    pub events: Vec<(String, Value)>,
    /// Whether reading the body failed, as it does when the connection is cut.
    pub broke_off: bool,
}

impl Streamed {
    pub fn names(&self) -> Vec<&str> {
        self.events.iter().map(|(name, _)| name.as_str()).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.events.iter().any(|(event, _)| event == name)
    }

    pub fn message(&self) -> &Value {
        &self.events.iter().find(|(name, _)| name == "message_start").expect("message_start").1["message"]
    }

    pub fn stop_reason(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|(name, _)| name == "message_delta")
            .and_then(|(_, data)| data["delta"]["stop_reason"].as_str())
    }

    /// The content blocks, rebuilt from their start events and deltas.
    pub fn blocks(&self) -> Vec<Value> {
        let mut blocks: Vec<Value> = Vec::new();
        let mut partial_json: Vec<String> = Vec::new();
        for (name, data) in &self.events {
            let index = data["index"].as_u64().unwrap_or(0) as usize;
            match name.as_str() {
                "content_block_start" => {
                    assert_eq!(index, blocks.len(), "blocks start in index order");
                    blocks.push(data["content_block"].clone());
                    partial_json.push(String::new());
                }
                "content_block_delta" => {
                    let delta = &data["delta"];
                    let block = &mut blocks[index];
                    match delta["type"].as_str() {
                        Some("text_delta") => append(block, "text", &delta["text"]),
                        Some("thinking_delta") => append(block, "thinking", &delta["thinking"]),
                        Some("signature_delta") => append(block, "signature", &delta["signature"]),
                        Some("input_json_delta") => {
                            partial_json[index].push_str(delta["partial_json"].as_str().unwrap())
                        }
                        other => panic!("unexpected delta type {other:?}"),
                    }
                }
                "content_block_stop" if blocks[index]["type"] == "tool_use" => {
                    blocks[index]["input"] = serde_json::from_str(&partial_json[index])
                        .expect("the partial_json chunks join into valid JSON");
                }
                _ => {}
            }
        }
        blocks
    }
}

fn append(block: &mut Value, field: &str, piece: &Value) {
    let joined = format!("{}{}", block[field].as_str().unwrap_or(""), piece.as_str().unwrap());
    block[field] = Value::String(joined);
}

/// Reads a streamed reply to its end, or to the point where the connection broke.
pub async fn read_stream(response: reqwest::Response) -> Streamed {
    let mut body = Vec::new();
    let mut broke_off = false;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(_) => {
                broke_off = true;
                break;
            }
        }
    }
    let text = String::from_utf8(body).expect("the stream is UTF-8");
    let mut events = Vec::new();
    for record in text.split("\n\n").filter(|record| !record.trim().is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in record.lines() {
            if let Some(value) = line.strip_prefix("event: ") {
                name = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str::<Value>(value).expect("event data is JSON"));
            }
        }
        let (name, data) =
            (name.expect("every event is named"), data.expect("every event has data"));
        assert_eq!(data["type"], name, "the data type matches the event name");
        events.push((name, data));
    }
    Streamed { events, broke_off }
}

/// Sends a streaming request and reads the whole reply.
pub async fn stream(mock: &MockLlm, body: &Value) -> Streamed {
    let response = post(mock, "/v1/messages?beta=true", body).await;
    assert_eq!(response.status(), 200);
    read_stream(response).await
}
