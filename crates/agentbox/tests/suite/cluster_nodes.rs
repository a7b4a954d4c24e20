//! The deployed topology, end to end: two API nodes (`serve --no-worker`) and two workers
//! (`worker`), four processes of the real binary on one fresh PostgreSQL database and one
//! Redis (a key prefix of the test's own), signing tokens with one shared key as a
//! load-balanced deployment does. A client streams from one API node while the turn is
//! posted to the other; approvals and interrupts cross nodes; API node A is killed with
//! SIGKILL mid-stream and the client resumes on B with `Last-Event-ID`; a private Redis is
//! killed and restarted mid-turn; with both workers killed, the API node left reports
//! itself `degraded`. Every stream is compared with the log
//! (`GET .../messages`). Turns are held by permission requests or a long tool call, and
//! the test waits on events, never on time.

use std::path::Path;
use std::time::Duration;

use agentbox_store::testing::TestDatabase;
use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Child;

use super::redis_bus::{Keys, redis_url};
use super::support::{
    Api, PATIENCE, SseEvent, TestServerless, assert_strictly_increasing, kinds, spawn_node,
    unique_uid_base,
};

/// The one signing key of the cluster: a token from one API node works on the other.
const SECRET: &str = "one signing key for every node of this cluster";
/// Long enough that a loaded machine never expires a live node, short enough that the
/// killed API node is seen gone within the test's patience.
const EXPIRY_SECS: &str = "10";

struct Node {
    id: &'static str,
    process: Child,
    base: String,
    dir: tempfile::TempDir,
}

/// Two API nodes and two workers on one database and one Redis.
struct Cluster {
    apis: Vec<Node>,
    workers: Vec<Node>,
    /// Dropped after the nodes (fields drop in order), so no node outlives its database.
    _database: TestDatabase,
    _mock: MockLlm,
}

impl Cluster {
    async fn start(label: &str, redis: &str, prefix: &str) -> Self {
        let mock = MockLlm::start().await.unwrap();
        let database = TestDatabase::create(label).await.unwrap();
        let shared = [
            "--redis-url",
            redis,
            "--redis-prefix",
            prefix,
            "--secret-key",
            SECRET,
            "--node-expiry-secs",
            EXPIRY_SECS,
        ];
        let start = async |role: &[&str], id: &'static str| {
            let dir = tempfile::tempdir().unwrap();
            let args = [role, &["--node-id", id], &shared[..]].concat();
            let (process, base) =
                spawn_node(&args, dir.path(), Some(&database.url), &mock, unique_uid_base()).await;
            Node { id, process, base, dir }
        };
        let api = ["serve", "--no-worker"];
        let apis = vec![start(&api, "api-a").await, start(&api, "api-b").await];
        let workers =
            vec![start(&["worker"], "worker-1").await, start(&["worker"], "worker-2").await];
        Self { apis, workers, _database: database, _mock: mock }
    }

    fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.apis.iter().chain(&self.workers)
    }

    /// The worker whose sandbox of `chat` holds `file`, and that no other node's does.
    fn ran_on(&self, chat: &str, file: &str) -> &'static str {
        let holders: Vec<&Node> =
            self.nodes().filter(|node| home(node.dir.path(), chat).join(file).exists()).collect();
        assert_eq!(holders.len(), 1, "{file} is on {} nodes", holders.len());
        assert!(holders[0].id.starts_with("worker-"), "{} ran a turn", holders[0].id);
        holders[0].id
    }
}

fn home(dir: &Path, chat: &str) -> std::path::PathBuf {
    dir.join("sandboxes").join(chat).join("home")
}

async fn health(http: &reqwest::Client, base: &str) -> Value {
    let response = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Poll `check` until it returns `Some`, within [`PATIENCE`]; the poll interval only paces
/// the requests, it decides nothing.
async fn wait_until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(found) = check().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} never happened"))
}

