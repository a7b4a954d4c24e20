//! One user turn: write the prompt, turn every CLI line into events, answer the CLI's
//! permission questions, honour an interrupt, and end on the CLI's `result` or its exit.

use std::time::Duration;

use agentbox_protocol::cli::{CanUseTool, CliInput, CliOutput, ControlRequest, ControlResponse};
use agentbox_protocol::event::{EventPayload, MessageStatus, Usage};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::AgentError;
use crate::mapper::{map_output, usage_of};
use crate::session::{AgentSession, SessionOutput};

/// How much of stderr goes into the error event of a crashed CLI.
const STDERR_IN_ERROR: usize = 2000;

/// A chat event produced by the agent, before it has a place in the chat's log.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentEvent {
    pub payload: EventPayload,
    pub parent_tool_use_id: Option<String>,
}

impl AgentEvent {
    pub fn new(payload: EventPayload, parent_tool_use_id: &Option<String>) -> Self {
        Self { payload, parent_tool_use_id: parent_tool_use_id.clone() }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where a turn's events go (the durable log and the bus, in the server).
#[async_trait]
pub trait EventSink: Send {
    async fn emit(&mut self, event: AgentEvent) -> Result<(), SinkError>;
}

/// The answer to one `can_use_tool` request.
#[derive(Clone, Debug, PartialEq)]
pub enum PermissionDecision {
    /// Run the tool, with this input (the original input when `None`).
    Allow { updated_input: Option<Value> },
    /// Do not run it; the model is told `message`.
    Deny { message: String },
}

/// Decides the CLI's permission questions.
#[async_trait]
pub trait PermissionPolicy: Send + Sync {
    async fn decide(&self, request_id: &str, request: &CanUseTool) -> PermissionDecision;
}

/// Allows every tool call the CLI asks about (the CLI's own mode still applies).
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

#[async_trait]
impl PermissionPolicy for AllowAll {
    async fn decide(&self, _request_id: &str, _request: &CanUseTool) -> PermissionDecision {
        PermissionDecision::Allow { updated_input: None }
    }
}

/// How a turn ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnOutcome {
    pub status: MessageStatus,
    /// The CLI session the turn ran in; the next turn resumes it.
    pub session_id: Option<String>,
    pub usage: Option<Usage>,
    pub total_cost_usd: Option<f64>,
    /// The CLI could not find the session it was asked to resume and did nothing; no event
    /// was emitted for the attempt, so the caller can start a new session and try again.
    pub resume_failed: bool,
}

/// What the CLI says when `--resume` names a session it does not have.
const NO_SUCH_SESSION: &str = "No conversation found with session ID";

/// Run one turn on `session`. Cancelling `interrupt` sends the CLI an `interrupt` control
/// request; if the CLI has not finished the turn `grace` later, its process group is killed.
/// CLI failures (a crash, a model API error) are events and a `failed` outcome, not `Err`:
/// `Err` means the events could not be recorded.
pub async fn run_turn(
    session: &mut AgentSession,
    prompt: &str,
    policy: &dyn PermissionPolicy,
    sink: &mut dyn EventSink,
    interrupt: &CancellationToken,
    grace: Duration,
) -> Result<TurnOutcome, AgentError> {
    let mut turn =
        Turn { sink, interrupted: false, error_shown: false, saw_init: false, session_id: None };
    // A dead writer shows up below as the process's exit, which explains more than this would.
    let _ = session.send(CliInput::user_text(prompt)).await;
    let mut kill_at: Option<tokio::time::Instant> = None;
    loop {
        let output = tokio::select! {
            () = interrupt.cancelled(), if !turn.interrupted => {
                turn.interrupted = true;
                kill_at = Some(tokio::time::Instant::now() + grace);
                if session.control(ControlRequest::Interrupt).await.is_err() {
                    session.kill();
                }
                continue;
            }
            () = sleep_until(kill_at) => {
                tracing::info!("the CLI did not stop within the grace period; killing it");
                session.kill();
                kill_at = None;
                continue;
            }
            output = session.next() => output,
        };
        match output {
            Some(SessionOutput::Message(message)) => {
                if let Some(outcome) = turn.handle(session, policy, message).await? {
                    return Ok(outcome);
                }
            }
            Some(SessionOutput::Noise(text)) => {
                tracing::debug!(line = %truncate(&text, 200), "non-protocol output from the CLI");
            }
            Some(SessionOutput::Exited { status, stderr }) => {
                return turn.exited(status, &stderr).await;
            }
            None => return turn.exited(None, &session.stderr_tail().await).await,
        }
    }
}

struct Turn<'a> {
    sink: &'a mut dyn EventSink,
    interrupted: bool,
    error_shown: bool,
    saw_init: bool,
    session_id: Option<String>,
}

