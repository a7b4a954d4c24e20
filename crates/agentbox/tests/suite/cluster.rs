//! Node roles: an API node (`serve --no-worker`) and a worker node (`worker`), each a
//! process of the real binary on one PostgreSQL database. The API node records turns and
//! queues them; the worker claims and runs them; an interrupt and a permission answer
//! posted to the API node reach the worker through the control table.

use std::time::Duration;

use agentbox_store::Store;
use agentbox_store::testing::TestDatabase;
use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::redis_bus::{Keys, redis_url};
use super::support::{
    Api, Db, PATIENCE, TestServerless, assert_strictly_increasing, kinds, spawn_node, test_pool,
    unique_uid_base,
};

/// The assistant message `id` of the chat once `done` says it is, within [`PATIENCE`].
async fn wait_for_message(api: &Api, chat: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let messages = api.messages(chat).await;
            if let Some(message) = messages.iter().find(|m| m["id"] == id)
                && done(message)
            {
                return message.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("message {id} never got there"))
}

/// The kinds of the events of a message's `content`.
fn content_kinds(message: &Value) -> Vec<String> {
    message["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_node_queues_turns_that_a_worker_runs_and_its_controls_reach() {
    roles_share_one_database(Db::Postgres).await;
}

/// The same on one SQLite file shared by two processes on one machine: the durable queue
/// and the control table work there too (controls are polled; SQLite has no NOTIFY).
#[tokio::test(flavor = "multi_thread")]
async fn an_api_node_and_a_worker_share_one_sqlite_file() {
    roles_share_one_database(Db::Sqlite).await;
}

async fn roles_share_one_database(backend: Db) {
    let mock = MockLlm::start().await.unwrap();
    let shared = tempfile::tempdir().unwrap();
    let database = backend.create("cluster_roles").await;
    let url = match &database {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", shared.path().join("shared.sqlite").display()),
    };
    let (api_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_api_node, api_base) = spawn_node(
        &["serve", "--no-worker", "--node-id", "api-1"],
        api_dir.path(),
        Some(&url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let (_worker_node, worker_base) = spawn_node(
        // One turn at a time, so that a second chat's turn waits while the first runs.
        &["worker", "--node-id", "worker-1", "--max-concurrent-turns", "1"],
        worker_dir.path(),
        Some(&url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let http = reqwest::Client::new();

    // The worker serves /health and nothing of the API.
    let health = http.get(format!("{worker_base}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let api_there = http.get(format!("{worker_base}/api/v1/chats")).send().await.unwrap();
    assert_eq!(api_there.status(), StatusCode::NOT_FOUND);
    let body: Value = api_there.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let store = Store::open_with(&url, &test_pool()).await.unwrap();
    let roles: Vec<(String, &str)> = store
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|node| (node.id, node.role.as_str()))
        .collect();
    assert_eq!(roles, [("api-1".to_owned(), "api"), ("worker-1".to_owned(), "worker")]);

    let api = TestServerless(Api { base: api_base, http: http.clone(), token: None })
        .user("nodes@example.com")
        .await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[text:hello from a worker]]").await;
    let done = wait_for_message(&api, &chat, &message, |m| m["status"] != "in_progress").await;
    assert_eq!(done["status"], "completed", "{done}");
    let text = done["content"].to_string();
    assert!(text.contains("hello from a worker"), "{text}");
    assert!(store.turn_jobs().await.unwrap().is_empty(), "the job was taken");

    // A long turn on the worker, interrupted through the API node.
    let long = api.send(&chat, "[[sleep:120]] take your time").await;
    wait_for_message(&api, &chat, &long, |m| {
        content_kinds(m).iter().any(|kind| kind == "tool_started")
    })
    .await;
    assert_eq!(store.turn_node(long.parse().unwrap()).await.unwrap().as_deref(), Some("worker-1"));
    // The API node runs nothing itself, yet it reports the turn from the shared store.
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["status"], "running", "{chat_json}");
    // Meanwhile another chat's turn waits in the queue (the worker's one slot is taken,
    // and a worker claims only with a free slot); interrupted through the API node, it ends
    // without running.
    let second = api.new_chat().await;
    let waiting = api.send(&second, "[[text:never]]").await;
    let (status, body) =
        api.call(Method::DELETE, &format!("/api/v1/chats/{second}/stream"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let cancelled =
        wait_for_message(&api, &second, &waiting, |m| m["status"] != "in_progress").await;
    assert_eq!(cancelled["status"], "interrupted", "{cancelled}");
    assert!(!cancelled["content"].to_string().contains("never"), "{cancelled}");
    assert_eq!(content_kinds(&cancelled), ["message_completed"], "it never started");

    let (status, body) =
        api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/stream"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["message_id"], long);
    let stopped = wait_for_message(&api, &chat, &long, |m| m["status"] != "in_progress").await;
    assert_eq!(stopped["status"], "interrupted", "{stopped}");

    // A permission request on the worker, answered through the API node.
    let (status, asking) =
        api.call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "ask"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{asking}");
    let asking = asking["id"].as_str().unwrap().to_owned();
    let write = api.send(&asking, "[[write:approved.txt:yes]] write it").await;
    let request_id = tokio::time::timeout(PATIENCE, async {
        loop {
            let (_, open) = api.get(&format!("/api/v1/chats/{asking}/permissions")).await;
            if let Some(id) = open[0]["request_id"].as_str() {
                return id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the worker's turn asked");
    // A bad answer is refused by the API node as the worker would, and changes nothing.
    let answer_path = format!("/api/v1/chats/{asking}/permissions/{request_id}");
    let (status, body) =
        api.call(Method::POST, &answer_path, Some(json!({"approved": true, "answers": {}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "answers_not_applicable");
    let (status, body) =
        api.call(Method::POST, &answer_path, Some(json!({"approved": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approved"], true);
    let written = wait_for_message(&api, &asking, &write, |m| m["status"] != "in_progress").await;
    assert_eq!(written["status"], "completed", "{written}");
    let home = |dir: &std::path::Path| dir.join("sandboxes").join(&asking).join("home");
    assert_eq!(
        std::fs::read_to_string(home(worker_dir.path()).join("approved.txt")).unwrap(),
        "yes"
    );
    assert!(!home(api_dir.path()).join("approved.txt").exists(), "the API node ran nothing");

    // `send now` through the API node: the worker interrupts its turn and runs the queued
    // prompt next.
    let busy = api.send(&chat, "[[sleep:120]] again").await;
    wait_for_message(&api, &chat, &busy, |m| {
        content_kinds(m).iter().any(|kind| kind == "tool_started")
    })
    .await;
    let (status, queued) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/queue"),
            Some(json!({"prompt": "[[text:sent now]]"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{queued}");
    assert!(queued["message_id"].is_null(), "it waits while the worker's turn runs");
    let queued_id = queued["id"].as_str().unwrap();
    let (status, body) =
        api.call(Method::POST, &format!("/api/v1/chats/{chat}/queue/{queued_id}/send"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stopped = wait_for_message(&api, &chat, &busy, |m| m["status"] != "in_progress").await;
    assert_eq!(stopped["status"], "interrupted", "{stopped}");
    let next = tokio::time::timeout(PATIENCE, async {
        loop {
            let messages = api.messages(&chat).await;
            let last = messages.last().unwrap().clone();
            if last["role"] == "assistant" && last["id"] != busy && last["status"] == "completed" {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the prompt sent now ran");
    assert!(next["content"].to_string().contains("sent now"), "{next}");
    store.close().await;
}

/// With the Redis bus on both nodes, a client streaming from the API node sees the worker's
/// turn live: every event, in order, exactly as the log holds it. The API node runs no part
/// of the turn, so every live event it sends came through Redis (or the log).
#[tokio::test(flavor = "multi_thread")]
async fn an_api_nodes_stream_shows_a_workers_turn_through_redis() {
    let mock = MockLlm::start().await.unwrap();
    let keys = Keys::new("roles");
    let db = TestDatabase::create("cluster_redis").await.unwrap();
    let redis = redis_url();
    let (api_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bus = ["--redis-url", redis.as_str(), "--redis-prefix", keys.0.as_str()];
    let api_args = [&["serve", "--no-worker", "--node-id", "api-r"][..], &bus[..]].concat();
    let (_api_node, api_base) =
        spawn_node(&api_args, api_dir.path(), Some(&db.url), &mock, unique_uid_base()).await;
    let worker_args = [&["worker", "--node-id", "worker-r"][..], &bus[..]].concat();
    let (_worker_node, _) =
        spawn_node(&worker_args, worker_dir.path(), Some(&db.url), &mock, unique_uid_base()).await;

    let api = TestServerless(Api { base: api_base, http: reqwest::Client::new(), token: None })
        .user("streams@example.com")
        .await;
    let chat = api.new_chat().await;
    let mut live = api.stream(&chat, None).await;
    let message =
        api.send(&chat, "[[think]] [[write:a.txt:hi]] [[steps:2]] [[text:done]] go").await;
    let events = live.until_completed(&message).await;

    assert_strictly_increasing(&events);
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    let logged = api.turn_events(&chat, &message).await;
    assert_eq!(
        events.iter().map(|event| &event.data).collect::<Vec<_>>(),
        logged.iter().map(|event| &event.data).collect::<Vec<_>>(),
        "the API node's live stream differs from the log"
    );
    let kinds = kinds(&events);
    for kind in
        ["user_text", "tool_started", "tool_completed", "assistant_text", "message_completed"]
    {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    // The worker ran it: the file is in its sandbox, not on the API node.
    let home = |dir: &std::path::Path| dir.join("sandboxes").join(&chat).join("home");
    assert_eq!(std::fs::read_to_string(home(worker_dir.path()).join("a.txt")).unwrap(), "hi");
    assert!(!home(api_dir.path()).join("a.txt").exists(), "the API node ran nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_workers_turn_ends_interrupted_and_the_chat_goes_on_on_another_worker() {
    let mock = MockLlm::start().await.unwrap();
    let db = TestDatabase::create("cluster_kill").await.unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // A short expiry keeps the test short; heartbeats come every sixth of it.
    let expiry = ["--node-expiry-secs", "5"];
    let node = |args: &[&'static str]| [args, &expiry[..]].concat();
    let (_api_node, api_base) = spawn_node(
        &node(&["serve", "--no-worker", "--node-id", "api-1"]),
        dirs[0].path(),
        Some(&db.url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let (mut first, _) = spawn_node(
        &node(&["worker", "--node-id", "worker-1"]),
        dirs[1].path(),
        Some(&db.url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let api = TestServerless(Api { base: api_base, http: reqwest::Client::new(), token: None })
        .user("kill@example.com")
        .await;
    let chat = api.new_chat().await;
    let long = api.send(&chat, "[[sleep:300]] take your time").await;
    wait_for_message(&api, &chat, &long, |m| {
        content_kinds(m).iter().any(|kind| kind == "tool_started")
    })
    .await;

    first.kill().await.unwrap();
    let ended = wait_for_message(&api, &chat, &long, |m| m["status"] != "in_progress").await;
    assert_eq!(ended["status"], "interrupted", "{ended}");
    let error = ended["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "error")
        .cloned()
        .expect("an error event says why");
    assert_eq!(error["code"], "node_lost", "{error}");
    assert!(error["message"].as_str().unwrap().contains("worker-1"), "{error}");

    // The chat goes on: its next turn runs on a live worker.
    let (_second, _) = spawn_node(
        &node(&["worker", "--node-id", "worker-2"]),
        dirs[2].path(),
        Some(&db.url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let next = api.send(&chat, "[[text:on the second worker]]").await;
    let done = wait_for_message(&api, &chat, &next, |m| m["status"] != "in_progress").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["content"].to_string().contains("on the second worker"), "{done}");
}
