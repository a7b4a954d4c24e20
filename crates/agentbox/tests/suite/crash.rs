//! A crash of the server: `kill -9` in the middle of a turn, then a restart on the same data.
//! Every event committed before the kill must still be served, the cut-off message must end
//! `interrupted`, nothing of the old turn may keep running, and the chat must go on.

use std::time::Duration;

use mock_llm::MockLlm;

use super::support::{Api, Db, SseEvent, kinds, spawn_server_on, unique_uid_base};

/// Processes of a chat's sandbox, found by the variables sandboxes give every process
/// (`AGENTBOX_SANDBOX` on the host provider, `AGENTBOX_SANDBOX_ID` on the local one).
fn processes_of(data_dir: &std::path::Path, chat: &str) -> Vec<String> {
    let host_marker = format!("AGENTBOX_SANDBOX={}/{chat}#", data_dir.join("sandboxes").display());
    let local_marker = format!("AGENTBOX_SANDBOX_ID={chat}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let ours = environ
            .split(|&b| b == 0)
            .any(|var| var.starts_with(host_marker.as_bytes()) || var == local_marker.as_bytes());
        let zombie =
            std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| s.contains(") Z "));
        if ours && !zombie {
            found.push(
                std::fs::read_to_string(entry.path().join("cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " "),
            );
        }
    }
    found
}

/// Wait until the `[[sleep:300]]` tool of a turn is running (it starts a little after the
/// `tool_started` event).
async fn wait_for_sleeping_tool(data_dir: &std::path::Path, chat: &str) {
    let tool_runs = || processes_of(data_dir, chat).iter().any(|p| p.contains("time.sleep(300)"));
    for _ in 0..600 {
        if tool_runs() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the turn's tool never started: {:?}", processes_of(data_dir, chat));
}

/// Every process of the data directory's sandboxes has ended (SIGKILL takes a moment).
async fn assert_gone(data_dir: &std::path::Path, chat: &str) {
    let mut left = processes_of(data_dir, chat);
    for _ in 0..50 {
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes_of(data_dir, chat);
    }
    panic!("sandbox processes still run: {left:?}");
}

#[tokio::test]
async fn kill_9_mid_turn_loses_no_committed_event() {
    kill_9_mid_turn_loses_no_committed_event_on(Db::Sqlite).await;
}

#[tokio::test]
async fn kill_9_mid_turn_loses_no_committed_event_on_postgres() {
    kill_9_mid_turn_loses_no_committed_event_on(Db::Postgres).await;
}

async fn kill_9_mid_turn_loses_no_committed_event_on(db: Db) {
    super::support::init_logs();
    let mock = MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let uid_base = unique_uid_base();
    let database = db.create("kill_9").await;
    let url = database.as_ref().map(|d| d.url.as_str());
    let (mut server, base) = spawn_server_on(data.path(), url, &mock, uid_base).await;
    let anonymous = Api { base, http: reqwest::Client::new(), token: None };
    let api = {
        let server = super::support::TestServerless(anonymous);
        server.user("crash@example.com").await
    };
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[think]] [[sleep:300]] a long job").await;
    let before: Vec<SseEvent> = api.stream(&chat, None).await.until("tool_started").await;
    // Kill only once the tool really runs, so that there is something to orphan.
    wait_for_sleeping_tool(data.path(), &chat).await;

    server.start_kill().unwrap();
    server.wait().await.unwrap();

    let (_restarted, base) = spawn_server_on(data.path(), url, &mock, uid_base).await;
    let api = Api { base, ..api };
    // The CLI died with the server; the tool it had started was stopped at the restart.
    assert_gone(data.path(), &chat).await;

    let after = api.stream(&chat, None).await.until_completed(&message).await;
    assert_eq!(
        before.iter().map(|e| (&e.id, &e.data)).collect::<Vec<_>>(),
        after[..before.len()].iter().map(|e| (&e.id, &e.data)).collect::<Vec<_>>(),
        "events committed before the kill changed or vanished"
    );
    let tail = &after[before.len()..];
    assert_eq!(kinds(tail), ["error", "message_completed"], "{tail:?}");
    assert_eq!(tail[0].data["code"], "server_restarted");
    assert_eq!(tail[1].data["status"], "interrupted");
    let messages = api.messages(&chat).await;
    assert_eq!(messages[1]["status"], "interrupted");

    let next = api.send(&chat, "[[text:up again]] are you there?").await;
    let events =
        api.stream(&chat, Some(after.last().unwrap().id)).await.until_completed(&next).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
}

#[tokio::test]
async fn a_graceful_shutdown_closes_running_turns_as_interrupted() {
    super::support::init_logs();
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = super::support::test_config(&tmp.path().join("data"), &mock);
    let server = agentbox::serve::start(config.clone()).await.unwrap();
    let api = super::support::TestServerless(Api {
        base: format!("http://{}", server.address),
        http: reqwest::Client::new(),
        token: None,
    })
    .user("shutdown@example.com")
    .await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[sleep:300]] long").await;
    let mut stream = api.stream(&chat, None).await;
    stream.until("tool_started").await;
    wait_for_sleeping_tool(&config.data_dir, &chat).await;

    // What SIGTERM does: stop serving, interrupt turns, wait for them to be recorded.
    server.stop().await.unwrap();
    assert_gone(&config.data_dir, &chat).await;

    let server = agentbox::serve::start(config).await.unwrap();
    let api = Api { base: format!("http://{}", server.address), ..api };
    let events = api.stream(&chat, None).await.until_completed(&message).await;
    // A stop interrupts at once, and the turn says why.
    let tail = kinds(&events[events.len() - 3..]);
    assert_eq!(
        tail,
        ["usage", "system/interrupted_by_shutdown", "message_completed"],
        "{:?}",
        kinds(&events)
    );
    assert_eq!(events.last().unwrap().data["status"], "interrupted");
    assert!(
        !kinds(&events).contains(&"error".to_owned()),
        "a clean shutdown is not a crash: {:?}",
        kinds(&events)
    );
    server.stop().await.unwrap();
}
