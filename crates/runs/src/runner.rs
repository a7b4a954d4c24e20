//! The turn runner: the one object callers hold. It owns the node's state — the running
//! turns ([`ActiveTurns`]), idle CLI processes ([`IdleSessions`]), paused queues
//! ([`PausedQueues`]) and per-chat gates ([`ChatGates`]) — and reaches running turns for
//! interrupts, live changes and permission answers. Submission, the turn's task, recovery
//! and restores are in their own files as further `impl TurnRunner` blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentbox_agent::AutoPolicy;
use agentbox_bus::EventBus;
use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::cli::ControlRequest;
use agentbox_protocol::permission::{
    PermissionAnswerRequest, PermissionAnswerResponse, PermissionKind, ResolvedBy,
};
use agentbox_sandbox::{SandboxError, SandboxProvider};
use agentbox_store::{NewEvent, NodeRole, Store, StoreError};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::active::{ActiveTurns, Stopping};
use crate::checkpoints::Checkpoints;
use crate::config::RunnerConfig;
use crate::control::{Control, ControlChannel, InProcessControls, StoreControls};
use crate::error::{PermissionError, RestartError, RunError};
use crate::gates::ChatGates;
use crate::idle::IdleSessions;
use crate::notices::notice;
use crate::paused::PausedQueues;
use crate::permissions::{AnswerError, check_answer};
use crate::queue::{DurableQueue, InProcessQueue, TurnQueue};
use crate::request::LiveChange;

fn answer_refusal(err: AnswerError) -> PermissionError {
    match err {
        AnswerError::AlreadyResolved => PermissionError::AlreadyResolved(None),
        AnswerError::TurnNotRunning => PermissionError::TurnNotRunning,
        AnswerError::Invalid { code, message } => PermissionError::Invalid { code, message },
    }
}

/// How long an answer sent to another node's turn is waited for.
const REMOTE_ANSWER_WAIT: Duration = Duration::from_secs(15);

