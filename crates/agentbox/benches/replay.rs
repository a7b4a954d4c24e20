//! Replay of a 10,000-event chat from `Last-Event-ID: 0` over SSE (issue 16, item 6).
//!
//! The chat's log is filled through the store API directly (a turn's `user_text`, then
//! assistant text events of the size the fan-out bench uses), not by turns: only the replay
//! is measured. For PostgreSQL the log is filled on SQLite and copied over
//! (`copy_installation`), then served from PostgreSQL. Each run opens `GET /api/v1/chats/{id}/stream` with `Last-Event-ID: 0` on a
//! new connection with a Rust client (reqwest) and times from the request to the last
//! event's frame, checking that the ids arrive gapless 1..=N. Two split-outs give a rough
//! profile: the store's reads alone (`events_after` in the stream's pages of 500) and the
//! reads plus serialising each event to JSON, both in this process without HTTP.
//!
//! `BENCH_EVENTS` (default 10000) events, `BENCH_RUNS` runs (default 20) after 2 warm-ups,
//! on `BENCH_DATABASES` (default `sqlite,postgres`; PostgreSQL is a database created for the
//! run at `AGENTBOX_TEST_POSTGRES_URL`, skipped with a note when it cannot be created).
//!
//! `BENCH_VERBOSE=1` prints each run's time and its first event's on stderr.
//!
//! Run: `cargo bench -p agentbox --bench replay`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use agentbox::serve::Server;
use agentbox_protocol::EventPayload;
use agentbox_protocol::api::PermissionMode;
use agentbox_store::testing::TestDatabase;
use agentbox_store::{NewEvent, Store};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

#[allow(dead_code)] // Each benchmark uses the part it needs.
mod support;

/// The stream's page size (crates/server/src/stream.rs), for the store-only split-out.
const PAGE: i64 = 500;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `BENCH_VERBOSE=1`: each run's time and its first event's on stderr.
fn verbose() -> bool {
    std::env::var_os("BENCH_VERBOSE").is_some()
}

fn payload(n: usize) -> EventPayload {
    EventPayload::AssistantText { text: format!("event {n}: {}", "lorem ipsum ".repeat(8)) }
}

/// One replay over HTTP: the time to the last frame, and the bytes received.
async fn replay(client: &support::Client, chat: Uuid, last: i64) -> (Duration, usize) {
    let started = Instant::now();
    let response = client
        .get(&format!("/chats/{chat}/stream"))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let mut body = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut expected = 1_i64;
    let mut bytes = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        buffer.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = buffer[start..].windows(2).position(|w| w == b"\n\n") {
            let frame = &buffer[start..start + end];
            start += end + 2;
            let id = frame.split(|b| *b == b'\n').find_map(|line| line.strip_prefix(b"id:"));
            if let Some(id) = id {
                let seq: i64 = std::str::from_utf8(id).unwrap().trim().parse().unwrap();
                assert_eq!(seq, expected, "a gap or a duplicate in the replay");
                if seq == 1 && verbose() {
                    eprintln!("  first event after {}", ms(started.elapsed()));
                }
                if seq == last {
                    return (started.elapsed(), bytes);
                }
                expected += 1;
            }
        }
        buffer.drain(..start);
    }
    panic!("the stream ended at {expected} of {last}");
}

/// The store's part of a replay: every page the stream reads; with `render`, also each
/// event serialised as the stream's frames carry it.
async fn store_only(store: &Store, chat: Uuid, last: i64, render: bool) -> Duration {
    let started = Instant::now();
    let mut after = 0;
    let mut rendered = 0;
    loop {
        let page = store.events_after(chat, after, PAGE).await.unwrap();
        if render {
            for event in &page {
                rendered += serde_json::to_vec(event).unwrap().len();
            }
        }
        let Some(tail) = page.last() else { break };
        after = tail.seq;
        if page.len() < PAGE as usize {
            break;
        }
    }
    assert_eq!(after, last);
    std::hint::black_box(rendered);
    started.elapsed()
}

