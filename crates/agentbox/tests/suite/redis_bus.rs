//! The Redis Streams bus end to end: two servers on one PostgreSQL database and one Redis
//! (their own key prefix), a client streaming from node A while the turn runs on node B.
//! Node A runs no part of the turn, so every live event it streams came through Redis.

use agentbox_bus::RedisConfig;
use serde_json::json;
use uuid::Uuid;

use super::support::{Api, Db, TestServer, assert_strictly_increasing, kinds};

fn redis_url() -> String {
    std::env::var("AGENTBOX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Removes the test's Redis keys when dropped, also when the test fails.
struct Keys(String);

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

#[tokio::test]
async fn a_turn_on_one_node_streams_every_event_in_order_from_another() {
    let keys = Keys(format!("agentbox-test:{}:e2e:{}:", std::process::id(), Uuid::new_v4()));
    let database = Db::Postgres.create("redis_bus").await.unwrap();
    let node = |url: String, prefix: String| {
        move |config: &mut agentbox::config::Config| {
            config.database_url = url;
            config.redis = Some(RedisConfig { url: redis_url(), prefix });
            // One signing key, as a load-balanced deployment has: a token works on both.
            config.secret_key = Some("a shared secret of at least thirty-two bytes".into());
        }
    };
    let node_a = TestServer::start_with(node(database.url.clone(), keys.0.clone())).await;
    let node_b = TestServer::start_with(node(database.url.clone(), keys.0.clone())).await;

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
