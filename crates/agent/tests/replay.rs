//! The driver against recorded CLI sessions: a stand-in `claude` replays each fixture and
//! checks that what the driver writes has the recorded shape.
// Test helpers may unwrap: a panic is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Mutex;

use agentbox_agent::{
    AgentEvent, AgentSession, AllowAll, EventSink, PermissionDecision, PermissionPolicy,
    PersonAnswer, SessionOptions, SinkError, ToolRequest, TurnControls, TurnOptions, Verdict,
    run_turn,
};
use agentbox_protocol::event::{
    EventPayload, MessageStatus, PermissionRequest, PermissionResolution,
};
use agentbox_protocol::permission::{PermissionKind, ResolvedBy};
use agentbox_sandbox::SandboxProvider;
use agentbox_sandbox::host::HostProvider;
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{name}.jsonl"))
}

/// A sandbox whose `claude` is a script; returns the temp dir keeping it alive.
async fn session_with_cli(script: &str) -> (tempfile::TempDir, AgentSession) {
    let dir = tempfile::tempdir().unwrap();
    let cli = dir.path().join("claude");
    std::fs::write(&cli, format!("#!/bin/sh\n{script}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let provider =
        HostProvider::new(dir.path().join("sandboxes"), [("claude".to_owned(), cli)].into());
    let sandbox = provider.ensure("replay").await.unwrap();
    let options = SessionOptions {
        model: "claude-sonnet-4-5".into(),
        cli_permission_mode: "default".into(),
        ..SessionOptions::default()
    };
    let session = AgentSession::start(sandbox.as_ref(), options).await.unwrap();
    (dir, session)
}

async fn replay_session(name: &str) -> (tempfile::TempDir, AgentSession) {
    let replayer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/replay_cli.py");
    session_with_cli(&format!(
        "exec python3 '{}' '{}' \"$@\"",
        replayer.display(),
        fixture(name).display()
    ))
    .await
}

/// Collects events; optionally cancels a token when it sees a `tool_started`.
#[derive(Default)]
struct Collect {
    events: Vec<AgentEvent>,
    interrupt_on_tool: Option<CancellationToken>,
    deltas: Vec<String>,
}

#[async_trait]
impl EventSink for Collect {
    async fn emit(&mut self, event: AgentEvent) -> Result<(), SinkError> {
        if matches!(event.payload, EventPayload::ToolStarted { .. })
            && let Some(token) = &self.interrupt_on_tool
        {
            token.cancel();
        }
        self.events.push(event);
        Ok(())
    }

    fn text_delta(&mut self, text: &str) {
        self.deltas.push(text.to_owned());
    }
}

impl Collect {
    fn kinds(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| match &e.payload {
                EventPayload::System(s) => format!("system/{}", s.subtype),
                other => other.kind().to_owned(),
            })
            .collect()
    }
}

struct Deny(&'static str);

#[async_trait]
impl PermissionPolicy for Deny {
    async fn decide(&self, _request: ToolRequest<'_>) -> Verdict {
        Verdict::Decide(PermissionDecision::Deny { message: self.0.to_owned() })
    }
}

/// Asks "a person" about every call, and the person answers at once with `answers` added to
/// the input. Remembers the model's input of each call it was asked about.
#[derive(Default)]
struct AnswerWith {
    answers: Value,
    model_inputs: Mutex<Vec<Option<Value>>>,
}

#[async_trait]
impl PermissionPolicy for AnswerWith {
    async fn decide(&self, request: ToolRequest<'_>) -> Verdict {
        self.model_inputs.lock().unwrap().push(request.model_input.cloned());
        let mut input = request.request.input.clone();
        input["answers"] = self.answers.clone();
        let (sender, answer) = tokio::sync::oneshot::channel();
        sender
            .send(PersonAnswer {
                decision: PermissionDecision::Allow { updated_input: Some(input) },
                resolution: PermissionResolution::new(request.request_id, true, ResolvedBy::User),
                then: Vec::new(),
            })
            .unwrap();
        Verdict::Ask {
            request: Box::new(PermissionRequest {
                request_id: request.request_id.to_owned(),
                kind: PermissionKind::Question,
                tool_name: request.request.tool_name.clone(),
                input: request.request.input.clone(),
                tool_use_id: request.request.tool_use_id.clone(),
                description: None,
                reason: None,
                plan: None,
                blocked_path: None,
                suggestions: Vec::new(),
                expires_at: None,
            }),
            answer,
        }
    }
}

fn options(grace: Duration) -> TurnOptions {
    TurnOptions { grace, ..TurnOptions::default() }
}

async fn run(
    name: &str,
    prompt: &str,
    policy: &dyn PermissionPolicy,
    sink: &mut Collect,
) -> agentbox_agent::TurnOutcome {
    let (_dir, mut session) = replay_session(name).await;
    run_in(&mut session, prompt, policy, sink, Duration::from_secs(20)).await
}

/// One turn on `session`; the sink's `interrupt_on_tool` token is the turn's interrupt.
async fn run_in(
    session: &mut AgentSession,
    prompt: &str,
    policy: &dyn PermissionPolicy,
    sink: &mut Collect,
    grace: Duration,
) -> agentbox_agent::TurnOutcome {
    let token = sink.interrupt_on_tool.clone().unwrap_or_default();
    let mut controls = TurnControls::interrupt_only(token);
    run_turn(session, prompt, policy, sink, &mut controls, &options(grace)).await.unwrap()
}

#[tokio::test]
async fn a_turn_with_thinking_text_and_a_bash_call() {
    let mut sink = Collect::default();
    let outcome = run(
        "turn_thinking_bash_bypass",
        "[[think]] [[write:hello.txt:hi]] write a file",
        &AllowAll,
        &mut sink,
    )
    .await;
    assert_eq!(outcome.status, MessageStatus::Completed);
    assert_eq!(outcome.session_id.as_deref(), Some("b402d207-2318-47ff-ad7b-a67069ad240a"));
    assert_eq!(outcome.total_cost_usd, Some(0.00042));
    assert_eq!(
        sink.kinds(),
        [
            "system/init",
            "assistant_thinking",
            "assistant_text",
            "tool_started",
            "tool_completed",
            "assistant_text",
            "usage"
        ]
    );
    let EventPayload::ToolCompleted { tool } = &sink.events[4].payload else { panic!() };
    assert_eq!((tool.id.as_str(), tool.result.as_str()), ("toolu_w1", "written"));
}

#[tokio::test]
async fn text_pieces_reach_the_sink_before_the_whole_text() {
    let mut sink = Collect::default();
    let prompt = "[[slow:20]] [[text:Pieces of text arrive one after the other.]] go";
    let outcome = run("text_deltas", prompt, &AllowAll, &mut sink).await;
    assert_eq!(outcome.status, MessageStatus::Completed);
    assert_eq!(sink.deltas, ["Pieces of text", " arrive one af", "ter the other."]);
    // The CLI's "requesting" status before each model call is not shown.
    assert_eq!(sink.kinds(), ["system/init", "assistant_text", "usage"]);
    let EventPayload::AssistantText { text } = &sink.events[1].payload else { panic!() };
    assert_eq!(text, "Pieces of text arrive one after the other.");
}

#[tokio::test]
async fn an_allowed_permission_request_is_answered_allow() {
    let mut sink = Collect::default();
    let outcome =
        run("permission_allow", "[[write:allowed.txt:yes]] go", &AllowAll, &mut sink).await;
    assert_eq!(outcome.status, MessageStatus::Completed);
    assert!(sink.kinds().contains(&"tool_completed".to_owned()), "{:?}", sink.kinds());
}

#[tokio::test]
async fn a_denied_permission_request_carries_the_message() {
    let mut sink = Collect::default();
    let outcome = run(
        "permission_deny",
        "[[write:denied.txt:no]] go",
        &Deny("The user said no: not now"),
        &mut sink,
    )
    .await;
    assert_eq!(outcome.status, MessageStatus::Completed);
    let failed = sink
        .events
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::ToolFailed { tool } => Some(tool.error.clone()),
            _ => None,
        })
        .expect("a tool_failed event");
    assert_eq!(failed, "The user said no: not now");
}

