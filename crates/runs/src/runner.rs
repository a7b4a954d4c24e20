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
use agentbox_protocol::api::{PermissionMode, QueuedMessage};
use agentbox_protocol::cli::ControlRequest;
use agentbox_protocol::event::{EventPayload, MessageStatus, PermissionResolution, SystemEvent};
use agentbox_protocol::permission::{
    PermissionAnswerRequest, PermissionAnswerResponse, PermissionKind, ResolvedBy,
};
use agentbox_sandbox::{Sandbox, SandboxProvider};
use agentbox_store::{ChatRecord, NewEvent, StartedTurn, Store, StoreError, TurnResult};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

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
            AgentError::Sandbox(err) => {
                Self { code: "sandbox_error", message: format!("The chat's sandbox failed: {err}") }
            }
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
        let sandbox = self
            .sandboxes
            .ensure(&job.chat_id.to_string())
            .await
            .map_err(|err| Failure::from_agent(err.into()))?;
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
