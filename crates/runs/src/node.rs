//! The node's background work: the heartbeat (which also extends the node's job leases
//! and sweeps expired nodes' turns), a worker's claim loop, and the receiver of controls
//! sent to this node's turns from other nodes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use agentbox_protocol::permission::ResolvedBy;
use agentbox_store::{NodeRole, StoreError};
use chrono::Utc;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::control::Control;
use crate::runner::TurnRunner;

impl TurnRunner {
    /// Start the node's background tasks; they end when `stop` is cancelled. Call after
    /// [`TurnRunner::recover`].
    pub fn start_node(self: &Arc<Self>, stop: CancellationToken) {
        let runner = self.clone();
        let heartbeat_stop = stop.clone();
        tokio::spawn(async move { runner.beat(heartbeat_stop).await });
        // Only workers run turns from the queue, so only they have turns to control.
        if self.config.node.role == NodeRole::Worker {
            let runner = self.clone();
            let claim_stop = stop.clone();
            tokio::spawn(async move { runner.claim_jobs(claim_stop).await });
            let runner = self.clone();
            tokio::spawn(async move { runner.receive_controls(stop).await });
        }
    }

    async fn beat(self: Arc<Self>, stop: CancellationToken) {
        let node = &self.config.node;
        let mut last_beat = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(node.heartbeat) => {}
            }
            let now = Utc::now();
            let beat = async {
                if !self.store.node_heartbeat(&node.id, now).await? {
                    tracing::warn!(node = %node.id, "this node was not registered; registering it again");
                    self.register(now).await?;
                }
                last_beat = tokio::time::Instant::now();
                self.queue.extend().await?;
                self.sweep(now).await
            };
            match beat.await {
                Ok(0) => {}
                Ok(closed) => tracing::warn!(closed, "interrupted the turns of expired nodes"),
                Err(err) if last_beat.elapsed() >= node.expiry => {
                    // Silent for the whole expiry: other nodes count this one as gone and
                    // close its turns, so it must not go on running them.
                    tracing::error!(%err, "no heartbeat for the node expiry; interrupting this node's turns");
                    self.active.interrupt_all(
                        ResolvedBy::ServerRestarted,
                        "This agentbox node lost its database, so this request was denied.",
                    );
                }
                Err(err) => tracing::warn!(%err, "the heartbeat failed; trying again"),
            }
        }
    }

    /// Register this node as started at `now` (again, after a restart or if its row went).
    pub(crate) async fn register(&self, now: chrono::DateTime<Utc>) -> Result<(), StoreError> {
        let node = &self.config.node;
        self.store
            .register_node(&agentbox_store::NodeRecord {
                id: node.id.clone(),
                role: node.role,
                address: node.address.clone(),
                started_at: now,
                heartbeat_at: now,
            })
            .await
    }

    /// A worker's loop: take a free slot, claim the oldest waiting turn, start it (the
    /// store says whether this claim may) and run it in that slot. Holding the slot first
    /// means a worker never claims a turn it cannot run at once, which another worker could.
    async fn claim_jobs(self: Arc<Self>, stop: CancellationToken) {
        let mut wake = None;
        loop {
            if stop.is_cancelled() || self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            if wake.is_none() {
                // Listening before claiming, so that a job queued in between wakes us.
                wake = self.store.listen_jobs().await.unwrap_or_else(|err| {
                    tracing::warn!(%err, "cannot listen for queued turns; polling");
                    None
                });
            }
            let slot = tokio::select! {
                () = stop.cancelled() => return,
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            // A shutdown may have begun while this loop waited for the slot.
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            match self.claim_one(slot).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "could not claim a turn"),
            }
            let poll = tokio::time::sleep(self.config.node.poll);
            match &mut wake {
                Some(listener) => tokio::select! {
                    () = stop.cancelled() => return,
                    woken = listener.notified() => if let Err(err) = woken {
                        tracing::warn!(%err, "lost the job notifications; listening again");
                        wake = None;
                    },
                    () = poll => {}
                },
                None => tokio::select! {
                    () = stop.cancelled() => return,
                    () = poll => {}
                },
            }
        }
    }

    /// Claim and start one job in `slot`; `true` when there was one (run or found stale).
    async fn claim_one(self: &Arc<Self>, slot: OwnedSemaphorePermit) -> Result<bool, StoreError> {
        let Some(turn) = self.queue.claim().await? else { return Ok(false) };
        // A deleted chat takes its job with it; nothing to run.
        let Some(chat) = self.store.chat_unscoped(turn.chat_id).await? else { return Ok(true) };
        let gate = self.gates.gate(chat.id);
        let _gate = gate.lock().await;
        if !self.queue.start(&turn).await? {
            tracing::info!(chat_id = %turn.chat_id, message_id = %turn.message_id, "a claimed turn had started elsewhere or ended");
            return Ok(true);
        }
        tracing::info!(chat_id = %turn.chat_id, message_id = %turn.message_id, "claimed a turn");
        self.spawn_turn(&chat, turn, Some(slot)).await;
        Ok(true)
    }

    /// Take the controls other nodes queued for this node's turns, when notified and at
    /// every poll, and apply them as if they had been called here.
    async fn receive_controls(self: Arc<Self>, stop: CancellationToken) {
        let node_id = self.config.node.id.clone();
        let mut wake = None;
        loop {
            if wake.is_none() {
                wake = match self.store.listen_controls(&node_id).await {
                    Ok(wake) => wake,
                    Err(err) => {
                        tracing::warn!(%err, "cannot listen for controls; polling");
                        None
                    }
                };
            }
            // Taken after listening starts, so that nothing queued in between is missed.
            match self.store.take_controls(&node_id).await {
                Ok(controls) => {
                    for stored in controls {
                        match serde_json::from_str::<Control>(&stored.command) {
                            Ok(control) => {
                                self.apply_control(stored.chat_id, stored.message_id, control)
                                    .await;
                            }
                            Err(err) => tracing::error!(%err, "an unreadable control was dropped"),
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, "could not read controls"),
            }
            let poll = tokio::time::sleep(self.config.node.poll);
            match &mut wake {
                Some(listener) => tokio::select! {
                    () = stop.cancelled() => return,
                    woken = listener.notified() => if let Err(err) = woken {
                        tracing::warn!(%err, "lost the control notifications; listening again");
                        wake = None;
                    },
                    () = poll => {}
                },
                None => tokio::select! {
                    () = stop.cancelled() => return,
                    () = poll => {}
                },
            }
        }
    }
}
