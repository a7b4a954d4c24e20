//! Where sandboxes live on a cluster: an API node and two workers of the real binary on one
//! database, sharing one `--checkpoint-store`. A chat is bound to the worker that ran its
//! turn; that worker is killed (`kill -9`) in the middle of the next turn, which ends
//! `interrupted`; the chat's next turn runs on the other worker, in a workspace restored
//! from the checkpoint of the last completed turn, and the chat is bound there from then on.
//! A fork the API node makes gets its files on its first worker the same way.

use std::path::Path;
use std::time::Duration;

use agentbox_store::Store;
use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::support::{Api, Db, PATIENCE, TestServerless, spawn_node, test_pool, unique_uid_base};

/// What the first turn writes; only the checkpoint carries it to the second worker.
const KEPT: &str = "written on the first worker";

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

/// The open permission requests of the chat, as the API node lists them.
async fn open_requests(api: &Api, chat: &str) -> Vec<Value> {
    let (status, open) = api.get(&format!("/api/v1/chats/{chat}/permissions")).await;
    assert_eq!(status, StatusCode::OK, "{open}");
    open.as_array().unwrap().clone()
}

async fn set_mode(api: &Api, chat: &str, mode: &str) {
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/chats/{chat}"),
            Some(json!({"permission_mode": mode})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn events_of<'a>(message: &'a Value, kind: &str) -> Vec<&'a Value> {
    message["content"].as_array().unwrap().iter().filter(|e| e["type"] == kind).collect()
}

