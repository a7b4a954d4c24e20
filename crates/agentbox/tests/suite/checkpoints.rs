//! Checkpoints end to end: one after every turn, restores that give back the exact tree and
//! rewind the conversation (the model no longer sees undone turns), forks that go their own
//! way, retention, and a kill in the middle of a checkpoint.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, Db, SseEvent, TestServer, kinds};

/// Every entry of a workspace, but the CLI's own state (`.claude`, `.claude.json`), which
/// the CLI may touch after a checkpoint: path → (kind, mode, content or link target).
fn tree(home: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (char, u32, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if relative == ".claude"
                || relative == ".claude.json"
                || relative.starts_with(".claude.json.")
            {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(
                    relative,
                    (
                        'l',
                        0,
                        std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes(),
                    ),
                );
            } else if meta.is_dir() {
                out.insert(relative, ('d', mode, Vec::new()));
                walk(root, &path, out);
            } else {
                out.insert(relative, ('f', mode, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(home, home, &mut out);
    out
}

fn digest(tree: &BTreeMap<String, (char, u32, Vec<u8>)>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tree.hash(&mut hasher);
    hasher.finish()
}

/// Run a turn whose Bash call is `command`; returns the assistant message id and its events.
async fn turn(api: &Api, chat: &str, command: &str, last: &mut i64) -> (String, Vec<SseEvent>) {
    let message = api.send(chat, &format!("[[bash:{command}]] step")).await;
    let events = api.stream(chat, Some(*last)).await.until_completed(&message).await;
    *last = events.last().unwrap().id;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    (message, events)
}

/// Fork `chat` at the turn `message`; returns the new chat.
async fn fork(api: &Api, chat: &str, message: &str) -> Value {
    let (status, fork) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/fork"),
            Some(json!({"message_id": message})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fork}");
    fork
}

async fn checkpoint_of(api: &Api, chat: &str, message: &str) -> String {
    let messages = api.messages(chat).await;
    let found = messages.iter().find(|m| m["id"] == message).expect("the message is listed");
    found["checkpoint_id"].as_str().unwrap_or_else(|| panic!("no checkpoint on {found}")).to_owned()
}

async fn restore(api: &Api, chat: &str, checkpoint: &str) -> Value {
    let (status, body) = api
        .call(Method::POST, &format!("/api/v1/chats/{chat}/checkpoints/{checkpoint}/restore"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_checkpoints_numbers_leave_out_the_clis_own_files() {
    let server = TestServer::start().await;
    let api = server.user("counts@example.com").await;
    let chat = api.new_chat().await;
    let mut last = 0;
    let (first, _) = turn(&api, &chat, "printf one > one.txt", &mut last).await;
    let (second, _) = turn(&api, &chat, "printf two > one.txt", &mut last).await;
    // The CLI wrote its transcript and settings in the workspace during both turns ...
    let home = server.sandbox_home(&chat);
    assert!(home.join(".claude").is_dir() && home.join(".claude.json").is_file());
    // ... and each checkpoint counts only what the agent changed: one file added, then
    // the same file changed.
    let (status, list) = api.get(&format!("/api/v1/chats/{chat}/checkpoints")).await;
    assert_eq!(status, StatusCode::OK);
    let counts = |message: &str| {
        let id = list.as_array().unwrap().iter().find(|c| c["message_id"] == message).unwrap();
        (id["files_added"].clone(), id["files_modified"].clone(), id["files_deleted"].clone())
    };
    assert_eq!(counts(&first), (json!(1), json!(0), json!(0)), "{list}");
    assert_eq!(counts(&second), (json!(0), json!(1), json!(0)), "{list}");
}

#[tokio::test]
async fn restoring_each_checkpoint_gives_back_its_exact_tree() {
    let server = TestServer::start().await;
    let api = server.user("trees@example.com").await;
    let chat = api.new_chat().await;
    let home = server.sandbox_home(&chat);
    let mut last = 0;
    let steps = [
        // Text, binary and large files, nested and empty directories, modes, a symlink (and
        // one pointing outside, kept as a link), a cache that checkpoints skip.
        "printf 'v1' > notes.txt && head -c 100000 /dev/urandom > blob.bin && head -c 20000000 /dev/urandom > large.bin \
         && mkdir -p src/deep empty/deeper .cache && printf 'fn main(){}' > src/deep/main.rs && printf '#!/bin/sh' > run.sh \
         && chmod 755 run.sh && ln -s src/deep/main.rs link && ln -s /etc/passwd outside && printf cached > .cache/c",
        // Edit, delete, rename, chmod, retarget a link, add.
        "printf 'v2' > notes.txt && rm blob.bin && mv src code && chmod 600 notes.txt && ln -sfn notes.txt link \
         && printf new > added.txt",
        // Delete the large file, replace a link with a file, remove an empty directory.
        "rm large.bin && rm link && printf 'was a link' > link && rmdir empty/deeper && printf again > empty/x",
    ];
    let mut recorded = Vec::new();
    for step in steps {
        let (message, _) = turn(&api, &chat, step, &mut last).await;
        let checkpoint = checkpoint_of(&api, &chat, &message).await;
        recorded.push((checkpoint, tree(&home)));
    }
    assert!(recorded[0].1.contains_key("large.bin") && !recorded[2].1.contains_key("large.bin"));
    assert_eq!(recorded[1].1["notes.txt"].1, 0o600);

    // The list tells what each checkpoint changed and added.
    let (status, list) = api.get(&format!("/api/v1/chats/{chat}/checkpoints")).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let first = list.iter().find(|c| c["id"] == recorded[0].0.as_str()).unwrap();
    assert!(first["bytes_added"].as_u64().unwrap() >= 20_000_000, "{first}");
    let third = list.iter().find(|c| c["id"] == recorded[2].0.as_str()).unwrap();
    assert!(
        third["files_deleted"].as_u64().unwrap() >= 1
            && third["bytes_added"].as_u64().unwrap() < 1_000_000,
        "{third}"
    );

    // Every checkpoint restores byte for byte, in any order; later files disappear.
    for index in [0usize, 2, 1, 0] {
        let (checkpoint, expected) = &recorded[index];
        let before = tree(&home);
        let result = restore(&api, &chat, checkpoint).await;
        let mut got = tree(&home);
        // The cache is excluded: the restore leaves it as it was.
        got.retain(|path, _| !path.starts_with(".cache"));
        let mut want = expected.clone();
        want.retain(|path, _| !path.starts_with(".cache"));
        assert_eq!(digest(&got), digest(&want), "checkpoint {index} did not come back exactly");
        assert_eq!(got, want);
        // The restore can itself be undone.
        let undo = result["undo_checkpoint_id"].as_str().unwrap().to_owned();
        restore(&api, &chat, &undo).await;
        let mut back = tree(&home);
        back.retain(|path, _| !path.starts_with(".cache"));
        let mut before = before;
        before.retain(|path, _| !path.starts_with(".cache"));
        assert_eq!(back, before, "undoing the restore of {index} did not give back the tree");
        restore(&api, &chat, checkpoint).await;
    }
    // Files the agent writes after a restore are the agent's: it still owns them.
    let (_, events) =
        turn(&api, &chat, "printf mine > notes.txt && ls -ln notes.txt", &mut last).await;
    let output =
        events.iter().find(|e| e.event == "tool_completed").unwrap().data["tool"]["result"]
            .to_string();
    assert!(output.contains(" 1000 1000 "), "{output}");
}

#[tokio::test]
async fn a_restore_rewinds_the_conversation_the_model_sees() {
    a_restore_rewinds_the_conversation_the_model_sees_on(Db::Sqlite).await;
}

#[tokio::test]
async fn a_restore_rewinds_the_conversation_the_model_sees_on_postgres() {
    a_restore_rewinds_the_conversation_the_model_sees_on(Db::Postgres).await;
}

async fn a_restore_rewinds_the_conversation_the_model_sees_on(db: Db) {
    let server = TestServer::start_on(db, "a_restore_rewinds_the_co").await;
    let api = server.user("rewind@example.com").await;
    let chat = api.new_chat().await;
    let mut last = 0;
    let mut ids = Vec::new();
    for prompt in [
        "[[text:reply alpha]] first prompt alpha",
        "[[text:reply beta]] second prompt beta",
        "[[text:reply gamma]] third prompt gamma",
    ] {
        let message = api.send(&chat, prompt).await;
        let events = api.stream(&chat, Some(last)).await.until_completed(&message).await;
        last = events.last().unwrap().id;
        ids.push(message);
    }
    let first_checkpoint = checkpoint_of(&api, &chat, &ids[0]).await;
    let result = restore(&api, &chat, &first_checkpoint).await;
    assert_eq!(result["hidden_message_ids"].as_array().unwrap().len(), 4, "{result}");
    let messages = api.messages(&chat).await;
    assert_eq!(messages.len(), 2, "later messages are not shown");
    assert_eq!(messages[1]["id"], ids[0]);
    // Live clients are told.
    let rewind = api.stream(&chat, Some(last)).await.next().await;
    assert_eq!(
        (rewind.event.as_str(), rewind.data["subtype"].as_str()),
        ("system", Some("rewind"))
    );
    last = rewind.id;

    let next = api.send(&chat, "[[text:reply delta]] after the restore").await;
    let events = api.stream(&chat, Some(last)).await.until_completed(&next).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    let history = server.mock.message_requests().pop().unwrap().user_texts();
    assert!(history.iter().any(|t| t.contains("first prompt alpha")), "{history:?}");
    assert!(history.iter().any(|t| t.contains("after the restore")));
    assert!(
        !history
            .iter()
            .any(|t| t.contains("second prompt beta") || t.contains("third prompt gamma")),
        "undone turns reached the model: {history:?}"
    );

    // Undoing the restore brings the later turns back (and hides the one after the restore).
    let undo = result["undo_checkpoint_id"].as_str().unwrap();
    restore(&api, &chat, undo).await;
    let shown: Vec<Value> = api.messages(&chat).await.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(shown.len(), 6);
    assert_eq!(shown[5], ids[2]);
}

#[tokio::test]
async fn a_fork_starts_from_a_turn_and_goes_its_own_way() {
    let server = TestServer::start().await;
    let api = server.user("fork@example.com").await;
    let chat = api.new_chat().await;
    let mut last = 0;
    let (first, _) = turn(&api, &chat, "printf one > a.txt", &mut last).await;
    turn(&api, &chat, "printf two > a.txt", &mut last).await;

    let fork = fork(&api, &chat, &first).await;
    let fork_id = fork["id"].as_str().unwrap().to_owned();
    assert!(fork["title"].as_str().unwrap().ends_with("(fork)"));
    let fork_home = server.sandbox_home(&fork_id);
    assert_eq!(std::fs::read_to_string(fork_home.join("a.txt")).unwrap(), "one");
    assert_eq!(std::fs::read_to_string(server.sandbox_home(&chat).join("a.txt")).unwrap(), "two");
    assert_eq!(api.messages(&fork_id).await.len(), 2);

    // Each goes its own way.
    let mut fork_last = 0;
    turn(&api, &fork_id, "printf fork > only-in-fork.txt", &mut fork_last).await;
    turn(&api, &chat, "printf parent > only-in-parent.txt", &mut last).await;
    assert!(!server.sandbox_home(&chat).join("only-in-fork.txt").exists());
    assert!(!fork_home.join("only-in-parent.txt").exists());
    // The fork continues the conversation it was given.
    let message = api.send(&fork_id, "[[text:ok]] remember?").await;
    api.stream(&fork_id, Some(fork_last)).await.until_completed(&message).await;
    let history = server.mock.message_requests().pop().unwrap().user_texts();
    assert!(history.iter().any(|t| t.contains("printf one > a.txt")), "{history:?}");
    assert!(!history.iter().any(|t| t.contains("printf two > a.txt")), "{history:?}");
}

#[tokio::test]
async fn a_fork_after_a_restore_does_not_carry_the_parents_restore() {
    let server = TestServer::start().await;
    let api = server.user("fork-after-restore@example.com").await;
    let chat = api.new_chat().await;
    let mut last = 0;
    let (first, _) = turn(&api, &chat, "printf one > a.txt", &mut last).await;
    turn(&api, &chat, "printf two > a.txt", &mut last).await;
    restore(&api, &chat, &checkpoint_of(&api, &chat, &first).await).await;
    let subtypes = |messages: &[Value]| -> Vec<String> {
        messages
            .iter()
            .flat_map(|m| m["content"].as_array().unwrap().clone())
            .filter_map(|e| e["subtype"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(subtypes(&api.messages(&chat).await).contains(&"rewind".to_owned()));

    let fork = fork(&api, &chat, &first).await;
    let fork_id = fork["id"].as_str().unwrap();
    let copied = api.messages(fork_id).await;
    assert_eq!(copied.len(), 2);
    assert!(!subtypes(&copied).contains(&"rewind".to_owned()), "{copied:?}");
    assert_eq!(std::fs::read_to_string(server.sandbox_home(fork_id).join("a.txt")).unwrap(), "one");
}

#[tokio::test]
async fn restores_and_forks_refuse_what_they_cannot_do() {
    let server = TestServer::start().await;
    let api = server.user("refuse@example.com").await;
    let chat = api.new_chat().await;
    let mut last = 0;
    let (done, _) = turn(&api, &chat, "printf x > x.txt", &mut last).await;
    let checkpoint = checkpoint_of(&api, &chat, &done).await;

    let running = api.send(&chat, "[[sleep:60]] busy").await;
    api.stream(&chat, Some(last)).await.until("tool_started").await;
    let (status, body) = api
        .call(Method::POST, &format!("/api/v1/chats/{chat}/checkpoints/{checkpoint}/restore"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("turn_in_progress"))
    );
    api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/stream"), None).await;
    api.stream(&chat, Some(last)).await.until_completed(&running).await;

    let unknown = uuid::Uuid::new_v4();
    let (status, body) = api
        .call(Method::POST, &format!("/api/v1/chats/{chat}/checkpoints/{unknown}/restore"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("checkpoint_not_found"))
    );
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/fork"),
            Some(json!({"message_id": unknown})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_checkpoint"))
    );
    let (status, _) = api
        .call(Method::POST, &format!("/api/v1/chats/{chat}/fork"), Some(json!({"message": done})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let other = server.user("other@example.com").await;
    let (status, _) = other
        .call(Method::POST, &format!("/api/v1/chats/{chat}/checkpoints/{checkpoint}/restore"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = other.get(&format!("/api/v1/chats/{chat}/checkpoints")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(std::fs::read_to_string(server.sandbox_home(&chat).join("x.txt")).unwrap(), "x");
}

#[tokio::test]
async fn retention_keeps_the_newest_checkpoints_and_collects_the_rest() {
    let server = TestServer::start_with(|config| config.checkpoints.keep_last = Some(2)).await;
    let api = server.user("retain@example.com").await;
    let chat = api.new_chat().await;
    let mut last = 0;
    let mut messages = Vec::new();
    for n in 0..4 {
        // Each turn replaces the file, so each checkpoint holds a different 3 MB.
        let command = format!("rm -f *.bin && head -c 3000000 /dev/urandom > f{n}.bin");
        let (message, _) = turn(&api, &chat, &command, &mut last).await;
        messages.push(message);
    }
    let (_, list) = api.get(&format!("/api/v1/chats/{chat}/checkpoints")).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let listed = api.messages(&chat).await;
    let with_checkpoint: Vec<&Value> =
        listed.iter().filter(|m| m["checkpoint_id"].is_string()).collect();
    assert_eq!(with_checkpoint.len(), 2, "pruned checkpoints are no longer offered on messages");
    // The dropped checkpoints' data is gone: the store holds the two newest files of 3 MB,
    // not four.
    let store = server.data_dir.join("checkpoints").join(&chat);
    let used = dir_size(&store);
    assert!(used < 8_000_000, "the store still holds {used} bytes");
    let newest = checkpoint_of(&api, &chat, &messages[3]).await;
    restore(&api, &chat, &newest).await;
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        total += if meta.is_dir() { dir_size(&entry.path()) } else { meta.len() };
    }
    total
}

#[tokio::test]
async fn a_kill_in_the_middle_of_a_checkpoint_leaves_the_earlier_ones_restorable() {
    super::support::init_logs();
    let mock = mock_llm::MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let uid_base = super::support::unique_uid_base();
    let (mut server, base) = super::support::spawn_server(data.path(), &mock, uid_base).await;
    let api =
        super::support::TestServerless(Api { base, http: reqwest::Client::new(), token: None })
            .user("midway@example.com")
            .await;
    let chat = api.new_chat().await;
    let home = data.path().join("sandboxes").join(&chat).join("home");
    let mut last = 0;
    let (first, _) =
        turn(&api, &chat, "printf kept > kept.txt && mkdir -p d && printf 1 > d/one", &mut last)
            .await;
    let first_checkpoint = checkpoint_of(&api, &chat, &first).await;
    let recorded = tree(&home);

    // A turn that leaves a large new file: its checkpoint takes a while, and the server is
    // killed while it runs (right after the turn's result, before its end is recorded).
    let second = api
        .send(&chat, "[[bash:head -c 400000000 /dev/urandom > big.bin && rm kept.txt]] big")
        .await;
    let mut stream = api.stream(&chat, Some(last)).await;
    stream.until("usage").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();

    let (_restarted, base) = super::support::spawn_server(data.path(), &mock, uid_base).await;
    let api = Api { base, ..api };
    let messages = api.messages(&chat).await;
    let cut = messages.iter().find(|m| m["id"] == second).unwrap();
    assert_eq!(cut["status"], "interrupted", "the kill came after the turn was recorded: {cut}");
    restore(&api, &chat, &first_checkpoint).await;
    assert_eq!(tree(&home), recorded, "an earlier checkpoint did not survive the kill");
}
