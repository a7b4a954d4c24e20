//! One user turn: write the prompt, turn every CLI line into events, answer the CLI's
//! permission questions, pass on live controls, honour an interrupt, and end on the CLI's
//! `result` or its exit.
//!
//! A permission question may wait for a person for minutes. It never blocks the turn: the
//! loop keeps reading the CLI, forwarding controls and watching for an interrupt while
//! questions are open, answers each one when its answer arrives, denies it when nobody
//! answered within the permission timeout, and closes what is still open when the turn ends.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use agentbox_protocol::cli::{
    CanUseTool, CliInput, CliOutput, ContentBlock, ControlRequest, ControlResponse,
};
use agentbox_protocol::event::{
    EventPayload, MessageStatus, PermissionRequest, PermissionResolution, SystemEvent, Usage,
};
use agentbox_protocol::permission::ResolvedBy;
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use agentbox_sandbox::SandboxLimit;

use crate::AgentError;
use crate::figures;
use crate::mapper::{map_output, usage_of};
use crate::session::{AgentSession, SessionOutput};

/// How much of stderr goes into the error event of a crashed CLI.
const STDERR_IN_ERROR: usize = 2000;
/// Tool inputs remembered per turn, to find the model's input of a tool the CLI asks about.
const REMEMBERED_TOOL_INPUTS: usize = 256;

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

    /// A piece of the assistant's text as the model writes it, before the `assistant_text`
    /// event that carries the whole block. Best effort: nothing is stored, nothing can fail.
    fn text_delta(&mut self, text: &str) {
        let _ = text;
    }

    /// A piece of the model's thinking as it comes, before the `assistant_thinking` event of
    /// the block. Best effort, like [`EventSink::text_delta`].
    fn thinking_delta(&mut self, text: &str) {
        let _ = text;
    }
}

/// The answer to one `can_use_tool` request.
#[derive(Clone, Debug, PartialEq)]
pub enum PermissionDecision {
    /// Run the tool, with this input (the original input when `None`).
    Allow { updated_input: Option<Value> },
    /// Do not run it; the model is told `message`.
    Deny { message: String },
}

/// A `can_use_tool` request with what the turn knows about it.
#[derive(Clone, Copy, Debug)]
pub struct ToolRequest<'a> {
    /// The CLI's id of the request, unique within the session.
    pub request_id: &'a str,
    pub request: &'a CanUseTool,
    /// The input the model gave the tool in its `tool_use` block. The CLI's request may carry
    /// less: `ExitPlanMode` arrives with an empty input while the plan is in the block.
    pub model_input: Option<&'a Value>,
}

/// What a policy makes of a request.
#[derive(Debug)]
pub enum Verdict {
    /// Answer the CLI at once.
    Decide(PermissionDecision),
    /// Ask a person: the turn records `request` as a `permission_request` event (filling in
    /// `expires_at`) and waits for `answer`, or for the permission timeout.
    Ask { request: Box<PermissionRequest>, answer: oneshot::Receiver<PersonAnswer> },
}

/// A person's answer to a request, or one given on their behalf (by a mode change).
#[derive(Debug)]
pub struct PersonAnswer {
    pub decision: PermissionDecision,
    /// What the `permission_resolved` event says; `approved` must match `decision`.
    pub resolution: PermissionResolution,
    /// Control requests for the CLI once it has the answer, such as a mode change after an
    /// approved plan.
    pub then: Vec<ControlRequest>,
}

