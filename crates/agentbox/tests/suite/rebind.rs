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
    // One SECRET_KEY: the API node passes the restore to the worker with a credential from it.
    let common = [
        "--node-expiry-secs",
        "5",
        "--checkpoint-store",
        checkpoint_store,
        "--secret-key",
        "rebind-test-secret-key-of-at-least-32-characters",
    ];
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

    // A restore posted to the API node goes to the worker holding the chat (w2), which
    // makes its files the checkpoint's at once (later.txt, written after it, is gone) and
    // takes a checkpoint of the present first, the undo.
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
    assert!(restored["undo_checkpoint_id"].is_string(), "{restored}");
    assert_ne!(restored["undo_checkpoint_id"], moved["checkpoint_id"], "{restored}");
    assert!(!home(dirs[2].path(), &chat).join("later.txt").exists(), "restored at once");
    assert_eq!(store.chat_binding(chat_id).await.unwrap().as_deref(), Some("w2"));
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A terminal through `base`, authenticated the browser's way (`?access_token=`); the HTTP
/// status when it is refused.
async fn open_terminal(base: &str, chat: &str, token: &str) -> Result<Socket, (u16, String)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/api/v1/chats/{chat}/terminal?cols=100&rows=30&access_token={token}",
        base.replace("http://", "ws://")
    );
    let request = url.into_client_request().unwrap();
    match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("the terminal did not answer")
    {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            Err((response.status().as_u16(), body.into_owned()))
        }
        Err(err) => panic!("{err}"),
    }
}

/// The terminal's output until it contains `needle`.
async fn read_terminal_until(socket: &mut Socket, needle: &str) -> String {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut output = String::new();
    while !output.contains(needle) {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the terminal went quiet")
            .unwrap()
            .unwrap();
        match message {
            Message::Binary(data) => output.push_str(&String::from_utf8_lossy(&data)),
            Message::Close(frame) => panic!("closed before {needle:?}: {frame:?}\n{output}"),
            _ => {}
        }
    }
    output
}

fn assert_unavailable(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert_eq!(body["error"]["code"], "sandbox_node_unavailable", "{what}: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("w1"), "{what}: {body}");
}

/// An API node serves the files, the zip, uploads, a terminal and the sandbox of a chat
/// bound to a worker by passing the requests on to that worker's internal API; the
/// internal API refuses requests without a valid node credential; with the worker killed,
/// the same requests get 503 `sandbox_node_unavailable`.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_node_serves_the_files_and_terminals_of_a_workers_chat() {
    api_node_serves_a_workers_chat(Db::Postgres).await;
}

/// The same on one SQLite file shared by the two processes of one machine.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_node_serves_the_files_and_terminals_of_a_workers_chat_on_sqlite() {
    api_node_serves_a_workers_chat(Db::Sqlite).await;
}

