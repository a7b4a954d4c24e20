//! Reading a Messages API conversation: which user prompt is being answered, and how far along.
//!
//! The Claude Code CLI wraps the user's words in extra blocks: its first user message carries
//! several `<system-reminder>` text blocks before the prompt, and after a tool runs it sends
//! the whole conversation again, with a user message made of `tool_result` blocks. The prompt
//! is therefore the latest user message with real text in it, and the number of assistant
//! replies after that message says which step of the script comes next.

use serde_json::Value;

/// The prompt a request is about and the script step that answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptPosition {
    /// The prompt text: the last non-reminder text block of the prompt message. After a failed
    /// or interrupted turn the CLI merges the next prompt into the same user message as the
    /// earlier one, so only the last text is the prompt being answered.
    pub prompt: String,
    /// The index of the prompt message in `messages`.
    pub message_index: usize,
    /// How many assistant replies follow the prompt message, which is the step to answer with.
    pub step: usize,
}

/// Whether a text block is one of the CLI's injected `<system-reminder>` blocks.
pub fn is_system_reminder(text: &str) -> bool {
    text.trim_start().starts_with("<system-reminder>")
}

/// Every text of a message's content, whether the content is a plain string or a block list.
fn texts(message: &Value) -> Vec<&str> {
    match message.get("content") {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}

fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

/// The user's own texts in a message: every text that is not a system reminder.
pub fn user_texts_of(message: &Value) -> Vec<&str> {
    if role(message) != Some("user") {
        return Vec::new();
    }
    texts(message).into_iter().filter(|text| !is_system_reminder(text)).collect()
}

/// Every `tool_result` block of the user messages, in order.
pub fn tool_results_of(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .filter(|message| role(message) == Some("user"))
        .filter_map(|message| message.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))
        .cloned()
        .collect()
}

/// Counts the assistant replies in `messages`, treating consecutive assistant messages as one
/// reply, because a client may split one streamed reply into several messages.
fn assistant_replies(messages: &[Value]) -> usize {
    let mut replies = 0;
    let mut previous_was_assistant = false;
    for message in messages {
        let is_assistant = role(message) == Some("assistant");
        if is_assistant && !previous_was_assistant {
            replies += 1;
        }
        previous_was_assistant = is_assistant;
    }
    replies
}

/// Finds the prompt a conversation is waiting on, or `None` when no user message has text
/// of its own.
pub fn locate_prompt(messages: &[Value]) -> Option<PromptPosition> {
    let (message_index, texts) = messages
        .iter()
        .enumerate()
        .rev()
        .map(|(index, message)| (index, user_texts_of(message)))
        .find(|(_, texts)| !texts.is_empty())?;
    Some(PromptPosition {
        prompt: texts.last()?.to_string(),
        message_index,
        step: assistant_replies(&messages[message_index + 1..]),
    })
}

/// The step to answer with when no prompt can be found: one step per assistant reply so far.
pub fn step_without_prompt(messages: &[Value]) -> usize {
    assistant_replies(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cli_first_message(prompt: &str) -> Value {
        json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nskills\n</system-reminder>"},
            {"type": "text", "text": "<system-reminder>\ncontext\n</system-reminder>"},
            {"type": "text", "text": prompt},
        ]})
    }

    #[test]
    fn first_request_is_step_zero() {
        let messages = vec![cli_first_message("[[think]] hi")];
        let position = locate_prompt(&messages).unwrap();
        assert_eq!(position.prompt, "[[think]] hi");
        assert_eq!(position.message_index, 0);
        assert_eq!(position.step, 0);
    }

    #[test]
    fn tool_results_advance_the_step() {
        let messages = vec![
            cli_first_message("[[steps:2]] go"),
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]}),
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "step-1"}]}),
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "Bash", "input": {}}]}),
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t2", "content": "step-2"},
                {"type": "text", "text": "<system-reminder>todo list</system-reminder>"},
            ]}),
        ];
        let position = locate_prompt(&messages).unwrap();
        assert_eq!(position.prompt, "[[steps:2]] go");
        assert_eq!(position.step, 2);
        assert_eq!(tool_results_of(&messages).len(), 2);
    }

    #[test]
    fn a_new_turn_restarts_at_step_zero() {
        let messages = vec![
            json!({"role": "user", "content": "first"}),
            json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]}),
            json!({"role": "user", "content": [{"type": "text", "text": "second"}]}),
        ];
        let position = locate_prompt(&messages).unwrap();
        assert_eq!(position.prompt, "second");
        assert_eq!(position.message_index, 2);
        assert_eq!(position.step, 0);
    }

    #[test]
    fn consecutive_assistant_messages_count_once() {
        let messages = vec![
            json!({"role": "user", "content": "go"}),
            json!({"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}),
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]}),
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": ""}]}),
        ];
        assert_eq!(locate_prompt(&messages).unwrap().step, 1);
    }

    #[test]
    fn a_prompt_merged_after_a_failed_turn_is_the_last_text() {
        let messages = vec![json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
            {"type": "text", "text": "[[error:500]] this failed"},
            {"type": "text", "text": "[[text:fine]] again"},
        ]})];
        assert_eq!(locate_prompt(&messages).unwrap().prompt, "[[text:fine]] again");
    }

    #[test]
    fn reminders_alone_are_not_a_prompt() {
        let messages = vec![json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>only this</system-reminder>"}
        ]})];
        assert_eq!(locate_prompt(&messages), None);
    }
}