pub struct TurnRunner {
    pub(crate) store: Store,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) sandboxes: Arc<dyn SandboxProvider>,
    pub(crate) config: RunnerConfig,
    pub(crate) auto: Arc<AutoPolicy>,
    pub(crate) active: ActiveTurns,
    pub(crate) idle: IdleSessions,
    pub(crate) paused: PausedQueues,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) tasks: TaskTracker,
    /// Set when the node begins to shut down: no new turns, no queue moving on.
    pub(crate) shutting_down: AtomicBool,
    /// Set when a shutdown's grace ran out and the turns still running were interrupted.
    pub(crate) grace_over: AtomicBool,
    /// Checkpoint stores; `None` when checkpoints are off.
    pub(crate) checkpoints: Option<Checkpoints>,
    pub(crate) gates: ChatGates,
    /// Where recorded turns go: run here, or wait in the durable queue for a worker.
    pub(crate) queue: Arc<dyn TurnQueue>,
    /// How controls reach turns that run on other nodes.
    pub(crate) controls: Arc<dyn ControlChannel>,
    /// Checks a queued prompt before it starts after a turn (`admission.rs`).
    pub(crate) admission: std::sync::OnceLock<Arc<dyn crate::Admission>>,
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
        let tasks = TaskTracker::new();
        let node = &config.node;
        // The single-process node runs its turns itself and reaches them in memory; API and
        // worker nodes share the durable queue and the control table.
        let (queue, controls): (Arc<dyn TurnQueue>, Arc<dyn ControlChannel>) = match node.role {
            NodeRole::All => (
                Arc::new(InProcessQueue::new(store.clone(), node.id.clone())),
                Arc::new(InProcessControls),
            ),
            NodeRole::Api | NodeRole::Worker => (
                Arc::new(DurableQueue::new(
                    store.clone(),
                    node.id.clone(),
                    node.expiry,
                    node.expiry,
                )),
                Arc::new(StoreControls::new(store.clone())),
            ),
        };
        Arc::new(Self {
            paused: PausedQueues::new(store.clone()),
            queue,
            controls,
            admission: std::sync::OnceLock::new(),
            slots: Arc::new(Semaphore::new(config.max_concurrent_turns.max(1))),
            auto: Arc::new(config.permissions.auto.clone()),
            checkpoints: Checkpoints::new(&config.checkpoints),
            gates: ChatGates::default(),
            idle: IdleSessions::new(
                config.idle_session_timeout,
                config.interrupt_grace,
                config.max_kept_cli,
                tasks.clone(),
            ),
            store,
            bus,
            sandboxes,
            config,
            active: ActiveTurns::default(),
            tasks,
            shutting_down: AtomicBool::new(false),
            grace_over: AtomicBool::new(false),
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

    /// Whether the chat has a turn running on this node.
    pub fn is_running(&self, chat_id: Uuid) -> bool {
        self.active.contains(chat_id)
    }

    /// Whether the chat has a turn running on any node. A single-process node knows from
    /// its memory; an API or worker node asks the store, whose `in_progress` message is
    /// the truth shared by every node (a turn waiting in the queue counts as running).
    pub async fn is_running_anywhere(&self, chat_id: Uuid) -> bool {
        if self.is_running(chat_id) {
            return true;
        }
        if self.config.node.role == NodeRole::All {
            return false;
        }
        match self.store.running_turn(chat_id).await {
            Ok(running) => running.is_some(),
            Err(err) => {
                tracing::warn!(%chat_id, %err, "could not tell whether a turn runs");
                false
            }
        }
    }

    /// Ask the chat's running turn to stop, on whichever node runs it. The turn ends
    /// `interrupted` shortly after, and the chat's queue waits for `send now`.
    pub async fn interrupt(&self, chat_id: Uuid) -> Result<Uuid, RunError> {
        if let Some(message_id) = self.active.interrupt(chat_id) {
            return Ok(message_id);
        }
        let message_id = self.store.running_turn(chat_id).await?.ok_or(RunError::NotRunning)?;
        if self.controls.deliver(chat_id, message_id, &Control::Interrupt).await? {
            return Ok(message_id);
        }
        // No node runs it: it waits in the durable queue, and ends here, unless a worker
        // started it in the meantime, which is then asked.
        if let Some(event) = self.store.cancel_unstarted_turn(chat_id, message_id).await? {
            self.bus.publish(chat_id, event);
            self.paused.pause(chat_id).await;
            tracing::info!(%chat_id, %message_id, "interrupted a turn before a worker took it");
            return Ok(message_id);
        }
        if self.controls.deliver(chat_id, message_id, &Control::Interrupt).await? {
            Ok(message_id)
        } else {
            Err(RunError::NotRunning)
        }
    }

    /// Apply changed settings to the chat's running turn, if it has one, on whichever node
    /// runs it: the CLI gets `set_model`, `set_permission_mode` or `set_max_thinking_tokens`
    /// at once, and the turn's permission decisions follow the new mode.
    pub async fn apply_live(&self, chat_id: Uuid, change: &LiveChange) -> Result<(), StoreError> {
        if self.apply_live_here(chat_id, change) {
            return Ok(());
        }
        if let Some(message_id) = self.store.running_turn(chat_id).await? {
            let control = Control::Live { change: change.clone() };
            self.controls.deliver(chat_id, message_id, &control).await?;
        }
        Ok(())
    }

    /// [`TurnRunner::apply_live`] for a turn of this node; `false` when none runs here.
    fn apply_live_here(&self, chat_id: Uuid, change: &LiveChange) -> bool {
        let Some(live) = self.active.live(chat_id) else {
            return false;
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
        true
    }

    /// Apply a control another node sent for a turn of this node.
    pub(crate) async fn apply_control(&self, chat_id: Uuid, message_id: Uuid, control: Control) {
        if self.active.live_of(chat_id, message_id).is_none() {
            tracing::info!(%chat_id, %message_id, "a control arrived for a turn that has ended");
            return;
        }
        match control {
            Control::Interrupt => drop(self.active.interrupt(chat_id)),
            Control::SendNow { queued_id } => {
                self.paused.resume(chat_id).await;
                self.active.interrupt_for(chat_id, queued_id);
            }
            Control::Live { change } => drop(self.apply_live_here(chat_id, &change)),
            Control::Answer { request_id, answer } => {
                if let Err(err) = self.answer_permission(chat_id, &request_id, &answer).await {
                    tracing::warn!(%chat_id, %request_id, %err, "refused an answer sent from another node");
                }
            }
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
        let Some(live) = self.active.live_of(chat_id, record.message_id) else {
            return self.answer_remotely(chat_id, record.message_id, request_id, answer).await;
        };
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
            live.answer(request_id, &answer, self.bypass_allowed()).map_err(answer_refusal)?;
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

    /// Send an answer to the node running the turn and wait (boundedly) until the request's
    /// index says it was settled. That node checks the answer; the reply here says what was
    /// asked and whether the request is settled, not the rule that node derived.
    async fn answer_remotely(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        request_id: &str,
        answer: &PermissionAnswerRequest,
    ) -> Result<PermissionAnswerResponse, PermissionError> {
        // Checked here first, so that a bad answer gets the same refusal as on the turn's
        // own node; that node checks it again against the live request.
        let pending = self
            .store
            .pending_permissions(chat_id)
            .await?
            .into_iter()
            .find(|pending| pending.request_id == request_id)
            .ok_or(PermissionError::AlreadyResolved(None))?;
        check_answer(&pending, answer, self.bypass_allowed()).map_err(answer_refusal)?;
        let control = Control::Answer { request_id: request_id.to_owned(), answer: answer.clone() };
        if !self.controls.deliver(chat_id, message_id, &control).await? {
            return Err(PermissionError::TurnNotRunning);
        }
        let deadline = tokio::time::Instant::now() + REMOTE_ANSWER_WAIT;
        loop {
            let record = self
                .store
                .permission_request(chat_id, request_id)
                .await?
                .ok_or(PermissionError::NotFound)?;
            if !record.is_pending() {
                return Ok(PermissionAnswerResponse {
                    request_id: request_id.to_owned(),
                    approved: record.status == "allowed",
                    rule: None,
                    mode: answer.mode,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PermissionError::Invalid {
                    code: "answer_not_taken",
                    message: "The node running this turn did not take the answer; it may have \
                              been refused there. Check the answer and send it again."
                        .into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// End every process of the chat's sandbox and start it again; its files and the CLI
    /// session stay (the transcript is in the workspace: the next turn resumes it with
    /// `--resume`). A running turn is interrupted first and ends `interrupted`, with a notice
    /// saying why, and the chat's queue pauses as after any interrupt; a turn that does not
    /// stop within the interrupt grace is ended by the restart itself, which closes its CLI's
    /// connection. Returns once the sandbox runs again.
    pub async fn restart_sandbox(&self, chat_id: Uuid) -> Result<(), RestartError> {
        let id = chat_id.to_string();
        if let Some(Stopping { message_id, interrupt, finished }) = self.active.stopping(chat_id) {
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
        let gate = self.gates.gate(chat_id);
        let _gate = gate.lock().await;
        if self.is_running(chat_id) {
            return Err(RestartError::Busy);
        }
        // The idle CLI process dies with the sandbox; the next turn starts one with --resume.
        self.idle.remove(chat_id);
        self.sandboxes.restart(&id).await?;
        tracing::info!(%chat_id, "restarted the chat's sandbox");
        Ok(())
    }

    /// Stop the chat's sandbox if nothing is happening in it on the runner's side: no turn
    /// running or being started (its gate free). `Ok(false)` when it is busy. The idle CLI
    /// process goes with the sandbox; the next turn starts one with --resume. For the
    /// server's limit on running sandboxes, which decides which chat.
    pub async fn stop_idle_sandbox(&self, chat_id: Uuid) -> Result<bool, SandboxError> {
        let gate = self.gates.gate(chat_id);
        let Ok(_gate) = gate.try_lock() else { return Ok(false) };
        if self.is_running(chat_id) {
            return Ok(false);
        }
        self.idle.remove(chat_id);
        self.sandboxes.stop(&chat_id.to_string()).await?;
        tracing::info!(%chat_id, "stopped the chat's idle sandbox to make room for another");
        Ok(true)
    }

    /// Stop everything of a chat that is being deleted and remove its sandbox.
    pub async fn forget_chat(&self, chat_id: Uuid) {
        let wait = self.config.interrupt_grace + Duration::from_secs(5);
        if let Some(Stopping { interrupt, finished, .. }) = self.active.stopping(chat_id) {
            interrupt.cancel();
            let _ = tokio::time::timeout(wait, finished.cancelled()).await;
        } else if self.config.node.role != NodeRole::All {
            // A turn on another node: stop it there and wait until it has ended, so that
            // deleting the chat does not take the control away before it is read.
            let stopped = async {
                if self.interrupt(chat_id).await.is_err() {
                    return;
                }
                while let Ok(Some(_)) = self.store.running_turn(chat_id).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            let _ = tokio::time::timeout(wait, stopped).await;
        }
        self.idle.remove(chat_id);
        if let Err(err) = self.sandboxes.delete(&chat_id.to_string()).await {
            tracing::warn!(%chat_id, %err, "could not delete the chat's sandbox");
        }
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.remove(chat_id).await;
        }
        self.gates.forget(chat_id);
    }

    /// Begin a shutdown: from now on no turn starts here (a new prompt is refused with
    /// [`RunError::ShuttingDown`], queues do not move on, a worker claims nothing), while the
    /// running turns go on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether [`TurnRunner::begin_shutdown`] was called.
    pub fn draining(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Shut the node's turns down: start no new ones, let the running ones finish for up to
    /// `grace`, then interrupt the rest (each records why, an `interrupted_by_shutdown`
    /// notice, and is checkpointed as any interrupted turn) and wait for them to end.
    pub async fn shutdown(&self, grace: Duration) {
        self.begin_shutdown();
        self.tasks.close();
        if !grace.is_zero() {
            tracing::info!(running = self.active.len(), ?grace, "letting running turns finish");
            if tokio::time::timeout(grace, self.tasks.wait()).await.is_ok() {
                self.idle.clear();
                return;
            }
            tracing::warn!(
                running = self.active.len(),
                "the shutdown grace ran out: interrupting the turns still running"
            );
        }
        self.grace_over.store(true, Ordering::SeqCst);
        // Requests still open are denied by the restart, as after a crash.
        self.active.interrupt_all(
            ResolvedBy::ServerRestarted,
            "agentbox is restarting, so this request was denied.",
        );
        let wait = self.config.interrupt_grace + Duration::from_secs(5);
        if tokio::time::timeout(wait, self.tasks.wait()).await.is_err() {
            tracing::warn!("some turns did not finish during shutdown");
        }
        self.idle.clear();
    }

    /// Set the gauges of `/metrics` that describe this node's state now.
    pub fn report_gauges(&self) {
        let mut sandboxes: Vec<(&'static str, usize)> = [
            agentbox_sandbox::SandboxStatus::Running,
            agentbox_sandbox::SandboxStatus::Paused,
            agentbox_sandbox::SandboxStatus::Stopped,
        ]
        .into_iter()
        .map(|status| (status.as_str(), 0))
        .collect();
        for status in self.sandboxes.statuses() {
            if let Some(entry) = sandboxes.iter_mut().find(|(name, _)| *name == status.as_str()) {
                entry.1 += 1;
            }
        }
        crate::metrics::Gauges {
            running_turns: self.active.len(),
            kept_cli_processes: self.idle.len(),
            permission_requests_waiting: self.active.pending_requests(),
            sandboxes,
        }
        .set();
    }
}
