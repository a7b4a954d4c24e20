//! Per-chat gates: held while a turn is being started and during a restore or fork, so that
//! neither starts in the middle of the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::lock;

pub(crate) type Gate = Arc<tokio::sync::Mutex<()>>;

#[derive(Default)]
pub(crate) struct ChatGates {
    gates: Mutex<HashMap<Uuid, Gate>>,
}

impl ChatGates {
    /// The chat's gate; lock it for as long as nothing else may start in the chat.
    pub fn gate(&self, chat_id: Uuid) -> Gate {
        lock(&self.gates).entry(chat_id).or_default().clone()
    }

    pub fn forget(&self, chat_id: Uuid) {
        lock(&self.gates).remove(&chat_id);
    }
}
