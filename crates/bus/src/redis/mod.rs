//! The Redis Streams bus: one stream per chat, written after the event is committed, read
//! by one task per watched chat per node that fans out to the node's local subscribers.
//!
//! - `publish` encodes the event and queues it for one publishing task ([`publisher`]),
//!   which pipelines `XADD ... MAXLEN ~` in publication order on the shared (multiplexed,
//!   reconnecting) connection. The turn never waits for Redis; what Redis did not take is
//!   counted, logged, and its chat gets a resynchronisation marker once Redis answers again.
//! - `subscribe` fixes the subscriber's position (the stream's last entry id) before it
//!   returns, then joins the chat's reader ([`reader`]), started if it is the chat's first
//!   subscriber on this node. The reader owns a dedicated connection for `XREAD BLOCK`, so
//!   one chat's blocking read never holds up the shared connection.
//! - Transient events go on the same stream as the durable ones (see ARCHITECTURE.md: the
//!   order between a text piece and its block's durable event is kept for free, and one
//!   reader per chat serves both).

mod codec;
mod publisher;
mod reader;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentbox_protocol::{ChatEvent, TransientEvent};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::{Backend, BusError, BusHealth, BusStats, CAPACITY, Item, Subscription};

/// Entries kept per chat stream (approximately: `MAXLEN ~`). Every entry is already in the
/// database when it is added, so trimming never loses an event, only the chance to read it
/// from Redis rather than from the log.
const STREAM_MAXLEN: usize = 10_000;
/// A chat stream nobody wrote to for this long disappears.
const STREAM_TTL: Duration = Duration::from_secs(24 * 3600);
/// Events waiting for the publishing task before new ones are given up (and lag).
const QUEUE: usize = 65_536;
/// A command on the shared connection that takes longer counts as a failure.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the Redis bus lives.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`.
    pub url: String,
    /// Put before every key, so several installations (or tests) can share one Redis.
    pub prefix: String,
}

impl RedisConfig {
    /// Whether the URL is one the client can use (nothing is connected).
    pub fn check(&self) -> Result<(), BusError> {
        redis::Client::open(self.url.as_str())
            .map(drop)
            .map_err(|err| BusError::InvalidRedisUrl(err.to_string()))
    }
}

impl std::fmt::Debug for RedisConfig {
    // The URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// What the publisher, the readers and `subscribe` share.
pub(crate) struct Shared {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: String,
    /// `host:port/db`, for messages (never the password).
    place: String,
    /// Local fan-out per watched chat; the chat's reader task holds a clone of its sender.
    chats: Mutex<HashMap<Uuid, broadcast::Sender<Item>>>,
    /// Chats whose events Redis may not have: each gets a marker that makes its subscribers
    /// (on every node) lag, once Redis takes it.
    dirty: Mutex<HashSet<Uuid>>,
    published: AtomicU64,
    publish_failures: AtomicU64,
    transport_lags: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("place", &self.place)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn key(&self, chat_id: Uuid) -> String {
        format!("{}chat:{chat_id}", self.prefix)
    }

    fn mark_dirty(&self, chats: impl IntoIterator<Item = Uuid>) {
        self.dirty.lock().unwrap_or_else(PoisonError::into_inner).extend(chats);
    }

    /// Tell the chat's local subscribers that the transport may have lost events.
    fn lag(&self, sender: &broadcast::Sender<Item>) {
        self.transport_lags.fetch_add(1, Ordering::Relaxed);
        let _ = sender.send(Item::Lagged);
    }
}

/// What the publishing task is asked to do.
pub(crate) enum Outgoing {
    Entry { chat_id: Uuid, entry: codec::Entry },
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub(crate) struct RedisBus {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Outgoing>,
}

impl RedisBus {
    pub(crate) fn open(config: RedisConfig) -> Result<Self, BusError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|err| BusError::InvalidRedisUrl(err.to_string()))?;
        let info = client.get_connection_info();
        let place = format!("{}/{}", info.addr(), info.redis_settings().db());
        let manager = client
            .get_connection_manager_lazy(
                ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500)),
            )
            .map_err(|err| BusError::InvalidRedisUrl(err.to_string()))?;
        let shared = Arc::new(Shared {
            client,
            manager,
            prefix: config.prefix,
            place,
            chats: Mutex::default(),
            dirty: Mutex::default(),
            published: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            transport_lags: AtomicU64::new(0),
        });
        let (queue, outgoing) = mpsc::channel(QUEUE);
        tokio::spawn(publisher::run(shared.clone(), outgoing));
        Ok(Self { shared, queue })
    }

    fn send(&self, chat_id: Uuid, entry: codec::Entry) {
        if self.queue.try_send(Outgoing::Entry { chat_id, entry }).is_err() {
            // The publisher is far behind (Redis slow or down): give this one up; the marker
            // sends every subscriber of the chat to the log, which has it.
            self.shared.publish_failures.fetch_add(1, Ordering::Relaxed);
            self.shared.mark_dirty([chat_id]);
        }
    }
}

