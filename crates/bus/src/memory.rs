//! The in-process bus: one tokio broadcast channel per chat with subscribers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use agentbox_protocol::{ChatEvent, TransientEvent};
use async_trait::async_trait;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{Backend, BusHealth, BusStats, CAPACITY, Item, Published, Subscription};

#[derive(Debug, Default)]
pub(crate) struct InProcess {
    chats: Mutex<HashMap<Uuid, broadcast::Sender<Item>>>,
    published: AtomicU64,
}

impl InProcess {
    fn send(&self, chat_id: Uuid, item: Item) {
        let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = chats.get(&chat_id)
            && sender.send(item).is_err()
        {
            // Nobody listens any more: forget the chat until someone subscribes again.
            chats.remove(&chat_id);
        }
    }
}

#[async_trait]
impl Backend for InProcess {
    fn publish(&self, chat_id: Uuid, event: ChatEvent) {
        self.published.fetch_add(1, Ordering::Relaxed);
        self.send(chat_id, Item::Event(Published::new(event)));
    }

    fn publish_transient(&self, chat_id: Uuid, event: TransientEvent) {
        self.send(chat_id, Item::Transient(Published::new(event)));
    }

    async fn subscribe(&self, chat_id: Uuid) -> Subscription {
        let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        chats.retain(|_, sender| sender.receiver_count() > 0);
        let sender = chats.entry(chat_id).or_insert_with(|| broadcast::channel(CAPACITY).0);
        Subscription::new(sender.subscribe())
    }

    async fn flush(&self) {}

    async fn health(&self) -> BusHealth {
        BusHealth {
            kind: "in_process",
            reachable: None,
            detail: "in-process event bus (one node)".to_owned(),
        }
    }

    fn stats(&self) -> BusStats {
        let chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        BusStats {
            active_chats: chats.values().filter(|sender| sender.receiver_count() > 0).count(),
            published: self.published.load(Ordering::Relaxed),
            publish_failures: 0,
            transport_lags: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chats_without_subscribers_are_forgotten() {
        let bus = InProcess::default();
        let chat = Uuid::new_v4();
        drop(bus.subscribe(chat).await);
        bus.publish_transient(
            chat,
            TransientEvent::AssistantTextDelta { message_id: Uuid::nil(), text: "x".into() },
        );
        assert_eq!(bus.stats().active_chats, 0);
        assert!(bus.chats.lock().unwrap().is_empty());
    }
}
