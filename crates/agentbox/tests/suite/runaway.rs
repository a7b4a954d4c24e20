//! Runaway processes: the agent starts processes without end, or its CLI dies under running
//! commands, or the sandbox is left unusable; the chat goes on, and a restart of the
//! sandbox brings back what its processes broke. Real sandboxes, the real CLI, the mock
//! model; the process limit is lowered so the tests reach it quickly.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use super::containment::{bypass_chat, run_in_sandbox};
use super::support::{Api, PATIENCE, SseEvent, TestServer, kinds};

/// The sandbox's user id on the host (the server runs as root in tests).
fn sandbox_uid(server: &TestServer, chat: &str) -> u32 {
    let path = server.data_dir.join("sandboxes").join(chat).join("uid");
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// Host pids of the sandbox's processes whose program (`argv[0]`) is `program` and whose
/// command line contains `needle`.
fn processes(uid: u32, program: &str, needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let owner = std::fs::metadata(entry.path()).ok()?.uid();
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
            let ours = cmdline.split('\0').next() == Some(program) && cmdline.contains(needle);
            (owner == uid && ours).then_some(pid)
        })
        .collect()
}

/// Wait until `count` of the sandbox's processes match (see [`processes`]); their pids.
async fn wait_for_processes(uid: u32, program: &str, needle: &str, count: usize) -> Vec<i32> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let found = processes(uid, program, needle);
        if found.len() == count {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{needle}: {} processes, not {count}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const CLI: &str = "/opt/agentbox/bin/claude";

fn find<'a>(events: &'a [SseEvent], subtype: &str) -> Option<&'a SseEvent> {
    events.iter().find(|e| e.event == "system" && e.data["subtype"] == subtype)
}

/// The bomb: the CLI keeps its headroom, the bomb fails inside its own tool call
/// (bash says the fork was refused), the turn completes and says the process limit was
/// hit, and once the bomb's processes have ended on their own the chat's commands run
/// again, in the same CLI, without a restart.
#[tokio::test]
async fn a_process_bomb_fails_inside_its_call_and_the_chat_goes_on() {
    let server = TestServer::start_with(|config| config.sandbox.limits.processes = 200).await;
    let api = server.user("bomb@example.com").await;
    let chat = bypass_chat(&api).await;
    let bomb = "n=0; for i in $(seq 1 300); do (sleep 20 &); done; echo the loop ended";
    let (output, events) = run_in_sandbox(&api, &chat, bomb).await;
    let last = events.last().unwrap();
    assert_eq!(last.data["status"], "completed", "{output}\n{:?}", kinds(&events));
    assert!(output.contains("fork: retry: Resource temporarily unavailable"), "{output}");
    let notice = find(&events, "sandbox_limit").unwrap_or_else(|| panic!("{:?}", kinds(&events)));
    assert_eq!(notice.data["limit"], "processes");
    assert!(notice.data["text"].as_str().unwrap().contains("process limit"), "{}", notice.data);
    assert!(!events.iter().any(|e| e.event == "error"), "{:?}", kinds(&events));

    // The bomb's sleeps end by themselves; the chat needs nothing else to go on.
    let uid = sandbox_uid(&server, &chat);
    let cli = processes(uid, CLI, "");
    assert_eq!(cli.len(), 1, "one CLI, alive and idle");
    wait_for_processes(uid, "sleep", "20", 0).await;
    let (output, events) = run_in_sandbox(&api, &chat, "echo next-turn-ok").await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    assert_eq!(output.trim(), "next-turn-ok");
    assert_eq!(processes(uid, CLI, ""), cli, "the same CLI served the turn");
}

/// When the CLI dies under a running command, the command's processes die with it, however
/// they were started (same group, own session, orphaned); a server that an earlier,
/// finished call started in the background keeps running.
#[tokio::test]
async fn the_foreground_dies_with_the_cli_and_the_background_stays() {
    let server = TestServer::start().await;
    let api = server.user("orphans@example.com").await;
    let chat = bypass_chat(&api).await;
    let background = "nohup python3 -c 'import time; time.sleep(1001)' >/dev/null 2>&1 & echo up";
    let (output, _) = run_in_sandbox(&api, &chat, background).await;
    assert_eq!(output.trim(), "up");
    let uid = sandbox_uid(&server, &chat);
    wait_for_processes(uid, "python3", "sleep(1001)", 1).await;

    let sleeper = |n: u32| format!("python3 -c 'import time; time.sleep({n})'");
    let foreground = format!(
        "{} & setsid {} & ({} &); {}",
        sleeper(1002),
        sleeper(1003),
        sleeper(1004),
        sleeper(1005)
    );
    let message = api.send(&chat, &format!("[[bash:{foreground}]] run this")).await;
    let mut stream = api.stream(&chat, None).await;
    stream.until("tool_started").await;
    for n in 1002..=1005 {
        wait_for_processes(uid, "python3", &format!("sleep({n})"), 1).await;
    }
    let cli = wait_for_processes(uid, CLI, "", 1).await;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cli[0]), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let events = stream.until_completed(&message).await;
    assert_eq!(events.last().unwrap().data["status"], "failed", "{:?}", kinds(&events));
    for n in 1002..=1005 {
        wait_for_processes(uid, "python3", &format!("sleep({n})"), 0).await;
    }
    assert_eq!(
        processes(uid, "python3", "sleep(1001)").len(),
        1,
        "the background server was killed"
    );
    // The chat goes on in a new CLI, and the server is still there for it.
    let (output, _) = run_in_sandbox(&api, &chat, "pgrep -c -f 'sleep[(]1001'").await;
    assert_eq!(output.trim(), "1");
}

