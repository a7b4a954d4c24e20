//! A running turn's permission decisions: the chat's policy (its mode, its "always allow"
//! rules and the `auto` policy) and the requests waiting for a person, which the API answers.
//!
//! The turn loop asks [`ChatPolicy`] about each `can_use_tool` request. Whatever the policy
//! cannot decide itself becomes an entry in [`LiveTurn`]'s pending map with the sending half
//! of a oneshot channel; the turn waits on the other half. An answer over the API takes the
//! entry out of the map and sends through it, so exactly one of "a person answered", "the
//! request timed out" and "the turn ended" wins for each request: whoever removes the entry.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use agentbox_agent::{
    AutoPolicy, PermissionDecision, PermissionPolicy, PersonAnswer, ToolRequest, Verdict, rule_for,
    rule_matches,
};
use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::cli::ControlRequest;
use agentbox_protocol::event::{PermissionRequest, PermissionResolution};
use agentbox_protocol::permission::{
    PendingPermission, PermissionAnswerRequest, PermissionKind, PermissionRule, ResolvedBy,
};
use agentbox_store::Store;
use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The longest message a person may send with an answer.
pub const MAX_ANSWER_MESSAGE_CHARS: usize = 10_000;

const PLAN_MODE_DENIAL: &str = "The chat is in plan mode: only reading is allowed until the user \
                                approves a plan. Finish planning and present the plan with \
                                ExitPlanMode.";
const ASK_MODE_REASON: &str =
    "The chat is in ask mode: every tool call that can change something needs approval.";

/// What the API and a running turn share.
pub(crate) struct LiveTurn {
    mode: Mutex<PermissionMode>,
    /// Set when the model, mode or thinking budget changed during the turn: the CLI process
    /// then no longer matches how it was started and is not kept for the next turn.
    changed: AtomicBool,
    pending: Mutex<HashMap<String, PendingEntry>>,
    controls: mpsc::UnboundedSender<ControlRequest>,
}

struct PendingEntry {
    kind: PermissionKind,
    tool_name: String,
    input: Value,
    suggestions: Vec<Value>,
    answer: oneshot::Sender<PersonAnswer>,
}

/// Why an answer was not taken. Nothing has changed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the request was already settled")]
    AlreadyResolved,
    #[error("the turn that asked has ended")]
    TurnNotRunning,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
}

fn invalid(code: &'static str, message: impl Into<String>) -> AnswerError {
    AnswerError::Invalid { code, message: message.into() }
}

/// What an accepted answer did.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub approved: bool,
    /// The rule to store for the chat (`remember`).
    pub rule: Option<PermissionRule>,
    /// The mode the chat continues in (an approved plan).
    pub mode: Option<PermissionMode>,
}

impl LiveTurn {
    pub fn new(mode: PermissionMode, controls: mpsc::UnboundedSender<ControlRequest>) -> Self {
        Self {
            mode: Mutex::new(mode),
            changed: AtomicBool::new(false),
            pending: Mutex::default(),
            controls,
        }
    }

    pub fn mode(&self) -> PermissionMode {
        *lock(&self.mode)
    }

    pub fn changed(&self) -> bool {
        self.changed.load(Ordering::SeqCst)
    }

    /// Pass a control request to the running CLI; the CLI's settings now differ from its
    /// start.
    pub fn control(&self, request: ControlRequest) {
        self.changed.store(true, Ordering::SeqCst);
        // The turn may have just ended; then there is nothing to change.
        let _ = self.controls.send(request);
    }