/// Decides the CLI's permission questions, at once or by asking a person.
#[async_trait]
pub trait PermissionPolicy: Send + Sync {
    async fn decide(&self, request: ToolRequest<'_>) -> Verdict;

    /// The turn gives up waiting for the answer to a request it was told to ask about (the
    /// request timed out, the CLI withdrew it, or the turn ended). Returns `false` when an
    /// answer has already been given; the turn then takes that answer instead.
    fn withdraw(&self, request_id: &str) -> bool {
        let _ = request_id;
        true
    }
}

/// Allows every tool call the CLI asks about (the CLI's own mode still applies).
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

#[async_trait]
impl PermissionPolicy for AllowAll {
    async fn decide(&self, _request: ToolRequest<'_>) -> Verdict {
        Verdict::Decide(PermissionDecision::Allow { updated_input: None })
    }
}

/// How a turn runs.
#[derive(Clone, Copy, Debug)]
pub struct TurnOptions {
    /// How long an interrupted CLI gets to finish the turn before it is killed.
    pub grace: Duration,
    /// How long a permission request waits for a person before it is denied.
    pub permission_timeout: Duration,
}

impl Default for TurnOptions {
    fn default() -> Self {
        Self { grace: Duration::from_secs(5), permission_timeout: Duration::from_secs(600) }
    }
}

/// What can reach a running turn from outside: an interrupt, and control requests for the
/// CLI (`set_model`, `set_permission_mode`, `set_max_thinking_tokens`).
#[derive(Debug)]
pub struct TurnControls {
    pub interrupt: CancellationToken,
    pub commands: mpsc::UnboundedReceiver<ControlRequest>,
}

impl TurnControls {
    /// Controls and the sender that feeds them commands.
    pub fn new(interrupt: CancellationToken) -> (Self, mpsc::UnboundedSender<ControlRequest>) {
        let (sender, commands) = mpsc::unbounded_channel();
        (Self { interrupt, commands }, sender)
    }

