//! A hostile workspace: the agent, through its own Bash tool in a real sandbox, fills its
//! workspace with what is hard on anything that walks or opens files — a 10,000-level
//! directory chain, 100,000 files in one directory, a FIFO, a Unix socket, names of 255 bytes
//! and of invalid UTF-8, symlink loops, a hard link — and then every workspace operation is
//! called on it: list, stat, read, write, move, delete, zip, a terminal's `ls -R`, the
//! checkpoint after a turn, restore and fork. Each must answer with a result or a 4xx in the
//! API's JSON error shape; the server (a separate process, so that a crash of it is seen as
//! one) never panics (its log is read), `/health` stays healthy, and another user's chat
//! keeps working throughout.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::support::{Api, PATIENCE, SseEvent, TestServerless, cli_path, kinds, unique_uid_base};

/// Made by the agent (uploaded, then run by its Bash tool). Prints `HOSTILE-READY` and what
/// it could not make.
const MAKE_HOSTILE: &str = r#"
import os, socket
os.chdir("/home/user")
def chain(name, levels):
    fd = os.open(".", os.O_RDONLY)
    os.mkdir(name)
    d = os.open(name, os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    for _ in range(levels - 1):
        os.mkdir("d", dir_fd=d)
        nd = os.open("d", os.O_RDONLY, dir_fd=d)
        os.close(d)
        d = nd
    os.close(d)
chain("deep", 10000)
chain("deep2", 10000)
os.mkdir("many")
for i in range(100000):
    os.close(os.open("many/f%06d" % i, os.O_CREAT | os.O_WRONLY, 0o644))
os.mkfifo("fifo")
s = socket.socket(socket.AF_UNIX); s.bind("sock"); s.close()
open("n" * 255, "w").write("long name")
open(b"bad-\xff\xfe.txt", "w").write("not utf-8")
os.symlink("loop-b", "loop-a"); os.symlink("loop-a", "loop-b"); os.symlink("self", "self")
os.symlink(".", "dot"); os.symlink("fifo", "fifo-link")
os.link("owned.txt", "hard")
try:
    with open("sparse", "w") as f: f.truncate(1 << 40)
    print("SPARSE-MADE")
except OSError as e:
    print("SPARSE-REFUSED", e)
print("HOSTILE-READY")
"#;

/// A 10,000-level chain made by the agent in one line of Python.
const CHAIN: &str = "import os\nfor _ in range(10000): os.mkdir('d'); os.chdir('d')";

/// `agentbox serve` as its own process with `--sandbox-disk-mb`, keeping its log.
async fn spawn_logged(data_dir: &Path, mock: &MockLlm) -> (tokio::process::Child, String, Log) {
    use tokio::io::AsyncBufReadExt;
    #[allow(clippy::disallowed_methods)] // The test starts the real binary, not agent code.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbox"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(["--sandbox-disk-mb", "1024"])
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("ANTHROPIC_BASE_URL", mock.base_url())
        .env("AGENTBOX_CLAUDE_PATH", cli_path())
        .env("AGENTBOX_CLI_MAX_RETRIES", "0")
        .env("AGENTBOX_SANDBOX_UID_BASE", unique_uid_base().to_string())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Log::default();
    let base = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push(&line);
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("the server exited before listening:\n{}", log.text());
    })
    .await
    .expect("the server did not start");
    let keep = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            keep.push(&line);
        }
    });
    (child, base, log)
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// The response of `request`, which must start within [`PATIENCE`], never pause longer than
/// that, and be a success or a 4xx with the API's JSON error body. Returns the status, the headers and the body.
async fn answered(
    request: reqwest::RequestBuilder,
    what: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut response = tokio::time::timeout(PATIENCE, request.send())
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let headers = response.headers().clone();
    // A hang is a body that stops coming, not one that takes long: a zip of 100,000 files
    // streams for as long as the machine's load makes it, so each piece gets the patience.
    let mut body = Vec::new();
    while let Some(piece) = tokio::time::timeout(PATIENCE, response.chunk())
        .await
        .unwrap_or_else(|_| panic!("{what}: the body stopped coming"))
        .unwrap_or_else(|e| panic!("{what}: the body broke off: {e}"))
    {
        body.extend_from_slice(&piece);
    }
    assert!(status.as_u16() < 500, "{what}: {status} {}", String::from_utf8_lossy(&body));
    if status.is_client_error() {
        assert_eq!(headers["content-type"], "application/json", "{what}: {status}");
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            error["error"]["code"].is_string() && error["error"]["message"].is_string(),
            "{what}: {error}"
        );
    }
    (status, headers, body)
}

