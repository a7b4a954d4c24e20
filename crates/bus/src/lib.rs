//! Live fan-out of chat events: every event appended to a chat's log is published here and
//! reaches each current subscriber of that chat.
//!
//! The bus is not durable and does not need to be: the log is. A subscriber that falls
//! behind is told so ([`Received::Lagged`]) and catches up from the log; SSE handlers
//! subscribe before reading the log so that nothing falls between the two. This is the
//! in-process bus; a Redis Streams bus for several nodes will offer the same [`Subscription`].
//!
//! Transient events (text as the model writes it) travel the same way but are in no log: a
//! subscriber that lags loses them, which costs nothing because the durable event that
//! follows carries the whole text.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use agentbox_protocol::{ChatEvent, TransientEvent};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Events buffered per chat for a slow subscriber before it lags.
const CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub struct EventBus {
    chats: Mutex<HashMap<Uuid, broadcast::Sender<Item>>>,
}

/// What a subscriber receives next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Boxing would cost an allocation per delivered event.
pub enum Received {
    Event(ChatEvent),
    /// Events were missed; read them from the log.
    Lagged,
    /// An event that is in no log (see [`TransientEvent`]).
    Transient(TransientEvent),
}

/// What travels on a chat's channel.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // As for `Received`.
enum Item {
    Event(ChatEvent),
    Transient(TransientEvent),
}

#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Item>,
}

impl Subscription {
    /// The next event, or `Lagged` after missing some. Never ends while the bus lives.
    pub async fn recv(&mut self) -> Received {
        loop {
            match self.receiver.recv().await {
                Ok(Item::Event(event)) => return Received::Event(event),
                Ok(Item::Transient(event)) => return Received::Transient(event),
                Err(broadcast::error::RecvError::Lagged(_)) => return Received::Lagged,
                // The sender is only dropped once nobody listens, which excludes us; if it
                // happens anyway, wait forever rather than spin.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Deliver `event` to the chat's current subscribers, if any.
    pub fn publish(&self, chat_id: Uuid, event: ChatEvent) {
        self.send(chat_id, Item::Event(event));
    }

    /// Deliver an event that is in no log (see [`TransientEvent`]).
    pub fn publish_transient(&self, chat_id: Uuid, event: TransientEvent) {
        self.send(chat_id, Item::Transient(event));
    }

    fn send(&self, chat_id: Uuid, item: Item) {
        let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = chats.get(&chat_id)
            && sender.send(item).is_err()
        {
            // Nobody listens any more: forget the chat until someone subscribes again.
            chats.remove(&chat_id);
        }
    }

    pub fn subscribe(&self, chat_id: Uuid) -> Subscription {
        let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        chats.retain(|_, sender| sender.receiver_count() > 0);
        let sender = chats.entry(chat_id).or_insert_with(|| broadcast::channel(CAPACITY).0);
        Subscription { receiver: sender.subscribe() }
    }

    /// How many chats have live subscribers (for metrics and tests).
    pub fn active_chats(&self) -> usize {
        let chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        chats.values().filter(|sender| sender.receiver_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbox_protocol::EventPayload;

    fn event(seq: i64) -> ChatEvent {
        ChatEvent {
            seq,
            message_id: Uuid::nil(),
            parent_tool_use_id: None,
            created_at: chrono::Utc::now(),
            payload: EventPayload::AssistantText { text: seq.to_string() },
        }
    }

    #[tokio::test]
    async fn subscribers_get_their_chats_events_only() {
        let bus = EventBus::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut sub_a = bus.subscribe(a);
        let mut sub_b = bus.subscribe(b);
        bus.publish(a, event(1));
        bus.publish(b, event(2));
        let Received::Event(got) = sub_a.recv().await else { panic!("lagged") };
        assert_eq!(got.seq, 1);
        let Received::Event(got) = sub_b.recv().await else { panic!("lagged") };
        assert_eq!(got.seq, 2);
    }

    #[tokio::test]
    async fn transient_events_arrive_in_order_with_the_durable_ones() {
        let bus = EventBus::new();
        let chat = Uuid::new_v4();
        let mut sub = bus.subscribe(chat);
        let delta =
            TransientEvent::AssistantTextDelta { message_id: Uuid::nil(), text: "Hel".into() };
        bus.publish_transient(chat, delta.clone());
        bus.publish(chat, event(1));
        assert!(matches!(sub.recv().await, Received::Transient(got) if got == delta));
        assert!(matches!(sub.recv().await, Received::Event(got) if got.seq == 1));
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let bus = EventBus::new();
        let chat = Uuid::new_v4();
        let mut sub = bus.subscribe(chat);
        for seq in 0..(CAPACITY as i64 + 10) {
            bus.publish(chat, event(seq));
        }
        assert!(matches!(sub.recv().await, Received::Lagged));
        let Received::Event(next) = sub.recv().await else { panic!("lagged twice") };
        assert_eq!(next.seq, 10);
    }

    #[tokio::test]
    async fn chats_without_subscribers_are_forgotten() {
        let bus = EventBus::new();
        let chat = Uuid::new_v4();
        drop(bus.subscribe(chat));
        bus.publish(chat, event(1));
        assert_eq!(bus.active_chats(), 0);
        assert!(bus.chats.lock().unwrap().is_empty());
    }
}