fn home(data_dir: &Path, chat: &str) -> std::path::PathBuf {
    data_dir.join("sandboxes").join(chat).join("home")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_moves_to_a_live_worker_with_the_files_of_its_last_checkpoint() {
    a_chat_moves_between_workers(Db::Postgres).await;
}

/// The same on one SQLite file shared by the three processes of one machine.
#[tokio::test(flavor = "multi_thread")]
async fn a_chat_moves_between_workers_on_one_sqlite_file() {
    a_chat_moves_between_workers(Db::Sqlite).await;
}

async fn a_chat_moves_between_workers(backend: Db) {
    let mock = MockLlm::start().await.unwrap();
    let shared = tempfile::tempdir().unwrap();
    let database = backend.create("rebind").await;
    let url = match &database {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", shared.path().join("shared.sqlite").display()),
    };
    let checkpoint_store = shared.path().join("checkpoints");
    let checkpoint_store = checkpoint_store.to_str().unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // A short expiry keeps the test short; heartbeats come every sixth of it.
    let common = ["--node-expiry-secs", "5", "--checkpoint-store", checkpoint_store];
    let node = |args: &[&'static str]| -> Vec<&str> { [args, &common[..]].concat() };
    let (_api_node, api_base) = spawn_node(
        &node(&["serve", "--no-worker", "--node-id", "api-1"]),
        dirs[0].path(),
        Some(&url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let (mut first, _) = spawn_node(
        &node(&["worker", "--node-id", "w1"]),
        dirs[1].path(),
        Some(&url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let store = Store::open_with(&url, &test_pool()).await.unwrap();
    let api = TestServerless(Api { base: api_base, http: reqwest::Client::new(), token: None })
        .user("rebind@example.com")
        .await;
    let chat = api.new_chat().await;
    let chat_id: Uuid = chat.parse().unwrap();

    // A turn on w1 writes a file and completes: the chat is bound to w1, and the turn's
    // checkpoint is in the shared store.
    let first_prompt = format!("[[write:kept.txt:{KEPT}]] keep this");
    let written = api.send(&chat, &first_prompt).await;
    let done = wait_for_message(&api, &chat, &written, |m| m["status"] != "in_progress").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["checkpoint_id"].is_string(), "the turn was checkpointed: {done}");
    assert_eq!(store.chat_binding(chat_id).await.unwrap().as_deref(), Some("w1"));
    assert_eq!(
        std::fs::read_to_string(home(dirs[1].path(), &chat).join("kept.txt")).unwrap(),
        KEPT
    );
    assert!(Path::new(checkpoint_store).join(&chat).join("checkpoints").is_dir());

    // The next turn starts on w1 and holds on a permission request.
    set_mode(&api, &chat, "ask").await;
    let held = api.send(&chat, "[[write:lost.txt:never]] wait for me").await;
    let request = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(open) = open_requests(&api, &chat).await.first() {
                return open["request_id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the turn on w1 asked");
    assert_eq!(store.turn_node(held.parse().unwrap()).await.unwrap().as_deref(), Some("w1"));

    // A second worker starts meanwhile, dies and starts again: its start-up recovery (the
    // restart's closes its own turns) leaves w1's live turn alone. It listens only after
    // recovering, so this is checked after that ran.
    let w2_args = node(&["worker", "--node-id", "w2"]);
    let start_w2 = || spawn_node(&w2_args, dirs[2].path(), Some(&url), &mock, unique_uid_base());
    let (mut second, _) = start_w2().await;
    second.kill().await.unwrap();
    let (_second, _) = start_w2().await;
    let messages = api.messages(&chat).await;
    let still = messages.iter().find(|m| m["id"] == held).unwrap();
    assert_eq!(still["status"], "in_progress", "w2's start-up cut off w1's turn: {still}");
    let open = open_requests(&api, &chat).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["request_id"], request.as_str());

    // w1 dies; the sweep interrupts its turn.
    first.kill().await.unwrap();
    let ended = wait_for_message(&api, &chat, &held, |m| m["status"] != "in_progress").await;
    assert_eq!(ended["status"], "interrupted", "{ended}");
    let error = events_of(&ended, "error");
    assert_eq!(error.len(), 1, "{ended}");
    assert_eq!(error[0]["code"], "node_lost", "{ended}");

    // The chat's next turn runs on w2, which restores the last checkpoint first.
    set_mode(&api, &chat, "auto").await;
    mock.clear_requests();
    let next =
        api.send(&chat, "[[bash:cat kept.txt]] [[write:later.txt:after]] what did we keep?").await;
    let moved = wait_for_message(&api, &chat, &next, |m| m["status"] != "in_progress").await;
    assert_eq!(moved["status"], "completed", "{moved}");
    assert_eq!(store.chat_binding(chat_id).await.unwrap().as_deref(), Some("w2"));
    let notices: Vec<&str> = events_of(&moved, "system")
        .into_iter()
        .filter(|event| event["subtype"] == "moved_worker")
        .filter_map(|event| event["text"].as_str())
        .collect();
    assert_eq!(notices.len(), 1, "one notice says the chat moved: {moved}");
    assert!(notices[0].contains("moved to another worker"), "{}", notices[0]);
    assert!(notices[0].contains("(w1)"), "{}", notices[0]);
    assert!(
        notices[0].contains("Files restored from the checkpoint of the turn \"[[write:kept.txt"),
        "{}",
        notices[0]
    );
    // The scripted `cat` ran in w2's sandbox and read the file of the checkpoint.
    let requests = mock.message_requests();
    let results: String = requests
        .iter()
        .flat_map(|request| request.tool_results())
        .map(|result| result.to_string())
        .collect();
    assert!(results.contains(KEPT), "the model saw {results}");
    assert_eq!(
        std::fs::read_to_string(home(dirs[2].path(), &chat).join("kept.txt")).unwrap(),
        KEPT
    );
    assert!(!home(dirs[2].path(), &chat).join("lost.txt").exists());
    // The CLI session was in the restored workspace, so the model sees the earlier turn.
    let seen = requests.first().expect("the model was called").user_texts();
    assert!(seen.iter().any(|text| text.contains("keep this")), "{seen:?}");

    // A fork, made by the API node in the shared store, runs on a worker that never held
    // either chat's files before its first turn there: its workspace comes from the
    // fork's checkpoint.
    let (status, fork) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/fork"),
            Some(json!({"message_id": written})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fork}");
    let fork = fork["id"].as_str().unwrap().to_owned();
    mock.clear_requests();
    let forked = api.send(&fork, "[[bash:cat kept.txt]] and in the fork?").await;
    let forked = wait_for_message(&api, &fork, &forked, |m| m["status"] != "in_progress").await;
    assert_eq!(forked["status"], "completed", "{forked}");
    let results: String = mock
        .message_requests()
        .iter()
        .flat_map(|request| request.tool_results())
        .map(|result| result.to_string())
        .collect();
    assert!(results.contains(KEPT), "the fork's turn saw {results}");
    assert_eq!(store.chat_binding(fork.parse().unwrap()).await.unwrap().as_deref(), Some("w2"));

    // A restore posted to the API node, which holds no sandbox: the worker running the
    // chat's next turn makes its workspace the restored checkpoint (later.txt, written
    // after it on w2, is gone), and the undo is the checkpoint of the turn before.
    let (status, restored) = api
        .call(
            Method::POST,
            &format!(
                "/api/v1/chats/{chat}/checkpoints/{}/restore",
                done["checkpoint_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert_eq!(restored["undo_checkpoint_id"], moved["checkpoint_id"], "{restored}");
    assert!(home(dirs[2].path(), &chat).join("later.txt").exists(), "w2 has not run yet");
    mock.clear_requests();
    let after = api.send(&chat, "[[bash:ls]] after the restore").await;
    let after = wait_for_message(&api, &chat, &after, |m| m["status"] != "in_progress").await;
    assert_eq!(after["status"], "completed", "{after}");
    let listed: String = mock
        .message_requests()
        .iter()
        .flat_map(|request| request.tool_results())
        .map(|result| result.to_string())
        .collect();
    assert!(listed.contains("kept.txt") && !listed.contains("later.txt"), "ls said {listed}");
    assert!(!home(dirs[2].path(), &chat).join("later.txt").exists());
    store.close().await;
}
