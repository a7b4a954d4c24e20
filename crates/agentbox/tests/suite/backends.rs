//! One product on either store: the same scripted turn answers with the same JSON on SQLite
//! and on PostgreSQL, and `/health` says which backend runs, its version and its pool.

use serde_json::{Value, json};

use super::support::{Db, TestServer};

/// The JSON with what must differ between two runs replaced: ids, timestamps and the
/// figures of time the CLI reports.
fn mask(value: Value) -> Value {
    match value {
        Value::String(text) if uuid::Uuid::parse_str(&text).is_ok() => json!("<id>"),
        Value::String(text) if chrono::DateTime::parse_from_rfc3339(&text).is_ok() => {
            json!("<time>")
        }
        Value::Array(items) => Value::Array(items.into_iter().map(mask).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value =
                        if key.starts_with("duration") { json!("<duration>") } else { mask(value) };
                    (key, value)
                })
                .collect(),
        ),
        other => other,
    }
}

#[tokio::test]
async fn a_turn_reads_the_same_on_sqlite_and_postgres() {
    let sqlite = TestServer::start_on(Db::Sqlite, "same_sqlite").await;
    let postgres = TestServer::start_on(Db::Postgres, "same_postgres").await;
    let mut shown = Vec::new();
    for server in [&sqlite, &postgres] {
        let api = server.user("same@example.com").await;
        let chat = api.new_chat().await;
        let message = api.send(&chat, "[[think]] [[write:a.txt:x]] [[text:done]] go").await;
        api.turn_events(&chat, &message).await;
        let (_, chats) = api.get("/api/v1/chats").await;
        shown.push(mask(json!({"messages": api.messages(&chat).await, "chats": chats})));
    }
    assert_eq!(shown[0], shown[1], "the API answers differ between the backends");

    for (server, backend, version) in
        [(&sqlite, "sqlite", "SQLite 3."), (&postgres, "postgres", "PostgreSQL ")]
    {
        let (_, health) = server.api().get("/health").await;
        let database = &health["database"];
        assert_eq!((&database["status"], &database["backend"]), (&json!("ok"), &json!(backend)));
        assert!(database["version"].as_str().unwrap().starts_with(version), "{health}");
        // The test pool: one connection kept, seven more under load.
        assert_eq!((&database["pool"]["min"], &database["pool"]["max"]), (&json!(1), &json!(8)));
        assert!(database["pool"]["open"].as_u64().unwrap() >= 1, "{health}");
    }
}

/// `agentbox migrate` as the operator runs it.
async fn migrate(args: &[&str]) -> (bool, String) {
    #[allow(clippy::disallowed_methods)] // The test runs the real binary.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbox"))
        .arg("migrate")
        .args(args)
        .env("AGENTBOX_DB_POOL_SIZE", "1")
        .output()
        .await
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn migrate_copies_an_installation_from_sqlite_to_postgres_once() {
    super::support::init_logs();
    let mock = mock_llm::MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let uid_base = super::support::unique_uid_base();
    let (mut server, base) = super::support::spawn_server(data.path(), &mock, uid_base).await;
    let anonymous = super::support::Api { base, http: reqwest::Client::new(), token: None };
    let api = super::support::TestServerless(anonymous.clone()).user("moved@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[write:kept.txt:x]] [[text:done]] before the move").await;
    api.turn_events(&chat, &message).await;
    let before = api.messages(&chat).await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();

    let target = Db::Postgres.create("migrate_copy").await.unwrap();
    let from = format!("sqlite://{}", data.path().join("agentbox.sqlite").display());
    let (ok, log) = migrate(&["--from", &from, "--to", &target.url]).await;
    assert!(ok, "{log}");
    assert!(log.contains("chat_events") && log.contains("copied"), "progress and counts: {log}");
    // Once only: the target is not empty any more.
    let (ok, log) = migrate(&["--from", &from, "--to", &target.url]).await;
    assert!(!ok && log.contains("not empty") && log.contains("rows in users"), "{log}");
    // A source that does not exist is not created empty and copied.
    let missing = format!("sqlite://{}", data.path().join("nothing.sqlite").display());
    let (ok, log) = migrate(&["--from", &missing, "--to", &target.url]).await;
    assert!(!ok && log.contains("no database file"), "{log}");

    // The same server on the copy: same account, same conversation, and it goes on.
    let url = Some(target.url.as_str());
    let (_moved, base) = super::support::spawn_server_on(data.path(), url, &mock, uid_base).await;
    let api = super::support::Api { base, ..api };
    let (status, _) = api.get("/api/v1/chats").await;
    assert_eq!(status, reqwest::StatusCode::OK, "the access token still works");
    assert_eq!(api.messages(&chat).await, before);
    let next = api.send(&chat, "[[text:still here]] after the move").await;
    let events = api.stream(&chat, None).await.until_completed(&next).await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let (_, health) = api.get("/health").await;
    assert_eq!(health["database"]["backend"], "postgres", "{health}");
}
