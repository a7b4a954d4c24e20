//! Nodes as the runner sees them, on SQLite and on PostgreSQL: two store handles on one
//! database stand in for two nodes. A node's recovery and sweeps close only the turns of
//! nodes whose heartbeat expired (and its own after a restart), each once, with an error
//! that says why; the clock is passed in, so expiry is tested without waiting.
// Test code may unwrap: a panic is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use agentbox_bus::EventBus;
use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{EventPayload, MessageStatus};
use agentbox_runs::{NodeRole, NodeSettings, RunnerConfig, TurnRunner};
use agentbox_sandbox::host::HostProvider;
use agentbox_store::testing::TestDatabase;
use agentbox_store::{NewChat, NodeRecord, PoolSettings, Store};
use chrono::{TimeDelta, Utc};
use uuid::Uuid;

/// A database of one backend and a way to open more handles on it.
struct Db {
    url: String,
    _dir: tempfile::TempDir,
    _pg: Option<TestDatabase>,
}

impl Db {
    async fn new(postgres: bool, label: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if postgres {
            let pg = TestDatabase::create(label).await.unwrap();
            Self { url: pg.url.clone(), _dir: dir, _pg: Some(pg) }
        } else {
            let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
            Self { url, _dir: dir, _pg: None }
        }
    }

    /// A small pool: PostgreSQL's connections are shared by every test of the machine.
    async fn store(&self) -> Store {
        let pool = PoolSettings { size: Some(1), max_overflow: Some(3), ..PoolSettings::default() };
        Store::open_with(&self.url, &pool).await.unwrap()
    }

    /// A runner for node `id` on its own store handle (turns are never run here: the
    /// sandbox provider is never asked for anything).
    async fn runner(&self, id: &str) -> Arc<TurnRunner> {
        let sandboxes = Arc::new(HostProvider::new(self._dir.path().join(id), Default::default()));
        let node = NodeSettings {
            id: id.into(),
            role: NodeRole::All,
            expiry: Duration::from_secs(30),
            ..NodeSettings::default()
        };
        let config = RunnerConfig { node, ..RunnerConfig::default() };
        TurnRunner::new(self.store().await, Arc::new(EventBus::new()), sandboxes, config)
    }
}

async fn chat(store: &Store) -> Uuid {
    let user = store.create_user(&format!("{}@example.com", Uuid::now_v7()), None, "h").await;
    let chat = NewChat {
        user_id: user.unwrap().id,
        title: "t".into(),
        model: "m".into(),
        permission_mode: PermissionMode::Ask,
        sandbox_provider: "host".into(),
        custom_instructions: None,
        max_thinking_tokens: None,
    };
    store.create_chat(chat).await.unwrap().id
}

/// A turn recorded and started on `node`.
async fn running_turn(store: &Store, node: &str) -> (Uuid, Uuid) {
    let chat = chat(store).await;
    let message = store.begin_turn(chat, "p", "m", PermissionMode::Ask).await.unwrap().message_id;
    assert!(store.start_turn_on(message, node).await.unwrap());
    (chat, message)
}

async fn status(store: &Store, chat: Uuid) -> MessageStatus {
    store.messages(chat).await.unwrap().last().unwrap().status
}

/// The `error` event of the turn's message, as (code, message).
async fn error_of(store: &Store, chat: Uuid, message: Uuid) -> Option<(String, String)> {
    store.events_after(chat, 0, 100).await.unwrap().into_iter().find_map(|event| {
        match event.payload {
            EventPayload::Error { message: text, code } if event.message_id == message => {
                Some((code.unwrap_or_default(), text))
            }
            _ => None,
        }
    })
}

async fn an_expired_nodes_turns_are_interrupted_once_by_one_sweeper(postgres: bool) {
    let db = Db::new(postgres, "sweep").await;
    let a = db.store().await;
    let now = Utc::now();
    a.register_node(&NodeRecord {
        id: "a".into(),
        role: NodeRole::Worker,
        address: None,
        started_at: now,
        heartbeat_at: now,
    })
    .await
    .unwrap();
    let (a_chat, a_turn) = running_turn(&a, "a").await;

    // Node b starts while a is alive: its recovery leaves a's turn alone.
    let b = db.runner("b").await;
    assert_eq!(b.recover().await.unwrap(), 0);
    let (b_chat, _) = running_turn(&a, "b").await;
    let c = db.runner("c").await;
    assert_eq!(c.recover().await.unwrap(), 0);
    assert_eq!(b.sweep(now + TimeDelta::seconds(29)).await.unwrap(), 0, "within the bound");
    assert_eq!(status(&a, a_chat).await, MessageStatus::InProgress);

    // a stops beating. Past the bound, the first sweeper to get there closes its turn; the
    // other finds nothing to do.
    let later = now + TimeDelta::seconds(31);
    for alive in ["b", "c"] {
        assert!(a.node_heartbeat(alive, later).await.unwrap());
    }
    let (by_b, by_c) = tokio::join!(b.sweep(later), c.sweep(later));
    assert_eq!(by_b.unwrap() + by_c.unwrap(), 1, "closed once");
    assert_eq!(status(&a, a_chat).await, MessageStatus::Interrupted);
    let (code, text) = error_of(&a, a_chat, a_turn).await.expect("an error event");
    assert_eq!(code, "node_lost");
    assert!(text.contains("(a) stopped responding"), "{text}");
    // A sweep never touches the sweeper's own turns, however old its heartbeat looks.
    assert_eq!(status(&a, b_chat).await, MessageStatus::InProgress);
    assert_eq!(b.sweep(later + TimeDelta::seconds(60)).await.unwrap(), 0);
    assert_eq!(status(&a, b_chat).await, MessageStatus::InProgress, "b's turn stays");
}

async fn a_restarted_node_closes_its_own_turns_at_once(postgres: bool) {
    let db = Db::new(postgres, "restart").await;
    let store = db.store().await;
    let first = db.runner("n1").await;
    assert_eq!(first.recover().await.unwrap(), 0);
    let (mine, my_turn) = running_turn(&store, "n1").await;
    let (theirs, _) = running_turn(&store, "n2").await;
    store
        .register_node(&NodeRecord {
            id: "n2".into(),
            role: NodeRole::Worker,
            address: None,
            started_at: Utc::now(),
            heartbeat_at: Utc::now(),
        })
        .await
        .unwrap();
    // n1 dies and starts again with the same id: its turn is closed by the restart,
    // n2's (alive) is not.
    let again = db.runner("n1").await;
    assert_eq!(again.recover().await.unwrap(), 1);
    assert_eq!(status(&store, mine).await, MessageStatus::Interrupted);
    let (code, _) = error_of(&store, mine, my_turn).await.unwrap();
    assert_eq!(code, "server_restarted");
    assert_eq!(status(&store, theirs).await, MessageStatus::InProgress);
}

#[tokio::test]
async fn sweep_sqlite() {
    an_expired_nodes_turns_are_interrupted_once_by_one_sweeper(false).await;
}

#[tokio::test]
async fn sweep_postgres() {
    an_expired_nodes_turns_are_interrupted_once_by_one_sweeper(true).await;
}

#[tokio::test]
async fn restart_sqlite() {
    a_restarted_node_closes_its_own_turns_at_once(false).await;
}

#[tokio::test]
async fn restart_postgres() {
    a_restarted_node_closes_its_own_turns_at_once(true).await;
}