/// The error code of a 4xx answer (`None` for a success).
fn code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?["error"]["code"].as_str().map(str::to_owned)
}

async fn assert_healthy(api: &Api) {
    let (status, health) = api.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["database"]["status"], "ok", "{health}");
}

async fn turn(api: &Api, chat: &str, prompt: &str) -> Vec<SseEvent> {
    let message = api.send(chat, prompt).await;
    api.turn_events(chat, &message)
        .await
        .into_iter()
        .filter(|e| e.data["message_id"] == message)
        .collect()
}

fn tool_output(events: &[SseEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e.event.as_str() {
            "tool_completed" => e.data["tool"]["result"].as_str().map(str::to_owned),
            "tool_failed" => e.data["tool"]["error"].as_str().map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

fn status_of(events: &[SseEvent]) -> String {
    events.last().unwrap().data["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_hostile_workspace_gets_answers_and_harms_nobody() {
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, base, log) = spawn_logged(&tmp.path().join("data"), &mock).await;
    let host =
        TestServerless(Api { base: base.clone(), http: reqwest::Client::new(), token: None });
    let api = host.user("hostile@example.com").await;
    let bystander = host.user("bystander@example.com").await;

    // Another user's chat turns over the whole time.
    let quiet = bystander.new_chat().await;
    let stop = Arc::new(AtomicBool::new(false));
    let bystander_turns = Arc::new(AtomicUsize::new(0));
    let other = tokio::spawn({
        let (stop, done, bystander, quiet) =
            (stop.clone(), bystander_turns.clone(), bystander.clone(), quiet.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let n = done.load(Ordering::Relaxed);
                let events =
                    turn(&bystander, &quiet, &format!("[[bash:echo bystander-{n}]] go")).await;
                assert_eq!(status_of(&events), "completed", "{:?}", kinds(&events));
                assert!(tool_output(&events).contains(&format!("bystander-{n}")));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let (status, chat) = api
        .call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "bypassPermissions"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    let chat = chat["id"].as_str().unwrap().to_owned();
    let files = format!("/api/v1/chats/{chat}/files");
    // A turn before the hostility: its checkpoint is the one restore and fork go back to.
    let first = turn(&api, &chat, "[[write:owned.txt:mine]] keep this").await;
    assert_eq!(status_of(&first), "completed", "{:?}", kinds(&first));
    let first_message = first.last().unwrap().data["message_id"].as_str().unwrap().to_owned();

    let (status, _, _) = answered(
        api.request(Method::PUT, &format!("{files}/content?path=make.py")).body(MAKE_HOSTILE),
        "upload",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let made = turn(&api, &chat, "[[bash:python3 make.py]] make trouble").await;
    let output = tool_output(&made);
    assert!(output.contains("HOSTILE-READY"), "{output}");
    // The per-file limit stops a sparse file far bigger than the quota inside the sandbox...
    assert!(output.contains("SPARSE-REFUSED"), "{output}");
    assert_eq!(status_of(&made), "completed", "{:?}", kinds(&made));
    // ...and the checkpoint after the turn is refused for this workspace, saying why.
    let refused = made
        .iter()
        .find(|e| e.event == "system" && e.data["subtype"] == "checkpoint_failed")
        .unwrap_or_else(|| panic!("no checkpoint_failed notice: {:?}", kinds(&made)));
    assert!(refused.data["text"].as_str().unwrap().contains("1024"), "{}", refused.data);
    // ...so the test makes one on the host, as the workspace's owner would see it.
    let home = tmp.path().join("data/sandboxes").join(&chat).join("home");
    make_sparse(&home.join("sparse"), 1 << 40);
    assert_healthy(&api).await;

    // Listing.
    let (status, _, body) =
        answered(api.request(Method::GET, &format!("{files}?path=")), "list home").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<String> = serde_json::from_slice::<Vec<Value>>(&body)
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("bad-")), "{names:?}");
    assert!(names.contains(&"n".repeat(255)), "{names:?}");
    let (status, headers, body) =
        answered(api.request(Method::GET, &format!("{files}?path=many")), "list many").await;
    assert_eq!(status, StatusCode::OK);
    let listed = serde_json::from_slice::<Vec<Value>>(&body).unwrap().len();
    assert_eq!(listed, 10_000);
    assert_eq!(headers["x-agentbox-total-entries"], "100000");
    for path in ["deep", "dot", "loop-a", "self", "fifo", "sock", &"deep/d".repeat(2000)] {
        answered(
            api.request(Method::GET, &format!("{files}?path={path}")),
            &format!("list {path}"),
        )
        .await;
    }

    // Stat and read: each answers at once, special files are refused.
    for path in [
        "fifo",
        "sock",
        "loop-a",
        "self",
        "dot",
        "hard",
        "sparse",
        &"n".repeat(255),
        &"deep/d".repeat(3000),
    ] {
        answered(
            api.request(Method::GET, &format!("{files}/stat?path={path}")),
            &format!("stat {path}"),
        )
        .await;
    }
    for (path, expected) in [
        ("fifo", "not_a_regular_file"),
        ("sock", "not_a_regular_file"),
        ("fifo-link", "not_a_regular_file"),
        ("loop-a", "invalid_path"),
        ("sparse", "file_too_large"),
    ] {
        let (status, _, body) = answered(
            api.request(Method::GET, &format!("{files}/content?path={path}")),
            &format!("read {path}"),
        )
        .await;
        assert!(status.is_client_error(), "read {path}: {status}");
        assert_eq!(code(&body).as_deref(), Some(expected), "read {path}");
    }
    let (status, _, body) =
        answered(api.request(Method::GET, &format!("{files}/content?path=hard")), "read hard")
            .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"mine"[..]));

    // Writing through a link to the FIFO is refused at once; long names and paths are 4xx.
    let (status, _, body) = answered(
        api.request(Method::PUT, &format!("{files}/content?path=fifo-link")).body("x"),
        "write fifo-link",
    )
    .await;
    assert_eq!(
        (status.is_client_error(), code(&body).as_deref()),
        (true, Some("not_a_regular_file"))
    );
    for path in ["n".repeat(300), "deep/d".repeat(1000)] {
        let (status, _, _) = answered(
            api.request(Method::PUT, &format!("{files}/content?path={path}")).body("x"),
            "write long",
        )
        .await;
        assert!(status.is_client_error(), "{status}");
    }

    // Moves: into itself is refused, a big directory moves and back.
    let (status, _, body) = answered(
        api.request(Method::POST, &format!("{files}/move"))
            .json(&json!({"from": "deep", "to": "deep/d/x"})),
        "move into itself",
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(code(&body).as_deref(), Some("invalid_move"));
    for (from, to) in [("many", "many2"), ("many2", "many")] {
        let (status, _, _) = answered(
            api.request(Method::POST, &format!("{files}/move"))
                .json(&json!({"from": from, "to": to})),
            "move many",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    // Zips: the whole workspace is refused before a byte is sent; a big directory streams.
    let (status, _, body) =
        answered(api.request(Method::GET, &format!("{files}/zip?path=")), "zip home").await;
    assert_eq!(
        (status, code(&body).as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("workspace_too_deep"))
    );
    let (status, _, body) =
        answered(api.request(Method::GET, &format!("{files}/zip?path=many")), "zip many").await;
    assert_eq!(status, StatusCode::OK);
    let archive = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    assert_eq!(archive.len(), 100_000);

    // The sandbox's own view: a terminal walks the whole tree.
    terminal_ls(&api, &chat).await;
    assert_healthy(&api).await;

    // Deleting a chain of any depth works (it is how a user recovers).
    let (status, _, _) =
        answered(api.request(Method::DELETE, &format!("{files}?path=deep2")), "delete deep2").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for path in ["sock", "self", "loop-b"] {
        let (status, _, _) =
            answered(api.request(Method::DELETE, &format!("{files}?path={path}")), "delete").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    // Turns go on in this chat too.
    let events = turn(&api, &chat, "[[bash:echo still-here]] and now").await;
    assert_eq!(status_of(&events), "completed", "{:?}", kinds(&events));
    assert!(tool_output(&events).contains("still-here"));

    // A fork from the first turn has none of it.
    let (status, fork) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/fork"),
            Some(json!({"message_id": first_message})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fork}");
    let fork = fork["id"].as_str().unwrap();
    let (status, listing) = api.get(&format!("/api/v1/chats/{fork}/files?path=")).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> =
        listing.as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(
        names.contains(&"owned.txt") && !names.contains(&"deep") && !names.contains(&"many"),
        "{names:?}"
    );

    // A restore to the first turn makes the workspace what it was, the chain included.
    let (status, checkpoints) = api.get(&format!("/api/v1/chats/{chat}/checkpoints")).await;
    assert_eq!(status, StatusCode::OK, "{checkpoints}");
    let target = checkpoints
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["message_id"] == first_message.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, restored) = api
        .call(Method::POST, &format!("/api/v1/chats/{chat}/checkpoints/{target}/restore"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    // The present could not be checkpointed, so there is no undo point, and the answer says why.
    assert!(restored["undo_checkpoint_id"].is_null(), "{restored}");
    assert!(restored["undo_unavailable"].as_str().unwrap().contains("1024"), "{restored}");
    let mut left: Vec<String> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".claude"))
        .collect();
    left.sort();
    assert_eq!(left, ["owned.txt"], "{left:?}");

    // A chat whose workspace holds a chain deeper than any walk is deleted like any other.
    let events = turn(&api, &chat, &format!("[[bash:python3 -c \"{CHAIN}\"]] again")).await;
    assert_eq!(status_of(&events), "completed", "{:?}", kinds(&events));
    let (status, _) = api.call(Method::DELETE, &format!("/api/v1/chats/{chat}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!home.exists());

    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(PATIENCE, other).await.expect("the bystander hung").unwrap();
    assert!(bystander_turns.load(Ordering::Relaxed) >= 1);
    assert_healthy(&api).await;
    assert!(child.try_wait().unwrap().is_none(), "the server exited:\n{}", log.text());
    let text = log.text();
    assert!(!text.contains("panicked") && !text.contains("overflow"), "{text}");
}

fn make_sparse(path: &Path, size: u64) {
    let file = std::fs::File::create(path).unwrap();
    file.set_len(size).unwrap();
    let owner = std::fs::metadata(path.parent().unwrap()).unwrap();
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).unwrap();
}

async fn terminal_ls(api: &Api, chat: &str) {
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
    socket
        .send(Message::Binary(b"ls -R >/dev/null 2>&1; echo LS-DONE-$((1+1))\n".to_vec().into()))
        .await
        .unwrap();
    let mut output = String::new();
    while !output.contains("LS-DONE-2") {
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
}
