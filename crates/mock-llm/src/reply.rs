//! Turning one script step into Messages API output: a complete `message` object, or the
//! server-sent events of a streamed reply.
//!
//! The event sequence follows the real API: `message_start`, a `ping`, then for each block
//! `content_block_start`, one or more deltas and `content_block_stop`, then `message_delta`
//! with the stop reason and usage, and `message_stop`. Deltas are split into a few chunks so
//! that clients exercise their reassembly code, as they must with the real API.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::script::{Block, MOCK_SIGNATURE, Step};

/// Text and JSON longer than this are streamed in chunks of this size; shorter ones in about
/// three chunks.
const MAX_CHUNK_BYTES: usize = 8192;

/// One content block of a reply, with its tool-use id assigned.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyBlock {
    /// Thinking text and its signature.
    Thinking { text: String, signature: String },
    /// Visible text.
    Text { text: String },
    /// A tool call.
    ToolUse { id: String, name: String, input: Value },
}

/// One assistant reply, ready to be sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub id: String,
    pub model: String,
    pub blocks: Vec<ReplyBlock>,
    pub stop_reason: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A rough token count for a length in bytes, about four bytes per token as with English text.
pub fn estimate_tokens(bytes: usize) -> u64 {
    u64::try_from(bytes / 4).unwrap_or(u64::MAX).max(1)
}

impl Reply {
    /// Builds the reply for `step`, taking tool-use ids from `next_tool_id`.
    pub fn from_step(
        step: &Step,
        id: String,
        model: String,
        input_tokens: u64,
        mut next_tool_id: impl FnMut() -> String,
    ) -> Self {
        let blocks: Vec<ReplyBlock> = step
            .blocks
            .iter()
            .map(|block| match block {
                Block::Thinking { text, signature } => ReplyBlock::Thinking {
                    text: text.clone(),
                    signature: signature.clone().unwrap_or_else(|| MOCK_SIGNATURE.to_owned()),
                },
                Block::Text { text } => ReplyBlock::Text { text: text.clone() },
                Block::ToolUse { name, input } => ReplyBlock::ToolUse {
                    id: next_tool_id(),
                    name: name.clone(),
                    input: input.clone(),
                },
            })
            .collect();
        let output_bytes: usize = blocks
            .iter()
            .map(|block| match block {
                ReplyBlock::Thinking { text, .. } | ReplyBlock::Text { text } => text.len(),
                ReplyBlock::ToolUse { input, .. } => input.to_string().len(),
            })
            .sum();
        Self {
            id,
            model,
            blocks,
            stop_reason: step.effective_stop_reason().to_owned(),
            input_tokens,
            output_tokens: estimate_tokens(output_bytes),
        }
    }

