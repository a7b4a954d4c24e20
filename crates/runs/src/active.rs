//! The turns running on this node, each with the handles that reach it while it runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agentbox_protocol::permission::ResolvedBy;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::lock;
use crate::permissions::LiveTurn;

/// One running turn: how to stop it, how to know it stopped, and its live state.
pub(crate) struct ActiveTurn {
    pub message_id: Uuid,
    pub interrupt: CancellationToken,
    pub finished: CancellationToken,
    pub live: Arc<LiveTurn>,
    /// A queued prompt to run as soon as this turn has stopped (`send now`).
    pub send_now: Option<Uuid>,
}

/// What a caller that stops a turn needs of it.
pub(crate) struct Stopping {
    pub message_id: Uuid,
    pub interrupt: CancellationToken,
    pub finished: CancellationToken,
}

/// The running turns by chat: at most one per chat (the store enforces it too).
#[derive(Default)]
pub(crate) struct ActiveTurns {
    turns: Mutex<HashMap<Uuid, ActiveTurn>>,
}

impl ActiveTurns {
    pub fn insert(&self, chat_id: Uuid, turn: ActiveTurn) {
        lock(&self.turns).insert(chat_id, turn);
    }

    pub fn len(&self) -> usize {
        lock(&self.turns).len()
    }

    /// How many permission requests of the running turns wait for a person.
    pub fn pending_requests(&self) -> usize {
        lock(&self.turns).values().map(|turn| turn.live.pending()).sum()
    }

    pub fn contains(&self, chat_id: Uuid) -> bool {
        lock(&self.turns).contains_key(&chat_id)
    }

    /// Ask the chat's turn to stop; its message id, or `None` when none runs.
    pub fn interrupt(&self, chat_id: Uuid) -> Option<Uuid> {
        let turns = lock(&self.turns);
        let turn = turns.get(&chat_id)?;
        turn.interrupt.cancel();
        Some(turn.message_id)
    }

    /// The live state of the chat's running turn.
    pub fn live(&self, chat_id: Uuid) -> Option<Arc<LiveTurn>> {
        lock(&self.turns).get(&chat_id).map(|turn| turn.live.clone())
    }

    /// The live state of the chat's running turn if it is the turn of `message_id`.
    pub fn live_of(&self, chat_id: Uuid, message_id: Uuid) -> Option<Arc<LiveTurn>> {
        lock(&self.turns)
            .get(&chat_id)
            .filter(|turn| turn.message_id == message_id)
            .map(|turn| turn.live.clone())
    }

    /// Interrupt the chat's running turn so that queued prompt `next` runs right after it.
    /// False when no turn runs.
    pub fn interrupt_for(&self, chat_id: Uuid, next: Uuid) -> bool {
        let mut turns = lock(&self.turns);
        let Some(turn) = turns.get_mut(&chat_id) else { return false };
        turn.send_now = Some(next);
        turn.interrupt.cancel();
        true
    }

    /// The chat's running turn's handles, with any `send now` withdrawn: whoever stops it
    /// this way does not want the queue to move on.
    pub fn stopping(&self, chat_id: Uuid) -> Option<Stopping> {
        lock(&self.turns).get_mut(&chat_id).map(|turn| {
            turn.send_now = None;
            Stopping {
                message_id: turn.message_id,
                interrupt: turn.interrupt.clone(),
                finished: turn.finished.clone(),
            }
        })
    }

    /// Forget the turn of `message_id` once it has ended; the prompt sent with `send now`
    /// meanwhile, if any.
    pub fn finish(&self, chat_id: Uuid, message_id: Uuid) -> Option<Uuid> {
        let mut turns = lock(&self.turns);
        match turns.get(&chat_id) {
            Some(turn) if turn.message_id == message_id => {
                turns.remove(&chat_id).and_then(|turn| turn.send_now)
            }
            _ => None,
        }
    }

    /// Deny every open request and interrupt every turn, for a shutdown.
    pub fn interrupt_all(&self, resolved_by: ResolvedBy, message: &str) {
        for turn in lock(&self.turns).values() {
            turn.live.deny_all(resolved_by, message);
            turn.interrupt.cancel();
        }
    }
}
