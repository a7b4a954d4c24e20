//! The record of every request the mock received, for tests to assert on.
//!
//! Tests check what the client sent (the model, the system prompt, the tool results) as much
//! as what it did with the replies, so every request is recorded before it is answered. The
//! log also keeps the per-prompt attempt counters behind `[[error:STATUS:N]]` and
//! `[[disconnect]]`, so clearing it starts a test from a clean slate.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conversation::{locate_prompt, tool_results_of, user_texts_of};

/// How many requests the log keeps by default; older ones are dropped first. A CLI request
/// carries the whole system prompt and tool list, so an unbounded log would grow without end
/// in a long demo session.
pub const DEFAULT_RECORD_LIMIT: usize = 1000;

/// One request as the mock received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Arrival number, starting at 1; it keeps counting across [`RequestLog::clear`].
    pub seq: u64,
    /// The HTTP method, for example `POST`.
    pub method: String,
    /// The path with its query, for example `/v1/messages?beta=true`.
    pub path: String,
    /// Every header as a lowercase name and its value, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `null` when it was empty or not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The `model` field of the body.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// The system prompt: a plain string, or every text block joined with newlines.
    pub fn system_text(&self) -> String {
        match self.body.get("system") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(blocks)) => blocks
                .iter()
                .filter_map(|block| block.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }

    /// The `messages` of the body; empty when there are none.
    pub fn messages(&self) -> &[Value] {
        self.body.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The latest user prompt: the text of the latest user message that has text other than
    /// `<system-reminder>` blocks.
    pub fn prompt(&self) -> Option<String> {
        locate_prompt(self.messages()).map(|position| position.prompt)
    }

    /// Every user text that is not a system reminder, in conversation order.
    pub fn user_texts(&self) -> Vec<String> {
        self.messages()
            .iter()
            .flat_map(|message| user_texts_of(message).into_iter().map(str::to_owned))
            .collect()
    }

    /// Every `tool_result` block the client sent back, in conversation order.
    pub fn tool_results(&self) -> Vec<Value> {
        tool_results_of(self.messages())
    }

    /// The value of a header, looked up without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The credential the request was made with: its `x-api-key` (an API key), else the
    /// token of its `Authorization: Bearer` header (an auth or OAuth token).
    pub fn credential(&self) -> Option<&str> {
        self.header("x-api-key").or_else(|| {
            self.header("authorization").and_then(|value| {
                value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
            })
        })
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(self.path.as_str(), |(path, _)| path)
    }

    /// Whether this is a Messages API call (`POST /v1/messages`, not `count_tokens`).
    pub fn is_message_request(&self) -> bool {
        self.method == "POST" && self.path_only() == "/v1/messages"
    }
}

/// A shared handle on the requests a mock server received.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Debug)]
struct LogInner {
    next_seq: u64,
    limit: usize,
    requests: VecDeque<RecordedRequest>,
    /// How many times each (prompt, step) with a scripted error or disconnect was served.
    attempts: HashMap<(String, usize), u32>,
}

impl Default for LogInner {
    fn default() -> Self {
        Self {
            next_seq: 1,
            limit: DEFAULT_RECORD_LIMIT,
            requests: VecDeque::new(),
            attempts: HashMap::new(),
        }
    }
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        // A panic while holding the lock cannot leave the log half-updated in a way that
        // matters to a test, so a poisoned lock is still used.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot of the recorded requests, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    /// Only the Messages API calls (`POST /v1/messages`), in arrival order.
    pub fn message_requests(&self) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|request| request.is_message_request())
            .cloned()
            .collect()
    }

    /// Forgets every recorded request and every per-prompt attempt count, so the next
    /// `[[error:STATUS:N]]` or `[[disconnect]]` prompt behaves as if it were new.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.requests.clear();
        inner.attempts.clear();
    }

    /// Keeps at most `limit` requests from now on, dropping the oldest first.
    pub fn set_limit(&self, limit: usize) {
        let mut inner = self.lock();
        inner.limit = limit;
        while inner.requests.len() > limit {
            inner.requests.pop_front();
        }
    }

    /// Records one request and returns it with its sequence number.
    pub(crate) fn record(
        &self,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Value,
    ) -> RecordedRequest {
        let mut inner = self.lock();
        let request = RecordedRequest { seq: inner.next_seq, method, path, headers, body };
        inner.next_seq += 1;
        if inner.limit > 0 {
            while inner.requests.len() >= inner.limit {
                inner.requests.pop_front();
            }
            inner.requests.push_back(request.clone());
        }
        request
    }

    /// Counts one more request for `step` of `prompt` and returns how many came before it.
    pub(crate) fn next_attempt(&self, prompt: &str, step: usize) -> u32 {
        let mut inner = self.lock();
        let count = inner.attempts.entry((prompt.to_owned(), step)).or_insert(0);
        let before = *count;
        *count = count.saturating_add(1);
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> RecordedRequest {
        RecordedRequest {
            seq: 1,
            method: "POST".into(),
            path: "/v1/messages?beta=true".into(),
            headers: vec![("x-api-key".into(), "k".into())],
            body,
        }
    }

    #[test]
    fn the_credential_is_the_api_key_or_the_bearer_token() {
        let mut with_key = request(json!({}));
        assert_eq!(with_key.credential(), Some("k"));
        with_key.headers = vec![("Authorization".into(), "Bearer tok".into())];
        assert_eq!(with_key.credential(), Some("tok"));
        with_key.headers.clear();
        assert_eq!(with_key.credential(), None);
    }

    #[test]
    fn accessors_read_the_body() {
        let request = request(json!({
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>r</system-reminder>"},
                    {"type": "text", "text": "first"},
                ]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "out"}]},
            ],
        }));
        assert_eq!(request.model(), Some("claude-sonnet-4-5"));
        assert_eq!(request.system_text(), "one\ntwo");
        assert_eq!(request.messages().len(), 3);
        assert_eq!(request.prompt().as_deref(), Some("first"));
        assert_eq!(request.user_texts(), vec!["first".to_owned()]);
        assert_eq!(request.tool_results()[0]["content"], "out");
        assert_eq!(request.header("X-API-Key"), Some("k"));
        assert!(request.is_message_request());
    }

    #[test]
    fn log_keeps_order_limit_and_counts() {
        let log = RequestLog::default();
        for _ in 0..3 {
            log.record("POST".into(), "/v1/messages".into(), Vec::new(), Value::Null);
        }
        log.record("POST".into(), "/v1/messages/count_tokens".into(), Vec::new(), Value::Null);
        let seqs: Vec<u64> = log.requests().iter().map(|request| request.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert_eq!(log.message_requests().len(), 3);

        log.set_limit(2);
        let seqs: Vec<u64> = log.requests().iter().map(|request| request.seq).collect();
        assert_eq!(seqs, vec![3, 4]);

        assert_eq!(log.next_attempt("p", 0), 0);
        assert_eq!(log.next_attempt("p", 0), 1);
        assert_eq!(log.next_attempt("p", 1), 0);
        log.clear();
        assert!(log.requests().is_empty());
        assert_eq!(log.next_attempt("p", 0), 0);
        let next = log.record("GET".into(), "/".into(), Vec::new(), Value::Null);
        assert_eq!(next.seq, 5);
    }
}
