//! Node roles: an API node (`serve --no-worker`) and a worker node (`worker`), each a
//! process of the real binary on one PostgreSQL database. The API node records turns and
//! queues them; the worker claims and runs them; an interrupt posted to the API node
//! reaches the worker through the control table.

use std::time::Duration;

use agentbox_store::Store;
use agentbox_store::testing::TestDatabase;
use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::support::{Api, PATIENCE, TestServerless, spawn_node, test_pool, unique_uid_base};

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
async fn an_api_node_queues_turns_that_a_worker_node_runs_and_interrupts_reach_it() {
    let mock = MockLlm::start().await.unwrap();
    let db = TestDatabase::create("cluster_roles").await.unwrap();
    let (api_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_api_node, api_base) = spawn_node(
        &["serve", "--no-worker", "--node-id", "api-1"],
        api_dir.path(),
        Some(&db.url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let (_worker_node, worker_base) = spawn_node(
        &["worker", "--node-id", "worker-1"],
        worker_dir.path(),
        Some(&db.url),
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

    let store = Store::open_with(&db.url, &test_pool()).await.unwrap();
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
    let (status, body) =
        api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/stream"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["message_id"], long);
    let stopped = wait_for_message(&api, &chat, &long, |m| m["status"] != "in_progress").await;
    assert_eq!(stopped["status"], "interrupted", "{stopped}");
    store.close().await;
}
