//! The Redis Streams bus end to end: two servers on one PostgreSQL database and one Redis
//! (their own key prefix), a client streaming from node A while the turn runs on node B.
//! Node A runs no part of the turn, so every live event it streams came through Redis, or,
//! while Redis is unreachable, from the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agentbox_bus::RedisConfig;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

use super::support::{Api, Db, TestServer, assert_strictly_increasing, kinds};

pub(super) fn redis_url() -> String {
    std::env::var("AGENTBOX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Removes the test's Redis keys when dropped, also when the test fails.
pub(super) struct Keys(pub(super) String);

impl Keys {
    /// A key prefix of the test's own: `agentbox-test:<pid>:<test>:<uuid>:`.
    pub(super) fn new(test: &str) -> Self {
        Self(format!("agentbox-test:{}:{test}:{}:", std::process::id(), Uuid::new_v4()))
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let mut redis = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.0)).query(&mut redis).unwrap();
        if !keys.is_empty() {
            let () = redis::cmd("DEL").arg(keys).query(&mut redis).unwrap();
        }
    }
}

/// A TCP proxy in front of Redis that the test takes down (every connection cut, new ones
/// closed at once) and brings back: an outage as the servers see it, without touching the
/// Redis other tests use.
struct Proxy {
    url: String,
    down: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start() -> Self {
        let upstream =
            redis::Client::open(redis_url()).unwrap().get_connection_info().addr().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}/0", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(0);
        let (accept_down, accept_cut) = (down.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if accept_down.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let (upstream, mut cut) = (upstream.clone(), accept_cut.subscribe());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { url, down, cut }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.cut.send_modify(|generation| *generation += 1);
        }
    }
}

/// A server's settings for a node of the two-node deployment.
pub(super) fn node(
    database_url: String,
    redis_url: String,
    prefix: String,
) -> impl FnOnce(&mut agentbox::config::Config) {
    move |config| {
        config.database_url = database_url;
        config.redis = Some(RedisConfig { url: redis_url, prefix });
        // One signing key, as a load-balanced deployment has: a token works on both.
        config.secret_key = Some("a shared secret of at least thirty-two bytes".into());
    }
}

#[tokio::test]
async fn a_turn_on_one_node_streams_every_event_in_order_from_another() {
    let keys = Keys::new("e2e");
    let database = Db::Postgres.create("redis_bus").await.unwrap();
    let node_a =
        TestServer::start_with(node(database.url.clone(), redis_url(), keys.0.clone())).await;
    let node_b =
        TestServer::start_with(node(database.url.clone(), redis_url(), keys.0.clone())).await;

    let on_b = node_b.user("nodes@example.com").await;
    let on_a = Api { base: node_a.base.clone(), ..on_b.clone() };
    let chat = on_b.new_chat().await;
    let mut live = on_a.stream(&chat, None).await;
    let message =
        on_b.send(&chat, "[[think]] [[write:a.txt:hello]] [[steps:3]] [[text:done]] go").await;
    let events = live.until_completed(&message).await;

    // Every event, in order, without a gap: exactly what the log holds.
    assert_strictly_increasing(&events);
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    let replayed = on_b.turn_events(&chat, &message).await;
    assert_eq!(
        events.iter().map(|event| &event.data).collect::<Vec<_>>(),
        replayed.iter().map(|event| &event.data).collect::<Vec<_>>(),
        "node A's live stream differs from node B's log"
    );
    let kinds = kinds(&events);
    for kind in [
        "user_text",
        "assistant_thinking",
        "tool_started",
        "tool_completed",
        "assistant_text",
        "message_completed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }

    // The events are on the chat's stream in Redis, and both nodes report Redis.
    let mut redis = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
    let length: usize =
        redis::cmd("XLEN").arg(format!("{}chat:{chat}", keys.0)).query(&mut redis).unwrap();
    assert!(length >= events.len(), "{length} stream entries for {} events", events.len());
    for node in [&node_a, &node_b] {
        let (_, health) = node.api().get("/health").await;
        assert_eq!(health["redis"]["status"], json!("ok"), "{health}");
        let detail = health["redis"]["detail"].as_str().unwrap();
        assert!(detail.contains("Redis Streams") && detail.contains("reachable"), "{detail}");
    }
    drop((node_a, node_b));
    drop(database);
}

#[tokio::test]
async fn redis_going_away_mid_turn_loses_no_event() {
    let keys = Keys::new("e2e-outage");
    let database = Db::Postgres.create("redis_outage").await.unwrap();
    let proxy = Proxy::start().await;
    let node_a =
        TestServer::start_with(node(database.url.clone(), proxy.url.clone(), keys.0.clone())).await;
    let node_b =
        TestServer::start_with(node(database.url.clone(), proxy.url.clone(), keys.0.clone())).await;
    let on_b = node_b.user("outage@example.com").await;
    let on_a = Api { base: node_a.base.clone(), ..on_b.clone() };
    let chat = on_b.new_chat().await;
    let mut live = on_a.stream(&chat, None).await;
    let message = on_b.send(&chat, "[[text:first]] [[sleep:2]] [[text:last]] go").await;

    // Redis goes away while the tool runs; the tool's end, committed on B during the outage,
    // still reaches the client on A (from the log, which A's stream falls back to).
    let mut events = live.until("tool_started").await;
    proxy.set_down(true);
    events.extend(live.until("tool_completed").await);
    let (_, health) = on_a.get("/health").await;
    assert_eq!(health["redis"]["status"], json!("error"), "{health}");
    assert_eq!(health["status"], json!("healthy"), "an unreachable Redis stops no turn: {health}");
    proxy.set_down(false);
    events.extend(live.until_completed(&message).await);

    assert_strictly_increasing(&events);
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>(), "a gap or a repeat");
    let replayed = on_b.turn_events(&chat, &message).await;
    assert_eq!(
        events.iter().map(|event| &event.data).collect::<Vec<_>>(),
        replayed.iter().map(|event| &event.data).collect::<Vec<_>>(),
    );
    drop((node_a, node_b));
    drop(database);
}