/// A fill-up script for the sandbox: forks until the commands' limit refuses, writes
/// `full` to `full.txt`, and holds every process.
const FILL: &str = "import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
        n += 1
except OSError as e:
    open('full.txt', 'w').write('full after %d: %s' % (n, e))
    time.sleep(1000)
";

async fn restart(api: &Api, chat: &str) -> (StatusCode, serde_json::Value) {
    api.call(Method::POST, &format!("/api/v1/chats/{chat}/sandbox/restart"), None).await
}

/// A sandbox whose processes hold the commands' limit for good: every Bash call fails (and
/// says why), until the user restarts the sandbox; then commands run again, the files are
/// still there, and the model sees the whole conversation.
#[tokio::test]
async fn a_restart_brings_back_a_sandbox_its_processes_made_unusable() {
    let server = TestServer::start_with(|config| config.sandbox.limits.processes = 200).await;
    let api = server.user("stuck@example.com").await;
    let chat = bypass_chat(&api).await;
    let (status, _) = api
        .request(Method::PUT, &format!("/api/v1/chats/{chat}/files/content?path=fill.py"))
        .body(FILL)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let (output, _) = run_in_sandbox(
        &api,
        &chat,
        "echo remember-me > notes.txt; nohup python3 fill.py >/dev/null 2>&1 & echo filling",
    )
    .await;
    assert_eq!(output.trim(), "filling");
    let full = server.sandbox_home(&chat).join("full.txt");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !full.exists() {
        assert!(tokio::time::Instant::now() < deadline, "the sandbox never filled up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every command now fails inside its call, saying why; the CLI itself goes on.
    let (output, events) = run_in_sandbox(&api, &chat, "echo should-not-run").await;
    assert!(output.contains(agentbox_sandbox::local::shell::PROCESS_LIMIT_NOTICE), "{output}");
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    assert!(find(&events, "sandbox_limit").is_some(), "{:?}", kinds(&events));

    let (status, body) = restart(&api, &chat).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
    assert_eq!(
        (body["provider"].as_str(), body["isolated"].as_bool()),
        (Some("local"), Some(true))
    );
    assert!(processes(sandbox_uid(&server, &chat), "python3", "fill.py").is_empty());

    server.mock.clear_requests();
    let (output, events) = run_in_sandbox(&api, &chat, "cat notes.txt").await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    assert_eq!(output.trim(), "remember-me");
    assert!(find(&events, "session_reset").is_none(), "{:?}", kinds(&events));
    let history = server.mock.message_requests().pop().unwrap().user_texts();
    for earlier in ["echo remember-me", "echo should-not-run", "cat notes.txt"] {
        assert!(history.iter().any(|text| text.contains(earlier)), "{earlier}: {history:?}");
    }
}

/// A restart during a turn interrupts the turn first: it ends `interrupted` with a notice,
/// and the restart answers once the sandbox runs again. Errors come in the API's shape.
#[tokio::test]
async fn a_restart_interrupts_a_running_turn_and_refuses_other_users() {
    let server = TestServer::start().await;
    let api = server.user("restart@example.com").await;
    let other = server.user("not-yours@example.com").await;
    let chat = bypass_chat(&api).await;
    let message = api.send(&chat, "[[sleep:600]] wait").await;
    let mut stream = api.stream(&chat, None).await;
    stream.until("tool_started").await;

    let (status, body) = restart(&other, &chat).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("chat_not_found"))
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = restart(&api, &unknown.to_string()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("chat_not_found"))
    );
    let (status, body) = restart(&api, "not-a-uuid").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("chat_not_found"))
    );
    let (status, body) = restart(&server.api(), &chat).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );

    let (status, body) = restart(&api, &chat).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("running")), "{body}");
    let events = stream.until_completed(&message).await;
    assert_eq!(events.last().unwrap().data["status"], "interrupted", "{:?}", kinds(&events));
    assert!(find(&events, "sandbox_restarted").is_some(), "{:?}", kinds(&events));
    let uid = sandbox_uid(&server, &chat);
    assert!(processes(uid, "python3", "time.sleep(600)").is_empty());
    // The chat takes its next turn at once.
    let (output, _) = run_in_sandbox(&api, &chat, "echo after-restart").await;
    assert_eq!(output.trim(), "after-restart");
}