impl Turn<'_> {
    async fn emit(&mut self, payload: EventPayload) -> Result<(), AgentError> {
        self.emit_event(AgentEvent { payload, parent_tool_use_id: None }).await
    }

    async fn emit_event(&mut self, event: AgentEvent) -> Result<(), AgentError> {
        self.error_shown |= matches!(event.payload, EventPayload::Error { .. });
        Ok(self.sink.emit(event).await?)
    }

    /// Handle one protocol line; `Some` once the turn is over.
    async fn handle(
        &mut self,
        session: &AgentSession,
        policy: &dyn PermissionPolicy,
        message: CliOutput,
    ) -> Result<Option<TurnOutcome>, AgentError> {
        for event in map_output(&message) {
            self.emit_event(event).await?;
        }
        match message {
            CliOutput::System(system) => {
                self.saw_init |= system.subtype == "init";
                if let Some(id) = system.session_id {
                    self.session_id = Some(id);
                }
            }
            CliOutput::Result(result) => {
                if !self.saw_init && result.errors.iter().any(|e| e.contains(NO_SUCH_SESSION)) {
                    return Ok(Some(TurnOutcome {
                        status: MessageStatus::Failed,
                        session_id: None,
                        usage: None,
                        total_cost_usd: None,
                        resume_failed: true,
                    }));
                }
                let status = if self.interrupted {
                    MessageStatus::Interrupted
                } else if result.is_error {
                    MessageStatus::Failed
                } else {
                    MessageStatus::Completed
                };
                if status == MessageStatus::Failed && !self.error_shown {
                    let text = result
                        .result
                        .clone()
                        .filter(|text| !text.is_empty())
                        .or_else(|| (!result.errors.is_empty()).then(|| result.errors.join("; ")))
                        .unwrap_or_else(|| format!("the turn failed ({})", result.subtype));
                    self.emit(EventPayload::error(text, "turn_failed")).await?;
                }
                let usage = usage_of(&result);
                self.emit(EventPayload::Usage(usage.clone())).await?;
                return Ok(Some(TurnOutcome {
                    status,
                    session_id: result.session_id.or_else(|| self.session_id.take()),
                    total_cost_usd: result.total_cost_usd,
                    usage: Some(usage),
                    resume_failed: false,
                }));
            }
            CliOutput::ControlRequest(request) => {
                let answer = match request.can_use_tool() {
                    Some(question) => {
                        let decision = policy.decide(&request.request_id, &question).await;
                        CliInput::success(&request.request_id, decision_json(decision, &question))
                    }
                    None => {
                        let subtype = request.subtype().unwrap_or("unknown").to_owned();
                        tracing::warn!(%subtype, "unsupported control request from the CLI");
                        CliInput::failure(
                            &request.request_id,
                            format!("agentbox does not support control requests of type {subtype}"),
                        )
                    }
                };
                // If the CLI is gone, its exit arrives next and ends the turn.
                let _ = session.send(answer).await;
            }
            CliOutput::ControlResponse(response) => {
                if let ControlResponse::Error { request_id, error } = &response.response {
                    tracing::warn!(%request_id, %error, "the CLI refused a control request");
                }
            }
            _ => {}
        }
        Ok(None)
    }

    async fn exited(
        &mut self,
        status: Option<agentbox_sandbox::ExitStatus>,
        stderr: &str,
    ) -> Result<TurnOutcome, AgentError> {
        let status_text = status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
        let outcome_status = if self.interrupted {
            MessageStatus::Interrupted
        } else {
            let stderr = stderr.trim();
            let tail = &stderr
                [floor_char_boundary(stderr, stderr.len().saturating_sub(STDERR_IN_ERROR))..];
            let message = if tail.is_empty() {
                format!(
                    "The Claude Code CLI exited unexpectedly ({status_text}) before finishing the turn."
                )
            } else {
                format!(
                    "The Claude Code CLI exited unexpectedly ({status_text}) before finishing the turn: {tail}"
                )
            };
            self.emit(EventPayload::error(message, "cli_exited")).await?;
            MessageStatus::Failed
        };
        Ok(TurnOutcome {
            status: outcome_status,
            session_id: self.session_id.take(),
            usage: None,
            total_cost_usd: None,
            resume_failed: false,
        })
    }
}

fn decision_json(decision: PermissionDecision, question: &CanUseTool) -> Value {
    match decision {
        PermissionDecision::Allow { updated_input } => json!({
            "behavior": "allow",
            "updatedInput": updated_input.unwrap_or_else(|| question.input.clone()),
        }),
        PermissionDecision::Deny { message } => json!({"behavior": "deny", "message": message}),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn truncate(s: &str, max: usize) -> &str {
    &s[..floor_char_boundary(s, max.min(s.len()))]
}
