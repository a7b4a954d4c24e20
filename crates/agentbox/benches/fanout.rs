//! Fan-out of one chat's events to 1, 100 and 1,000 subscribers: the in-process bus versus
//! Redis Streams, end to end through the server's SSE endpoint and for the bus alone.
//!
//! End to end, the bench plays the turn's part without a CLI: it appends each event to the
//! server's log and publishes it on the server's bus (what `LogSink` does), and reads it on
//! real HTTP connections to `GET /api/v1/chats/{id}/stream`, one per subscriber, parsing the
//! `id:` lines. Two phases per run:
//! - latency: `BENCH_EVENTS` events (default 200) at `BENCH_RATE` per second (default 20),
//!   each timed from the moment its append returned (commit) to its arrival at each
//!   subscriber; p50, p99 and max over every (event, subscriber) pair;
//! - throughput: `BENCH_BURST` events (default 1000) appended back to back; events per second
//!   from the first append to the last subscriber's last event.
//!
//! Client, server and Redis share the machine's cores, as they would in the measurement this
//! replaces (a Python client on the same two cores). The store is SQLite in a temporary
//! directory; Redis is `AGENTBOX_TEST_REDIS_URL` (default 127.0.0.1:6379) under a key prefix
//! of the run's own, deleted at the end.
//!
//! Run: `cargo bench -p agentbox --bench fanout` (`BENCH_SUBSCRIBERS=1,100,1000` to choose).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbox_bus::{EventBus, Received, RedisConfig};
use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::{ChatEvent, EventPayload};
use agentbox_store::NewEvent;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

#[allow(dead_code)] // Each benchmark uses the part it needs.
mod support;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn redis_url() -> String {
    std::env::var("AGENTBOX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

#[derive(Clone, Copy, PartialEq)]
enum Bus {
    InProcess,
    Redis,
}

impl Bus {
    fn name(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Redis => "Redis Streams",
        }
    }
}

struct Plan {
    events: usize,
    rate: usize,
    burst: usize,
}

/// What one run measured.
struct Row {
    latencies: Vec<Duration>,
    missing: usize,
    burst_rate: f64,
    /// This process's CPU time (user + system) per delivery during the burst: server and
    /// client together, Redis not included. Unlike the latencies it hardly depends on what
    /// else the machine runs.
    cpu_per_delivery: Duration,
}

/// CPU time this process has used so far.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let time =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    time(usage.user_time()) + time(usage.system_time())
}

/// When each event was committed (index: seq), written by the publisher.
type Commits = Vec<Option<Instant>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plan = Plan {
        events: env_or("BENCH_EVENTS", 200),
        rate: env_or("BENCH_RATE", 20),
        burst: env_or("BENCH_BURST", 1000),
    };
    let subscribers: Vec<usize> = std::env::var("BENCH_SUBSCRIBERS")
        .unwrap_or_else(|_| "1,100,1000".into())
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let prefix = format!("agentbox-bench:{}:{}:", std::process::id(), Uuid::new_v4());
    println!(
        "{} events at {}/s for latency, {} back to back for throughput\n",
        plan.events, plan.rate, plan.burst
    );
    println!(
        "| path | bus | subscribers | p50 | p99 | max | events/s (burst) | deliveries/s | CPU µs per delivery |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for path in ["SSE", "bus alone"] {
        for bus in [Bus::InProcess, Bus::Redis] {
            for &n in &subscribers {
                let row = match path {
                    "SSE" => sse_run(bus, n, &plan, &prefix).await,
                    _ => bus_run(bus, n, &plan, &prefix).await,
                };
                print_row(path, bus, n, &row);
            }
        }
    }
    let mut redis = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut redis).unwrap();
    if !keys.is_empty() {
        let () = redis::cmd("DEL").arg(keys).query(&mut redis).unwrap();
    }
}

fn print_row(path: &str, bus: Bus, subscribers: usize, row: &Row) {
    let mut sorted = row.latencies.clone();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let missing =
        if row.missing > 0 { format!(" ({} missing!)", row.missing) } else { String::new() };
    println!(
        "| {path} | {} | {subscribers} | {} | {} | {}{missing} | {:.0} | {:.0} | {:.1} |",
        bus.name(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*sorted.last().unwrap()),
        row.burst_rate,
        row.burst_rate * subscribers as f64,
        row.cpu_per_delivery.as_secs_f64() * 1e6,
    );
}

fn payload(n: usize) -> EventPayload {
    EventPayload::AssistantText { text: format!("event {n}: {}", "lorem ipsum ".repeat(8)) }
}

/// Latencies of the latency phase's events from each subscriber's arrival times.
fn latencies(
    commits: &Commits,
    arrivals: &[Vec<(i64, Instant)>],
    seqs: std::ops::RangeInclusive<i64>,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut missing = 0;
    for arrived in arrivals {
        let mut got = 0;
        for &(seq, at) in arrived {
            if seqs.contains(&seq) {
                latencies.push(at - commits[seq as usize].unwrap());
                got += 1;
            }
        }
        missing += seqs.clone().count() - got;
    }
    (latencies, missing)
}

