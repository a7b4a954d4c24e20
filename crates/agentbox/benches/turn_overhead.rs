//! Per-turn overhead of agentbox over the bare Claude Code CLI.
//!
//! The same scripted turn (one Bash tool call that writes a file, then a closing text) runs
//! (1) through the bare CLI, spawned directly with the stream-json flags, timed from spawn to
//! its `result` line; (2) through agentbox, timed from `POST /messages` to the turn's
//! `message_completed` on an already open SSE stream, once with a new CLI process per turn
//! (like the bare CLI) and once with the chat's CLI process kept between turns (the default).
//! Prints medians, p90 and ratios of medians as a Markdown table for docs/benchmarks.md.
//!
//! Run: `cargo bench -p agentbox --bench turn_overhead` (after `scripts/setup`);
//! `BENCH_DATABASE=postgres` stores agentbox's data in PostgreSQL (a database created for
//! the run on `AGENTBOX_TEST_POSTGRES_URL`, default the local server) instead of SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mock_llm::MockLlm;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[allow(dead_code)] // Each benchmark uses the part it needs.
mod support;

const PROMPT: &str = "[[write:bench.txt:x]] benchmark turn";
const WARMUP: usize = 2;

fn runs() -> usize {
    std::env::var("BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(20)
}

/// `postgres` or `sqlite` (the default).
fn database() -> String {
    std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "sqlite".into())
}

async fn bare_cli_turn(cli: &Path, mock: &MockLlm, dir: &Path) -> Duration {
    let home = tempfile::tempdir_in(dir).unwrap();
    let started = Instant::now();
    // The same command line and environment agentbox uses, without agentbox around it.
    let options = agentbox_agent::SessionOptions {
        model: "claude-sonnet-4-5".into(),
        cli_permission_mode: "default".into(),
        env: vec![
            ("ANTHROPIC_API_KEY".into(), "bench".into()),
            ("ANTHROPIC_BASE_URL".into(), mock.base_url()),
        ],
        ..agentbox_agent::SessionOptions::default()
    };
    #[allow(clippy::disallowed_methods)] // The baseline: the CLI without agentbox.
    let mut child = tokio::process::Command::new(cli)
        .args(options.args())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", home.path())
        .envs(options.environment())
        .current_dir(home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let init = json!({"type":"control_request","request_id":"req_init","request":{"subtype":"initialize","hooks":null}});
    let user = json!({"type":"user","message":{"role":"user","content":PROMPT},"parent_tool_use_id":null,"session_id":"default"});
    stdin.write_all(format!("{init}\n{user}\n").as_bytes()).await.unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
        match message["type"].as_str() {
            // The baseline answers permission questions too, as agentbox does.
            Some("control_request") => {
                let answer = json!({"type":"control_response","response":{"subtype":"success",
                    "request_id": message["request_id"], "response": {"behavior":"allow","updatedInput": message["request"]["input"]}}});
                stdin.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
            }
            Some("result") => {
                assert_eq!(message["is_error"], false, "{message}");
                let elapsed = started.elapsed();
                drop(stdin);
                child.wait().await.unwrap();
                assert_eq!(std::fs::read_to_string(home.path().join("bench.txt")).unwrap(), "x");
                return elapsed;
            }
            _ => {}
        }
    }
    panic!("the CLI ended without a result");
}

struct Agentbox {
    client: support::Client,
    _server: agentbox::serve::Server,
    /// Dropped after the server: the PostgreSQL database of the run, if any.
    _database: Option<agentbox_store::testing::TestDatabase>,
}

async fn start_agentbox(mock: &MockLlm, data: &Path, provider: &str, idle: Duration) -> Agentbox {
    let mut config = support::turn_config(data, mock.base_url());
    config.idle_session = idle;
    config.sandbox_provider = provider.to_owned();
    let database = match database().as_str() {
        "postgres" => {
            Some(agentbox_store::testing::TestDatabase::create("bench_turns").await.unwrap())
        }
        _ => None,
    };
    if let Some(db) = &database {
        config.database_url = db.url.clone();
    }
    let (server, base) = support::start(config).await;
    Agentbox { client: support::Client::sign_in(&base).await, _server: server, _database: database }
}

impl Agentbox {
    async fn new_chat(&self) -> String {
        self.client.new_chat("auto").await
    }

    /// POST → `message_completed` on a stream opened before the POST.
    async fn turn(&self, chat: &str) -> Duration {
        self.client.turn(chat, PROMPT).await
    }
}

fn stats(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (support::quantile(samples, 0.5), support::quantile(samples, 0.9))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here.
    }
    let cli = support::cli();
    let mock = MockLlm::start().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let n = runs();

    let mut bare = Vec::new();
    for i in 0..WARMUP + n {
        let t = bare_cli_turn(&cli, &mock, work.path()).await;
        if i >= WARMUP {
            bare.push(t);
        }
    }

    // Sandboxes need their data directory's parents to be traversable by their users.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let mut rows = Vec::new();
    for provider in ["host", "local"] {
        let fresh = start_agentbox(
            &mock,
            &work.path().join(format!("{provider}-fresh")),
            provider,
            Duration::ZERO,
        )
        .await;
        let mut per_turn_process = Vec::new();
        for i in 0..WARMUP + n {
            let chat = fresh.new_chat().await;
            let t = fresh.turn(&chat).await;
            if i >= WARMUP {
                per_turn_process.push(t);
            }
        }
        rows.push((
            format!(
                "agentbox on `{provider}`, new CLI process per turn (POST → `message_completed`)"
            ),
            per_turn_process,
        ));

        let kept = start_agentbox(
            &mock,
            &work.path().join(format!("{provider}-kept")),
            provider,
            Duration::from_secs(600),
        )
        .await;
        let chat = kept.new_chat().await;
        let mut kept_process = Vec::new();
        for i in 0..WARMUP + n {
            let t = kept.turn(&chat).await;
            if i >= WARMUP {
                kept_process.push(t);
            }
        }
        rows.push((
            format!("agentbox on `{provider}`, CLI process kept between turns (default)"),
            kept_process,
        ));
    }

    let (bare_median, bare_p90) = stats(&mut bare);
    println!(
        "Per-turn time, {n} runs each after {WARMUP} warm-up runs, prompt `{PROMPT}`, agentbox on {}:\n",
        database()
    );
    println!("| path | median | p90 | median ÷ bare CLI median |");
    println!("|---|---|---|---|");
    println!("| bare CLI (spawn → `result`) | {} | {} | 1.00 |", ms(bare_median), ms(bare_p90));
    for (name, mut samples) in rows {
        let (median, p90) = stats(&mut samples);
        let ratio = median.as_secs_f64() / bare_median.as_secs_f64();
        println!("| {name} | {} | {} | {ratio:.2} |", ms(median), ms(p90));
    }
}
