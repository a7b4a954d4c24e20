//! The task of one turn: wait for a slot, prepare the sandbox and the CLI process, run the
//! turn, checkpoint, finish the message and move the chat's queue on.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use agentbox_agent::{
    AgentSession, SessionOptions, TurnControls, TurnOptions, TurnOutcome, run_turn,
};
use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{EventPayload, MessageStatus};
use agentbox_sandbox::Sandbox;
use agentbox_store::{CheckpointKind, NodeRole, TurnResult};
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use crate::checkpoints::CheckpointFailure;
use crate::extensions::{ChatExtensions, describe_change};
use crate::git;
use crate::idle::SessionKey;
use crate::notices::{Failure, notice};
use crate::permissions::{ChatPolicy, LiveTurn};
use crate::runner::TurnRunner;
use crate::secrets::ChatSecrets;
use crate::sink::LogSink;

const DEMO_NOTICE: &str = "Demo mode: replies come from agentbox's scripted mock model, not \
                           from Claude. Configure ANTHROPIC_API_KEY to use a real model.";

/// A recorded turn, handed to its task.
pub(crate) struct Job {
    pub chat_id: Uuid,
    /// The chat's owner, whose secrets its sandbox processes get.
    pub user_id: Uuid,
    pub message_id: Uuid,
    pub prompt: String,
    pub key: SessionKey,
    pub live: Arc<LiveTurn>,
    pub controls: TurnControls,
    /// The slot a worker took before claiming the turn; `None`: the turn waits for one.
    pub slot: Option<OwnedSemaphorePermit>,
}