    /// Switch the turn's mode. Requests that the new mode decides without a person (every
    /// tool call in `bypassPermissions`) are allowed at once.
    pub fn set_mode(&self, mode: PermissionMode) {
        if std::mem::replace(&mut *lock(&self.mode), mode) == mode {
            return;
        }
        self.control(ControlRequest::SetPermissionMode { mode: mode.cli_mode().to_owned() });
        if mode != PermissionMode::BypassPermissions {
            return;
        }
        let settled: Vec<(String, PendingEntry)> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<String> = pending
                .iter()
                .filter(|(_, entry)| entry.kind == PermissionKind::Tool)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter().filter_map(|id| pending.remove(&id).map(|entry| (id, entry))).collect()
        };
        for (id, entry) in settled {
            let _ = entry.answer.send(PersonAnswer {
                decision: PermissionDecision::Allow { updated_input: None },
                resolution: PermissionResolution::new(id, true, ResolvedBy::ModeChanged),
                then: Vec::new(),
            });
        }
    }

    /// How many requests wait for a person's answer.
    pub fn pending(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Deny every open request (the server is shutting down).
    pub fn deny_all(&self, resolved_by: ResolvedBy, message: &str) {
        let entries: Vec<(String, PendingEntry)> = lock(&self.pending).drain().collect();
        for (id, entry) in entries {
            let _ = entry.answer.send(PersonAnswer {
                decision: PermissionDecision::Deny { message: message.to_owned() },
                resolution: PermissionResolution::new(id, false, resolved_by).with_message(message),
                then: Vec::new(),
            });
        }
    }

    /// Answer a pending request on a person's behalf. `bypass_allowed` says whether a plan
    /// may continue in `bypassPermissions`.
    pub fn answer(
        &self,
        request_id: &str,
        answer: &PermissionAnswerRequest,
        bypass_allowed: bool,
    ) -> Result<Accepted, AnswerError> {
        let message = answer_message(answer)?;
        let mut pending = lock(&self.pending);
        let entry = pending.get(request_id).ok_or(AnswerError::AlreadyResolved)?;
        let asked = Asked {
            kind: entry.kind,
            tool_name: &entry.tool_name,
            input: &entry.input,
            suggestions: &entry.suggestions,
        };
        let prepared = prepare(&asked, request_id, answer, message, bypass_allowed)?;
        let Some(entry) = pending.remove(request_id) else {
            return Err(AnswerError::AlreadyResolved);
        };
        drop(pending);
        let accepted = Accepted {
            approved: answer.approved,
            rule: prepared.resolution.rule.clone(),
            mode: prepared.resolution.mode,
        };
        if let Some(mode) = accepted.mode {
            *lock(&self.mode) = mode;
            // The CLI leaves plan mode by itself when a plan is approved.
            self.changed.store(true, Ordering::SeqCst);
        }
        entry.answer.send(prepared).map_err(|_| AnswerError::TurnNotRunning)?;
        Ok(accepted)
    }

    fn register(&self, request_id: &str, entry: PendingEntry) {
        lock(&self.pending).insert(request_id.to_owned(), entry);
    }

    fn withdraw(&self, request_id: &str) -> bool {
        lock(&self.pending).remove(request_id).is_some()
    }
}

/// The answer's message, trimmed; `None` when empty. Refused when too long.
fn answer_message(answer: &PermissionAnswerRequest) -> Result<Option<&str>, AnswerError> {
    let message = answer.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    if message.is_some_and(|m| m.chars().count() > MAX_ANSWER_MESSAGE_CHARS) {
        return Err(invalid(
            "message_too_long",
            format!("A message may have at most {MAX_ANSWER_MESSAGE_CHARS} characters."),
        ));
    }
    Ok(message)
}

/// What a request asked, as an answer is checked against it.
struct Asked<'a> {
    kind: PermissionKind,
    tool_name: &'a str,
    input: &'a Value,
    suggestions: &'a [Value],
}

/// Check an answer against an open request as the store lists it, without its turn: what a
/// node that does not run the turn can check before sending the answer on, so that a bad
/// answer is refused with the same code as on the turn's own node.
pub(crate) fn check_answer(
    pending: &PendingPermission,
    answer: &PermissionAnswerRequest,
    bypass_allowed: bool,
) -> Result<(), AnswerError> {
    let message = answer_message(answer)?;
    let asked = Asked {
        kind: pending.kind,
        tool_name: &pending.tool_name,
        input: &pending.input,
        suggestions: &[],
    };
    prepare(&asked, &pending.request_id, answer, message, bypass_allowed).map(drop)
}

