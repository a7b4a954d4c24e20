//! The turn runner: accepts turns, runs each in a task, keeps chats' CLI processes between
//! turns, passes permission answers and live changes to running turns, runs queued prompts
//! in order, interrupts, and closes what a crash left open.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentbox_agent::{
    AgentError, AgentSession, AutoPolicy, SessionOptions, TurnControls, TurnOptions, TurnOutcome,
    run_turn,
};
use agentbox_bus::EventBus;
use agentbox_checkpoints::Checkpoint;
use agentbox_protocol::api::{PermissionMode, QueuedMessage};
use agentbox_protocol::cli::ControlRequest;
use agentbox_protocol::event::{EventPayload, MessageStatus, PermissionResolution, SystemEvent};
use agentbox_protocol::permission::{
    PermissionAnswerRequest, PermissionAnswerResponse, PermissionKind, ResolvedBy,
};
use agentbox_sandbox::{Sandbox, SandboxError, SandboxLimit, SandboxProvider};
use agentbox_store::{
    ChatRecord, CheckpointKind, CheckpointRecord, NewChat, NewEvent, Rewind, StartedTurn, Store,
    StoreError, TurnResult,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::checkpoints::{CheckpointFailure, Checkpoints};
use crate::config::RunnerConfig;
use crate::permissions::{AnswerError, ChatPolicy, LiveTurn};
use crate::sink::LogSink;

const DEMO_NOTICE: &str = "Demo mode: replies come from agentbox's scripted mock model, not \
                           from Claude. Configure ANTHROPIC_API_KEY to use a real model.";

/// A prompt to run, with optional per-message overrides of the chat's settings.
#[derive(Clone, Debug)]
pub struct TurnRequest {
    pub prompt: String,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
}

/// Changes to a chat's settings that reach its running turn at once.
#[derive(Clone, Debug, Default)]
pub struct LiveChange {
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
    /// `Some(None)` goes back to the CLI's default budget.
    pub max_thinking_tokens: Option<Option<u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a turn is already running in this chat")]
    Busy,
    #[error("no turn is running in this chat")]
    NotRunning,
    #[error("the chat does not exist")]
    ChatNotFound,
    #[error("the chat has no such queued message")]
    QueuedNotFound,
    #[error("bypassPermissions needs an isolating sandbox")]
    BypassNotAllowed,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RunError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict("turn_in_progress") => Self::Busy,
            StoreError::NotFound => Self::ChatNotFound,
            other => Self::Store(other),
        }
    }
}

/// Why an answer to a permission request was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error("the chat has no such permission request")]
    NotFound,
    /// Answered already, timed out, withdrawn, or closed with its turn or by a restart.
    #[error("the permission request was already settled")]
    AlreadyResolved(Option<ResolvedBy>),
    #[error("the turn that asked is no longer running")]
    TurnNotRunning,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a chat's sandbox could not be restarted.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// A turn started while the running one was being stopped for the restart.
    #[error("a turn is running in this chat")]
    Busy,
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// The end of a sandbox failure's message: what a user can do about it.
const RESTART_HINT: &str = "If this keeps happening, restart the sandbox from the workspace \
                            panel (that stops running commands, servers and terminals; files \
                            are kept).";

/// What a restore did: the checkpoint that undoes it, or why none could be taken, and the
/// messages it hid and showed.
#[derive(Debug)]
pub struct Restoration {
    pub undo_id: Option<Uuid>,
    pub undo_refused: Option<String>,
    pub rewind: Rewind,
}

/// What `send now` did with a queued prompt.
#[derive(Clone, Debug, PartialEq)]
pub enum SendNow {
    /// The chat was idle: the prompt's turn has started.
    Started(QueuedMessage),
    /// The running turn is being interrupted; the prompt runs as soon as it has stopped.
    AfterInterrupt,
}

/// Why a turn failed outside the CLI, as shown to the user.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn from_agent(err: AgentError) -> Self {
        match err {
            AgentError::CliUnavailable => Self {
                code: "cli_unavailable",
                message: "The Claude Code CLI is not installed for this server. Run \
                          scripts/setup, or set AGENTBOX_CLAUDE_PATH to the `claude` binary."
                    .into(),
            },
            AgentError::Sandbox(err) => Self::from_sandbox(&err, None),
            AgentError::Closed => Self {
                code: "cli_exited",
                message: "The Claude Code CLI stopped before the turn could start.".into(),
            },
            AgentError::Sink(err) => Self {
                code: "storage_error",
                message: format!("Events could not be stored: {err}"),
            },
        }
    }
}

impl Failure {
    /// A sandbox that failed to start or to run the CLI. The cause is named only where it is
    /// certain: a refused fork (`EAGAIN`) is the process limit, and a sandbox the provider
    /// stopped itself (`stopped_because`) was over its disk quota.
    fn from_sandbox(err: &SandboxError, stopped_because: Option<String>) -> Self {
        if err.limit() == Some(SandboxLimit::Processes) {
            return Self {
                code: "sandbox_out_of_processes",
                message: "The agent could not start because the chat's sandbox is out of \
                          processes: what runs there already holds all that its limit allows. \
                          Restart the sandbox from the workspace panel (that stops running \
                          commands, servers and terminals; files are kept), then send the \
                          message again."
                    .into(),
            };
        }
        if let Some(reason) = stopped_because {
            return Self {
                code: "sandbox_out_of_disk",
                message: format!(
                    "The chat's sandbox was stopped because {reason}. Delete files in the \
                     workspace panel, then send the message again."
                ),
            };
        }
        Self {
            code: "sandbox_error",
            message: format!("The chat's sandbox failed: {err}. {RESTART_HINT}"),
        }
    }
}

