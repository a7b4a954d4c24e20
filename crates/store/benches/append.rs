//! Events appended per second on each backend: one chat with one appender, one chat with
//! eight appenders (they queue on the chat's `seq`), and eight chats with one appender each.
//! Each event is one `append_event` (its own transaction, committed durably as the backend
//! commits: SQLite WAL with `synchronous=NORMAL`, PostgreSQL with its defaults, which
//! flush the WAL at every commit). Prints a Markdown table for docs/benchmarks.md.
//!
//! Run: `cargo bench -p agentbox-store --bench append` (`BENCH_EVENTS=N` per appender,
//! default 1000; PostgreSQL from `AGENTBOX_TEST_POSTGRES_URL`, default the local server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::EventPayload;
use agentbox_store::testing::TestDatabase;
use agentbox_store::{Backend, NewChat, NewEvent, PoolSettings, Store};
use uuid::Uuid;

fn events() -> usize {
    std::env::var("BENCH_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000)
}

async fn chat(store: &Store, user: Uuid) -> (Uuid, Uuid) {
    let chat = store
        .create_chat(NewChat {
            user_id: user,
            title: "bench".into(),
            model: "m".into(),
            permission_mode: PermissionMode::Auto,
            sandbox_provider: "host".into(),
            custom_instructions: None,
            max_thinking_tokens: None,
        })
        .await
        .unwrap();
    let turn = store.begin_turn(chat.id, "go", "m", PermissionMode::Auto).await.unwrap();
    (chat.id, turn.message_id)
}

/// `appenders` tasks, appender `i` writing `n` events into `chats[i % chats.len()]`.
async fn run(store: &Store, chats: &[(Uuid, Uuid)], appenders: usize, n: usize) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|i| {
            let (store, (chat, message)) = (store.clone(), chats[i % chats.len()]);
            tokio::spawn(async move {
                for k in 0..n {
                    // About the size of a short `assistant_text`.
                    let text = format!("{k}: {}", "lorem ipsum dolor sit amet ".repeat(8));
                    let event = NewEvent::new(message, EventPayload::AssistantText { text });
                    store.append_event(chat, event).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = events();
    let pool = PoolSettings { size: Some(8), max_overflow: Some(8), ..PoolSettings::default() };
    println!("Events appended per second, {n} events per appender:\n");
    println!("| backend | 1 chat, 1 appender | 1 chat, 8 appenders | 8 chats, 1 appender each |");
    println!("|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create("bench_append").await.unwrap()),
        };
        let url = match &database {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("bench.sqlite").display()),
        };
        let store = Store::open_with(&url, &pool).await.unwrap();
        let version = store.info().await.unwrap().version;
        let user = store.create_user("bench@example.com", None, "h").await.unwrap().id;
        let one = chat(&store, user).await;
        let mut many = Vec::new();
        for _ in 0..8 {
            many.push(chat(&store, user).await);
        }
        // Warm the pool and the caches.
        run(&store, &[one], 1, 50).await;
        let rate = |elapsed: Duration, total: usize| total as f64 / elapsed.as_secs_f64();
        let single = rate(run(&store, &[one], 1, n).await, n);
        let contended = rate(run(&store, &[one], 8, n).await, 8 * n);
        let parallel = rate(run(&store, &many, 8, n).await, 8 * n);
        // The log stayed gapless through all of it.
        let last = store.chat_unscoped(one.0).await.unwrap().unwrap().last_seq;
        let logged = store.events_after(one.0, 0, i64::MAX).await.unwrap();
        assert_eq!(logged.len() as i64, last);
        println!("| {version} | {single:.0} | {contended:.0} | {parallel:.0} |");
        store.close().await;
    }
}