/// Check an answer against the request it answers and turn it into what the CLI gets.
fn prepare(
    entry: &Asked<'_>,
    request_id: &str,
    answer: &PermissionAnswerRequest,
    message: Option<&str>,
    bypass_allowed: bool,
) -> Result<PersonAnswer, AnswerError> {
    let kind = entry.kind;
    if answer.answers.is_some() && kind != PermissionKind::Question {
        return Err(invalid("answers_not_applicable", "Only a question takes `answers`."));
    }
    if answer.mode.is_some() && kind != PermissionKind::Plan {
        return Err(invalid("mode_not_applicable", "Only a plan approval takes `mode`."));
    }
    if answer.remember && kind != PermissionKind::Tool {
        return Err(invalid("remember_not_applicable", "Only a tool call can be remembered."));
    }
    if answer.remember && !answer.approved {
        return Err(invalid(
            "remember_requires_approval",
            "`remember` stores a rule that allows calls; it cannot go with a denial.",
        ));
    }
    let resolution = PermissionResolution::new(request_id, answer.approved, ResolvedBy::User);
    if !answer.approved {
        let text = match (kind, message) {
            (PermissionKind::Tool, Some(m)) => format!("The user denied this tool call: {m}"),
            (PermissionKind::Tool, None) => "The user denied this tool call.".to_owned(),
            (PermissionKind::Question, Some(m)) => {
                format!("The user declined to answer the questions: {m}")
            }
            (PermissionKind::Question, None) => {
                "The user declined to answer the questions.".to_owned()
            }
            (PermissionKind::Plan, Some(m)) => format!(
                "The user did not approve the plan and asks for changes: {m}\nStay in plan \
                 mode, revise the plan, and present it again with ExitPlanMode."
            ),
            (PermissionKind::Plan, None) => "The user did not approve the plan. Stay in plan \
                                             mode and ask what should change."
                .to_owned(),
        };
        return Ok(PersonAnswer {
            decision: PermissionDecision::Deny { message: text.clone() },
            resolution: resolution.with_message(text),
            then: Vec::new(),
        });
    }
    match kind {
        PermissionKind::Tool => {
            let rule =
                answer.remember.then(|| rule_for(entry.tool_name, entry.input, entry.suggestions));
            Ok(PersonAnswer {
                decision: PermissionDecision::Allow { updated_input: None },
                resolution: PermissionResolution { rule, ..resolution },
                then: Vec::new(),
            })
        }
        PermissionKind::Question => {
            let answers = question_answers(entry.input, answer.answers.as_ref())?;
            let mut input = entry.input.clone();
            if let Some(fields) = input.as_object_mut() {
                fields.insert("answers".into(), Value::Object(answers.clone()));
            }
            Ok(PersonAnswer {
                decision: PermissionDecision::Allow { updated_input: Some(input) },
                resolution: PermissionResolution { answers: Some(answers), ..resolution },
                then: Vec::new(),
            })
        }
        PermissionKind::Plan => {
            let mode = answer.mode.unwrap_or_default();
            if mode == PermissionMode::Plan {
                return Err(invalid(
                    "invalid_mode",
                    "An approved plan continues in `ask`, `auto` or `bypassPermissions`; to keep \
                     planning, deny it with feedback.",
                ));
            }
            if mode == PermissionMode::BypassPermissions && !bypass_allowed {
                return Err(invalid("bypass_not_allowed", BYPASS_REFUSAL));
            }
            // Approving the plan puts the CLI in its `default` mode; only another mode needs
            // telling.
            let then = (mode.cli_mode() != "default")
                .then(|| ControlRequest::SetPermissionMode { mode: mode.cli_mode().to_owned() })
                .into_iter()
                .collect();
            Ok(PersonAnswer {
                decision: PermissionDecision::Allow { updated_input: None },
                resolution: PermissionResolution { mode: Some(mode), ..resolution },
                then,
            })
        }
    }
}

/// Why `bypassPermissions` is refused without an isolating sandbox.
pub const BYPASS_REFUSAL: &str = "bypassPermissions lets the agent run anything without \
    asking, so it is offered only when chats run in an isolating sandbox. This server's \
    sandbox provider does not isolate; its operator can allow it anyway with \
    --allow-bypass-without-isolation.";