struct Job {
    chat_id: Uuid,
    message_id: Uuid,
    prompt: String,
    key: SessionKey,
    live: Arc<LiveTurn>,
    controls: TurnControls,
}

/// How a CLI process was started; a turn asking for something else gets a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SessionKey {
    model: String,
    /// The CLI's own mode: `ask` and `auto` share `default`, so they share a process.
    cli_mode: &'static str,
    max_thinking_tokens: Option<u32>,
    system_prompt: Option<String>,
    allow_bypass: bool,
}

struct ActiveTurn {
    message_id: Uuid,
    interrupt: CancellationToken,
    finished: CancellationToken,
    live: Arc<LiveTurn>,
    /// A queued prompt to run as soon as this turn has stopped (`send now`).
    send_now: Option<Uuid>,
}

struct IdleSession {
    session: AgentSession,
    key: SessionKey,
    generation: u64,
}

pub struct TurnRunner {
    store: Store,
    bus: Arc<EventBus>,
    sandboxes: Arc<dyn SandboxProvider>,
    config: RunnerConfig,
    auto: Arc<AutoPolicy>,
    active: Mutex<HashMap<Uuid, ActiveTurn>>,
    idle: Arc<Mutex<HashMap<Uuid, IdleSession>>>,
    /// Chats whose queue waits for `send now`: their last turn was interrupted, or the
    /// server restarted.
    paused: Mutex<HashSet<Uuid>>,
    generation: AtomicU64,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
    shutting_down: AtomicBool,
    /// Checkpoint stores; `None` when checkpoints are off.
    checkpoints: Option<Checkpoints>,
    /// Per chat: held while a turn is being started and during a restore or fork, so that
    /// neither starts in the middle of the other.
    gates: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for TurnRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRunner").field("config", &self.config).finish_non_exhaustive()
    }
}

impl TurnRunner {
    pub fn new(
        store: Store,
        bus: Arc<EventBus>,
        sandboxes: Arc<dyn SandboxProvider>,
        config: RunnerConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(config.max_concurrent_turns.max(1))),
            auto: Arc::new(config.permissions.auto.clone()),
            checkpoints: Checkpoints::new(&config.checkpoints),
            gates: Mutex::default(),
            store,
            bus,
            sandboxes,
            config,
            active: Mutex::default(),
            idle: Arc::default(),
            paused: Mutex::default(),
            generation: AtomicU64::new(0),
            tasks: TaskTracker::new(),
            shutting_down: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    pub fn sandbox_provider(&self) -> &dyn SandboxProvider {
        self.sandboxes.as_ref()
    }

    /// Whether chats may use `bypassPermissions`: only in an isolating sandbox, unless the
    /// operator allowed it without one.
    pub fn bypass_allowed(&self) -> bool {
        self.sandboxes.isolates() || self.config.permissions.allow_bypass_without_isolation
    }

