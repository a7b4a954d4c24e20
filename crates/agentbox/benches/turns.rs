//! Turns per second across worker nodes, with the mock model.
//!
//! One API node (`serve --no-worker`) and 1, then 2, worker nodes (`worker`), all started
//! in this process on one PostgreSQL database (created for the run) and the Redis at
//! `AGENTBOX_TEST_REDIS_URL` (a key prefix of the run's own, deleted at the end), with the
//! `local` sandbox provider and the real CLI. The load client is in this process too: it
//! signs in on the API node and drives `BENCH_CHATS` chats (default 8) at once, each
//! running `BENCH_TURNS` turns (default 5) one after another, every turn timed from its
//! `POST /messages` on the API node to its `message_completed` on a stream of the API node
//! (so every event came from a worker through Redis). Each chat's first turn (its sandbox
//! and CLI start) is a warm-up, reported apart. A worker runs `BENCH_SLOTS` turns at once
//! (`--max-concurrent-turns`, default 4).
//!
//! Run: `cargo bench -p agentbox --bench turns` (`BENCH_WORKERS=1,2` to choose; `RUST_LOG`
//! to see the nodes' log, such as which worker claimed each turn).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use agentbox_bus::RedisConfig;
use agentbox_runs::NodeRole;
use mock_llm::MockLlm;

#[allow(dead_code)] // Each benchmark uses the part it needs.
mod support;

const PROMPT: &str = "[[write:bench.txt:x]] benchmark turn";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn redis_url() -> String {
    std::env::var("AGENTBOX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

struct Plan {
    chats: usize,
    turns: usize,
    slots: usize,
}

struct Run {
    warmup: Duration,
    wall: Duration,
    latencies: Vec<Duration>,
    /// Chats whose sandbox ended up on more than one worker (a turn claimed by a worker
    /// that had not run the chat before starts a sandbox and a CLI there).
    moved: usize,
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here.
    }
    support::init_logs();
    let plan = Plan {
        chats: env_or("BENCH_CHATS", 8),
        turns: env_or("BENCH_TURNS", 5),
        slots: env_or("BENCH_SLOTS", 4),
    };
    let workers: Vec<usize> = std::env::var("BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let mock = MockLlm::start().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    // Sandboxes need their data directory's parents to be traversable by their users.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    println!(
        "{} chats at once, {} measured turns each after one warm-up turn, {} turns at once per worker, prompt `{PROMPT}`\n",
        plan.chats, plan.turns, plan.slots
    );
    println!(
        "| workers | turns | wall | turns/s | p50 | p99 | warm-up (first turns) | chats moved |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut next_node = 0;
    for &count in &workers {
        let run = run(count, &plan, &mock, work.path(), &mut next_node).await;
        let mut sorted = run.latencies.clone();
        sorted.sort();
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        let turns = run.latencies.len();
        println!(
            "| {count} | {turns} | {:.2} s | {:.1} | {} | {} | {:.2} s | {} |",
            run.wall.as_secs_f64(),
            turns as f64 / run.wall.as_secs_f64(),
            ms(support::quantile(&sorted, 0.5)),
            ms(support::quantile(&sorted, 0.99)),
            run.warmup.as_secs_f64(),
            run.moved,
        );
    }
}

async fn run(
    workers: usize,
    plan: &Plan,
    mock: &MockLlm,
    work: &std::path::Path,
    next_node: &mut u32,
) -> Run {
    let database =
        agentbox_store::testing::TestDatabase::create("bench_turns_per_s").await.unwrap();
    let prefix = format!("agentbox-bench:{}:turns:{}:", std::process::id(), uuid::Uuid::new_v4());
    let mut node = |role: NodeRole| {
        *next_node += 1;
        let id = format!("bench-{}-{}", role.as_str(), *next_node);
        let data = work.join(&id);
        let mut config = support::turn_config(&data, mock.base_url());
        config.database_url = database.url.clone();
        config.redis = Some(RedisConfig { url: redis_url(), prefix: prefix.clone() });
        config.secret_key = Some("one signing key for the benchmark's nodes".into());
        config.node_role = role;
        config.node_id = Some(id);
        config.max_concurrent_turns = plan.slots;
        // Sandbox users of their own per worker, as on separate machines.
        config.sandbox.uid_base = 600_000 + (std::process::id() % 1000) * 1000 + *next_node * 100;
        (config, data)
    };
    let (api_config, _) = node(NodeRole::Api);
    let mut worker_configs = Vec::new();
    for _ in 0..workers {
        worker_configs.push(node(NodeRole::Worker));
    }
    let (api, base) = support::start(api_config).await;
    let mut worker_dirs = Vec::new();
    let mut worker_servers = Vec::new();
    for (config, data) in worker_configs {
        worker_servers.push(support::start(config).await.0);
        worker_dirs.push(data);
    }
    let client = support::Client::sign_in(&base).await;
    let mut chats = Vec::new();
    for _ in 0..plan.chats {
        chats.push(client.new_chat("auto").await);
    }

    let started = Instant::now();
    futures::future::join_all(chats.iter().map(|chat| client.turn(chat, PROMPT))).await;
    let warmup = started.elapsed();

    let started = Instant::now();
    let per_chat = futures::future::join_all(chats.iter().map(|chat| {
        let client = client.clone();
        async move {
            let mut times = Vec::with_capacity(plan.turns);
            for _ in 0..plan.turns {
                times.push(client.turn(chat, PROMPT).await);
            }
            times
        }
    }))
    .await;
    let wall = started.elapsed();

    let moved = chats
        .iter()
        .filter(|chat| {
            worker_dirs.iter().filter(|dir| dir.join("sandboxes").join(chat).exists()).count() > 1
        })
        .count();
    for server in worker_servers {
        server.stop().await.unwrap();
    }
    api.stop().await.unwrap();
    let mut redis = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut redis).unwrap();
    if !keys.is_empty() {
        let () = redis::cmd("DEL").arg(keys).query(&mut redis).unwrap();
    }
    drop(database);
    Run { warmup, wall, latencies: per_chat.into_iter().flatten().collect(), moved }
}
