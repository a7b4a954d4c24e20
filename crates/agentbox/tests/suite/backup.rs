//! `agentbox backup` and `agentbox restore`, the real binary against a serving installation
//! (the real CLI, sandboxes and checkpoints, the mock model): a backup taken while the
//! server runs restores into a new directory on which a server reads every chat, message,
//! file, checkpoint and secret back (and restores a checkpoint); `--db-only` round trips
//! the conversation; a restore refuses a directory that is not empty and a key that is not
//! the backed-up one.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, PATIENCE, TestServer, TestServerless, test_config, unique_uid_base};

/// The binary with `args`, its environment cleared of the settings a developer's shell may
/// hold; (exit status, stdout, stderr).
pub async fn agentbox(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    #[allow(clippy::disallowed_methods)] // The test runs the real binary, not agent code.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbox"));
    command.args(args).kill_on_drop(true).stdin(std::process::Stdio::null());
    for name in ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AGENTBOX_DATA_DIR", "AGENTBOX_CONFIG"]
    {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output =
        tokio::time::timeout(PATIENCE, command.output()).await.expect("the command hung").unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A turn whose Bash call is `command`, run to its end.
async fn turn(api: &Api, chat: &str, command: &str) -> String {
    let message = api.send(chat, &format!("[[bash:{command}]] step")).await;
    let events = api.turn_events(chat, &message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{events:?}");
    message
}

/// What a user sees of an installation: their chats, each chat's messages and checkpoints,
/// and their secrets.
async fn everything(api: &Api) -> Value {
    let (status, chats) = api.get("/api/v1/chats").await;
    assert_eq!(status, StatusCode::OK, "{chats}");
    let mut seen = serde_json::Map::new();
    // Whether a chat's sandbox runs now is the server's state, not the installation's.
    let mut listed = chats.clone();
    for chat in listed.as_array_mut().unwrap() {
        chat.as_object_mut().unwrap().remove("sandbox_status");
    }
    seen.insert("chats".into(), listed);
    for chat in chats.as_array().unwrap() {
        let id = chat["id"].as_str().unwrap();
        let (_, checkpoints) = api.get(&format!("/api/v1/chats/{id}/checkpoints")).await;
        let messages = api.messages(id).await;
        seen.insert(id.to_owned(), json!({"messages": messages, "checkpoints": checkpoints}));
    }
    let (status, secrets) = api.get("/api/v1/secrets").await;
    assert_eq!(status, StatusCode::OK, "{secrets}");
    seen.insert("secrets".into(), secrets);
    Value::Object(seen)
}

async fn file(api: &Api, chat: &str, path: &str) -> String {
    let response = api
        .request(Method::GET, &format!("/api/v1/chats/{chat}/files/content?path={path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

async fn sign_in(base: &str) -> Api {
    let api = Api { base: base.to_owned(), http: reqwest::Client::new(), token: None };
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": "alice@example.com", "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Api { token: Some(body["access_token"].as_str().unwrap().to_owned()), ..api }
}

fn server_home(data_dir: &Path, chat: &str) -> std::path::PathBuf {
    data_dir.join("sandboxes").join(chat).join("home")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_serving_restores_every_chat_file_and_checkpoint() {
    let uid_base = unique_uid_base();
    let server = TestServer::start_with(|config| config.sandbox.uid_base = uid_base).await;
    let alice = TestServerless(server.api()).user("alice@example.com").await;
    let (a, b) = (alice.new_chat().await, alice.new_chat().await);
    let first = turn(&alice, &a, "printf 'first A' > notes.txt").await;
    let links = "mkdir -p d && ln -sf ../notes.txt d/link && ln -s /etc/passwd outside";
    turn(&alice, &a, &format!("printf 'second A' > notes.txt && {links}")).await;
    // A FIFO in a workspace is skipped, never opened (a backup that opened it would hang).
    turn(&alice, &b, "mkdir -p sub && printf 'hello B' > sub/b.txt && mkfifo sub/pipe").await;
    let (status, body) = alice
        .call(Method::PUT, "/api/v1/secrets/MY_TOKEN", Some(json!({"value": "s3cret-value"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = everything(&alice).await;
    let first_checkpoint = alice
        .messages(&a)
        .await
        .iter()
        .find(|m| m["id"] == first)
        .and_then(|m| m["checkpoint_id"].as_str().map(str::to_owned))
        .expect("the first turn has a checkpoint");

    // Both backups while the server runs.
    let out = tempfile::tempdir().unwrap();
    let (full, db_only) = (out.path().join("full.tar"), out.path().join("db.tar"));
    let data = path(&server.data_dir).to_owned();
    let (code, stdout, stderr) =
        agentbox(&["backup", "--to", path(&full), "--data-dir", &data], &[]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("NOT in the backup") && stdout.contains("secret key id"), "{stdout}");
    assert!(stderr.contains("backup: started"), "no progress: {stderr}");
    let (code, stdout, stderr) =
        agentbox(&["backup", "--to", path(&db_only), "--db-only", "--data-dir", &data], &[]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("--db-only"), "{stdout}");
    // The key never travels with the backup.
    let key = std::fs::read_to_string(server.data_dir.join("secret.key")).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "the key is in the backup");
    let (code, _, stderr) =
        agentbox(&["backup", "--to", path(&full), "--data-dir", &data], &[]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("exists already"), "{stderr}");
    let inside = server.data_dir.join("sandboxes").join("backup.tar");
    let (code, _, stderr) =
        agentbox(&["backup", "--to", path(&inside), "--data-dir", &data], &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("write it elsewhere") && !inside.exists(), "{stderr}");

    // Refusals: a directory that is not empty, a key that is not the backed-up one, no key.
    let busy = out.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("something"), "x").unwrap();
    let restore = |dir: &Path| {
        vec![
            "restore".to_owned(),
            "--from".into(),
            path(&full).into(),
            "--data-dir".into(),
            path(dir).into(),
        ]
    };
    let args = restore(&busy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = agentbox(&args, &[("SECRET_KEY", &key)]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("not empty") && stderr.contains("something"), "{stderr}");
    let restored = out.path().join("restored");
    let args = restore(&restored);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = agentbox(&args, &[("SECRET_KEY", &"k".repeat(40))]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("the backup's secrets and tokens are under the key"), "{stderr}");
    let (code, _, stderr) = agentbox(&args, &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("give the installation's secret key"), "{stderr}");
    assert!(!restored.join("agentbox.sqlite").exists(), "a refused restore wrote the database");

    // The restore, with the key given as SECRET_KEY (the server kept it in secret.key).
    let (code, stdout, stderr) = agentbox(&args, &[("SECRET_KEY", &key)]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 users, 2 chats"), "{stdout}");
    assert_eq!(std::fs::read_to_string(restored.join("secret.key")).unwrap(), key);

    // The first server stops (the restored sandboxes belong to the same sandbox users),
    // and one starts on the restored directory.
    let TestServer { _server: original, mock, .. } = server;
    original.stop().await.unwrap();
    let mut config = test_config(&restored, &mock);
    config.sandbox.uid_base = uid_base;
    let second = agentbox::serve::start(config).await.unwrap();
    let api = sign_in(&format!("http://{}", second.address)).await;
    assert_eq!(everything(&api).await, before);
    assert_eq!(file(&api, &a, "notes.txt").await, "second A");
    assert_eq!(file(&api, &a, "d/link").await, "second A");
    assert_eq!(file(&api, &b, "sub/b.txt").await, "hello B");
    // A link out of the workspace comes back as that link, never as the file it names.
    let outside = server_home(&restored, &a).join("outside");
    assert!(std::fs::symlink_metadata(&outside).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&outside).unwrap(), Path::new("/etc/passwd"));
    // Restoring a checkpoint works on the restored files.
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{a}/checkpoints/{first_checkpoint}/restore"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(file(&api, &a, "notes.txt").await, "first A");
    assert!(server_home(&restored, &b).join("sub/b.txt").is_file());
    assert!(!server_home(&restored, &b).join("sub/pipe").exists(), "the FIFO was restored");
    // And the chats go on: a turn runs in the restored sandbox, with the secret opened by
    // the same key.
    let message = api.send(&b, "[[bash:cat sub/b.txt && echo \" $MY_TOKEN\"]] step").await;
    let events = api.turn_events(&b, &message).await;
    let output: Vec<String> = events
        .iter()
        .filter(|e| e.event == "tool_completed")
        .map(|e| e.data["tool"]["result"].to_string())
        .collect();
    assert!(output.iter().any(|o| o.contains("hello B s3cret-value")), "{output:?}");
    second.stop().await.unwrap();

    // `--db-only`, with the key put into the empty directory as secret.key.
    let conversation = out.path().join("conversation");
    std::fs::create_dir(&conversation).unwrap();
    std::fs::write(conversation.join("secret.key"), &key).unwrap();
    let (code, stdout, stderr) =
        agentbox(&["restore", "--from", path(&db_only), "--data-dir", path(&conversation)], &[])
            .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let mut config = test_config(&conversation, &mock);
    config.sandbox.uid_base = uid_base;
    let third = agentbox::serve::start(config).await.unwrap();
    let api = sign_in(&format!("http://{}", third.address)).await;
    let after = everything(&api).await;
    assert_eq!(after["chats"], before["chats"]);
    for chat in [&a, &b] {
        assert_eq!(after[chat.as_str()]["messages"], before[chat.as_str()]["messages"]);
    }
    assert_eq!(after["secrets"], before["secrets"]);
    third.stop().await.unwrap();
}