#[tokio::test]
async fn a_question_is_put_to_a_person_and_the_answers_reach_the_cli() {
    let policy = AnswerWith { answers: json!({"Which color?": "blue"}), ..Default::default() };
    let mut sink = Collect::default();
    let outcome = run("ask_user_question", "[[ask]] pick", &policy, &mut sink).await;
    assert_eq!(outcome.status, MessageStatus::Completed);
    let kinds = sink.kinds();
    let asked = kinds.iter().position(|k| k == "permission_request").expect("a request");
    assert_eq!(kinds[asked + 1], "permission_resolved", "{kinds:?}");
    let EventPayload::PermissionRequest(request) = &sink.events[asked].payload else { panic!() };
    assert!(request.expires_at.is_some(), "the turn sets when the request expires");
    let EventPayload::ToolCompleted { tool } = &sink.events[asked + 2].payload else {
        panic!("{kinds:?}")
    };
    assert!(tool.result.contains(r#""Which color?"="blue""#), "{}", tool.result);
}

#[tokio::test]
async fn a_plan_request_sees_the_plan_the_model_wrote() {
    let policy = AnswerWith::default();
    let mut sink = Collect::default();
    let outcome = run("exit_plan_mode", "[[exitplan]] plan it", &policy, &mut sink).await;
    assert_eq!(outcome.status, MessageStatus::Completed);
    let inputs = policy.model_inputs.lock().unwrap().clone();
    assert_eq!(inputs, [Some(json!({"plan": "1. Write plan.txt\n2. Report back"}))]);
}

#[tokio::test]
async fn a_model_error_is_one_error_event_and_a_failed_turn() {
    let mut sink = Collect::default();
    let outcome = run("model_error_500", "[[error:500]] fail", &AllowAll, &mut sink).await;
    assert_eq!(outcome.status, MessageStatus::Failed);
    assert_eq!(sink.kinds(), ["system/init", "system/api_retry", "error", "usage"]);
    let EventPayload::Error { message, code } = &sink.events[2].payload else { panic!() };
    assert!(message.contains("API Error: 500"), "{message}");
    assert_eq!(code.as_deref(), Some("model_api_error"));
}

#[tokio::test]
async fn an_interrupt_during_a_tool_ends_the_turn_interrupted() {
    let token = CancellationToken::new();
    let mut sink = Collect { interrupt_on_tool: Some(token), ..Collect::default() };
    let outcome = run("interrupt_during_tool", "[[sleep:30]] long", &AllowAll, &mut sink).await;
    assert_eq!(outcome.status, MessageStatus::Interrupted);
    let kinds = sink.kinds();
    assert_eq!(kinds[..3], ["system/init", "tool_started", "tool_failed"], "{kinds:?}");
    assert!(!kinds.contains(&"error".to_owned()), "an interrupt is not an error: {kinds:?}");
}

#[tokio::test]
async fn a_crashing_cli_is_an_error_event_with_its_stderr() {
    let (_dir, mut session) = session_with_cli(
        r#"read init; read turn; echo '{"type":"system","subtype":"init","session_id":"s1"}'; echo 'segfault in module X' >&2; exit 139"#,
    )
    .await;
    let mut sink = Collect::default();
    let outcome = run_in(&mut session, "hi", &AllowAll, &mut sink, Duration::from_secs(5)).await;
    assert_eq!(outcome.status, MessageStatus::Failed);
    assert_eq!(outcome.session_id.as_deref(), Some("s1"));
    let EventPayload::Error { message, code } = &sink.events.last().unwrap().payload else {
        panic!("{:?}", sink.events)
    };
    assert_eq!(code.as_deref(), Some("cli_exited"));
    assert!(
        message.contains("exit code 139") && message.contains("segfault in module X"),
        "{message}"
    );
}

#[tokio::test]
async fn noise_ansi_and_huge_lines_do_not_break_the_stream() {
    let big = "x".repeat(3 * 1024 * 1024);
    let (_dir, mut session) = session_with_cli(&format!(
        r#"read init; read turn
echo 'npm WARN something odd'
printf '\033[32m{{"type":"assistant","message":{{"content":[{{"type":"text","text":"green"}}]}}}}\033[0m\n'
printf '{{"type":"assistant","message":{{"content":[{{"type":"text","text":"{big}"}}]}}}}\n'
printf '{{"type":"result","subtype":"success","is_error":false,"session_id":"s2"}}'"#
    ))
    .await;
    let mut sink = Collect::default();
    let outcome = run_in(&mut session, "hi", &AllowAll, &mut sink, Duration::from_secs(5)).await;
    assert_eq!(outcome.status, MessageStatus::Completed);
    assert_eq!(sink.kinds(), ["assistant_text", "assistant_text", "usage"]);
    let EventPayload::AssistantText { text } = &sink.events[1].payload else { panic!() };
    assert_eq!(text.len(), big.len());
}

#[tokio::test]
async fn an_interrupt_the_cli_ignores_ends_in_a_kill() {
    // A CLI that never answers: only the grace-period kill can end the turn.
    let (_dir, mut session) =
        session_with_cli("read init; read turn; exec python3 -c 'import time; time.sleep(600)'")
            .await;
    let token = CancellationToken::new();
    token.cancel();
    let mut sink = Collect { interrupt_on_tool: Some(token), ..Collect::default() };
    let outcome =
        run_in(&mut session, "hi", &AllowAll, &mut sink, Duration::from_millis(300)).await;
    assert_eq!(outcome.status, MessageStatus::Interrupted);
    assert!(!session.is_alive());
}