/// The answers to an `AskUserQuestion` call, checked against its questions: each key must be
/// one of the questions, each value a non-empty label (or free text), or a list of them for
/// a multi-select question (joined with ", " as the CLI expects).
fn question_answers(
    input: &Value,
    answers: Option<&BTreeMap<String, Value>>,
) -> Result<Map<String, Value>, AnswerError> {
    let answers = answers.filter(|answers| !answers.is_empty()).ok_or_else(|| {
        invalid("answers_required", "Answering questions needs `answers`: question → label.")
    })?;
    let questions: Vec<&str> = input
        .get("questions")
        .and_then(Value::as_array)
        .map(|questions| {
            questions.iter().filter_map(|q| q.get("question").and_then(Value::as_str)).collect()
        })
        .unwrap_or_default();
    let mut out = Map::new();
    for (question, value) in answers {
        if !questions.contains(&question.as_str()) {
            return Err(invalid(
                "unknown_question",
                format!("{question:?} is not one of the questions asked."),
            ));
        }
        let text = match value {
            Value::String(text) => text.trim().to_owned(),
            Value::Array(items) => {
                let labels: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                let labels = labels.ok_or_else(|| {
                    invalid("invalid_answer", "A multi-select answer is a list of labels.")
                })?;
                labels.iter().map(|l| l.trim()).collect::<Vec<_>>().join(", ")
            }
            _ => {
                return Err(invalid("invalid_answer", "An answer is a label or a list of labels."));
            }
        };
        if text.is_empty() || text.chars().count() > MAX_ANSWER_MESSAGE_CHARS {
            return Err(invalid(
                "invalid_answer",
                format!("The answer to {question:?} is empty or too long."),
            ));
        }
        out.insert(question.clone(), Value::String(text));
    }
    Ok(out)
}

/// The permission policy of one running turn.
pub(crate) struct ChatPolicy {
    pub chat_id: Uuid,
    pub live: Arc<LiveTurn>,
    pub store: Store,
    pub auto: Arc<AutoPolicy>,
    /// The workspace as the CLI sees it (the sandbox's home).
    pub workspace: PathBuf,
}

impl ChatPolicy {
    async fn rule_allows(&self, tool: &str, input: &Value) -> bool {
        match self.store.permission_rules(self.chat_id).await {
            Ok(rules) => rules.iter().any(|stored| rule_matches(&stored.rule, tool, input)),
            Err(err) => {
                tracing::warn!(chat_id = %self.chat_id, %err, "could not read the chat's rules");
                false
            }
        }
    }
}

#[async_trait]
impl PermissionPolicy for ChatPolicy {
    async fn decide(&self, request: ToolRequest<'_>) -> Verdict {
        let question = request.request;
        let tool = question.tool_name.as_str();
        let kind = match tool {
            "AskUserQuestion" => PermissionKind::Question,
            "ExitPlanMode" => PermissionKind::Plan,
            _ => PermissionKind::Tool,
        };
        let allow = || Verdict::Decide(PermissionDecision::Allow { updated_input: None });
        let mut reason = None;
        if kind == PermissionKind::Tool {
            match self.live.mode() {
                PermissionMode::BypassPermissions => return allow(),
                PermissionMode::Plan => {
                    return if self.auto.is_read_only(tool, &question.input, &self.workspace) {
                        allow()
                    } else {
                        Verdict::Decide(PermissionDecision::Deny {
                            message: PLAN_MODE_DENIAL.into(),
                        })
                    };
                }
                PermissionMode::Ask => {
                    if self.rule_allows(tool, &question.input).await {
                        return allow();
                    }
                    reason = Some(ASK_MODE_REASON.to_owned());
                }
                PermissionMode::Auto => {
                    if self.rule_allows(tool, &question.input).await {
                        return allow();
                    }
                    match self.auto.assess(tool, &question.input, &self.workspace) {
                        agentbox_agent::Assessment::Risky(why) => {
                            reason = Some(format!("The auto policy asks because {why}."));
                        }
                        assessment => {
                            tracing::debug!(chat_id = %self.chat_id, tool, ?assessment, "auto policy allowed a call");
                            return allow();
                        }
                    }
                }
            }
        }
        let plan = (kind == PermissionKind::Plan)
            .then(|| {
                request
                    .model_input
                    .and_then(|input| input.get("plan"))
                    .and_then(Value::as_str)
                    .or_else(|| question.input.get("plan").and_then(Value::as_str))
                    .map(str::to_owned)
            })
            .flatten();
        let (sender, answer) = oneshot::channel();
        self.live.register(
            request.request_id,
            PendingEntry {
                kind,
                tool_name: question.tool_name.clone(),
                input: question.input.clone(),
                suggestions: question.permission_suggestions.clone(),
                answer: sender,
            },
        );
        Verdict::Ask {
            request: Box::new(PermissionRequest {
                request_id: request.request_id.to_owned(),
                kind,
                tool_name: question.tool_name.clone(),
                input: question.input.clone(),
                tool_use_id: question.tool_use_id.clone(),
                description: question.description.clone(),
                reason,
                plan,
                blocked_path: question.blocked_path.clone(),
                suggestions: question.permission_suggestions.clone(),
                expires_at: None,
            }),
            answer,
        }
    }