struct Stats {
    p50: Duration,
    p95: Duration,
    min: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        p50: support::quantile(&samples, 0.5),
        p95: support::quantile(&samples, 0.95),
        min: samples[0],
        max: samples[samples.len() - 1],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A server whose chat has `events` events: filled on SQLite through the store; for
/// PostgreSQL then copied into a database of the run (`copy_installation`, the store's bulk
/// path: one append per commit would take minutes with PostgreSQL's synchronous commits)
/// and served from there.
async fn prepare(
    database: &str,
    data: &std::path::Path,
    events: usize,
) -> Option<(Server, support::Client, Uuid, Duration, Option<TestDatabase>)> {
    let mut config = support::config(data, None);
    config.sandbox_provider = "host".into();
    let sqlite_url = config.database_url.clone();
    let (server, base) = support::start(config.clone()).await;
    let client = support::Client::sign_in(&base).await;
    let chat: Value =
        client.post("/chats").json(&json!({})).send().await.unwrap().json().await.unwrap();
    let chat: Uuid = chat["id"].as_str().unwrap().parse().unwrap();
    // The turn's `user_text` is seq 1; the rest are its assistant's text.
    let turn = server
        .store
        .begin_turn(chat, "bench", "claude-sonnet-4-5", PermissionMode::Auto)
        .await
        .unwrap();
    let filling = Instant::now();
    for n in 2..=events {
        server.store.append_event(chat, NewEvent::new(turn.message_id, payload(n))).await.unwrap();
    }
    if database != "postgres" {
        return Some((server, client, chat, filling.elapsed(), None));
    }
    server.stop().await.unwrap();
    let db = match TestDatabase::create("bench_replay").await {
        Ok(db) => db,
        Err(err) => {
            println!("| {database} | skipped: cannot create a database ({err}) |");
            return None;
        }
    };
    let source = Store::open(&sqlite_url).await.unwrap();
    let target = Store::open(&db.url).await.unwrap();
    agentbox_store::copy_installation(&source, &target, &|_, _, _| {}).await.unwrap();
    let filled = filling.elapsed();
    config.database_url = db.url.clone();
    let (server, base) = support::start(config).await;
    let client = support::Client::log_in(&base, reqwest::Client::new()).await;
    Some((server, client, chat, filled, Some(db)))
}

async fn bench(database: &str, events: usize, runs: usize) {
    let data = tempfile::tempdir().unwrap();
    let Some((server, client, chat, filled, _database)) =
        prepare(database, data.path(), events).await
    else {
        return;
    };
    // The chat's last event as the server sees it: a restart may have closed the open turn
    // (recovery appends its `message_completed`).
    let current: Value =
        client.get(&format!("/chats/{chat}")).send().await.unwrap().json().await.unwrap();
    let last = current["last_event_id"].as_i64().unwrap();
    assert!(last >= events as i64, "{last} of {events}");

    let mut http = Vec::new();
    let mut store = Vec::new();
    let mut rendered = Vec::new();
    let mut bytes = 0;
    for run in 0..runs + 2 {
        let (took, got) = replay(&client, chat, last).await;
        if verbose() {
            eprintln!("{database} run {run}: {}", ms(took));
        }
        let read = store_only(&server.store, chat, last, false).await;
        let with_json = store_only(&server.store, chat, last, true).await;
        if run >= 2 {
            http.push(took);
            store.push(read);
            rendered.push(with_json);
            bytes = got;
        }
    }
    let (http, store, rendered) = (stats(http), stats(store), stats(rendered));
    let per_event = http.p50.as_secs_f64() * 1e6 / last as f64;
    println!(
        "| {database} | {last} | {} | {} | {} – {} | {per_event:.1} µs | {} | {} | {:.1} MB | {:.1} s |",
        ms(http.p50),
        ms(http.p95),
        ms(http.min),
        ms(http.max),
        ms(store.p50),
        ms(rendered.p50),
        bytes as f64 / 1e6,
        filled.as_secs_f64(),
    );
    server.stop().await.unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::init_logs();
    let events = env_or("BENCH_EVENTS", 10_000).max(2);
    let runs = env_or("BENCH_RUNS", 20).max(1);
    let databases = std::env::var("BENCH_DATABASES").unwrap_or_else(|_| "sqlite,postgres".into());
    println!("Replay of {events} events from Last-Event-ID: 0, {runs} runs after 2 warm-ups");
    println!();
    println!(
        "| store | events | HTTP p50 | HTTP p95 | HTTP min – max | per event (p50) | store reads p50 | \
         reads + JSON p50 | body | filling the log |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for database in databases.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        bench(database, events, runs).await;
    }
}