    /// Close what a previous run of the server left open. Open permission requests are
    /// denied (`server_restarted`); each unfinished turn gets an error event saying why and
    /// ends `interrupted`; queues keep their prompts but wait for `send now`. Call before
    /// serving requests.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        for (chat_id, message_id, request_id) in self.store.all_pending_permissions().await? {
            let resolution =
                PermissionResolution::new(&request_id, false, ResolvedBy::ServerRestarted)
                    .with_message(
                        "agentbox restarted while this request was open, so it was denied.",
                    );
            self.store
                .append_permission_event(
                    chat_id,
                    NewEvent::new(message_id, EventPayload::PermissionResolved(resolution)),
                )
                .await?;
            tracing::info!(%chat_id, %request_id, "denied a permission request left open by a restart");
        }
        let unfinished = self.store.unfinished_turns().await?;
        for &(chat_id, message_id) in &unfinished {
            self.store
                .append_event(
                    chat_id,
                    NewEvent::new(
                        message_id,
                        EventPayload::error(
                            "agentbox stopped while this turn was running, so it was cut off.",
                            "server_restarted",
                        ),
                    ),
                )
                .await?;
            self.store
                .finish_turn(chat_id, message_id, TurnResult::status(MessageStatus::Interrupted))
                .await?;
            tracing::info!(%chat_id, %message_id, "closed a turn left open by a crash");
        }
        let queued = self.store.chats_with_queued_messages().await?;
        lock(&self.paused).extend(queued);
        Ok(unfinished.len())
    }

    /// Record a turn and start running it. `Busy` while the chat has a turn running.
    pub async fn submit(
        self: &Arc<Self>,
        chat: &ChatRecord,
        request: TurnRequest,
    ) -> Result<StartedTurn, RunError> {
        let mode = request.permission_mode.unwrap_or(chat.permission_mode);
        if mode == PermissionMode::BypassPermissions && !self.bypass_allowed() {
            return Err(RunError::BypassNotAllowed);
        }
        let model = request.model.unwrap_or_else(|| chat.model.clone());
        let gate = self.gate(chat.id);
        let _gate = gate.lock().await;
        let started = self.store.begin_turn(chat.id, &request.prompt, &model, mode).await?;
        self.launch(chat, &started, model, mode, request.prompt).await;
        Ok(started)
    }

    /// Start the task of a recorded turn.
    async fn launch(
        self: &Arc<Self>,
        chat: &ChatRecord,
        started: &StartedTurn,
        model: String,
        mode: PermissionMode,
        prompt: String,
    ) {
        self.bus.publish(chat.id, started.user_event.clone());
        let key = SessionKey {
            model,
            cli_mode: mode.cli_mode(),
            max_thinking_tokens: chat.max_thinking_tokens,
            system_prompt: self.system_prompt(chat).await,
            allow_bypass: self.bypass_allowed(),
        };
        let interrupt = CancellationToken::new();
        let finished = CancellationToken::new();
        let (controls, commands) = TurnControls::new(interrupt.clone());
        let live = Arc::new(LiveTurn::new(mode, commands));
        lock(&self.active).insert(
            chat.id,
            ActiveTurn {
                message_id: started.message_id,
                interrupt,
                finished: finished.clone(),
                live: live.clone(),
                send_now: None,
            },
        );
        let job =
            Job { chat_id: chat.id, message_id: started.message_id, prompt, key, live, controls };
        let runner = self.clone();
        self.tasks.spawn(async move {
            runner.run(job).await;
            finished.cancel();
        });
    }

    /// The operator's, the user's and the chat's instructions, in that order.
    async fn system_prompt(&self, chat: &ChatRecord) -> Option<String> {
        let user = match self.store.user_settings(chat.user_id).await {
            Ok(settings) => settings.custom_instructions,
            Err(err) => {
                tracing::warn!(chat_id = %chat.id, %err, "could not read the user's instructions");
                None
            }
        };
        let parts: Vec<String> =
            [self.config.append_system_prompt.clone(), user, chat.custom_instructions.clone()]
                .into_iter()
                .flatten()
                .map(|part| part.trim().to_owned())
                .filter(|part| !part.is_empty())
                .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// Whether the chat has a turn running on this node.
    pub fn is_running(&self, chat_id: Uuid) -> bool {
        lock(&self.active).contains_key(&chat_id)
    }

    /// Ask the chat's running turn to stop. The turn ends `interrupted` shortly after, and
    /// the chat's queue waits for `send now`.
    pub fn interrupt(&self, chat_id: Uuid) -> Result<Uuid, RunError> {
        let active = lock(&self.active);
        let turn = active.get(&chat_id).ok_or(RunError::NotRunning)?;
        turn.interrupt.cancel();
        Ok(turn.message_id)
    }

    /// Apply changed settings to the chat's running turn, if it has one: the CLI gets
    /// `set_model`, `set_permission_mode` or `set_max_thinking_tokens` at once, and the
    /// turn's permission decisions follow the new mode.
    pub fn apply_live(&self, chat_id: Uuid, change: &LiveChange) {
        let Some(live) = lock(&self.active).get(&chat_id).map(|turn| turn.live.clone()) else {
            return;
        };
        if let Some(model) = &change.model {
            live.control(ControlRequest::SetModel { model: Some(model.clone()) });
        }
        if let Some(mode) = change.permission_mode {
            live.set_mode(mode);
        }
        if let Some(tokens) = change.max_thinking_tokens {
            live.control(ControlRequest::SetMaxThinkingTokens { max_thinking_tokens: tokens });
        }
    }

    /// Answer an open permission request of the chat for its owner.
    pub async fn answer_permission(
        &self,
        chat_id: Uuid,
        request_id: &str,
        answer: &PermissionAnswerRequest,
    ) -> Result<PermissionAnswerResponse, PermissionError> {
        let record = self
            .store
            .permission_request(chat_id, request_id)
            .await?
            .ok_or(PermissionError::NotFound)?;
        if !record.is_pending() {
            return Err(PermissionError::AlreadyResolved(record.resolved_by));
        }
        let live = lock(&self.active)
            .get(&chat_id)
            .filter(|turn| turn.message_id == record.message_id)
            .map(|turn| turn.live.clone())
            .ok_or(PermissionError::TurnNotRunning)?;
        let mut answer = answer.clone();
        if record.kind == PermissionKind::Plan && answer.approved && answer.mode.is_none() {
            // An approved plan continues in the chat's own mode, or in `auto` when the chat
            // itself is in plan mode.
            let chat_mode = self.store.chat_unscoped(chat_id).await?.map(|c| c.permission_mode);
            answer.mode = Some(match chat_mode {
                Some(mode) if mode != PermissionMode::Plan => mode,
                _ => PermissionMode::default(),
            });
        }
        let accepted =
            live.answer(request_id, &answer, self.bypass_allowed()).map_err(|err| match err {
                AnswerError::AlreadyResolved => PermissionError::AlreadyResolved(None),
                AnswerError::TurnNotRunning => PermissionError::TurnNotRunning,
                AnswerError::Invalid { code, message } => {
                    PermissionError::Invalid { code, message }
                }
            })?;
        // The CLI has its answer; what follows only keeps the decision for later turns.
        if let Some(rule) = &accepted.rule
            && let Err(err) = self.store.add_permission_rule(chat_id, rule).await
        {
            tracing::error!(%chat_id, %err, "could not store an \"always allow\" rule");
        }
        if let Some(mode) = accepted.mode
            && let Err(err) = self.store.set_chat_permission_mode(chat_id, mode).await
        {
            tracing::error!(%chat_id, %err, "could not store the mode chosen with a plan");
        }
        Ok(PermissionAnswerResponse {
            request_id: request_id.to_owned(),
            approved: accepted.approved,
            rule: accepted.rule,
            mode: accepted.mode,
        })
    }

    /// Queue a prompt. When the chat is idle and its queue is not paused, the queue starts
    /// at once; the returned message then has its `message_id` if it was this prompt's turn
    /// that started.
    pub async fn enqueue(
        self: &Arc<Self>,
        chat: &ChatRecord,
        request: TurnRequest,
    ) -> Result<QueuedMessage, RunError> {
        if request.permission_mode == Some(PermissionMode::BypassPermissions)
            && !self.bypass_allowed()
        {
            return Err(RunError::BypassNotAllowed);
        }
        let mut queued = self
            .store
            .enqueue(chat.id, &request.prompt, request.model.as_deref(), request.permission_mode)
            .await?;
        if self.store.queue(chat.id).await?.len() == 1 {
            // A pause only holds back prompts that were waiting when it began.
            lock(&self.paused).remove(&chat.id);
        }
        if !self.is_running(chat.id) && !lock(&self.paused).contains(&chat.id) {
            match self.start_queued(chat.id, None).await {
                Ok(Some((started, _))) if started.id == queued.id => queued = started,
                Ok(_) | Err(RunError::Busy) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(queued)
    }

    /// Run a queued prompt now: at once when the chat is idle, otherwise right after the
    /// running turn, which is interrupted. The queue is no longer paused.
    pub async fn send_now(self: &Arc<Self>, chat_id: Uuid, id: Uuid) -> Result<SendNow, RunError> {
        if !self.store.move_queued_to_front(chat_id, id).await? {
            return Err(RunError::QueuedNotFound);
        }
        lock(&self.paused).remove(&chat_id);
        {
            let mut active = lock(&self.active);
            if let Some(turn) = active.get_mut(&chat_id) {
                turn.send_now = Some(id);
                turn.interrupt.cancel();
                return Ok(SendNow::AfterInterrupt);
            }
        }
        match self.start_queued(chat_id, Some(id)).await? {
            Some((queued, _)) => Ok(SendNow::Started(queued)),
            None => Err(RunError::QueuedNotFound),
        }
    }

    /// Take a queued prompt (the next one when `id` is `None`) out of the queue and start
    /// its turn.
    async fn start_queued(
        self: &Arc<Self>,
        chat_id: Uuid,
        id: Option<Uuid>,
    ) -> Result<Option<(QueuedMessage, StartedTurn)>, RunError> {
        let chat = self.store.chat_unscoped(chat_id).await?.ok_or(RunError::ChatNotFound)?;
        let gate = self.gate(chat_id);
        let _gate = gate.lock().await;
        let Some((queued, started)) =
            self.store.begin_queued_turn(chat_id, id, &chat.model, chat.permission_mode).await?
        else {
            return Ok(None);
        };
        let model = queued.model.clone().unwrap_or_else(|| chat.model.clone());
        let mode = queued.permission_mode.unwrap_or(chat.permission_mode);
        self.launch(&chat, &started, model, mode, queued.prompt.clone()).await;
        tracing::info!(%chat_id, queued_id = %queued.id, message_id = %started.message_id, "a queued prompt started");
        Ok(Some((queued, started)))
    }

    /// After a turn: run the prompt sent with `send now`, or the next queued one when the
    /// turn was not interrupted; an interrupt pauses the queue.
    async fn after_turn(
        self: &Arc<Self>,
        chat_id: Uuid,
        status: MessageStatus,
        next: Option<Uuid>,
    ) {
        if self.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let id = match next {
            Some(id) => Some(id),
            None if status == MessageStatus::Interrupted => {
                lock(&self.paused).insert(chat_id);
                return;
            }
            None if lock(&self.paused).contains(&chat_id) => return,
            None => None,
        };
        match self.start_queued(chat_id, id).await {
            Ok(Some(_)) => {}
            // A prompt sent now may have been deleted meanwhile; the rest of the queue goes on.
            Ok(None) if id.is_some() => Box::pin(self.after_turn(chat_id, status, None)).await,
            Ok(None) | Err(RunError::Busy | RunError::ChatNotFound) => {}
            Err(err) => tracing::error!(%chat_id, %err, "could not start the next queued prompt"),
        }
    }

    /// End every process of the chat's sandbox and start it again; its files and the CLI
    /// session stay (the transcript is in the workspace: the next turn resumes it with
    /// `--resume`). A running turn is interrupted first and ends `interrupted`, with a notice
    /// saying why, and the chat's queue pauses as after any interrupt; a turn that does not
    /// stop within the interrupt grace is ended by the restart itself, which closes its CLI's
    /// connection. Returns once the sandbox runs again.
    pub async fn restart_sandbox(&self, chat_id: Uuid) -> Result<(), RestartError> {
        let running = lock(&self.active).get_mut(&chat_id).map(|turn| {
            turn.send_now = None;
            (turn.message_id, turn.interrupt.clone(), turn.finished.clone())
        });
        let id = chat_id.to_string();
        if let Some((message_id, interrupt, finished)) = running {
            let text = "The sandbox was restarted from the workspace panel, so this turn was \
                        interrupted.";
            match self
                .store
                .append_event(chat_id, NewEvent::new(message_id, notice("sandbox_restarted", text)))
                .await
            {
                Ok(event) => self.bus.publish(chat_id, event),
                Err(err) => tracing::warn!(%chat_id, %err, "could not record the restart notice"),
            }
            interrupt.cancel();
            let grace = self.config.interrupt_grace + Duration::from_secs(2);
            if tokio::time::timeout(grace, finished.cancelled()).await.is_err() {
                // A CLI that cannot even be killed through its sandbox goes with the sandbox.
                self.sandboxes.stop(&id).await?;
                let _ = tokio::time::timeout(grace, finished.cancelled()).await;
            }
        }
        let gate = self.gate(chat_id);
        let _gate = gate.lock().await;
        if self.is_running(chat_id) {
            return Err(RestartError::Busy);
        }
        // The idle CLI process dies with the sandbox; the next turn starts one with --resume.
        drop(lock(&self.idle).remove(&chat_id));
        self.sandboxes.restart(&id).await?;
        tracing::info!(%chat_id, "restarted the chat's sandbox");
        Ok(())
    }

    /// Stop everything of a chat that is being deleted and remove its sandbox.
    pub async fn forget_chat(&self, chat_id: Uuid) {
        let finished = lock(&self.active).get_mut(&chat_id).map(|turn| {
            turn.send_now = None;
            turn.interrupt.cancel();
            turn.finished.clone()
        });
        if let Some(finished) = finished {
            let wait = self.config.interrupt_grace + Duration::from_secs(5);
            let _ = tokio::time::timeout(wait, finished.cancelled()).await;
        }
        lock(&self.paused).remove(&chat_id);
        let idle = lock(&self.idle).remove(&chat_id);
        drop(idle);
        if let Err(err) = self.sandboxes.delete(&chat_id.to_string()).await {
            tracing::warn!(%chat_id, %err, "could not delete the chat's sandbox");
        }
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.remove(chat_id).await;
        }
        lock(&self.gates).remove(&chat_id);
    }

    /// Interrupt every running turn, wait for them to be recorded as such and for their CLI
    /// processes to end, and stop idle CLI processes. For a graceful server shutdown.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for turn in lock(&self.active).values() {
            // Requests still open are denied by the restart, as after a crash.
            turn.live.deny_all(
                ResolvedBy::ServerRestarted,
                "agentbox is restarting, so this request was denied.",
            );
            turn.interrupt.cancel();
        }
        self.tasks.close();
        let wait = self.config.interrupt_grace + Duration::from_secs(5);
        if tokio::time::timeout(wait, self.tasks.wait()).await.is_err() {
            tracing::warn!("some turns did not finish during shutdown");
        }
        lock(&self.idle).clear();
    }

    /// The whole life of a turn's task. Boxed with an explicit `Send` because a finished
    /// turn can start the next queued one, which makes the future's type recursive.
    fn run(self: Arc<Self>, job: Job) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_job(job))
    }

    async fn run_job(self: Arc<Self>, mut job: Job) {
        let sink = LogSink {
            store: self.store.clone(),
            bus: self.bus.clone(),
            chat_id: job.chat_id,
            message_id: job.message_id,
        };
        let result = match self.execute(&mut job, sink.clone()).await {
            Ok(outcome) => TurnResult {
                status: outcome.status,
                total_cost_usd: outcome.total_cost_usd,
                usage: outcome.usage,
                session_id: outcome.session_id,
            },
            Err(failure) => {
                tracing::warn!(chat_id = %job.chat_id, code = failure.code, "{}", failure.message);
                if let Err(err) =
                    sink.record(EventPayload::error(failure.message, failure.code)).await
                {
                    tracing::error!(%err, "could not record the turn's failure");
                }
                TurnResult::status(MessageStatus::Failed)
            }
        };
        let status = result.status;
        self.checkpoint_after_turn(job.chat_id, job.message_id, result.session_id.clone(), &sink)
            .await;
        crate::titles::name_after_turn(&self.store, job.chat_id).await;
        match self.store.finish_turn(job.chat_id, job.message_id, result).await {
            Ok(event) => self.bus.publish(job.chat_id, event),
            Err(err) => tracing::error!(
                chat_id = %job.chat_id, message_id = %job.message_id, %err,
                "could not finish the turn; the next start-up will close it"
            ),
        }
        let next = {
            let mut active = lock(&self.active);
            match active.get(&job.chat_id) {
                Some(turn) if turn.message_id == job.message_id => {
                    active.remove(&job.chat_id).and_then(|turn| turn.send_now)
                }
                _ => None,
            }
        };
        tracing::info!(chat_id = %job.chat_id, message_id = %job.message_id, status = status.as_str(), "turn finished");
        self.after_turn(job.chat_id, status, next).await;
    }

    async fn execute(&self, job: &mut Job, mut sink: LogSink) -> Result<TurnOutcome, Failure> {
        let record = |sink: &LogSink, event| {
            let sink = sink.clone();
            async move { sink.record(event).await.map(drop).map_err(|e| Failure::from_agent(e.into())) }
        };
        let _slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                record(
                    &sink,
                    notice("queued", "Waiting for a free slot: other turns are running."),
                )
                .await?;
                tokio::select! {
                    slot = self.slots.clone().acquire_owned() => slot.map_err(|_| Failure {
                        code: "shutting_down",
                        message: "agentbox is shutting down.".into(),
                    })?,
                    () = job.controls.interrupt.cancelled() => return Ok(interrupted()),
                }
            }
        };
        if self.config.model_access.demo {
            record(&sink, notice("demo", DEMO_NOTICE)).await?;
        }
        if !self.config.model_access.is_configured() {
            return Err(Failure {
                code: "model_not_configured",
                message: "No model credentials are configured. Set ANTHROPIC_API_KEY (or \
                          ANTHROPIC_AUTH_TOKEN) for the server and restart it, or start it with \
                          `agentbox serve --demo` to try agentbox with scripted replies."
                    .into(),
            });
        }
        if job.live.mode() == PermissionMode::BypassPermissions && !self.bypass_allowed() {
            return Err(Failure {
                code: "bypass_not_allowed",
                message: crate::permissions::BYPASS_REFUSAL.into(),
            });
        }
        let sandbox = match self.sandboxes.ensure(&job.chat_id.to_string()).await {
            Ok(sandbox) => sandbox,
            Err(err) => {
                let stopped_because =
                    self.sandboxes.stopped_because(&job.chat_id.to_string()).await;
                return Err(Failure::from_sandbox(&err, stopped_because));
            }
        };
        let policy = ChatPolicy {
            chat_id: job.chat_id,
            live: job.live.clone(),
            store: self.store.clone(),
            auto: self.auto.clone(),
            workspace: PathBuf::from(sandbox.home()),
        };
        let mut session = match self.take_idle(job.chat_id, &job.key) {
            Some(session) => session,
            None => {
                let resume = self
                    .store
                    .chat_unscoped(job.chat_id)
                    .await
                    .map_err(|err| Failure { code: "storage_error", message: err.to_string() })?
                    .and_then(|chat| chat.session_id);
                self.start_session(sandbox.as_ref(), &job.key, resume).await?
            }
        };
        let options = TurnOptions {
            grace: self.config.interrupt_grace,
            permission_timeout: self.config.permissions.timeout,
        };
        let mut outcome =
            run_turn(&mut session, &job.prompt, &policy, &mut sink, &mut job.controls, &options)
                .await
                .map_err(Failure::from_agent)?;
        if outcome.resume_failed {
            if let Err(err) = self.store.clear_session_id(job.chat_id).await {
                tracing::warn!(%err, "could not forget a lost CLI session");
            }
            record(
                &sink,
                notice(
                    "session_reset",
                    "The chat's previous CLI session could not be found, so this turn starts a \
                     new one: the model does not see the earlier turns.",
                ),
            )
            .await?;
            session = self.start_session(sandbox.as_ref(), &job.key, None).await?;
            outcome = run_turn(
                &mut session,
                &job.prompt,
                &policy,
                &mut sink,
                &mut job.controls,
                &options,
            )
            .await
            .map_err(Failure::from_agent)?;
        }
        // A process whose model, mode or thinking changed during the turn no longer matches
        // its key; the next turn starts a fresh one with the chat's settings.
        let reusable = !job.live.changed() && !outcome.control_refused;
        self.park_or_stop(job.chat_id, job.key.clone(), session, &outcome, reusable);
        Ok(outcome)
    }

    async fn start_session(
        &self,
        sandbox: &dyn Sandbox,
        key: &SessionKey,
        resume: Option<String>,
    ) -> Result<AgentSession, Failure> {
        let mut env = self.config.model_access.env();
        env.push(("CLAUDE_CODE_MAX_RETRIES".into(), self.config.cli_max_retries.to_string()));
        if key.allow_bypass || key.cli_mode == PermissionMode::BypassPermissions.cli_mode() {
            // The CLI refuses bypassPermissions as root unless told it is sandboxed.
            env.push(("IS_SANDBOX".into(), "1".into()));
        }
        let options = SessionOptions {
            model: key.model.clone(),
            cli_permission_mode: key.cli_mode.to_owned(),
            resume,
            append_system_prompt: key.system_prompt.clone(),
            max_thinking_tokens: key.max_thinking_tokens,
            allow_bypass: key.allow_bypass,
            env,
        };
        AgentSession::start(sandbox, options).await.map_err(Failure::from_agent)
    }

    /// The chat's idle CLI process, if it is alive and was started the same way; otherwise
    /// it is stopped.
    fn take_idle(&self, chat_id: Uuid, key: &SessionKey) -> Option<AgentSession> {
        let idle = lock(&self.idle).remove(&chat_id)?;
        if idle.key == *key && idle.session.is_alive() {
            return Some(idle.session);
        }
        let grace = self.config.interrupt_grace;
        // Tracked, so that a server shutdown waits until the process is gone.
        self.tasks.spawn(idle.session.shutdown(grace));
        None
    }

    /// The gate of a chat (see [`TurnRunner::gates`]).
    fn gate(&self, chat_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.gates).entry(chat_id).or_default().clone()
    }

    /// Checkpoint the chat's workspace after a turn and tie the checkpoint to the turn's
    /// message. A failure is told in a `system/checkpoint_failed` event; the turn stands.
    async fn checkpoint_after_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        session_id: Option<String>,
        sink: &LogSink,
    ) {
        let Some(checkpoints) = &self.checkpoints else { return };
        let taken = async {
            let workspace = self
                .sandboxes
                .workspace(&chat_id.to_string())
                .await
                .map_err(|e| CheckpointFailure::Failed(e.to_string()))?;
            let session_id = match session_id {
                Some(id) => Some(id),
                None => self.store.chat_unscoped(chat_id).await?.and_then(|chat| chat.session_id),
            };
            let checkpoint = checkpoints
                .take(chat_id, workspace.root(), format!("after message {message_id}"))
                .await?;
            self.store
                .record_checkpoint(
                    chat_id,
                    checkpoint.id.as_uuid(),
                    CheckpointKind::Turn,
                    Some(message_id),
                    session_id.as_deref(),
                )
                .await?;
            let dropped = checkpoints.prune(chat_id).await?;
            if !dropped.is_empty() {
                self.store.forget_checkpoints(chat_id, &dropped).await?;
            }
            Ok::<_, CheckpointFailure>(checkpoint)
        }
        .await;
        match taken {
            Ok(checkpoint) => {
                tracing::debug!(%chat_id, checkpoint = %checkpoint.id, "checkpoint taken")
            }
            Err(err) => {
                tracing::warn!(%chat_id, %err, "could not checkpoint the workspace after a turn");
                let _ = sink
                    .record(notice(
                        "checkpoint_failed",
                        &format!("No checkpoint was taken after this turn: {err}"),
                    ))
                    .await;
            }
        }
    }

    /// The chat's checkpoints, newest first, with what the store knows of each (absent for
    /// one the store no longer has).
    pub async fn checkpoints(
        &self,
        chat_id: Uuid,
    ) -> Result<Vec<(CheckpointRecord, Option<Checkpoint>)>, CheckpointFailure> {
        let checkpoints = self.checkpoints.as_ref().ok_or(CheckpointFailure::Disabled)?;
        let records = self.store.checkpoints(chat_id).await?;
        let mut stored: HashMap<Uuid, Checkpoint> =
            checkpoints.list(chat_id).await?.into_iter().map(|c| (c.id.as_uuid(), c)).collect();
        Ok(records
            .into_iter()
            .map(|record| {
                let details = stored.remove(&record.id);
                (record, details)
            })
            .collect())
    }

    /// Make the chat's workspace, conversation and CLI session what they were at checkpoint
    /// `id`. The chat's processes are stopped first (the next use starts them again), and
    /// a checkpoint of the present is taken, whose id comes back: restoring it undoes this.
    /// A present that cannot be checkpointed (too deep, too many entries) is restored over
    /// all the same; then the reason why there is no undo comes back instead.
    pub async fn restore(
        &self,
        chat: &ChatRecord,
        id: Uuid,
    ) -> Result<Restoration, CheckpointFailure> {
        let checkpoints = self.checkpoints.as_ref().ok_or(CheckpointFailure::Disabled)?;
        let gate = self.gate(chat.id);
        let _gate = gate.lock().await;
        if self.is_running(chat.id) || self.store.running_turn(chat.id).await?.is_some() {
            return Err(CheckpointFailure::Busy);
        }
        let target =
            self.store.checkpoint(chat.id, id).await?.ok_or(CheckpointFailure::NotFound)?;
        // Nothing may write into the workspace while it is rewritten, and the CLI must not
        // keep the conversation in memory: its next turn reads the restored transcript.
        drop(lock(&self.idle).remove(&chat.id));
        self.sandboxes
            .stop(&chat.id.to_string())
            .await
            .map_err(|e| CheckpointFailure::Failed(e.to_string()))?;
        let workspace = self
            .sandboxes
            .workspace(&chat.id.to_string())
            .await
            .map_err(|e| CheckpointFailure::Failed(e.to_string()))?;
        let current =
            self.store.chat_unscoped(chat.id).await?.ok_or(CheckpointFailure::NotFound)?;
        let last_visible = self.store.messages(chat.id).await?.last().map(|m| m.id);
        let undo = checkpoints.restore(chat.id, id, workspace.root(), workspace.owner()).await?;
        let (undo_id, undo_refused) = match undo {
            Ok(undo) => {
                let record = self
                    .store
                    .record_checkpoint(
                        chat.id,
                        undo.id.as_uuid(),
                        CheckpointKind::BeforeRestore,
                        last_visible,
                        current.session_id.as_deref(),
                    )
                    .await?;
                (Some(record.id), None)
            }
            Err(reason) => (None, reason),
        };
        let rewind = self.store.rewind(chat.id, &target).await?;
        self.bus.publish(chat.id, rewind.event.clone());
        tracing::info!(chat_id = %chat.id, checkpoint = %id, hidden = rewind.hidden.len(), shown = rewind.shown.len(), "restored a checkpoint");
        Ok(Restoration { undo_id, undo_refused, rewind })
    }

    /// A new chat of the same user holding the workspace and the conversation as they were
    /// after `message_id`. Parent and fork are independent from then on.
    pub async fn fork(
        &self,
        chat: &ChatRecord,
        message_id: Uuid,
        title: String,
    ) -> Result<ChatRecord, CheckpointFailure> {
        let checkpoints = self.checkpoints.as_ref().ok_or(CheckpointFailure::Disabled)?;
        let gate = self.gate(chat.id);
        let _gate = gate.lock().await;
        let source = self
            .store
            .checkpoints(chat.id)
            .await?
            .into_iter()
            .find(|c| c.kind == CheckpointKind::Turn && c.message_id == Some(message_id))
            .ok_or(CheckpointFailure::NoCheckpoint)?;
        let fork = self
            .store
            .create_chat(NewChat {
                user_id: chat.user_id,
                title,
                model: chat.model.clone(),
                permission_mode: chat.permission_mode,
                sandbox_provider: self.sandboxes.name().to_owned(),
                custom_instructions: chat.custom_instructions.clone(),
                max_thinking_tokens: chat.max_thinking_tokens,
            })
            .await?;
        let made = async {
            self.store
                .copy_conversation(chat, fork.id, message_id, source.session_id.as_deref())
                .await?;
            let workspace = self
                .sandboxes
                .workspace(&fork.id.to_string())
                .await
                .map_err(|e| CheckpointFailure::Failed(e.to_string()))?;
            let first = checkpoints
                .fork(chat.id, source.id, fork.id, workspace.root(), workspace.owner())
                .await?;
            self.store
                .record_checkpoint(
                    fork.id,
                    first.id.as_uuid(),
                    CheckpointKind::Fork,
                    None,
                    source.session_id.as_deref(),
                )
                .await?;
            Ok::<_, CheckpointFailure>(())
        }
        .await;
        if let Err(err) = made {
            // No half-made fork is left behind.
            let _ = self.store.delete_chat(chat.user_id, fork.id).await;
            let _ = self.sandboxes.delete(&fork.id.to_string()).await;
            checkpoints.remove(fork.id).await;
            return Err(err);
        }
        tracing::info!(from = %chat.id, fork = %fork.id, %message_id, "forked a chat");
        Ok(self.store.chat_unscoped(fork.id).await?.unwrap_or(fork))
    }

    /// Keep a healthy CLI process for the chat's next turn, or stop it.
    fn park_or_stop(
        &self,
        chat_id: Uuid,
        key: SessionKey,
        session: AgentSession,
        outcome: &TurnOutcome,
        reusable: bool,
    ) {
        let timeout = self.config.idle_session_timeout;
        let grace = self.config.interrupt_grace;
        if outcome.status != MessageStatus::Completed
            || !reusable
            || !session.is_alive()
            || timeout.is_zero()
        {
            self.tasks.spawn(session.shutdown(grace));
            return;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        lock(&self.idle).insert(chat_id, IdleSession { session, key, generation });
        let idle = self.idle.clone();
        // Not tracked by `tasks`: shutdown must not wait for idle timers.
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let expired = {
                let mut idle = lock(&idle);
                match idle.get(&chat_id) {
                    Some(entry) if entry.generation == generation => idle.remove(&chat_id),
                    _ => None,
                }
            };
            if let Some(entry) = expired {
                entry.session.shutdown(grace).await;
            }
        });
    }
}