    fn withdraw(&self, request_id: &str) -> bool {
        self.live.withdraw(request_id)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_with(
        kind: PermissionKind,
        input: Value,
    ) -> (LiveTurn, oneshot::Receiver<PersonAnswer>) {
        let (controls, _) = mpsc::unbounded_channel();
        let live = LiveTurn::new(PermissionMode::Ask, controls);
        let (sender, receiver) = oneshot::channel();
        live.register(
            "r1",
            PendingEntry {
                kind,
                tool_name: "AskUserQuestion".into(),
                input,
                suggestions: Vec::new(),
                answer: sender,
            },
        );
        (live, receiver)
    }

    fn answer(json: Value) -> PermissionAnswerRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn bad_answers_change_nothing_and_a_good_one_is_taken_once() {
        let input = json!({"questions": [{"question": "Which color?", "options": []},
                                         {"question": "Size?", "multiSelect": true}]});
        let (live, mut receiver) = live_with(PermissionKind::Question, input);
        for (bad, code) in [
            (json!({"approved": true}), "answers_required"),
            (json!({"approved": true, "answers": {"Which colour?": "red"}}), "unknown_question"),
            (json!({"approved": true, "answers": {"Size?": [1]}}), "invalid_answer"),
            (json!({"approved": true, "answers": {"Size?": "  "}}), "invalid_answer"),
            (
                json!({"approved": true, "remember": true, "answers": {"Size?": "S"}}),
                "remember_not_applicable",
            ),
            (
                json!({"approved": true, "mode": "ask", "answers": {"Size?": "S"}}),
                "mode_not_applicable",
            ),
        ] {
            match live.answer("r1", &answer(bad), false) {
                Err(AnswerError::Invalid { code: got, .. }) => assert_eq!(got, code),
                other => panic!("expected {code}, got {other:?}"),
            }
        }
        assert!(receiver.try_recv().is_err(), "nothing was sent");
        let good = answer(
            json!({"approved": true, "answers": {"Which color?": "blue", "Size?": ["S", "M"]}}),
        );
        assert!(live.answer("r1", &good, false).is_ok());
        let sent = receiver.try_recv().unwrap();
        let PermissionDecision::Allow { updated_input: Some(input) } = sent.decision else {
            panic!("not an allow with input")
        };
        assert_eq!(input["answers"], json!({"Which color?": "blue", "Size?": "S, M"}));
        assert!(matches!(live.answer("r1", &good, false), Err(AnswerError::AlreadyResolved)));
    }

    #[test]
    fn plans_continue_in_a_chosen_mode_and_bypass_needs_isolation() {
        let (live, mut receiver) = live_with(PermissionKind::Plan, json!({}));
        let bypass = answer(json!({"approved": true, "mode": "bypassPermissions"}));
        assert!(matches!(
            live.answer("r1", &bypass, false),
            Err(AnswerError::Invalid { code: "bypass_not_allowed", .. })
        ));
        assert!(matches!(
            live.answer("r1", &answer(json!({"approved": true, "mode": "plan"})), false),
            Err(AnswerError::Invalid { code: "invalid_mode", .. })
        ));
        let accepted = live.answer("r1", &bypass, true).unwrap();
        assert_eq!(accepted.mode, Some(PermissionMode::BypassPermissions));
        assert_eq!(live.mode(), PermissionMode::BypassPermissions);
        let sent = receiver.try_recv().unwrap();
        assert_eq!(
            sent.then,
            vec![ControlRequest::SetPermissionMode { mode: "bypassPermissions".into() }]
        );
    }

    #[test]
    fn denials_carry_the_persons_words() {
        let (live, mut receiver) = live_with(PermissionKind::Tool, json!({"command": "ls"}));
        live.answer("r1", &answer(json!({"approved": false, "message": "not on Fridays"})), false)
            .unwrap();
        let sent = receiver.try_recv().unwrap();
        assert_eq!(
            sent.decision,
            PermissionDecision::Deny {
                message: "The user denied this tool call: not on Fridays".into()
            }
        );
        assert!(!sent.resolution.approved);
    }
}
