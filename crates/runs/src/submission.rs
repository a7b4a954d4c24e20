//! Submission: recording a turn and handing it to its task, directly or from the chat's
//! queue, and moving the queue on after a turn.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use agentbox_agent::TurnControls;
use agentbox_protocol::api::{PermissionMode, QueuedMessage};
use agentbox_protocol::event::MessageStatus;
use agentbox_store::{ChatRecord, StartedTurn};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::active::ActiveTurn;
use crate::control::Control;
use crate::error::RunError;
use crate::idle::SessionKey;
use crate::permissions::LiveTurn;
use crate::queue::{Handoff, RecordedTurn};
use crate::request::{SendNow, TurnRequest};
use crate::runner::TurnRunner;
use crate::turn::Job;

impl TurnRunner {
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
        if self.draining() {
            return Err(RunError::ShuttingDown);
        }
        let gate = self.gates.gate(chat.id);
        let _gate = gate.lock().await;
        let started = self.store.begin_turn(chat.id, &request.prompt, &model, mode).await?;
        self.launch(chat, &started, model, mode, request.prompt).await;
        Ok(started)
    }

    /// Hand a recorded turn to the queue: this node runs it now, or a worker will.
    async fn launch(
        self: &Arc<Self>,
        chat: &ChatRecord,
        started: &StartedTurn,
        model: String,
        mode: PermissionMode,
        prompt: String,
    ) {
        self.bus.publish(chat.id, started.user_event.clone());
        let turn = RecordedTurn {
            chat_id: chat.id,
            message_id: started.message_id,
            prompt,
            model,
            permission_mode: mode,
        };
        match self.queue.hand_off(&turn).await {
            Ok(Handoff::RunHere) => self.spawn_turn(chat, turn, None).await,
            Ok(Handoff::Queued) => {
                tracing::info!(chat_id = %chat.id, message_id = %turn.message_id, "queued a turn for a worker");
            }
            Ok(Handoff::Gone) => {}
            Err(err) => {
                // Recorded but with nowhere to run: end it now rather than leave it open
                // until a sweep.
                tracing::error!(chat_id = %chat.id, %err, "could not hand a turn over");
                self.fail_unlaunched(&turn, &err).await;
            }
        }
    }

    /// End a recorded turn that could not be handed over, saying why.
    async fn fail_unlaunched(&self, turn: &RecordedTurn, err: &agentbox_store::StoreError) {
        let text = format!("The turn could not be started: {err}");
        let payload = agentbox_protocol::event::EventPayload::error(text, "storage_error");
        let ended = async {
            let event = self
                .store
                .append_event(turn.chat_id, agentbox_store::NewEvent::new(turn.message_id, payload))
                .await?;
            self.bus.publish(turn.chat_id, event);
            let event = self
                .store
                .finish_turn(
                    turn.chat_id,
                    turn.message_id,
                    agentbox_store::TurnResult::status(MessageStatus::Failed),
                )
                .await?;
            self.bus.publish(turn.chat_id, event);
            Ok::<_, agentbox_store::StoreError>(())
        };
        if let Err(err) = ended.await {
            tracing::error!(chat_id = %turn.chat_id, %err, "could not end a turn that did not start; a sweep will");
        }
    }

    /// Start the task of a turn this node runs, in `slot` if it holds one already.
    pub(crate) async fn spawn_turn(
        self: &Arc<Self>,
        chat: &ChatRecord,
        turn: RecordedTurn,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let mode = turn.permission_mode;
        let key = SessionKey {
            model: turn.model,
            cli_mode: mode.cli_mode(),
            max_thinking_tokens: chat.max_thinking_tokens,
            system_prompt: self.system_prompt(chat).await,
            allow_bypass: self.bypass_allowed(),
            secrets: String::new(),
            extensions: String::new(),
            cwd: None,
        };
        let interrupt = CancellationToken::new();
        let finished = CancellationToken::new();
        let (controls, commands) = TurnControls::new(interrupt.clone());
        let live = Arc::new(LiveTurn::new(mode, commands));
        self.active.insert(
            chat.id,
            ActiveTurn {
                message_id: turn.message_id,
                interrupt,
                finished: finished.clone(),
                live: live.clone(),
                send_now: None,
            },
        );
        let job = Job {
            chat_id: chat.id,
            user_id: chat.user_id,
            message_id: turn.message_id,
            prompt: turn.prompt,
            key,
            live,
            controls,
            slot,
        };
        let runner = self.clone();
        let span = tracing::info_span!("turn", chat_id = %chat.id, message_id = %turn.message_id);
        self.tasks.spawn(
            async move {
                runner.run(job).await;
                finished.cancel();
            }
            .instrument(span),
        );
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
        // Under the chat's gate, so that a queue moving on after a turn (which takes it too)
        // either finds this prompt not yet queued or finds it started here: the answer
        // carries the prompt's `message_id` whenever this call started it.
        let gate = self.gates.gate(chat.id);
        let _gate = gate.lock().await;
        let mut queued = self
            .store
            .enqueue(chat.id, &request.prompt, request.model.as_deref(), request.permission_mode)
            .await?;
        if self.store.queue(chat.id).await?.len() == 1 {
            // A pause only holds back prompts that were waiting when it began.
            self.paused.resume(chat.id).await;
        }
        if !self.is_running(chat.id) && !self.paused.is_paused(chat.id).await {
            match self.start_queued_gated(chat.id, None).await {
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
        self.paused.resume(chat_id).await;
        if self.active.interrupt_for(chat_id, id) {
            return Ok(SendNow::AfterInterrupt);
        }
        if let Some(message_id) = self.store.running_turn(chat_id).await?
            && self
                .controls
                .deliver(chat_id, message_id, &Control::SendNow { queued_id: id })
                .await?
        {
            return Ok(SendNow::AfterInterrupt);
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
        let gate = self.gates.gate(chat_id);
        let _gate = gate.lock().await;
        self.start_queued_gated(chat_id, id).await
    }

    /// [`TurnRunner::start_queued`] for a caller that holds the chat's gate.
    async fn start_queued_gated(
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
    /// turn was not interrupted; an interrupt pauses the queue, and so does a prompt the
    /// owner's limits do not admit now (with a notice on the turn `ended`).
    pub(crate) async fn after_turn(
        self: &Arc<Self>,
        chat_id: Uuid,
        ended: Uuid,
        status: MessageStatus,
        next: Option<Uuid>,
    ) {
        if self.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let id = match next {
            Some(id) => Some(id),
            None if status == MessageStatus::Interrupted => {
                self.paused.pause(chat_id).await;
                return;
            }
            None => None,
        };
        if id.is_none() && self.paused.is_paused(chat_id).await {
            return;
        }
        if !self.admits_queued(chat_id, ended).await {
            return;
        }
        match self.start_queued(chat_id, id).await {
            Ok(Some(_)) => {}
            // A prompt sent now may have been deleted meanwhile; the rest of the queue goes on.
            Ok(None) if id.is_some() => {
                Box::pin(self.after_turn(chat_id, ended, status, None)).await
            }
            Ok(None) | Err(RunError::Busy | RunError::ChatNotFound) => {}
            Err(err) => tracing::error!(%chat_id, %err, "could not start the next queued prompt"),
        }
    }
}
