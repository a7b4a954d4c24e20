//! A crash of the server: `kill -9` in the middle of a turn, then a restart on the same data.
//! Every event committed before the kill must still be served, the cut-off message must end
//! `interrupted`, nothing of the old turn may keep running, and the chat must go on.

use std::process::Stdio;
use std::time::Duration;

use mock_llm::MockLlm;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::support::{Api, PATIENCE, SseEvent, cli_path, kinds};

/// `agentbox serve` as a separate process; returns it with its base URL.
async fn spawn_server(data_dir: &std::path::Path, mock: &MockLlm) -> (Child, String) {
    #[allow(clippy::disallowed_methods)] // The test starts the real binary, not agent code.
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentbox"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("ANTHROPIC_BASE_URL", mock.base_url())
        .env("AGENTBOX_CLAUDE_PATH", cli_path())
        .env("AGENTBOX_CLI_MAX_RETRIES", "0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server did not start");
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

fn processes_of(data_dir: &std::path::Path) -> Vec<String> {
    let marker = format!("AGENTBOX_SANDBOX={}/", data_dir.join("sandboxes").display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let ours = environ.split(|&b| b == 0).any(|var| var.starts_with(marker.as_bytes()));
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

#[tokio::test]
async fn kill_9_mid_turn_loses_no_committed_event() {
    super::support::init_logs();
    let mock = MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut server, base) = spawn_server(data.path(), &mock).await;
    let anonymous = Api { base, http: reqwest::Client::new(), token: None };
    let api = {
        let server = super::support::TestServerless(anonymous);
        server.user("crash@example.com").await
    };
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[think]] [[sleep:300]] a long job").await;
    let before: Vec<SseEvent> = api.stream(&chat, None).await.until("tool_started").await;
    // Kill only once the tool really runs, so that there is something to orphan.
    let tool_runs = || processes_of(data.path()).iter().any(|p| p.contains("time.sleep(300)"));
    for _ in 0..300 {
        if tool_runs() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tool_runs(), "the turn's tool never started: {:?}", processes_of(data.path()));

    server.start_kill().unwrap();
    server.wait().await.unwrap();

    let (_restarted, base) = spawn_server(data.path(), &mock).await;
    let api = Api { base, ..api };
    // The CLI died with the server; the tool it had started was stopped at the restart.
    let mut leftovers = processes_of(data.path());
    for _ in 0..50 {
        if leftovers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        leftovers = processes_of(data.path());
    }
    assert!(leftovers.is_empty(), "processes of the killed turn still run: {leftovers:?}");

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
