//! The turn runner: accepts turns, runs each in a task, keeps chats' CLI processes between
//! turns, interrupts, and closes what a crash left open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentbox_agent::{
    AgentError, AgentSession, AllowAll, SessionOptions, TurnControls, TurnOptions, TurnOutcome,
    run_turn,
};
use agentbox_bus::EventBus;
use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{EventPayload, MessageStatus, SystemEvent};
use agentbox_sandbox::{Sandbox, SandboxProvider};
use agentbox_store::{ChatRecord, NewEvent, StartedTurn, Store, StoreError, TurnResult};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::config::RunnerConfig;
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

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a turn is already running in this chat")]
    Busy,
    #[error("no turn is running in this chat")]
    NotRunning,
    #[error("the chat does not exist")]
    ChatNotFound,
    #[error(transparent)]
    Store(StoreError),
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
}

/// What a CLI process was started with; a turn asking for something else gets a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SessionKey {
    model: String,
    mode: PermissionMode,
}

struct ActiveTurn {
    message_id: Uuid,
    interrupt: CancellationToken,
    finished: CancellationToken,
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
    active: Mutex<HashMap<Uuid, ActiveTurn>>,
    idle: Arc<Mutex<HashMap<Uuid, IdleSession>>>,
    generation: AtomicU64,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
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
            store,
            bus,
            sandboxes,
            config,
            active: Mutex::default(),
            idle: Arc::default(),
            generation: AtomicU64::new(0),
            tasks: TaskTracker::new(),
        })
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    pub fn sandbox_provider(&self) -> &dyn SandboxProvider {
        self.sandboxes.as_ref()
    }

    /// Close the turns a previous run of the server left `in_progress`: each gets an error
    /// event saying why and ends `interrupted`. Call before serving requests.
    pub async fn recover(&self) -> Result<usize, StoreError> {
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
        Ok(unfinished.len())
    }

    /// Record a turn and start running it. `Busy` while the chat has a turn running.
    pub async fn submit(
        self: &Arc<Self>,
        chat: &ChatRecord,
        request: TurnRequest,
    ) -> Result<StartedTurn, RunError> {
        let key = SessionKey {
            model: request.model.unwrap_or_else(|| chat.model.clone()),
            mode: request.permission_mode.unwrap_or(chat.permission_mode),
        };
        let started =
            self.store.begin_turn(chat.id, &request.prompt, &key.model, key.mode).await.map_err(
                |err| match err {
                    StoreError::Conflict("turn_in_progress") => RunError::Busy,
                    StoreError::NotFound => RunError::ChatNotFound,
                    other => RunError::Store(other),
                },
            )?;
        self.bus.publish(chat.id, started.user_event.clone());
        let interrupt = CancellationToken::new();
        let finished = CancellationToken::new();
        lock(&self.active).insert(
            chat.id,
            ActiveTurn {
                message_id: started.message_id,
                interrupt: interrupt.clone(),
                finished: finished.clone(),
            },
        );
        let job =
            Job { chat_id: chat.id, message_id: started.message_id, prompt: request.prompt, key };
        let runner = self.clone();
        self.tasks.spawn(async move {
            runner.run(job, interrupt).await;
            finished.cancel();
        });
        Ok(started)
    }

    /// Whether the chat has a turn running on this node.
    pub fn is_running(&self, chat_id: Uuid) -> bool {
        lock(&self.active).contains_key(&chat_id)
    }

    /// Ask the chat's running turn to stop. The turn ends `interrupted` shortly after.
    pub fn interrupt(&self, chat_id: Uuid) -> Result<Uuid, RunError> {
        let active = lock(&self.active);
        let turn = active.get(&chat_id).ok_or(RunError::NotRunning)?;
        turn.interrupt.cancel();
        Ok(turn.message_id)
    }

    /// Stop everything of a chat that is being deleted and remove its sandbox.
    pub async fn forget_chat(&self, chat_id: Uuid) {
        let finished = lock(&self.active).get(&chat_id).map(|turn| {
            turn.interrupt.cancel();
            turn.finished.clone()
        });
        if let Some(finished) = finished {
            let wait = self.config.interrupt_grace + Duration::from_secs(5);
            let _ = tokio::time::timeout(wait, finished.cancelled()).await;
        }
        let idle = lock(&self.idle).remove(&chat_id);
        drop(idle);
        if let Err(err) = self.sandboxes.delete(&chat_id.to_string()).await {
            tracing::warn!(%chat_id, %err, "could not delete the chat's sandbox");
        }
    }

    /// Interrupt every running turn, wait for them to be recorded as such and for their CLI
    /// processes to end, and stop idle CLI processes. For a graceful server shutdown.
    pub async fn shutdown(&self) {
        for turn in lock(&self.active).values() {
            turn.interrupt.cancel();
        }
        self.tasks.close();
        let wait = self.config.interrupt_grace + Duration::from_secs(5);
        if tokio::time::timeout(wait, self.tasks.wait()).await.is_err() {
            tracing::warn!("some turns did not finish during shutdown");
        }
        lock(&self.idle).clear();
    }

    async fn run(self: Arc<Self>, job: Job, interrupt: CancellationToken) {
        let sink = LogSink {
            store: self.store.clone(),
            bus: self.bus.clone(),
            chat_id: job.chat_id,
            message_id: job.message_id,
        };
        let result = match self.execute(&job, sink.clone(), &interrupt).await {
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
        let mut active = lock(&self.active);
        if active.get(&job.chat_id).is_some_and(|turn| turn.message_id == job.message_id) {
            active.remove(&job.chat_id);
        }
        tracing::info!(chat_id = %job.chat_id, message_id = %job.message_id, status = status.as_str(), "turn finished");
    }

    async fn execute(
        &self,
        job: &Job,
        mut sink: LogSink,
        interrupt: &CancellationToken,
    ) -> Result<TurnOutcome, Failure> {
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
                    () = interrupt.cancelled() => return Ok(interrupted()),
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
        let sandbox = self
            .sandboxes
            .ensure(&job.chat_id.to_string())
            .await
            .map_err(|err| Failure::from_agent(err.into()))?;
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
        let options = TurnOptions { grace: self.config.interrupt_grace, ..TurnOptions::default() };
        let mut controls = TurnControls::interrupt_only(interrupt.clone());
        let mut outcome =
            run_turn(&mut session, &job.prompt, &AllowAll, &mut sink, &mut controls, &options)
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
            outcome =
                run_turn(&mut session, &job.prompt, &AllowAll, &mut sink, &mut controls, &options)
                    .await
                    .map_err(Failure::from_agent)?;
        }
        self.park_or_stop(job.chat_id, job.key.clone(), session, &outcome);
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
        if key.mode == PermissionMode::BypassPermissions {
            // The CLI refuses bypassPermissions as root unless told it is sandboxed.
            env.push(("IS_SANDBOX".into(), "1".into()));
        }
        let options = SessionOptions {
            model: key.model.clone(),
            cli_permission_mode: key.mode.cli_mode().to_owned(),
            resume,
            append_system_prompt: self.config.append_system_prompt.clone(),
            env,
        };
        AgentSession::start(sandbox, options).await.map_err(Failure::from_agent)
    }

    /// The chat's idle CLI process, if it is alive and was started for the same model and
    /// mode; otherwise it is stopped.
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
    ) {
        let timeout = self.config.idle_session_timeout;
        let grace = self.config.interrupt_grace;
        if outcome.status != MessageStatus::Completed || !session.is_alive() || timeout.is_zero() {
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
