//! Users' secrets end to end, with the real CLI and sandboxes and the mock model: a user's
//! own model key reaches the model for their turns only, a secret reaches their sandbox and
//! no one else's, a changed secret reaches the next turn, `--require-user-model-key`, the
//! user's own model host through the egress proxy, and no value in plain text in the
//! database, the server's log, the workspace or the checkpoints.

use std::sync::{Arc, Mutex};

use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{
    Api, PATIENCE, TestServer, TestServerless, cli_path, files_containing, unique_uid_base,
};

/// Set a secret (`chat`: a chat's override) and check it was taken.
async fn put_secret(api: &Api, chat: Option<&str>, name: &str, value: &str) {
    let path = match chat {
        Some(chat) => format!("/api/v1/chats/{chat}/secrets/{name}"),
        None => format!("/api/v1/secrets/{name}"),
    };
    let (status, body) = api.call(Method::PUT, &path, Some(json!({ "value": value }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Run a turn and return its events; `tag` makes the prompt unique among the mock's
/// requests.
async fn turn(api: &Api, chat: &str, prompt: &str) -> Vec<Value> {
    let message = api.send(chat, prompt).await;
    api.turn_events(chat, &message)
        .await
        .into_iter()
        .filter(|e| e.data["message_id"] == message)
        .map(|e| json!({"event": e.event, "data": e.data}))
        .collect()
}

/// The output of the turn's Bash call.
fn tool_output(events: &[Value]) -> String {
    events
        .iter()
        .find_map(|e| match e["event"].as_str() {
            Some("tool_completed") => e["data"]["tool"]["result"].as_str().map(str::to_owned),
            Some("tool_failed") => e["data"]["tool"]["error"].as_str().map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

/// The credentials of the mock's requests whose prompt contains `tag`.
fn credentials_for(mock: &MockLlm, tag: &str) -> Vec<String> {
    mock.message_requests()
        .iter()
        .filter(|r| r.user_texts().iter().any(|t| t.contains(tag)))
        .map(|r| r.credential().unwrap_or("<none>").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_own_key_and_secrets_reach_their_turns_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let bob = server.user("bob@example.com").await;
    let own_key = format!("sk-ant-alice-{}", uuid::Uuid::new_v4().simple());
    let secret = format!("alice-secret-{}", uuid::Uuid::new_v4().simple());
    put_secret(&alice, None, "ANTHROPIC_API_KEY", &own_key).await;
    put_secret(&alice, None, "ANTHROPIC_BASE_URL", &server.mock.base_url()).await;
    put_secret(&alice, None, "MY_SECRET", &secret).await;

    let alice_chat = alice.new_chat().await;
    let events = turn(&alice, &alice_chat, "[[bash:printenv MY_SECRET]] alice-1").await;
    assert!(tool_output(&events).contains(&secret), "{events:?}");
    let used = credentials_for(&server.mock, "alice-1");
    assert!(!used.is_empty() && used.iter().all(|k| *k == own_key), "{used:?}");

    let bob_chat = bob.new_chat().await;
    let events = turn(&bob, &bob_chat, "[[bash:printenv MY_SECRET; echo bob-done]] bob-1").await;
    let output = tool_output(&events);
    assert!(output.contains("bob-done") && !output.contains(&secret), "{output}");
    let used = credentials_for(&server.mock, "bob-1");
    assert!(!used.is_empty() && used.iter().all(|k| k == "test-key"), "the server's key: {used:?}");

    // A chat's override wins, and a change reaches the next turn although the chat's CLI
    // process was kept.
    put_secret(&alice, Some(&alice_chat), "MY_SECRET", "chat-override-value").await;
    let events = turn(&alice, &alice_chat, "[[bash:printenv MY_SECRET]] alice-2").await;
    assert!(tool_output(&events).contains("chat-override-value"), "{events:?}");
    let (status, _) = alice
        .call(Method::DELETE, &format!("/api/v1/chats/{alice_chat}/secrets/MY_SECRET"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let events = turn(&alice, &alice_chat, "[[bash:printenv MY_SECRET]] alice-3").await;
    assert!(tool_output(&events).contains(&secret), "{events:?}");

    // Without their key the user's turns use the server's again.
    let (status, _) = alice.call(Method::DELETE, "/api/v1/secrets/ANTHROPIC_API_KEY", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = alice.call(Method::DELETE, "/api/v1/secrets/ANTHROPIC_BASE_URL", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    turn(&alice, &alice_chat, "[[text:fine]] alice-4").await;
    let used = credentials_for(&server.mock, "alice-4");
    assert!(!used.is_empty() && used.iter().all(|k| k == "test-key"), "{used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_own_model_host_is_open_to_their_sandboxes_only() {
    let own_mock = MockLlm::start().await.unwrap();
    // Both mocks are on loopback, which users' own hosts reach only with this flag.
    let server = TestServer::start_with(|config| config.sandbox.user_hosts_private = true).await;
    let alice = server.user("alice@example.com").await;
    let bob = server.user("bob@example.com").await;
    put_secret(&alice, None, "ANTHROPIC_AUTH_TOKEN", "alice-own-token-0123456789").await;
    put_secret(&alice, None, "ANTHROPIC_BASE_URL", &own_mock.base_url()).await;

    let chat = alice.new_chat().await;
    let events = turn(&alice, &chat, "[[text:from your own endpoint]] own-host").await;
    assert!(events.iter().any(|e| e["event"] == "message_completed"), "{events:?}");
    let used = credentials_for(&own_mock, "own-host");
    assert!(!used.is_empty() && used.iter().all(|k| k == "alice-own-token-0123456789"), "{used:?}");
    assert!(credentials_for(&server.mock, "own-host").is_empty(), "the server's model saw nothing");

    // Bob's sandbox may not reach Alice's model host.
    let (status, chat) = bob
        .call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "bypassPermissions"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    let bob_chat = chat["id"].as_str().unwrap().to_owned();
    let url = own_mock.base_url();
    let command = format!("curl -s -o /dev/null -w 'status %{{http_code}}' {url}/v1/models");
    let events = turn(&bob, &bob_chat, &format!("[[bash:{command}]] bob-probe")).await;
    let output = tool_output(&events);
    assert!(output.contains("status 403"), "the proxy refuses: {output}");
    assert!(credentials_for(&own_mock, "bob-probe").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_can_require_users_own_keys() {
    let server = TestServer::start_with(|config| config.require_user_model_key = true).await;
    let alice = server.user("alice@example.com").await;
    let bob = server.user("bob@example.com").await;
    put_secret(&alice, None, "ANTHROPIC_API_KEY", "alice-required-key-0123456789").await;
    put_secret(&alice, None, "ANTHROPIC_BASE_URL", &server.mock.base_url()).await;

    let chat = bob.new_chat().await;
    let events = turn(&bob, &chat, "[[text:never]] bob-required").await;
    let error = events.iter().find(|e| e["event"] == "error").expect("an error event");
    assert_eq!(error["data"]["code"], "user_model_key_required", "{error}");
    assert!(server.mock.message_requests().is_empty(), "the server's key was never used");

    let chat = alice.new_chat().await;
    turn(&alice, &chat, "[[text:fine]] alice-required").await;
    let used = credentials_for(&server.mock, "alice-required");
    assert!(!used.is_empty() && used.iter().all(|k| k == "alice-required-key-0123456789"));
}

/// `agentbox serve` as its own process with a debug log, all of which is kept.
async fn logged_server(
    data_dir: &std::path::Path,
    mock: &MockLlm,
) -> (tokio::process::Child, String, Arc<Mutex<String>>) {
    use tokio::io::AsyncBufReadExt;
    #[allow(clippy::disallowed_methods)] // The test starts the real binary, not agent code.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbox"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("ANTHROPIC_BASE_URL", mock.base_url())
        .env("AGENTBOX_CLAUDE_PATH", cli_path())
        .env("AGENTBOX_CLI_MAX_RETRIES", "0")
        .env("AGENTBOX_SANDBOX_UID_BASE", unique_uid_base().to_string())
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(String::new()));
    let base = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server did not start");
    let kept = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    (child, base, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_value_is_kept_or_logged_in_plain_text() {
    let mock = MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut child, base, log) = logged_server(data.path(), &mock).await;
    let api = Api { base, http: reqwest::Client::new(), token: None };
    let alice = TestServerless(api).user("alice@example.com").await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key_marker = format!("sk-ant-keymarker{id}");
    let env_marker = format!("envmarker{id}");
    let chat_marker = format!("chatmarker{id}");
    put_secret(&alice, None, "ANTHROPIC_API_KEY", &key_marker).await;
    put_secret(&alice, None, "ANTHROPIC_BASE_URL", &mock.base_url()).await;
    put_secret(&alice, None, "MARKER_SECRET", &env_marker).await;
    let chat = alice.new_chat().await;
    put_secret(&alice, Some(&chat), "CHAT_SECRET", &chat_marker).await;

    let events = turn(
        &alice,
        &chat,
        "[[bash:test -n \"$MARKER_SECRET\" && test -n \"$CHAT_SECRET\" && echo both-set]] plant",
    )
    .await;
    assert!(tool_output(&events).contains("both-set"), "{events:?}");
    turn(&alice, &chat, "[[write:notes.txt:nothing secret]] write").await;
    assert!(credentials_for(&mock, "plant").iter().all(|k| *k == key_marker), "the key was used");
    let (status, listed) = alice.get("/api/v1/secrets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!listed.to_string().contains(&id), "{listed}");

    // Stop the server so that everything it writes is written.
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let markers = [key_marker.as_str(), env_marker.as_str(), chat_marker.as_str()];
    // The database (with its WAL), the workspaces, the checkpoints: the whole data directory.
    let found = files_containing(data.path(), &markers);
    assert!(found.is_empty(), "{found:?}");
    assert!(data.path().join("checkpoints").exists() && data.path().join("sandboxes").exists());
    #[allow(clippy::disallowed_methods)] // sqlite3 reads the test's database, no agent code.
    let dump = std::process::Command::new("sqlite3")
        .arg(data.path().join("agentbox.sqlite"))
        .arg(".dump")
        .output()
        .unwrap();
    assert!(dump.status.success());
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("CREATE TABLE secrets") && dump.contains("MARKER_SECRET"),
        "the names are there"
    );
    let log = log.lock().unwrap().clone();
    assert!(log.contains("turn finished"), "the log was captured");
    for marker in markers {
        assert!(!dump.contains(marker), "the dump holds {marker}");
        assert!(!log.contains(marker), "the log holds {marker}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotating_the_key_reseals_every_secret_and_signs_everyone_out() {
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = super::support::test_config(&tmp.path().join("data"), &mock);
    let server = agentbox::serve::start(config.clone()).await.unwrap();
    let api = Api {
        base: format!("http://{}", server.address),
        http: reqwest::Client::new(),
        token: None,
    };
    let alice = TestServerless(api.clone()).user("alice@example.com").await;
    put_secret(&alice, None, "MY_SECRET", "value-before-rotation").await;
    let chat = alice.new_chat().await;
    put_secret(&alice, Some(&chat), "CHAT_ONLY", "chat-value-before").await;
    server.stop().await.unwrap();

    let key_file = config.data_dir.join("secret.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    // A key given by flag or env is the operator's to change: a new one must be given.
    let given = agentbox::config::Config { secret_key: Some(old_key.clone()), ..config.clone() };
    let refused = agentbox::rotate::rotate(&given, None).await.unwrap_err();
    assert!(refused.to_string().contains("--new-key"), "{refused}");

    let done = agentbox::rotate::rotate(&config, None).await.unwrap();
    assert_eq!((done.resealed, done.already_new), (2, 0));
    assert_ne!(done.old_key_id, done.new_key_id);
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    assert!(!config.data_dir.join("secret.key.new").exists());

    // A server with the new key: old tokens are void, the secrets open.
    let server = agentbox::serve::start(config.clone()).await.unwrap();
    let api = Api { base: format!("http://{}", server.address), ..api };
    let stale = Api { token: alice.token.clone(), ..api.clone() };
    assert_eq!(stale.get("/api/v1/secrets").await.0, StatusCode::UNAUTHORIZED);
    let alice = signed_in(&api, "alice@example.com").await;
    let events = turn(&alice, &chat, "[[bash:printenv MY_SECRET CHAT_ONLY]] after").await;
    let output = tool_output(&events);
    assert!(
        output.contains("value-before-rotation") && output.contains("chat-value-before"),
        "{output}"
    );
    server.stop().await.unwrap();

    // A server still on the old key says so plainly, and never runs the turn with garbage.
    let old = agentbox::config::Config { secret_key: Some(old_key), ..config.clone() };
    let server = agentbox::serve::start(old).await.unwrap();
    let api = Api { base: format!("http://{}", server.address), ..api };
    let alice = signed_in(&api, "alice@example.com").await;
    let events = turn(&alice, &chat, "[[text:never]] old-key").await;
    let error = events.iter().find(|e| e["event"] == "error").expect("an error event");
    assert_eq!(error["data"]["code"], "secrets_unavailable", "{error}");
    assert!(error["data"]["message"].as_str().unwrap().contains("rotate-secret-key"), "{error}");
    let (status, listed) = alice.get("/api/v1/secrets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed[0]["masked"].as_str().unwrap().contains("cannot be opened"), "{listed}");
    server.stop().await.unwrap();
}

async fn signed_in(api: &Api, email: &str) -> Api {
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Api { token: Some(body["access_token"].as_str().unwrap().to_owned()), ..api.clone() }
}

/// What a new terminal of the chat prints for `command` (which must end by printing END-2).
async fn terminal_output(api: &Api, chat: &str, command: &str) -> String {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/api/v1/chats/{chat}/terminal", api.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", api.token.as_ref().unwrap()).parse().unwrap(),
    );
    let (mut socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .unwrap()
        .unwrap();
    socket.send(Message::Binary(format!("{command}\n").into_bytes().into())).await.unwrap();
    let mut output = String::new();
    while !output.contains("END-2") {
        match tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the terminal went quiet")
            .unwrap()
            .unwrap()
        {
            Message::Binary(data) => output.push_str(&String::from_utf8_lossy(&data)),
            Message::Close(frame) => panic!("closed: {frame:?}\n{output}"),
            _ => {}
        }
    }
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminals_get_their_owners_secrets_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let bob = server.user("bob@example.com").await;
    put_secret(&alice, None, "MY_SECRET", "terminal-secret-0123456789").await;
    let chat = alice.new_chat().await;
    put_secret(&alice, Some(&chat), "CHAT_ONLY", "terminal-chat-value").await;
    // `$((1+1))` makes the end mark differ from the echoed command line.
    let output =
        terminal_output(&alice, &chat, "printenv MY_SECRET CHAT_ONLY; echo END-$((1+1))").await;
    assert!(output.contains("terminal-secret-0123456789"), "{output}");
    assert!(output.contains("terminal-chat-value"), "{output}");
    // Never the server's model key.
    let output =
        terminal_output(&alice, &chat, "echo key=[$ANTHROPIC_API_KEY]; echo END-$((1+1))").await;
    assert!(output.contains("key=[]"), "{output}");

    let theirs = bob.new_chat().await;
    let output =
        terminal_output(&bob, &theirs, "echo secret=[$MY_SECRET]; echo END-$((1+1))").await;
    assert!(output.contains("secret=[]"), "{output}");
}