async fn sse_run(bus: Bus, subscribers: usize, plan: &Plan, prefix: &str) -> Row {
    let data = tempfile::tempdir().unwrap();
    let mut config = support::config(data.path(), None);
    // No turn runs: the bench appends and publishes itself.
    config.sandbox_provider = "host".into();
    if bus == Bus::Redis {
        config.redis = Some(RedisConfig { url: redis_url(), prefix: prefix.to_owned() });
    }
    let (server, base) = support::start(config).await;
    let support::Client { http, token, .. } = support::Client::sign_in(&base).await;
    let chat: Value = http
        .post(format!("{base}/chats"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_id: Uuid = chat["id"].as_str().unwrap().parse().unwrap();
    // A message for the events to belong to; its `user_text` is seq 1.
    let turn = server
        .store
        .begin_turn(chat_id, "bench", "claude-sonnet-4-5", PermissionMode::Auto)
        .await
        .unwrap();
    let last = 1 + (plan.events + plan.burst) as i64;

    // Every subscription exists once its response has arrived (the handler subscribes
    // before answering).
    let responses = futures::stream::iter(0..subscribers)
        .map(|_| {
            let request = http
                .get(format!("{base}/chats/{chat_id}/stream"))
                .bearer_auth(&token)
                .header("Last-Event-ID", "1");
            async move { request.send().await.unwrap() }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    let readers: Vec<_> = responses
        .into_iter()
        .map(|response| {
            tokio::spawn(async move {
                let mut arrived = Vec::with_capacity(last as usize);
                let mut body = response.bytes_stream();
                let mut buffer: Vec<u8> = Vec::new();
                while let Some(chunk) = body.next().await {
                    let now = Instant::now();
                    buffer.extend_from_slice(&chunk.unwrap());
                    while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                        let frame: Vec<u8> = buffer.drain(..end + 2).collect();
                        let id =
                            frame.split(|b| *b == b'\n').find_map(|line| line.strip_prefix(b"id:"));
                        if let Some(id) = id {
                            let seq: i64 = std::str::from_utf8(id).unwrap().trim().parse().unwrap();
                            arrived.push((seq, now));
                            if seq == last {
                                return arrived;
                            }
                        }
                    }
                }
                arrived
            })
        })
        .collect();

    let store = server.store.clone();
    let publish_bus = server.bus.clone();
    let message_id = turn.message_id;
    let (commits, burst_started) = publish(plan, last, async move |n| {
        let event =
            store.append_event(chat_id, NewEvent::new(message_id, payload(n))).await.unwrap();
        let committed = Instant::now();
        publish_bus.publish(chat_id, event.clone());
        (event.seq, committed)
    })
    .await;
    let mut arrivals = Vec::new();
    for reader in readers {
        arrivals.push(reader.await.unwrap());
    }
    let cpu = cpu_time() - burst_started.1;
    let done = arrivals.iter().filter_map(|a| a.last()).map(|(_, at)| *at).max().unwrap();
    let (latencies, missing) = latencies(&commits, &arrivals, 2..=1 + plan.events as i64);
    server.stop().await.unwrap();
    Row {
        latencies,
        missing,
        burst_rate: plan.burst as f64 / (done - burst_started.0).as_secs_f64(),
        cpu_per_delivery: cpu / (plan.burst * subscribers) as u32,
    }
}

/// The two phases of publishing; `one(n)` commits and publishes event `n`, answering its seq
/// and commit instant. Returns the commit instants by seq, and when the burst began (and
/// the process's CPU time then).
async fn publish(
    plan: &Plan,
    last: i64,
    mut one: impl AsyncFnMut(usize) -> (i64, Instant),
) -> (Commits, (Instant, Duration)) {
    let mut commits: Commits = vec![None; last as usize + 1];
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0..plan.events {
        tick.tick().await;
        let (seq, at) = one(n).await;
        commits[seq as usize] = Some(at);
    }
    let burst_started = (Instant::now(), cpu_time());
    for n in 0..plan.burst {
        let (seq, at) = one(plan.events + n).await;
        commits[seq as usize] = Some(at);
    }
    (commits, burst_started)
}

async fn bus_run(bus: Bus, subscribers: usize, plan: &Plan, prefix: &str) -> Row {
    let bus = Arc::new(match bus {
        Bus::InProcess => EventBus::new(),
        Bus::Redis => {
            EventBus::redis(RedisConfig { url: redis_url(), prefix: prefix.to_owned() }).unwrap()
        }
    });
    let chat_id = Uuid::new_v4();
    let last = 1 + (plan.events + plan.burst) as i64;
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut subscription = bus.subscribe(chat_id).await;
        readers.push(tokio::spawn(async move {
            let mut arrived = Vec::with_capacity(last as usize);
            loop {
                match subscription.recv().await {
                    Received::Event(event) => {
                        arrived.push((event.seq, Instant::now()));
                        if event.seq == last {
                            return arrived;
                        }
                    }
                    // A lag would be a re-read of the log in the product; here it shows
                    // as missing events.
                    Received::Lagged | Received::Transient(_) => {}
                }
            }
        }));
    }
    let mut seq = 1;
    let publisher = bus.clone();
    let (commits, burst_started) = publish(plan, last, async move |n| {
        seq += 1;
        let event = ChatEvent {
            seq,
            message_id: Uuid::nil(),
            parent_tool_use_id: None,
            created_at: chrono::Utc::now(),
            payload: payload(n),
        };
        let committed = Instant::now();
        publisher.publish(chat_id, event);
        // Yield as an append's await would, so the subscribers run meanwhile.
        tokio::task::yield_now().await;
        (seq, committed)
    })
    .await;
    let mut arrivals = Vec::new();
    for reader in readers {
        arrivals.push(reader.await.unwrap());
    }
    let cpu = cpu_time() - burst_started.1;
    let done = arrivals.iter().filter_map(|a| a.last()).map(|(_, at)| *at).max().unwrap();
    let (latencies, missing) = latencies(&commits, &arrivals, 2..=1 + plan.events as i64);
    bus.flush().await;
    Row {
        latencies,
        missing,
        burst_rate: plan.burst as f64 / (done - burst_started.0).as_secs_f64(),
        cpu_per_delivery: cpu / (plan.burst * subscribers) as u32,
    }
}