/// Every event of the chat as the log holds it: the content of every message, by seq.
async fn logged_events(api: &Api, chat: &str) -> Vec<Value> {
    let mut events: Vec<Value> = api
        .messages(chat)
        .await
        .iter()
        .flat_map(|message| message["content"].as_array().unwrap().clone())
        .collect();
    events.sort_by_key(|event| event["seq"].as_i64().unwrap());
    events
}

/// What a client saw of a chat is the whole log, in order: ids 1, 2, 3... with no gap and
/// no repeat, each event exactly as `GET .../messages` has it.
async fn assert_saw_the_log(seen: &[SseEvent], api: &Api, chat: &str) {
    assert_strictly_increasing(seen);
    let ids: Vec<i64> = seen.iter().map(|event| event.id).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>(), "a gap or a repeat");
    let logged = logged_events(api, chat).await;
    assert_eq!(
        seen.iter().map(|event| &event.data).collect::<Vec<_>>(),
        logged.iter().collect::<Vec<_>>(),
        "the client's events differ from the log"
    );
}

async fn ask_chat(api: &Api) -> String {
    let (status, chat) =
        api.call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "ask"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    chat["id"].as_str().unwrap().to_owned()
}

async fn approve(api: &Api, chat: &str, request: &SseEvent) {
    let id = request.data["request_id"].as_str().unwrap();
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/permissions/{id}"),
            Some(json!({"approved": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn message_status(api: &Api, chat: &str, message: &str) -> Value {
    let messages = api.messages(chat).await;
    messages.iter().find(|m| m["id"] == message).unwrap()["status"].clone()
}

/// Every node reports itself and the three others, alive, in `/health`, and the durable
/// queue, empty before any turn; the API nodes are healthy because workers are alive.
async fn assert_every_node_sees_its_peers(cluster: &Cluster, http: &reqwest::Client) {
    let all: Vec<(&str, &str)> = cluster
        .nodes()
        .map(|node| (node.id, if node.id.starts_with("api") { "api" } else { "worker" }))
        .collect();
    for node in cluster.nodes() {
        let health = health(http, &node.base).await;
        assert_eq!(health["node"]["id"], node.id, "{health}");
        assert_eq!(health["node"]["expiry_secs"], 10, "{health}");
        assert_eq!(health["database"]["status"], "ok", "{health}");
        assert_eq!(health["redis"]["status"], "ok", "{health}");
        assert_eq!(health["queue"]["kind"], "durable", "{health}");
        // Checked before any turn: nothing waits.
        assert_eq!(health["queue"]["depth"], 0, "{health}");
        assert!(health["queue"]["oldest_job_age_ms"].is_null(), "{health}");
        let mut peers: Vec<(String, String)> = health["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|peer| {
                assert_eq!(peer["alive"], true, "{peer}");
                assert!(peer["address"].as_str().unwrap().starts_with("http://127.0.0.1:"));
                (peer["id"].as_str().unwrap().to_owned(), peer["role"].as_str().unwrap().to_owned())
            })
            .collect();
        peers.sort();
        let expected: Vec<(String, String)> = all
            .iter()
            .filter(|(id, _)| *id != node.id)
            .map(|(id, role)| ((*id).to_owned(), (*role).to_owned()))
            .collect();
        assert_eq!(peers, expected, "the peers of {}", node.id);
        if node.id.starts_with("api") {
            assert_eq!(health["node"]["role"], "api");
            assert_eq!(health["status"], "healthy", "{health}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_api_nodes_and_two_workers_lose_nothing_when_an_api_node_is_killed() {
    let keys = Keys::new("cluster");
    let mut cluster = Cluster::start("cluster_nodes", &redis_url(), &keys.0).await;
    let http = reqwest::Client::new();
    assert_every_node_sees_its_peers(&cluster, &http).await;

    let on_b =
        TestServerless(Api { base: cluster.apis[1].base.clone(), http: http.clone(), token: None })
            .user("cluster@example.com")
            .await;
    let on_a = Api { base: cluster.apis[0].base.clone(), ..on_b.clone() };

    // Streamed from A, posted to B: every event, in order, none missing.
    let chat = on_b.new_chat().await;
    let mut live = on_a.stream(&chat, None).await;
    let message =
        on_b.send(&chat, "[[think]] [[write:a.txt:hi]] [[steps:2]] [[text:done]] go").await;
    let events = live.until_completed(&message).await;
    assert_saw_the_log(&events, &on_a, &chat).await;
    let kinds = kinds(&events);
    for kind in ["user_text", "assistant_thinking", "tool_started", "assistant_text"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    cluster.ran_on(&chat, "a.txt");

    // An approval posted to B reaches the worker that asked (the turn was posted to A).
    let asking = ask_chat(&on_a).await;
    let mut live = on_a.stream(&asking, None).await;
    let write = on_a.send(&asking, "[[write:approved.txt:yes]] write it").await;
    let request = live.until("permission_request").await.pop().unwrap();
    approve(&on_b, &asking, &request).await;
    let mut events = vec![request];
    events.extend(live.until_completed(&write).await);
    assert_eq!(message_status(&on_b, &asking, &write).await, "completed");
    let worker = cluster.ran_on(&asking, "approved.txt");
    let dir = cluster.workers.iter().find(|node| node.id == worker).unwrap().dir.path();
    assert_eq!(std::fs::read_to_string(home(dir, &asking).join("approved.txt")).unwrap(), "yes");

    // An interrupt posted to A stops a turn posted to B.
    let long_chat = on_b.new_chat().await;
    let mut live = on_b.stream(&long_chat, None).await;
    let long = on_b.send(&long_chat, "[[sleep:300]] take your time").await;
    live.until("tool_started").await;
    let (status, body) =
        on_a.call(Method::DELETE, &format!("/api/v1/chats/{long_chat}/stream"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["message_id"], long);
    let ended = live.until_completed(&long).await;
    assert_eq!(ended.last().unwrap().data["status"], "interrupted", "{:?}", ended.last());
    assert_eq!(message_status(&on_a, &long_chat, &long).await, "interrupted");

    // kill -9 of A while a client streams from it: the turn goes on on its worker, and the
    // client resumes on B from the last id it saw, missing nothing.
    let held = ask_chat(&on_b).await;
    let mut live = on_a.stream(&held, None).await;
    let turn = on_b.send(&held, "[[write:one.txt:1]] [[text:after the kill]] go").await;
    let mut seen = live.until("permission_request").await;
    let request = seen.last().unwrap().clone();
    cluster.apis[0].process.kill().await.unwrap();
    live.until_closed().await;
    // Events the client cannot see are committed while it has no stream.
    approve(&on_b, &held, &request).await;
    let last = seen.last().unwrap().id;
    let mut resumed = on_b.stream(&held, Some(last)).await;
    seen.extend(resumed.until_completed(&turn).await);
    assert_saw_the_log(&seen, &on_b, &held).await;
    assert!(
        seen.iter().any(|e| e.data["text"] == "after the kill"),
        "{:?}",
        super::support::kinds(&seen)
    );
    assert_eq!(message_status(&on_b, &held, &turn).await, "completed");

    // B's /health counts A gone once its heartbeat is older than the expiry; the workers
    // stay alive and B stays healthy.
    let expired = wait_until("api-a expiring in B's /health", async || {
        let health = health(&http, &cluster.apis[1].base).await;
        let peers = health["peers"].as_array().unwrap();
        let a = peers.iter().find(|peer| peer["id"] == "api-a").unwrap();
        (a["alive"] == false).then_some(health)
    })
    .await;
    for peer in expired["peers"].as_array().unwrap() {
        assert_eq!(peer["alive"], peer["id"] != "api-a", "{peer}");
    }
    assert_eq!(expired["status"], "healthy", "{expired}");

    // With every worker gone, no turn B queues can run: B says so.
    for worker in &mut cluster.workers {
        worker.process.kill().await.unwrap();
    }
    let degraded = wait_until("B degraded without workers", async || {
        let health = health(&http, &cluster.apis[1].base).await;
        (health["status"] == "degraded").then_some(health)
    })
    .await;
    let workers_alive = degraded["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|peer| peer["role"] == "worker" && peer["alive"] == true)
        .count();
    assert_eq!(workers_alive, 0, "{degraded}");
    assert_eq!(degraded["database"]["status"], "ok", "only the workers are missing: {degraded}");
}

/// A `redis-server` of the test's own on a free port, without persistence, so that it can
/// be killed and started again without touching the Redis other tests share.
struct PrivateRedis {
    port: u16,
    process: Option<Child>,
}

impl PrivateRedis {
    /// `None` when there is no `redis-server` on PATH.
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, process: None };
        redis.spawn().await.then_some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Start it on its port and wait until it answers `PING`; `false` if it cannot start.
    async fn spawn(&mut self) -> bool {
        #[allow(clippy::disallowed_methods)] // The test runs Redis itself, not agent code.
        let spawned = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(process) = spawned else { return false };
        self.process = Some(process);
        let client = redis::Client::open(self.url()).unwrap();
        wait_until("the private Redis answering", async || {
            let mut connection = client.get_multiplexed_async_connection().await.ok()?;
            let pong: String = redis::cmd("PING").query_async(&mut connection).await.ok()?;
            (pong == "PONG").then_some(())
        })
        .await;
        true
    }

    /// SIGKILL, and wait until it is gone (its port is then free again).
    async fn kill(&mut self) {
        let mut process = self.process.take().unwrap();
        process.kill().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restarting_redis_mid_turn_loses_no_event() {
    let Some(mut redis) = PrivateRedis::start().await else {
        eprintln!(
            "SKIPPED: no redis-server on PATH to run a private Redis that this test may restart"
        );
        return;
    };
    let prefix = format!("agentbox-test:{}:restart:", std::process::id());
    let cluster = Cluster::start("cluster_redis_restart", &redis.url(), &prefix).await;
    let http = reqwest::Client::new();
    let on_b =
        TestServerless(Api { base: cluster.apis[1].base.clone(), http: http.clone(), token: None })
            .user("restart@example.com")
            .await;
    let on_a = Api { base: cluster.apis[0].base.clone(), ..on_b.clone() };

    // Two permission requests hold the turn: one while Redis is down, one after it is back.
    let chat = ask_chat(&on_b).await;
    let mut live = on_a.stream(&chat, None).await;
    let turn =
        on_b.send(&chat, "[[write:one.txt:1]] [[write:two.txt:2]] [[text:all there]] go").await;
    let mut seen = live.until("permission_request").await;

    redis.kill().await;
    let (_, down) = on_a.get("/health").await;
    assert_eq!(down["redis"]["status"], "error", "{down}");
    assert_eq!(down["status"], "healthy", "an unreachable Redis stops no turn: {down}");
    // Answered while Redis is down: the write runs and the next request is committed, and
    // A's client still gets them (from the log its stream falls back to).
    approve(&on_b, &chat, seen.last().unwrap()).await;
    seen.extend(live.until("permission_request").await);

    assert!(redis.spawn().await, "the private Redis did not start again");
    // Answered once Redis is back: the rest of the turn comes through it again.
    approve(&on_b, &chat, seen.last().unwrap()).await;
    seen.extend(live.until_completed(&turn).await);

    assert_saw_the_log(&seen, &on_a, &chat).await;
    let requests = seen.iter().filter(|event| event.event == "permission_request").count();
    assert_eq!(requests, 2, "{:?}", kinds(&seen));
    assert_eq!(message_status(&on_a, &chat, &turn).await, "completed");
    let worker = cluster.ran_on(&chat, "two.txt");
    assert_eq!(cluster.ran_on(&chat, "one.txt"), worker);
    // Both nodes are on Redis again.
    let a_back = wait_until("A reaching Redis again", async || {
        let health = health(&http, &cluster.apis[0].base).await;
        (health["redis"]["status"] == "ok").then_some(health)
    })
    .await;
    assert_eq!(a_back["status"], "healthy", "{a_back}");
}
