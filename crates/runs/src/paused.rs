//! Chats whose queue waits for `send now`: their last turn was interrupted, or the server
//! restarted.

use std::collections::HashSet;
use std::sync::Mutex;

use uuid::Uuid;

use crate::lock;

#[derive(Default)]
pub(crate) struct PausedQueues {
    chats: Mutex<HashSet<Uuid>>,
}

impl PausedQueues {
    pub fn pause(&self, chat_id: Uuid) {
        lock(&self.chats).insert(chat_id);
    }

    pub fn pause_all(&self, chats: impl IntoIterator<Item = Uuid>) {
        lock(&self.chats).extend(chats);
    }

    pub fn resume(&self, chat_id: Uuid) {
        lock(&self.chats).remove(&chat_id);
    }

    pub fn is_paused(&self, chat_id: Uuid) -> bool {
        lock(&self.chats).contains(&chat_id)
    }
}