    /// Controls that only ever interrupt.
    pub fn interrupt_only(interrupt: CancellationToken) -> Self {
        Self::new(interrupt).0
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
    /// The CLI refused a control request of ours during the turn, so its settings may not be
    /// what the caller thinks they are.
    pub control_refused: bool,
}

/// What the CLI says when `--resume` names a session it does not have.
const NO_SUCH_SESSION: &str = "No conversation found with session ID";

/// Words in a tool's output that mean a command was refused a new process because the
/// sandbox is at its process limit: the line of agentbox's commands' shell when it could
/// not start the command at all, and bash's report of a fork refused with `EAGAIN` (which
/// fork returns only at a process limit). Other programs word it their own way and are not
/// guessed at.
const PROCESS_LIMIT_SIGNS: [&str; 3] = [
    agentbox_sandbox::local::shell::PROCESS_LIMIT_NOTICE,
    "fork: retry: Resource temporarily unavailable",
    "fork: Resource temporarily unavailable",
];

/// The notice a turn gets (once) when one of its commands hit the process limit.
pub const PROCESS_LIMIT_TEXT: &str = "A command reached the sandbox's process limit, so it could     not start every process it wanted; the agent goes on. If commands keep failing, stop what     earlier commands left running, or restart the sandbox from the workspace panel (that stops     running commands, servers and terminals; files are kept).";

/// Whether a tool's output shows the sandbox's process limit was hit.
pub fn hit_process_limit(output: &str) -> bool {
    PROCESS_LIMIT_SIGNS.iter().any(|sign| output.contains(sign))
}

/// Run one turn on `session`. Cancelling `controls.interrupt` sends the CLI an `interrupt`
/// control request; if the CLI has not finished the turn `options.grace` later, its process
/// group is killed. CLI failures (a crash, a model API error) are events and a `failed`
/// outcome, not `Err`: `Err` means the events could not be recorded.
pub async fn run_turn(
    session: &mut AgentSession,
    prompt: &str,
    policy: &dyn PermissionPolicy,
    sink: &mut dyn EventSink,
    controls: &mut TurnControls,
    options: &TurnOptions,
) -> Result<TurnOutcome, AgentError> {
    let mut turn = Turn {
        sink,
        policy,
        options: *options,
        interrupted: false,
        error_shown: false,
        saw_init: false,
        session_id: None,
        pending: Vec::new(),
        tool_inputs: Vec::new(),
        control_refused: false,
        controls_sent: Vec::new(),
        process_limit_told: false,
        context_tokens: None,
    };
    // A dead writer shows up below as the process's exit, which explains more than this would.
    let _ = session.send(CliInput::user_text(prompt)).await;
    let mut kill_at: Option<Instant> = None;
    let mut commands_open = true;
    loop {
        let next_deadline = turn.next_deadline();
        let wake = tokio::select! {
            () = controls.interrupt.cancelled(), if !turn.interrupted => Wake::Interrupt,
            () = sleep_until(kill_at) => Wake::Kill,
            command = controls.commands.recv(), if commands_open => Wake::Command(command),
            (index, answer) = next_answer(&mut turn.pending) => Wake::Answer(index, answer),
            () = sleep_until(next_deadline) => Wake::Deadline,
            output = session.next() => Wake::Output(output),
        };
        match wake {
            Wake::Interrupt => {
                turn.interrupted = true;
                kill_at = Some(Instant::now() + options.grace);
                if session.control(ControlRequest::Interrupt).await.is_err() {
                    session.kill();
                }
            }
            Wake::Kill => {
                tracing::info!("the CLI did not stop within the grace period; killing it");
                session.kill();
                kill_at = None;
            }
            Wake::Command(Some(command)) => turn.control(session, command).await,
            Wake::Command(None) => commands_open = false,
            Wake::Answer(index, answer) => {
                let pending = turn.pending.remove(index);
                turn.answered(session, pending, answer).await?;
            }
            Wake::Deadline => turn.expire(session).await?,
            Wake::Output(Some(SessionOutput::Message(message))) => {
                if let Some(outcome) = turn.handle(session, message).await? {
                    turn.close_pending().await?;
                    return Ok(outcome);
                }
            }
            Wake::Output(Some(SessionOutput::Noise(text))) => {
                tracing::debug!(line = %truncate(&text, 200), "non-protocol output from the CLI");
            }
            Wake::Output(Some(SessionOutput::Exited { status, stderr })) => {
                turn.close_pending().await?;
                return turn.exited(status, &stderr).await;
            }
            Wake::Output(None) => {
                turn.close_pending().await?;
                return turn.exited(None, &session.stderr_tail().await).await;
            }
        }
    }
}

/// What woke the turn loop.
enum Wake {
    Interrupt,
    Kill,
    Command(Option<ControlRequest>),
    Answer(usize, Result<PersonAnswer, oneshot::error::RecvError>),
    Deadline,
    Output(Option<SessionOutput>),
}

/// A request put to a person, waiting for the answer.
struct Pending {
    request_id: String,
    /// The input the CLI asked about; an answer without `updatedInput` allows it unchanged.
    input: Value,
    /// When it is denied for want of an answer; `None` once an answer is known to be on
    /// its way.
    deadline: Option<Instant>,
    answer: oneshot::Receiver<PersonAnswer>,
}

/// The first answer to arrive among the pending requests; never resolves when none is
/// pending.
fn next_answer(
    pending: &mut [Pending],
) -> impl Future<Output = (usize, Result<PersonAnswer, oneshot::error::RecvError>)> + '_ {
    std::future::poll_fn(move |cx| {
        for (index, entry) in pending.iter_mut().enumerate() {
            if let Poll::Ready(answer) = Pin::new(&mut entry.answer).poll(cx) {
                return Poll::Ready((index, answer));
            }
        }
        Poll::Pending
    })
}

struct Turn<'a> {
    sink: &'a mut dyn EventSink,
    policy: &'a dyn PermissionPolicy,
    options: TurnOptions,
    interrupted: bool,
    error_shown: bool,
    saw_init: bool,
    session_id: Option<String>,
    pending: Vec<Pending>,
    /// `(tool_use id, input)` of the model's latest tool calls.
    tool_inputs: Vec<(String, Value)>,
    control_refused: bool,
    /// Our control requests still waiting for the CLI's answer, by request id.
    controls_sent: Vec<(String, ControlRequest)>,
    /// Whether the turn already said that a command hit the process limit.
    process_limit_told: bool,
    /// Tokens in context after the main agent's latest model call.
    context_tokens: Option<u64>,
}