async fn api_node_serves_a_workers_chat(backend: Db) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let mock = MockLlm::start().await.unwrap();
    let shared_dir = tempfile::tempdir().unwrap();
    let database = backend.create("forward").await;
    let url = match &database {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", shared_dir.path().join("shared.sqlite").display()),
    };
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // One SECRET_KEY for the installation: the node credential is derived from it.
    let shared =
        ["--node-expiry-secs", "5", "--secret-key", "forwarding-test-secret-key-of-32-characters"];
    let (_api_node, api_base) = spawn_node(
        &[&["serve", "--no-worker", "--node-id", "api-1"], &shared[..]].concat(),
        dirs[0].path(),
        Some(&url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let (mut worker, worker_base) = spawn_node(
        &[&["worker", "--node-id", "w1"], &shared[..]].concat(),
        dirs[1].path(),
        Some(&url),
        &mock,
        unique_uid_base(),
    )
    .await;
    let store = Store::open_with(&url, &test_pool()).await.unwrap();
    let api =
        TestServerless(Api { base: api_base.clone(), http: reqwest::Client::new(), token: None })
            .user("forward@example.com")
            .await;
    let token = api.token.clone().unwrap();
    let chat = api.new_chat().await;
    let chat_id: Uuid = chat.parse().unwrap();

    // The agent writes a file on the worker; the chat is bound there.
    let written = api.send(&chat, "[[write:agent.txt:from the agent]] write it").await;
    let done = wait_for_message(&api, &chat, &written, |m| m["status"] != "in_progress").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(store.chat_binding(chat_id).await.unwrap().as_deref(), Some("w1"));
    let on_worker = home(dirs[1].path(), &chat).join("agent.txt");
    assert_eq!(std::fs::read_to_string(&on_worker).unwrap(), "from the agent", "{done}");
    assert!(!home(dirs[0].path(), &chat).join("agent.txt").exists());

    // Listed, read and zipped through the API node: what the worker holds.
    let files = format!("/api/v1/chats/{chat}/files");
    let (status, listing) = api.get(&format!("{files}?path=")).await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    let names: Vec<&str> =
        listing.as_array().unwrap().iter().filter_map(|entry| entry["name"].as_str()).collect();
    assert!(names.contains(&"agent.txt"), "{listing}");
    let response =
        api.request(Method::GET, &format!("{files}/content?path=agent.txt")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "from the agent");
    let response = api.request(Method::GET, &format!("{files}/zip")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let zipped = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped.to_vec())).unwrap();
    let mut entry = archive.by_name("agent.txt").expect("the zip holds the agent's file");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    assert_eq!(text, "from the agent");
    drop(entry);
    let (status, sandbox) = api.get(&format!("/api/v1/chats/{chat}/sandbox")).await;
    assert_eq!(status, StatusCode::OK, "{sandbox}");
    assert_eq!(sandbox["provider"], "local", "{sandbox}");

    // An upload through the API node lands on the worker, where the next turn reads it.
    let response = api
        .request(Method::PUT, &format!("{files}/content?path=up/loaded.txt"))
        .header("content-type", "application/octet-stream")
        .body("uploaded through the API node")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    assert_eq!(
        std::fs::read_to_string(home(dirs[1].path(), &chat).join("up/loaded.txt")).unwrap(),
        "uploaded through the API node"
    );
    mock.clear_requests();
    let next = api.send(&chat, "[[bash:cat up/loaded.txt]] read it").await;
    let next = wait_for_message(&api, &chat, &next, |m| m["status"] != "in_progress").await;
    assert_eq!(next["status"], "completed", "{next}");
    let results: String = mock
        .message_requests()
        .iter()
        .flat_map(|request| request.tool_results())
        .map(|result| result.to_string())
        .collect();
    assert!(results.contains("uploaded through the API node"), "the model saw {results}");

    // A restore through the API node rewrites the worker's files at once: the upload,
    // made after the first turn's checkpoint, is gone there and from the listing.
    let first_checkpoint = done["checkpoint_id"].as_str().unwrap().to_owned();
    let restore = format!("/api/v1/chats/{chat}/checkpoints/{first_checkpoint}/restore");
    let (status, restored) = api.call(Method::POST, &restore, None).await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert!(restored["undo_checkpoint_id"].is_string(), "{restored}");
    assert!(!home(dirs[1].path(), &chat).join("up/loaded.txt").exists());
    let (status, listing) = api.get(&format!("{files}?path=")).await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    let names: Vec<&str> =
        listing.as_array().unwrap().iter().filter_map(|entry| entry["name"].as_str()).collect();
    assert!(names.contains(&"agent.txt") && !names.contains(&"up"), "{listing}");
    assert_eq!(store.chat_binding(chat_id).await.unwrap().as_deref(), Some("w1"));

    // A terminal opened through the API node is a shell in the worker's sandbox: it reads
    // the file only the worker has.
    let mut socket = open_terminal(&api_base, &chat, &token).await.unwrap();
    socket
        .send(Message::Binary(
            "echo mark-$((6*7)); cat agent.txt; echo; echo e''nd\n".as_bytes().to_vec().into(),
        ))
        .await
        .unwrap();
    let output = read_terminal_until(&mut socket, "end").await;
    assert!(output.contains("mark-42"), "{output}");
    assert!(output.contains("from the agent"), "{output}");
    drop(socket);

    // The worker's internal API: nothing without a valid node credential, and no public
    // API at all.
    let http = reqwest::Client::new();
    let internal = format!("{worker_base}/internal/v1/chats/{chat}/files?path=");
    let without = http.get(&internal).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let user = api.get("/api/v1/auth/me").await.1["id"].as_str().unwrap().to_owned();
    let expires = chrono::Utc::now().timestamp() + 30;
    let forged = format!("{user}.{chat}.{expires}.{}", "ab".repeat(32));
    for credential in [forged.as_str(), token.as_str(), "garbage"] {
        let response =
            http.get(&internal).header("x-agentbox-internal", credential).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{credential}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let bearer = http.get(&internal).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    let public = http.get(format!("{worker_base}{files}?path=")).bearer_auth(&token).send().await;
    assert_eq!(public.unwrap().status(), StatusCode::NOT_FOUND);

    // The worker dies: at once (it does not answer) and after its heartbeat expired (it is
    // gone), its chat's files, zip, uploads, terminals and sandbox are unavailable.
    worker.kill().await.unwrap();
    let (status, body) = api.get(&format!("{files}?path=")).await;
    assert_unavailable(status, &body, "a listing while the worker does not answer");
    tokio::time::timeout(PATIENCE, async {
        loop {
            let health: Value =
                http.get(format!("{api_base}/health")).send().await.unwrap().json().await.unwrap();
            let gone = health["peers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|peer| peer["id"] == "w1" && peer["alive"] == false);
            if gone {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("w1's heartbeat never expired");
    for path in
        [format!("{files}?path="), format!("{files}/zip"), format!("/api/v1/chats/{chat}/sandbox")]
    {
        let (status, body) = api.get(&path).await;
        assert_unavailable(status, &body, &path);
    }
    let (status, body) =
        api.call(Method::PUT, &format!("{files}/content?path=x.txt"), Some(json!({"a": 1}))).await;
    assert_unavailable(status, &body, "an upload");
    let (status, body) = open_terminal(&api_base, &chat, &token).await.err().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("sandbox_node_unavailable"), "{body}");
    // A restore needs no worker: the API node rewinds the conversation and unbinds the
    // chat, whose next worker makes its files the checkpoint's.
    let (status, restored) = api.call(Method::POST, &restore, None).await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert_eq!(store.chat_binding(chat_id).await.unwrap(), None);
    // Another user's request is still the usual 404, whatever the worker's state.
    let other =
        TestServerless(Api { base: api_base.clone(), http: reqwest::Client::new(), token: None })
            .user("other@example.com")
            .await;
    assert_eq!(other.get(&format!("{files}?path=")).await.0, StatusCode::NOT_FOUND);
    store.close().await;
}