/// Run one command with a time limit; errors as text (they are logged, never returned).
pub(crate) async fn timed<T: redis::FromRedisValue>(
    command: &redis::Cmd,
    connection: &mut (impl redis::aio::ConnectionLike + Send),
    limit: Duration,
) -> Result<T, String> {
    match tokio::time::timeout(limit, command.query_async::<T>(connection)).await {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(_) => Err(format!("no answer from Redis within {limit:?}")),
    }
}

/// The id of the chat's newest stream entry (`0-0` for none): a reader starting there gets
/// everything added after this call.
pub(crate) async fn position(
    key: &str,
    connection: &mut (impl redis::aio::ConnectionLike + Send),
) -> Result<String, String> {
    let mut command = redis::cmd("XREVRANGE");
    command.arg(key).arg("+").arg("-").arg("COUNT").arg(1);
    let reply: redis::streams::StreamRangeReply =
        timed(&command, connection, COMMAND_TIMEOUT).await?;
    Ok(reply.ids.into_iter().next().map_or_else(|| "0-0".to_owned(), |id| id.id))
}

#[async_trait]
impl Backend for RedisBus {
    fn publish(&self, chat_id: Uuid, event: ChatEvent) {
        match codec::Entry::event(&event) {
            Ok(entry) => self.send(chat_id, entry),
            Err(err) => {
                tracing::error!(%chat_id, seq = event.seq, %err, "an event did not serialize");
                self.shared.publish_failures.fetch_add(1, Ordering::Relaxed);
                self.shared.mark_dirty([chat_id]);
            }
        }
    }

    fn publish_transient(&self, chat_id: Uuid, event: TransientEvent) {
        // A lost transient event costs nothing (the durable one carries its text).
        if let Ok(entry) = codec::Entry::transient(&event) {
            let _ = self.queue.try_send(Outgoing::Entry { chat_id, entry });
        }
    }

    async fn subscribe(&self, chat_id: Uuid) -> Subscription {
        if let Some(sender) =
            self.shared.chats.lock().unwrap_or_else(PoisonError::into_inner).get(&chat_id)
        {
            return Subscription::new(sender.subscribe());
        }
        // Not under the lock: this is a round trip. A reader started meanwhile by another
        // subscriber began at a position fixed before this call returns, which is as good.
        let mut manager = self.shared.manager.clone();
        let position = match position(&self.shared.key(chat_id), &mut manager).await {
            Ok(position) => Some(position),
            Err(err) => {
                tracing::debug!(%chat_id, %err, "Redis: reading a stream position failed");
                None
            }
        };
        let mut chats = self.shared.chats.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = chats.get(&chat_id) {
            return Subscription::new(sender.subscribe());
        }
        let (sender, receiver) = broadcast::channel(CAPACITY);
        chats.insert(chat_id, sender.clone());
        drop(chats);
        tokio::spawn(reader::run(self.shared.clone(), chat_id, sender, position));
        Subscription::new(receiver)
    }

    async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Outgoing::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    async fn health(&self) -> BusHealth {
        let mut manager = self.shared.manager.clone();
        let reachable =
            timed::<String>(&redis::cmd("PING"), &mut manager, COMMAND_TIMEOUT).await.is_ok();
        let stats = self.stats();
        BusHealth {
            kind: "redis",
            reachable: Some(reachable),
            detail: format!(
                "Redis Streams at {} (prefix {:?}): {}; {} events published, {} left to the log",
                self.shared.place,
                self.shared.prefix,
                if reachable { "reachable" } else { "unreachable" },
                stats.published,
                stats.publish_failures,
            ),
        }
    }

    fn stats(&self) -> BusStats {
        let chats = self.shared.chats.lock().unwrap_or_else(PoisonError::into_inner);
        BusStats {
            active_chats: chats.values().filter(|sender| sender.receiver_count() > 0).count(),
            published: self.shared.published.load(Ordering::Relaxed),
            publish_failures: self.shared.publish_failures.load(Ordering::Relaxed),
            transport_lags: self.shared.transport_lags.load(Ordering::Relaxed),
        }
    }
}