impl Turn<'_> {
    /// Send a control request of ours, remembering it to report the CLI's answer.
    async fn control(&mut self, session: &AgentSession, command: ControlRequest) {
        // A dead CLI shows up as its exit.
        if let Ok(id) = session.control(command.clone()).await {
            if self.controls_sent.len() == REMEMBERED_TOOL_INPUTS {
                self.controls_sent.remove(0);
            }
            self.controls_sent.push((id, command));
        }
    }

    async fn emit(&mut self, payload: EventPayload) -> Result<(), AgentError> {
        self.emit_event(AgentEvent { payload, parent_tool_use_id: None }).await
    }

    async fn emit_event(&mut self, event: AgentEvent) -> Result<(), AgentError> {
        self.error_shown |= matches!(event.payload, EventPayload::Error { .. });
        Ok(self.sink.emit(event).await?)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().filter_map(|pending| pending.deadline).min()
    }

    /// Handle one protocol line; `Some` once the turn is over.
    async fn handle(
        &mut self,
        session: &AgentSession,
        message: CliOutput,
    ) -> Result<Option<TurnOutcome>, AgentError> {
        for event in map_output(&message) {
            let hit_limit = match &event.payload {
                EventPayload::ToolCompleted { tool } => hit_process_limit(&tool.result),
                EventPayload::ToolFailed { tool } => hit_process_limit(&tool.error),
                _ => false,
            };
            self.emit_event(event).await?;
            if hit_limit && !self.process_limit_told {
                self.process_limit_told = true;
                let notice = SystemEvent::new("sandbox_limit")
                    .with("limit", "processes")
                    .with("text", PROCESS_LIMIT_TEXT);
                self.emit(EventPayload::System(notice)).await?;
            }
        }
        match stream_delta(&message) {
            Some(Delta::Text(text)) => self.sink.text_delta(text),
            Some(Delta::Thinking(text)) => self.sink.thinking_delta(text),
            None => {}
        }
        match message {
            CliOutput::System(system) => {
                self.saw_init |= system.subtype == "init";
                if let Some(id) = system.session_id {
                    self.session_id = Some(id);
                }
            }
            CliOutput::Assistant(assistant) => {
                if assistant.parent_tool_use_id.is_none()
                    && let Some(tokens) =
                        assistant.message.usage.as_ref().and_then(figures::context_tokens)
                {
                    self.context_tokens = Some(tokens);
                }
                for block in assistant.message.content {
                    if let ContentBlock::ToolUse { id, input, .. } = block {
                        if self.tool_inputs.len() == REMEMBERED_TOOL_INPUTS {
                            self.tool_inputs.remove(0);
                        }
                        self.tool_inputs.push((id, input));
                    }
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
                        control_refused: self.control_refused,
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
                let previous_total = session.remember_reported_cost(result.total_cost_usd);
                let total_cost_usd = figures::turn_cost(&result, previous_total);
                let usage = Usage {
                    total_cost_usd,
                    context_tokens: self.context_tokens,
                    context_window: figures::context_window(&result),
                    ..usage_of(&result)
                };
                self.emit(EventPayload::Usage(usage.clone())).await?;
                return Ok(Some(TurnOutcome {
                    status,
                    session_id: result.session_id.or_else(|| self.session_id.take()),
                    total_cost_usd,
                    usage: Some(usage),
                    resume_failed: false,
                    control_refused: self.control_refused,
                }));
            }
            CliOutput::ControlRequest(request) => match request.can_use_tool() {
                Some(question) => self.ask(session, &request.request_id, &question).await?,
                None => {
                    let subtype = request.subtype().unwrap_or("unknown").to_owned();
                    tracing::warn!(%subtype, "unsupported control request from the CLI");
                    let answer = CliInput::failure(
                        &request.request_id,
                        format!("agentbox does not support control requests of type {subtype}"),
                    );
                    // If the CLI is gone, its exit arrives next and ends the turn.
                    let _ = session.send(answer).await;
                }
            },
            CliOutput::ControlCancelRequest(cancel) => {
                if let Some(index) =
                    self.pending.iter().position(|p| p.request_id == cancel.request_id)
                {
                    let mut pending = self.pending.remove(index);
                    // An answer given just before the CLI withdrew the request is what the
                    // person decided; record that rather than the withdrawal.
                    let answered = if self.policy.withdraw(&pending.request_id) {
                        None
                    } else {
                        pending.answer.try_recv().ok().map(|answer| answer.resolution)
                    };
                    let resolution = answered.unwrap_or_else(|| {
                        PermissionResolution::new(&pending.request_id, false, ResolvedBy::Cancelled)
                            .with_message("The agent withdrew the request before it was answered.")
                    });
                    self.emit(EventPayload::PermissionResolved(resolution)).await?;
                }
            }
            CliOutput::ControlResponse(response) => {
                let sent = self
                    .controls_sent
                    .iter()
                    .position(|(id, _)| id == response.response.request_id())
                    .map(|index| self.controls_sent.remove(index).1);
                if let Some(payload) = control_outcome(sent, &response.response) {
                    self.emit(payload).await?;
                }
                if let ControlResponse::Error { request_id, error } = &response.response {
                    tracing::warn!(%request_id, %error, "the CLI refused a control request");
                    self.control_refused = true;
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// A `can_use_tool` request: decide it now, or ask a person and wait without blocking.
    async fn ask(
        &mut self,
        session: &AgentSession,
        request_id: &str,
        question: &CanUseTool,
    ) -> Result<(), AgentError> {
        let model_input = question.tool_use_id.as_deref().and_then(|id| {
            self.tool_inputs.iter().rev().find(|(seen, _)| seen == id).map(|(_, input)| input)
        });
        let verdict =
            self.policy.decide(ToolRequest { request_id, request: question, model_input }).await;
        match verdict {
            Verdict::Decide(decision) => {
                let answer =
                    CliInput::success(request_id, decision_json(decision, &question.input));
                let _ = session.send(answer).await;
            }
            Verdict::Ask { mut request, answer } => {
                let timeout = self.options.permission_timeout;
                request.expires_at = chrono::Duration::from_std(timeout)
                    .ok()
                    .and_then(|timeout| chrono::Utc::now().checked_add_signed(timeout));
                self.emit(EventPayload::PermissionRequest(*request)).await?;
                self.pending.push(Pending {
                    request_id: request_id.to_owned(),
                    input: question.input.clone(),
                    deadline: Some(Instant::now() + timeout),
                    answer,
                });
            }
        }
        Ok(())
    }

    /// An answer arrived (or its sender went away without one).
    async fn answered(
        &mut self,
        session: &AgentSession,
        pending: Pending,
        answer: Result<PersonAnswer, oneshot::error::RecvError>,
    ) -> Result<(), AgentError> {
        let answer = answer.unwrap_or_else(|_| PersonAnswer {
            decision: PermissionDecision::Deny {
                message: "The request was withdrawn before anyone answered it.".into(),
            },
            resolution: PermissionResolution::new(
                &pending.request_id,
                false,
                ResolvedBy::Cancelled,
            ),
            then: Vec::new(),
        });
        let reply =
            CliInput::success(&pending.request_id, decision_json(answer.decision, &pending.input));
        let _ = session.send(reply).await;
        self.emit(EventPayload::PermissionResolved(answer.resolution)).await?;
        for command in answer.then {
            self.control(session, command).await;
        }
        Ok(())
    }

    /// Deny the requests whose time is up.
    async fn expire(&mut self, session: &AgentSession) -> Result<(), AgentError> {
        let now = Instant::now();
        let mut index = 0;
        while index < self.pending.len() {
            let due = self.pending[index].deadline.is_some_and(|deadline| deadline <= now);
            if !due {
                index += 1;
                continue;
            }
            if !self.policy.withdraw(&self.pending[index].request_id) {
                // An answer won the race; it is about to arrive.
                self.pending[index].deadline = None;
                index += 1;
                continue;
            }
            let pending = self.pending.remove(index);
            let message = format!(
                "Nobody answered this permission request within {}, so it was denied.",
                describe(self.options.permission_timeout)
            );
            let reply = CliInput::success(
                &pending.request_id,
                json!({"behavior": "deny", "message": message}),
            );
            let _ = session.send(reply).await;
            let resolution =
                PermissionResolution::new(&pending.request_id, false, ResolvedBy::Timeout)
                    .with_message(message);
            self.emit(EventPayload::PermissionResolved(resolution)).await?;
        }
        Ok(())
    }

    /// The turn is over: record how each request still open ended.
    async fn close_pending(&mut self) -> Result<(), AgentError> {
        for mut pending in std::mem::take(&mut self.pending) {
            let resolution = if self.policy.withdraw(&pending.request_id) {
                None
            } else {
                pending.answer.try_recv().ok().map(|answer| answer.resolution)
            };
            let resolution = resolution.unwrap_or_else(|| {
                PermissionResolution::new(&pending.request_id, false, ResolvedBy::TurnEnded)
                    .with_message("The turn ended before the request was answered.")
            });
            self.emit(EventPayload::PermissionResolved(resolution)).await?;
        }
        Ok(())
    }

    async fn exited(
        &mut self,
        status: Option<agentbox_sandbox::ExitStatus>,
        stderr: &str,
    ) -> Result<TurnOutcome, AgentError> {
        let status_text = status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
        let outcome_status = if self.interrupted {
            MessageStatus::Interrupted
        } else if let Some(limit) = status.and_then(|status| status.limit) {
            let (message, code) = limit_exit(limit);
            self.emit(EventPayload::error(message, code)).await?;
            MessageStatus::Failed
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
            control_refused: self.control_refused,
        })
    }
}

/// What the user is told when a sandbox limit ended the CLI, and the error's code.
pub fn limit_exit(limit: SandboxLimit) -> (&'static str, &'static str) {
    match limit {
        SandboxLimit::Processes => (
            "The agent stopped because the chat's sandbox ran out of processes. Restart the \
             sandbox from the workspace panel (that stops running commands, servers and \
             terminals; files are kept), then send the message again.",
            "sandbox_out_of_processes",
        ),
        SandboxLimit::Memory => (
            "The agent was stopped because the chat's sandbox ran out of memory. Restart the \
             sandbox from the workspace panel (that stops running commands, servers and \
             terminals; files are kept), then send the message again, perhaps asking for \
             smaller steps.",
            "sandbox_out_of_memory",
        ),
        SandboxLimit::Disk => (
            "The agent was stopped because the chat's workspace outgrew its disk quota. Delete \
             files in the workspace panel, then send the message again.",
            "sandbox_out_of_disk",
        ),
    }
}

/// The event that reports the CLI's answer to a setting change of ours: the change took
/// effect (`model_changed`, `thinking_changed`; a mode change shows as the CLI's own
/// `system/status`), or the CLI refused it (`control_refused`).
fn control_outcome(
    sent: Option<ControlRequest>,
    response: &ControlResponse,
) -> Option<EventPayload> {
    let sent = sent?;
    let event = match (response, &sent) {
        (ControlResponse::Error { error, .. }, _) => {
            let what = match &sent {
                ControlRequest::SetModel { .. } => "set_model",
                ControlRequest::SetPermissionMode { .. } => "set_permission_mode",
                ControlRequest::SetMaxThinkingTokens { .. } => "set_max_thinking_tokens",
                ControlRequest::Interrupt | ControlRequest::Initialize { .. } => return None,
            };
            SystemEvent::new("control_refused").with("request", what).with("error", error.clone())
        }
        (ControlResponse::Success { response, .. }, ControlRequest::SetModel { model }) => {
            let applied = response.get("model").cloned().or_else(|| model.clone().map(Value::from));
            SystemEvent::new("model_changed").with("model", applied.unwrap_or(Value::Null))
        }
        (
            ControlResponse::Success { .. },
            ControlRequest::SetMaxThinkingTokens { max_thinking_tokens },
        ) => SystemEvent::new("thinking_changed")
            .with("max_thinking_tokens", max_thinking_tokens.map_or(Value::Null, Value::from)),
        _ => return None,
    };
    Some(EventPayload::System(event))
}

fn decision_json(decision: PermissionDecision, input: &Value) -> Value {
    match decision {
        PermissionDecision::Allow { updated_input } => json!({
            "behavior": "allow",
            "updatedInput": updated_input.unwrap_or_else(|| input.clone()),
        }),
        PermissionDecision::Deny { message } => json!({"behavior": "deny", "message": message}),
    }
}

/// A duration for a sentence: "90 seconds", "10 minutes".
fn describe(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 120 && seconds.is_multiple_of(60) {
        format!("{} minutes", seconds / 60)
    } else if seconds == 1 {
        "1 second".into()
    } else {
        format!("{seconds} seconds")
    }
}

async fn sleep_until(deadline: Option<Instant>) {
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

/// A piece of a block the main agent streams.
#[derive(Debug, PartialEq, Eq)]
enum Delta<'a> {
    Text(&'a str),
    Thinking(&'a str),
}

/// The piece of the main agent's text or thinking that a `stream_event` carries (sub-agents'
/// blocks arrive whole; tool input is not streamed to the user).
fn stream_delta(message: &CliOutput) -> Option<Delta<'_>> {
    let CliOutput::StreamEvent(stream) = message else { return None };
    if stream.parent_tool_use_id.is_some()
        || stream.event.get("type").and_then(Value::as_str) != Some("content_block_delta")
    {
        return None;
    }
    let delta = stream.event.get("delta")?;
    let piece = |field: &str| delta.get(field).and_then(Value::as_str).filter(|t| !t.is_empty());
    match delta.get("type").and_then(Value::as_str)? {
        "text_delta" => piece("text").map(Delta::Text),
        "thinking_delta" => piece("thinking").map(Delta::Thinking),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_fork_is_recognised_in_tool_output() {
        assert!(hit_process_limit("bash: line 1: fork: retry: Resource temporarily unavailable\n"));
        assert!(hit_process_limit("environment: line 3: fork: Resource temporarily unavailable"));
        assert!(hit_process_limit(
            "agentbox: this command did not start: the sandbox's commands are at their process \
             limit of 150 (fork: Resource temporarily unavailable (os error 11))."
        ));
        assert!(!hit_process_limit("read: Resource temporarily unavailable"));
        assert!(!hit_process_limit("BlockingIOError: [Errno 11] Resource temporarily unavailable"));
    }

    #[test]
    fn the_main_agents_text_and_thinking_stream_and_nothing_else() {
        let event = |delta: Value, parent: Option<&str>| {
            CliOutput::StreamEvent(agentbox_protocol::cli::StreamEvent {
                event: json!({"type": "content_block_delta", "index": 0, "delta": delta}),
                parent_tool_use_id: parent.map(str::to_owned),
            })
        };
        let text = event(json!({"type": "text_delta", "text": "Hel"}), None);
        assert_eq!(stream_delta(&text), Some(Delta::Text("Hel")));
        let thinking = event(json!({"type": "thinking_delta", "thinking": "Let me"}), None);
        assert_eq!(stream_delta(&thinking), Some(Delta::Thinking("Let me")));
        let signature = event(json!({"type": "signature_delta", "signature": "abc"}), None);
        assert_eq!(stream_delta(&signature), None);
        let input = event(json!({"type": "input_json_delta", "partial_json": "{"}), None);
        assert_eq!(stream_delta(&input), None);
        let sub_agent = event(json!({"type": "thinking_delta", "thinking": "x"}), Some("toolu_1"));
        assert_eq!(stream_delta(&sub_agent), None, "a sub-agent's blocks arrive whole");
        assert_eq!(stream_delta(&event(json!({"type": "text_delta", "text": ""}), None)), None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(describe(Duration::from_secs(600)), "10 minutes");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
        assert_eq!(describe(Duration::from_secs(1)), "1 second");
    }

    #[test]
    fn the_clis_answers_to_setting_changes_become_events() {
        let ok = |response: Value| ControlResponse::Success { request_id: "r".into(), response };
        let model = Some(ControlRequest::SetModel { model: Some("m2".into()) });
        let Some(EventPayload::System(event)) =
            control_outcome(model.clone(), &ok(json!({"model": "m2-full"})))
        else {
            panic!("no event")
        };
        assert_eq!(
            (event.subtype.as_str(), &event.details["model"]),
            ("model_changed", &json!("m2-full"))
        );
        let refused = ControlResponse::Error { request_id: "r".into(), error: "no".into() };
        let Some(EventPayload::System(event)) = control_outcome(model, &refused) else { panic!() };
        assert_eq!(event.subtype, "control_refused");
        let thinking = Some(ControlRequest::SetMaxThinkingTokens { max_thinking_tokens: Some(0) });
        let Some(EventPayload::System(event)) = control_outcome(thinking, &ok(Value::Null)) else {
            panic!()
        };
        assert_eq!(event.details["max_thinking_tokens"], 0);
        assert_eq!(control_outcome(None, &ok(Value::Null)), None);
        assert_eq!(control_outcome(Some(ControlRequest::Interrupt), &ok(Value::Null)), None);
    }

    #[test]
    fn an_allow_without_new_input_keeps_the_asked_input() {
        let input = json!({"command": "ls"});
        assert_eq!(
            decision_json(PermissionDecision::Allow { updated_input: None }, &input),
            json!({"behavior": "allow", "updatedInput": {"command": "ls"}})
        );
        assert_eq!(
            decision_json(PermissionDecision::Deny { message: "no".into() }, &input),
            json!({"behavior": "deny", "message": "no"})
        );
    }
}
