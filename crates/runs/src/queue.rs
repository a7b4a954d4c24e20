//! The turn-queue seam: where a recorded turn goes to be run. [`InProcessQueue`] runs it
//! on the node that recorded it (the single-process default); [`DurableQueue`] puts it in
//! the database's `turn_jobs` table, where a worker claims it with a lease. Either way the
//! database decides that a turn starts once: starting it sets the message's node, which
//! only one start can do.

use std::time::Duration;

use agentbox_protocol::api::PermissionMode;
use agentbox_store::{Store, StoreError};
use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

/// A turn the store has recorded (its message is `in_progress`), with what running it
/// needs.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedTurn {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub prompt: String,
    pub model: String,
    pub permission_mode: PermissionMode,
}

/// What became of a handed-off turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// It is this node's to run, now.
    RunHere,
    /// A worker will run it.
    Queued,
    /// It ended or another node started it meanwhile: nothing to do.
    Gone,
}

#[async_trait]
pub trait TurnQueue: Send + Sync {
    /// Hand over a recorded turn.
    async fn hand_off(&self, turn: &RecordedTurn) -> Result<Handoff, StoreError>;
    /// The next waiting turn, leased to this node; `None` when none waits.
    async fn claim(&self) -> Result<Option<RecordedTurn>, StoreError>;
    /// Start a claimed turn on this node: `true` to run it, `false` when the lease was lost
    /// or the turn started elsewhere or ended (a second delivery).
    async fn start(&self, turn: &RecordedTurn) -> Result<bool, StoreError>;
    /// Keep this node's claims alive; called with its heartbeat.
    async fn extend(&self) -> Result<(), StoreError>;
}

/// Today's behaviour: a turn runs where it was recorded.
pub struct InProcessQueue {
    store: Store,
    node_id: String,
}

impl InProcessQueue {
    pub fn new(store: Store, node_id: String) -> Self {
        Self { store, node_id }
    }
}

#[async_trait]
impl TurnQueue for InProcessQueue {
    async fn hand_off(&self, turn: &RecordedTurn) -> Result<Handoff, StoreError> {
        // Recording which node runs the turn is what lets recovery and the sweeper tell
        // this node's turns from other nodes'.
        Ok(if self.store.start_turn_on(turn.message_id, &self.node_id).await? {
            Handoff::RunHere
        } else {
            Handoff::Gone
        })
    }

    async fn claim(&self) -> Result<Option<RecordedTurn>, StoreError> {
        Ok(None)
    }

    async fn start(&self, _turn: &RecordedTurn) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn extend(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Turns wait in `turn_jobs` for a worker. A claim is a lease of `lease` that the
/// worker's heartbeat extends; a worker that dies before starting the turn lets it lapse
/// and another claims the job. A chat bound to a worker (its sandbox is there) waits for
/// that worker until its heartbeat is older than `expiry`.
pub struct DurableQueue {
    store: Store,
    node_id: String,
    lease: Duration,
    expiry: Duration,
}

impl DurableQueue {
    pub fn new(store: Store, node_id: String, lease: Duration, expiry: Duration) -> Self {
        Self { store, node_id, lease, expiry }
    }

    fn lease_until(&self) -> chrono::DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX)
    }
}

#[async_trait]
impl TurnQueue for DurableQueue {
    async fn hand_off(&self, turn: &RecordedTurn) -> Result<Handoff, StoreError> {
        self.store
            .push_turn_job(
                turn.chat_id,
                turn.message_id,
                &turn.prompt,
                &turn.model,
                turn.permission_mode,
            )
            .await?;
        Ok(Handoff::Queued)
    }

    async fn claim(&self) -> Result<Option<RecordedTurn>, StoreError> {
        let now = Utc::now();
        let expiry = chrono::Duration::from_std(self.expiry).unwrap_or(chrono::Duration::MAX);
        let expired_before =
            now.checked_sub_signed(expiry).unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let job = self
            .store
            .claim_turn_job(&self.node_id, now, self.lease_until(), expired_before)
            .await?;
        Ok(job.map(|job| RecordedTurn {
            chat_id: job.chat_id,
            message_id: job.message_id,
            prompt: job.prompt,
            model: job.model,
            permission_mode: job.permission_mode,
        }))
    }

    async fn start(&self, turn: &RecordedTurn) -> Result<bool, StoreError> {
        self.store.start_turn_job(turn.message_id, &self.node_id, Utc::now()).await
    }

    async fn extend(&self) -> Result<(), StoreError> {
        self.store.extend_turn_job_leases(&self.node_id, self.lease_until()).await.map(drop)
    }
}