impl TurnRunner {
    /// The whole life of a turn's task. Boxed with an explicit `Send` because a finished
    /// turn can start the next queued one, which makes the future's type recursive.
    pub(crate) fn run(
        self: Arc<Self>,
        job: Job,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_job(job))
    }

    async fn run_job(self: Arc<Self>, mut job: Job) {
        let started = std::time::Instant::now();
        crate::metrics::turn_started();
        let sink = LogSink {
            store: self.store.clone(),
            bus: self.bus.clone(),
            chat_id: job.chat_id,
            message_id: job.message_id,
            started,
            first_seen: Arc::default(),
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
        if status == MessageStatus::Interrupted && self.grace_over.load(Ordering::SeqCst) {
            // The reason stays in the log, before the turn's end: the shutdown's grace
            // ran out (DESIGN's interrupted turns carry no reason of their own).
            if let Err(err) = sink
                .record(notice(
                    "interrupted_by_shutdown",
                    "agentbox was shutting down and this turn did not finish within the \
                     shutdown grace period, so it was interrupted.",
                ))
                .await
            {
                tracing::error!(%err, "could not record why the turn was interrupted");
            }
        }
        self.checkpoint_after_turn(job.chat_id, job.message_id, result.session_id.clone(), &sink)
            .await;
        crate::titles::name_after_turn(&self.store, job.chat_id).await;
        // Counted before the end is published, so that whoever saw it sees the count too.
        crate::metrics::turn_finished(status, started.elapsed());
        match self.store.finish_turn(job.chat_id, job.message_id, result).await {
            Ok(event) => self.bus.publish(job.chat_id, event),
            Err(err) => tracing::error!(
                chat_id = %job.chat_id, message_id = %job.message_id, %err,
                "could not finish the turn; the next start-up will close it"
            ),
        }
        let next = self.active.finish(job.chat_id, job.message_id);
        tracing::info!(chat_id = %job.chat_id, message_id = %job.message_id, status = status.as_str(), "turn finished");
        self.after_turn(job.chat_id, job.message_id, status, next).await;
    }

    async fn execute(&self, job: &mut Job, mut sink: LogSink) -> Result<TurnOutcome, Failure> {
        let record = |sink: &LogSink, event| {
            let sink = sink.clone();
            async move { sink.record(event).await.map(drop).map_err(|e| Failure::from_agent(e.into())) }
        };
        let held = job.slot.take().map_or_else(|| self.slots.clone().try_acquire_owned(), Ok);
        let _slot = match held {
            Ok(slot) => slot,
            Err(_) => {
                record(
                    &sink,
                    notice("queued", "Waiting for a free slot: other turns are running."),
                )
                .await?;
                let _waiting = crate::metrics::WaitingForSlot::new();
                tokio::select! {
                    slot = self.slots.clone().acquire_owned() => slot.map_err(|_| Failure {
                        code: "shutting_down",
                        message: "agentbox is shutting down.".into(),
                    })?,
                    () = job.controls.interrupt.cancelled() => return Ok(interrupted()),
                }
            }
        };
        let secrets =
            ChatSecrets::load(&self.store, &self.config.sealing_key, job.user_id, job.chat_id)
                .await
                .map_err(|err| Failure { code: "secrets_unavailable", message: err.to_string() })?;
        let env = self.model_env(&secrets)?;
        if self.config.model_access.demo && !secrets.has_own_model_access() {
            record(&sink, notice("demo", DEMO_NOTICE)).await?;
        }
        job.key.secrets = secrets.fingerprint().to_owned();
        let extensions = ChatExtensions::load(&self.store, job.user_id, job.chat_id, &secrets)
            .await
            .map_err(|err| Failure { code: "storage_error", message: err.to_string() })?;
        job.key.extensions = extensions.fingerprint.clone();
        if job.live.mode() == PermissionMode::BypassPermissions && !self.bypass_allowed() {
            return Err(Failure {
                code: "bypass_not_allowed",
                message: crate::permissions::BYPASS_REFUSAL.into(),
            });
        }
        if self.config.node.role == NodeRole::Worker {
            // The chat's sandbox is this worker's from now on; one that was elsewhere is
            // brought here from its checkpoint first.
            self.bind_here(job.chat_id, &sink).await?;
        }
        let sandbox = match self.sandboxes.ensure(&job.chat_id.to_string()).await {
            Ok(sandbox) => sandbox,
            Err(err) => {
                let stopped_because =
                    self.sandboxes.stopped_because(&job.chat_id.to_string()).await;
                return Err(Failure::from_sandbox(&err, stopped_because));
            }
        };
        job.key.cwd = self.prepare_repository(job, sandbox.as_ref(), &secrets, &sink).await;
        let policy = ChatPolicy {
            chat_id: job.chat_id,
            live: job.live.clone(),
            store: self.store.clone(),
            auto: self.auto.clone(),
            workspace: PathBuf::from(sandbox.home()),
        };
        let idle_key = self.idle.key_of(job.chat_id);
        let mut session = match self.idle.take(job.chat_id, &job.key) {
            Some(session) => session,
            None => {
                self.install_extensions(sandbox.as_ref(), &extensions, idle_key, &job.key, &sink)
                    .await?;
                let resume = self
                    .store
                    .chat_unscoped(job.chat_id)
                    .await
                    .map_err(|err| Failure { code: "storage_error", message: err.to_string() })?
                    .and_then(|chat| chat.session_id);
                self.start_session(sandbox.as_ref(), &job.key, resume, &env, &extensions).await?
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
            session =
                self.start_session(sandbox.as_ref(), &job.key, None, &env, &extensions).await?;
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
        // Only a completed turn leaves the process in a known state.
        let keep = reusable && outcome.status == MessageStatus::Completed;
        self.idle.park_or_stop(job.chat_id, job.key.clone(), session, keep);
        Ok(outcome)
    }

    async fn start_session(
        &self,
        sandbox: &dyn Sandbox,
        key: &SessionKey,
        resume: Option<String>,
        env: &[(String, String)],
        extensions: &ChatExtensions,
    ) -> Result<AgentSession, Failure> {
        let mut env = env.to_vec();
        env.extend(extensions.mcp_env.iter().cloned());
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
            mcp_config: extensions.mcp_config.clone(),
            env,
            cwd: key.cwd.clone(),
        };
        AgentSession::start(sandbox, options).await.map_err(Failure::from_agent)
    }

    /// Write the chat's commands, skills and agents into its workspace before a CLI starts,
    /// and tell the turn when they changed since the idle CLI it replaces started, or when a
    /// definition had to be left out.
    async fn install_extensions(
        &self,
        sandbox: &dyn Sandbox,
        extensions: &ChatExtensions,
        idle_key: Option<SessionKey>,
        key: &SessionKey,
        sink: &LogSink,
    ) -> Result<(), Failure> {
        let record = |event| async move {
            sink.record(event).await.map(drop).map_err(|e| Failure::from_agent(e.into()))
        };
        let files = sandbox.files().clone();
        let installation = extensions.installation.clone();
        let installed = agentbox_sandbox::blocking(move || installation.install(&files)).await;
        // The turn goes on without them: what the agent did to `~/.claude` (a link out of
        // the workspace, say) must not stop the chat.
        if let Err(err) = installed {
            tracing::warn!(%err, "could not install a chat's extensions");
            record(notice(
                "extensions_not_installed",
                &format!(
                    "Your commands, skills and agents could not be written into this chat's \
                     workspace ({err}); this turn runs without the changes. Check \
                     ~/.claude in the workspace."
                ),
            ))
            .await?;
        }
        if let Some(before) = idle_key.filter(|before| before.extensions != key.extensions) {
            let change = describe_change(&before.extensions, &key.extensions);
            record(notice(
                "extensions_changed",
                &format!(
                    "Extensions changed: {change}. This turn starts a new CLI process, which \
                     continues the conversation."
                ),
            ))
            .await?;
        }
        for problem in &extensions.problems {
            record(notice("extension_left_out", problem)).await?;
        }
        Ok(())
    }

    /// The chat's repository cloned (before its first turn, or after a failed clone), with
    /// its progress in the turn as notices; the CLI's working directory when it is there.
    /// A failure is told (`system/clone_failed`) and the turn runs in the home directory:
    /// the chat stays usable and the next turn tries again.
    async fn prepare_repository(
        &self,
        job: &Job,
        sandbox: &dyn Sandbox,
        secrets: &ChatSecrets,
        sink: &LogSink,
    ) -> Option<String> {
        let tell = |subtype: &'static str, text: String| {
            let sink = sink.clone();
            async move {
                if let Err(err) = sink.record(notice(subtype, &text)).await {
                    tracing::warn!(%err, "could not record a clone notice");
                }
            }
        };
        let repository = match self.store.chat_repository(job.chat_id).await {
            Ok(Some(repository)) => repository,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(chat_id = %job.chat_id, %err, "could not read the chat's repository");
                return None;
            }
        };
        let directory = git::directory(sandbox, &repository);
        let failed = |err: git::GitError| {
            tell(
                "clone_failed",
                format!(
                    "Could not clone {} into {directory}: {err} This turn runs in {}; the \
                     next turn tries the clone again.",
                    repository.url,
                    sandbox.home()
                ),
            )
        };
        match git::is_cloned(sandbox, &repository).await {
            Ok(true) => return Some(directory),
            Ok(false) => {}
            Err(err) => {
                failed(err).await;
                return None;
            }
        }
        let token = match git::token(&repository, secrets) {
            Ok(token) => token,
            Err(err) => {
                failed(err).await;
                return None;
            }
        };
        tell("clone_started", format!("Cloning {} into {directory}…", repository.url)).await;
        let identity = self.git_identity(job.user_id).await;
        let (lines, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let timeout = self.config.git.clone_timeout;
        let cloning = git::clone(sandbox, &repository, token.as_deref(), &identity, timeout, lines);
        let showing = async {
            let mut progress = git::Progress::default();
            while let Some(line) = heard.recv().await {
                if let Some(text) = progress.line(&line) {
                    tell("clone_progress", text).await;
                }
            }
        };
        let (cloned, ()) = tokio::join!(cloning, showing);
        match cloned {
            Ok(()) => {
                tell(
                    "clone_finished",
                    format!("Cloned {} into {directory}; the agent works there.", repository.url),
                )
                .await;
                Some(directory)
            }
            Err(err) => {
                failed(err).await;
                None
            }
        }
    }

    /// Who the owner's commits are by: their user name (else their email's local part)
    /// and their email.
    async fn git_identity(&self, user_id: Uuid) -> git::Identity {
        match self.store.user(user_id).await {
            Ok(Some(user)) => git::Identity {
                name: user.username.clone().unwrap_or_else(|| {
                    user.email.split('@').next().unwrap_or(&user.email).to_owned()
                }),
                email: user.email,
            },
            _ => git::Identity { name: "agentbox".into(), email: "agentbox@localhost".into() },
        }
    }

    /// The CLI's environment from the chat's secrets and the model credentials: the user's
    /// own when they have any (the server's are then not passed at all), else the server's.
    fn model_env(&self, secrets: &ChatSecrets) -> Result<Vec<(String, String)>, Failure> {
        let mut env = secrets.env();
        if secrets.has_own_model_access() {
            if !secrets.has_own_model_key() {
                return Err(Failure {
                    code: "model_not_configured",
                    message: "Your secrets set ANTHROPIC_BASE_URL but no key: add \
                              ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN or \
                              CLAUDE_CODE_OAUTH_TOKEN to your secrets (Settings, Secrets)."
                        .into(),
                });
            }
            return Ok(env);
        }
        if self.config.require_user_model_key {
            return Err(Failure {
                code: "user_model_key_required",
                message: "This server requires your own model credentials: add \
                          ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN, or \
                          CLAUDE_CODE_OAUTH_TOKEN) to your secrets in Settings, Secrets."
                    .into(),
            });
        }
        if !self.config.model_access.is_configured() {
            return Err(Failure {
                code: "model_not_configured",
                message: "No model credentials are configured. Set ANTHROPIC_API_KEY (or \
                          ANTHROPIC_AUTH_TOKEN) for the server and restart it, add your own \
                          in Settings, Secrets, or start it with `agentbox serve --demo` to \
                          try agentbox with scripted replies."
                    .into(),
            });
        }
        env.extend(self.config.model_access.env());
        Ok(env)
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
            let began = std::time::Instant::now();
            let checkpoint = checkpoints
                .take(chat_id, workspace.root(), format!("after message {message_id}"))
                .await?;
            crate::metrics::checkpoint_taken(began.elapsed(), checkpoint.stats.new_bytes);
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
