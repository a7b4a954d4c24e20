//! From CLI output to chat events (DESIGN §4).
//!
//! One CLI line becomes zero or more events: an assistant message carries content blocks
//! (thinking, text, tool calls), a user message carries tool results, and `system` lines
//! carry session facts. Lines that only matter to the driver (`result`, control messages) map
//! to nothing here; the turn loop handles them.

use agentbox_protocol::cli::{
    AssistantMessage, CliOutput, ContentBlock, ResultMessage, SystemMessage, UserContent,
    UserMessage, tool_result_text,
};
use agentbox_protocol::event::{EventPayload, SystemEvent, ToolCall, ToolError, ToolResult, Usage};
use serde_json::Value;

use crate::turn::AgentEvent;

/// System subtypes worth showing; others (token estimates and the like) are dropped.
const SHOWN_SYSTEM_SUBTYPES: [&str; 4] = ["init", "api_retry", "status", "compact_boundary"];

/// The events one CLI line stands for.
pub fn map_output(output: &CliOutput) -> Vec<AgentEvent> {
    match output {
        CliOutput::Assistant(message) => map_assistant(message),
        CliOutput::User(message) => map_user(message),
        CliOutput::System(message) => map_system(message).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn map_assistant(message: &AssistantMessage) -> Vec<AgentEvent> {
    let parent = &message.parent_tool_use_id;
    if let Some(kind) = &message.error {
        // The CLI reports a failed model call as a synthetic assistant message: show it as
        // an error, not as something the model said.
        let text: Vec<&str> = message
            .message
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let text =
            if text.is_empty() { format!("model API error: {kind}") } else { text.join("\n") };
        return vec![AgentEvent::new(EventPayload::error(text, "model_api_error"), parent)];
    }
    message
        .message
        .content
        .iter()
        .filter_map(|block| {
            let payload = match block {
                ContentBlock::Text { text } if !text.is_empty() => {
                    EventPayload::AssistantText { text: text.clone() }
                }
                ContentBlock::Thinking { thinking } if !thinking.is_empty() => {
                    EventPayload::AssistantThinking { thinking: thinking.clone() }
                }
                ContentBlock::ToolUse { id, name, input } => EventPayload::ToolStarted {
                    tool: ToolCall { id: id.clone(), name: name.clone(), input: input.clone() },
                },
                _ => return None,
            };
            Some(AgentEvent::new(payload, parent))
        })
        .collect()
}

fn map_user(message: &UserMessage) -> Vec<AgentEvent> {
    let parent = &message.parent_tool_use_id;
    let UserContent::Blocks(blocks) = &message.message.content else {
        // A plain string is the CLI echoing a prompt back; the prompt is already an event.
        return Vec::new();
    };
    blocks
        .iter()
        .filter_map(|block| {
            let payload = match block {
                ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                    let text = tool_result_text(content);
                    if is_error.unwrap_or(false) {
                        EventPayload::ToolFailed {
                            tool: ToolError { id: tool_use_id.clone(), error: text },
                        }
                    } else {
                        EventPayload::ToolCompleted {
                            tool: ToolResult { id: tool_use_id.clone(), result: text },
                        }
                    }
                }
                // "[Request interrupted by user ...]" and similar notices from the CLI.
                ContentBlock::Text { text } => {
                    EventPayload::System(SystemEvent::new("notice").with("text", text.clone()))
                }
                _ => return None,
            };
            Some(AgentEvent::new(payload, parent))
        })
        .collect()
}

fn map_system(message: &SystemMessage) -> Option<AgentEvent> {
    if !SHOWN_SYSTEM_SUBTYPES.contains(&message.subtype.as_str()) {
        return None;
    }
    // With partial messages the CLI says "requesting" before every model call: noise, and
    // the text that follows shows the same thing better.
    if message.subtype == "status"
        && message.rest.get("status").and_then(Value::as_str) == Some("requesting")
    {
        return None;
    }
    let mut event = SystemEvent::new(&message.subtype);
    let keep: &[&str] = match message.subtype.as_str() {
        "init" => {
            // What the CLI loaded: its tools, MCP servers (each with its status), slash
            // commands, agents and skills, the user's own among them.
            &[
                "model",
                "cwd",
                "permissionMode",
                "claude_code_version",
                "tools",
                "mcp_servers",
                "slash_commands",
                "agents",
                "skills",
            ]
        }
        "api_retry" => &["attempt", "max_retries", "retry_delay_ms", "error_status", "error"],
        "status" => &["status", "permissionMode"],
        _ => &[],
    };
    for key in keep {
        if let Some(value) = message.rest.get(*key) {
            event = event.with(key, value.clone());
        }
    }
    if let Some(id) = &message.session_id {
        event = event.with("session_id", id.clone());
    }
    Some(AgentEvent::new(EventPayload::System(event), &None))
}

/// Token counts and cost from a `result` line.
pub fn usage_of(result: &ResultMessage) -> Usage {
    let count = |key: &str| {
        result.usage.as_ref().and_then(|u| u.get(key)).and_then(Value::as_u64).unwrap_or_default()
    };
    Usage {
        input_tokens: count("input_tokens"),
        output_tokens: count("output_tokens"),
        cache_read_input_tokens: count("cache_read_input_tokens"),
        cache_creation_input_tokens: count("cache_creation_input_tokens"),
        total_cost_usd: result.total_cost_usd,
        duration_ms: result.duration_ms,
        num_turns: result.num_turns,
        context_tokens: None,
        context_window: None,
    }
}
