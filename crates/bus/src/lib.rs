//! Live fan-out of chat events: every event appended to a chat's log is published here and
//! reaches each current subscriber of that chat, on this node or (with Redis) on any node.
//!
//! The bus is not durable and does not need to be: the log is. A subscriber that may have
//! missed something is told so ([`Received::Lagged`]) and catches up from the log; SSE
//! handlers subscribe before reading the log so that nothing falls between the two. This
//! crate knows chat events and Redis; it knows nothing of the store, HTTP or turns.
//!
//! [`EventBus`] is the handle the rest of the server holds; it wraps one [`Backend`]: the
//! in-process one ([`EventBus::new`], one node) or Redis Streams ([`EventBus::redis`],
//! several nodes). Both keep the same promises, which `tests/` checks on both:
//! per chat, events arrive in the order they were published; a subscriber receives every
//! event published after [`EventBus::subscribe`] returned, or a `Lagged` in place of those
//! it missed; publishing never fails and never waits for a subscriber or for Redis.
//!
//! Transient events (text as the model writes it) travel the same way but are in no log: a
//! subscriber that lags loses them, which costs nothing because the durable event that
//! follows carries the whole text.

mod memory;
mod published;
mod redis;

use std::sync::Arc;

use agentbox_protocol::{ChatEvent, TransientEvent};
use async_trait::async_trait;
use tokio::sync::broadcast;
use uuid::Uuid;

pub use crate::published::Published;
pub use crate::redis::RedisConfig;

/// Events buffered per chat and node for a slow subscriber before it lags.
pub const CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid Redis URL: {0}")]
    InvalidRedisUrl(String),
}

/// One implementation of the bus. Publishing is synchronous and infallible on purpose: the
/// event is already committed, so a slow or absent transport must cost the turn nothing;
/// a backend that cannot deliver makes its subscribers lag instead.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Deliver a committed `event` to the chat's subscribers, in publication order.
    fn publish(&self, chat_id: Uuid, event: ChatEvent);
    /// Deliver an event that is in no log (see [`TransientEvent`]).
    fn publish_transient(&self, chat_id: Uuid, event: TransientEvent);
    /// Subscribe from now: everything published after this returns is received, or a
    /// `Lagged` in its place.
    async fn subscribe(&self, chat_id: Uuid) -> Subscription;
    /// Wait until everything published before this call has been handed to the transport
    /// or given up on (at shutdown, so the last events reach other nodes; in tests).
    async fn flush(&self);
    /// Whether the transport works now (for `/health`).
    async fn health(&self) -> BusHealth;
    /// Counters since start-up (for `/health`, metrics and tests).
    fn stats(&self) -> BusStats;
}

/// The bus the server holds (`Arc<EventBus>`), whichever backend carries it.
#[derive(Debug, Clone)]
pub struct EventBus {
    backend: Arc<dyn Backend>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// The in-process bus: one node, nothing to configure.
    pub fn new() -> Self {
        Self::with_backend(Arc::new(memory::InProcess::default()))
    }

    /// The Redis Streams bus. Connects lazily: an unreachable Redis is reported by
    /// [`EventBus::health`] and makes subscribers lag, it does not stop the server. Must be
    /// called inside a tokio runtime (it starts the publishing task).
    pub fn redis(config: RedisConfig) -> Result<Self, BusError> {
        Ok(Self::with_backend(Arc::new(crate::redis::RedisBus::open(config)?)))
    }

    pub fn with_backend(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    /// Deliver `event`, already committed to the log, to the chat's subscribers.
    pub fn publish(&self, chat_id: Uuid, event: ChatEvent) {
        // Every event is published once, by the node that appended it, right after it
        // was committed: this counts the events this node appended.
        metrics::counter!("agentbox_events_appended_total").increment(1);
        self.backend.publish(chat_id, event);
    }

    /// Deliver an event that is in no log (see [`TransientEvent`]).
    pub fn publish_transient(&self, chat_id: Uuid, event: TransientEvent) {
        self.backend.publish_transient(chat_id, event);
    }

    /// Subscribe to a chat from now (see [`Backend::subscribe`]).
    pub async fn subscribe(&self, chat_id: Uuid) -> Subscription {
        self.backend.subscribe(chat_id).await
    }

    pub async fn flush(&self) {
        self.backend.flush().await;
    }

    pub async fn health(&self) -> BusHealth {
        self.backend.health().await
    }

    pub fn stats(&self) -> BusStats {
        self.backend.stats()
    }

    /// How many chats have live subscribers on this node.
    pub fn active_chats(&self) -> usize {
        self.backend.stats().active_chats
    }
}

/// What `/health` says about the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusHealth {
    /// `in_process` or `redis`.
    pub kind: &'static str,
    /// For Redis: whether it answered a `PING` just now.
    pub reachable: Option<bool>,
    /// One line for people: where, and what was lost to the log.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Chats with live subscribers on this node.
    pub active_chats: usize,
    /// Events handed to the transport (for Redis: `XADD`s acknowledged).
    pub published: u64,
    /// Events the transport did not take (Redis down, or the publishing queue full); their
    /// subscribers were made to lag and read them from the log.
    pub publish_failures: u64,
    /// Times subscribers were told to lag because of the transport (a reader error or
    /// reconnection, a resynchronisation marker), not because they were slow.
    pub transport_lags: u64,
}

/// What a subscriber receives next. Events are shared with the chat's other subscribers on
/// this node (see [`Published`]): receiving one costs a reference count, not a copy.
#[derive(Debug)]
pub enum Received {
    Event(Published<ChatEvent>),
    /// Events may have been missed; read them from the log.
    Lagged,
    /// An event that is in no log (see [`TransientEvent`]).
    Transient(Published<TransientEvent>),
}

/// What travels on a chat's local channel, whichever backend fills it. The channel clones
/// an item for every receiver, which is why the events are behind an `Arc`.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    Event(Published<ChatEvent>),
    Transient(Published<TransientEvent>),
    /// The transport may have lost events (Redis unreachable, a reader reconnected).
    Lagged,
}

/// One subscriber's view of a chat. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Item>,
}

impl Subscription {
    pub(crate) fn new(receiver: broadcast::Receiver<Item>) -> Self {
        Self { receiver }
    }

    /// The next event, or `Lagged` after missing some. Never ends while the bus lives.
    pub async fn recv(&mut self) -> Received {
        match self.receiver.recv().await {
            Ok(Item::Event(event)) => Received::Event(event),
            Ok(Item::Transient(event)) => Received::Transient(event),
            Ok(Item::Lagged) | Err(broadcast::error::RecvError::Lagged(_)) => Received::Lagged,
            // The sender is only dropped once nobody listens, which excludes us; if it
            // happens anyway, wait forever rather than spin.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