fn notice(subtype: &str, text: &str) -> EventPayload {
    EventPayload::System(SystemEvent::new(subtype).with("text", text))
}

fn interrupted() -> TurnOutcome {
    TurnOutcome {
        status: MessageStatus::Interrupted,
        session_id: None,
        usage: None,
        total_cost_usd: None,
        resume_failed: false,
        control_refused: false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_failure_names_the_limit_only_when_it_is_certain() {
        let refused = SandboxError::Spawn {
            program: "/opt/agentbox/bin/claude".into(),
            source: std::io::Error::from_raw_os_error(11), // EAGAIN,
        };
        let failure = Failure::from_sandbox(&refused, None);
        assert_eq!(failure.code, "sandbox_out_of_processes");
        assert!(failure.message.contains("Restart the sandbox from the workspace panel"));

        let over_quota = SandboxError::Unavailable("the workspace uses 120 MiB".into());
        let reason = "the workspace grew to 120 MiB, over its 100 MiB disk quota".to_owned();
        let failure = Failure::from_sandbox(&over_quota, Some(reason));
        assert_eq!(failure.code, "sandbox_out_of_disk");
        assert!(failure.message.contains("over its 100 MiB disk quota"), "{}", failure.message);

        // Anything else is said as it is, with the way out.
        let other = SandboxError::Spawn {
            program: "/opt/agentbox/bin/claude".into(),
            source: std::io::Error::from_raw_os_error(2), // ENOENT,
        };
        let failure = Failure::from_sandbox(&other, None);
        assert_eq!(failure.code, "sandbox_error");
        assert!(failure.message.starts_with("The chat's sandbox failed: could not start"));
        assert!(failure.message.contains("restart the sandbox from the workspace panel"));
    }
}