    fn start_usage(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
            "service_tier": "standard",
        })
    }

    fn final_usage(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": self.output_tokens,
            "service_tier": "standard",
        })
    }

    fn block_json(block: &ReplyBlock) -> Value {
        match block {
            ReplyBlock::Thinking { text, signature } => {
                json!({"type": "thinking", "thinking": text, "signature": signature})
            }
            ReplyBlock::Text { text } => json!({"type": "text", "text": text}),
            ReplyBlock::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        }
    }

    /// The complete `message` object of a non-streaming reply.
    pub fn message_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.blocks.iter().map(Self::block_json).collect::<Vec<_>>(),
            "stop_reason": self.stop_reason,
            "stop_sequence": null,
            "usage": self.final_usage(),
        })
    }

    fn message_start(&self) -> Frame {
        Frame::new(
            "message_start",
            json!({
                "type": "message_start",
                "message": {
                    "id": self.id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": self.start_usage(),
                },
            }),
        )
    }

    /// Every event of a streamed reply, in order.
    pub fn stream_frames(&self) -> Vec<Frame> {
        let mut frames = vec![self.message_start(), Frame::new("ping", json!({"type": "ping"}))];
        for (index, block) in self.blocks.iter().enumerate() {
            let (start, deltas) = match block {
                ReplyBlock::Thinking { text, signature } => {
                    let mut deltas: Vec<Value> = chunks(text)
                        .map(|chunk| json!({"type": "thinking_delta", "thinking": chunk}))
                        .collect();
                    deltas.push(json!({"type": "signature_delta", "signature": signature}));
                    (json!({"type": "thinking", "thinking": "", "signature": ""}), deltas)
                }
                ReplyBlock::Text { text } => (
                    json!({"type": "text", "text": ""}),
                    chunks(text)
                        .map(|chunk| json!({"type": "text_delta", "text": chunk}))
                        .collect(),
                ),
                ReplyBlock::ToolUse { id, name, input } => {
                    let encoded = input.to_string();
                    (
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                        chunks(&encoded)
                            .map(|chunk| json!({"type": "input_json_delta", "partial_json": chunk}))
                            .collect(),
                    )
                }
            };
            frames.push(Frame::new(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": start}),
            ));
            frames.extend(deltas.into_iter().map(|delta| {
                Frame::new(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": delta}),
                )
            }));
            frames.push(Frame::new(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
        frames.push(Frame::new(
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                "usage": self.final_usage(),
            }),
        ));
        frames.push(Frame::new("message_stop", json!({"type": "message_stop"})));
        frames
    }

    /// The events sent before a scripted disconnect: the start of the message and the first
    /// half of a text block, so the client has begun showing a reply when the stream breaks.
    pub fn truncated_frames(&self) -> Vec<Frame> {
        let text = self
            .blocks
            .iter()
            .find_map(|block| match block {
                ReplyBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or("Partial reply, cut off by a scripted disconnect.");
        vec![
            self.message_start(),
            Frame::new(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            Frame::new(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": first_half(text)}}),
            ),
        ]
    }
}

/// One server-sent event.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub event: &'static str,
    pub data: Value,
}

impl Frame {
    fn new(event: &'static str, data: Value) -> Self {
        Self { event, data }
    }

    /// The event in the `text/event-stream` wire format.
    pub fn encode(&self) -> Bytes {
        Bytes::from(format!("event: {}\ndata: {}\n\n", self.event, self.data))
    }
}

/// The largest index not above `index` that falls on a character boundary of `text`.
fn floor_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The first half of `text`, cut on a character boundary and never empty when `text` is not.
fn first_half(text: &str) -> &str {
    let half = floor_boundary(text, text.len() / 2);
    if half == 0 {
        text.chars().next().map_or("", |c| &text[..c.len_utf8()])
    } else {
        &text[..half]
    }
}

/// Splits `text` into about three pieces (more for long text), on character boundaries.
/// Empty text yields one empty piece, since a block always gets at least one delta.
fn chunks(text: &str) -> impl Iterator<Item = &str> {
    let size = text.len().div_ceil(3).clamp(1, MAX_CHUNK_BYTES);
    let mut rest = text;
    let mut first = true;
    std::iter::from_fn(move || {
        if rest.is_empty() && !first {
            return None;
        }
        first = false;
        let mut end = floor_boundary(rest, size.min(rest.len()));
        if end == 0 {
            end = rest.chars().next().map_or(0, char::len_utf8);
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Block;

    fn reply(step: &Step) -> Reply {
        let mut counter = 0;
        Reply::from_step(step, "msg_mock_1".into(), "m".into(), 10, || {
            counter += 1;
            format!("toolu_mock_{counter}")
        })
    }

    #[test]
    fn chunks_cover_the_text_on_char_boundaries() {
        for text in ["", "a", "hello world", "héllo wörld ✓✓✓", &"x".repeat(20_000)] {
            let pieces: Vec<&str> = chunks(text).collect();
            assert_eq!(pieces.concat(), text);
            assert!(!pieces.is_empty());
            assert!(pieces.iter().all(|piece| piece.len() <= MAX_CHUNK_BYTES));
        }
        assert_eq!(chunks("abcdefghi").collect::<Vec<_>>(), vec!["abc", "def", "ghi"]);
    }

    #[test]
    fn stream_frames_follow_the_api_sequence() {
        let step = Step::new(vec![
            Block::thinking("think"),
            Block::text("hi"),
            Block::tool_use("Bash", json!({"command": "ls"})),
        ]);
        let frames = reply(&step).stream_frames();
        let events: Vec<&str> = frames.iter().map(|frame| frame.event).collect();
        assert_eq!(events.first(), Some(&"message_start"));
        assert_eq!(events[1], "ping");
        assert_eq!(events.last(), Some(&"message_stop"));
        assert_eq!(events[events.len() - 2], "message_delta");
        assert_eq!(frames[frames.len() - 2].data["delta"]["stop_reason"], "tool_use");
        assert_eq!(events.iter().filter(|event| **event == "content_block_start").count(), 3);
        let signature = frames
            .iter()
            .find(|frame| frame.data["delta"]["type"] == "signature_delta")
            .map(|frame| frame.data["delta"]["signature"].clone());
        assert_eq!(signature, Some(json!(MOCK_SIGNATURE)));
        let json_text: String = frames
            .iter()
            .filter(|frame| frame.data["delta"]["type"] == "input_json_delta")
            .map(|frame| frame.data["delta"]["partial_json"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&json_text).unwrap(), json!({"command": "ls"}));
    }

    #[test]
    fn message_json_has_ids_and_stop_reason() {
        let step = Step::new(vec![Block::text("a"), Block::tool_use("Bash", json!({}))]);
        let message = reply(&step).message_json();
        assert_eq!(message["id"], "msg_mock_1");
        assert_eq!(message["content"][1]["id"], "toolu_mock_1");
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(message["usage"]["input_tokens"], 10);
    }

    #[test]
    fn truncated_frames_stop_mid_text() {
        let frames = reply(&Step::text("abcdefgh")).truncated_frames();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].data["delta"]["text"], "abcd");
        assert!(frames.iter().all(|frame| frame.event != "message_stop"));
        assert_eq!(first_half("é"), "é");
    }
}
