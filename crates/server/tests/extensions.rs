//! The extensions API at router level: commands, skills, agents and MCP servers created,
//! listed, replaced and deleted; names, sizes, paths and secret references checked before
//! anything changes; a chat's effective set with each definition's source; other users see
//! none of it; and a secret referenced by an MCP server never shows its value.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::App;

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn definitions_are_created_listed_replaced_and_deleted() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let token = Some(alice.access.as_str());

    let created = app
        .call(
            Method::POST,
            "/api/v1/commands",
            token,
            Some(&json!({"name": "review", "description": "Review a change", "content": "Review $ARGUMENTS."})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    let body = created.json();
    assert_eq!((body["kind"].as_str(), body["source"].as_str()), (Some("command"), Some("user")));
    assert_eq!(body["content"], "Review $ARGUMENTS.");
    // A second POST of the name is a conflict; a PUT replaces it.
    let again = app
        .call(
            Method::POST,
            "/api/v1/commands",
            token,
            Some(&json!({"name": "review", "content": "x"})),
        )
        .await;
    assert_eq!((again.status, again.code().as_str()), (StatusCode::CONFLICT, "extension_exists"));
    let replaced = app
        .call(
            Method::PUT,
            "/api/v1/commands/review",
            token,
            Some(&json!({"content": "Look at $ARGUMENTS."})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.json()["created_at"], body["created_at"]);
    assert_eq!(replaced.json()["content"], "Look at $ARGUMENTS.");
    assert!(replaced.json().get("description").is_none(), "a PUT replaces the whole definition");

    let skill = json!({"description": "Checks things", "content": "Check.", "files": {"scripts/check.py": "print(1)"}});
    let put = app.call(Method::PUT, "/api/v1/skills/checker", token, Some(&skill)).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.json());
    assert_eq!(put.json()["files"]["scripts/check.py"], "print(1)");
    let agent = json!({"description": "Reviews code", "content": "You review code."});
    assert_eq!(
        app.call(Method::PUT, "/api/v1/agents/reviewer", token, Some(&agent)).await.status,
        StatusCode::CREATED
    );
    let server =
        json!({"type": "stdio", "command": "python3", "args": ["s.py"], "env": {"MODE": "test"}});
    assert_eq!(
        app.call(Method::PUT, "/api/v1/mcp-servers/tools", token, Some(&server)).await.status,
        StatusCode::CREATED
    );

    for (path, name) in [
        ("commands", "review"),
        ("skills", "checker"),
        ("agents", "reviewer"),
        ("mcp-servers", "tools"),
    ] {
        let list = app.call(Method::GET, &format!("/api/v1/{path}"), token, None).await;
        assert_eq!(names(&list.json()), [name], "{path}");
        let one = app.call(Method::GET, &format!("/api/v1/{path}/{name}"), token, None).await;
        assert_eq!(one.status, StatusCode::OK, "{path}");
    }
    // Kinds are separate: a command's name is not an agent's.
    let missing = app.call(Method::GET, "/api/v1/agents/review", token, None).await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (StatusCode::NOT_FOUND, "extension_not_found")
    );

    // Another user sees none of it and cannot delete it.
    let bob = app.user("bob@example.com").await;
    let theirs = app.call(Method::GET, "/api/v1/commands", Some(&bob.access), None).await;
    assert_eq!(theirs.json(), json!([]));
    let gone = app.call(Method::DELETE, "/api/v1/commands/review", Some(&bob.access), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let deleted = app.call(Method::DELETE, "/api/v1/commands/review", token, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::GET, "/api/v1/commands", token, None).await.json(), json!([]));
    let twice = app.call(Method::DELETE, "/api/v1/commands/review", token, None).await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_definitions_are_refused_with_a_code_and_change_nothing() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let token = Some(alice.access.as_str());
    let big = "x".repeat(64 * 1024 + 1);
    for (method, path, body, status, code) in [
        (
            Method::PUT,
            "/api/v1/commands/Bad",
            json!({"content": "x"}),
            422,
            "invalid_extension_name",
        ),
        (
            Method::PUT,
            "/api/v1/commands/a__b",
            json!({"content": "x"}),
            422,
            "invalid_extension_name",
        ),
        (Method::POST, "/api/v1/commands", json!({"content": "x"}), 422, "invalid_extension"),
        (
            Method::PUT,
            "/api/v1/commands/a",
            json!({"name": "b", "content": "x"}),
            422,
            "invalid_extension",
        ),
        (Method::PUT, "/api/v1/commands/a", json!({"content": big}), 422, "extension_too_large"),
        (
            Method::PUT,
            "/api/v1/commands/a",
            json!({"content": "x", "model": "m"}),
            422,
            "invalid_request",
        ),
        (
            Method::PUT,
            "/api/v1/skills/a",
            json!({"description": "d", "content": "c", "files": {"../x": "y"}}),
            422,
            "invalid_extension",
        ),
        (Method::PUT, "/api/v1/skills/a", json!({"content": "c"}), 422, "invalid_request"),
        (
            Method::PUT,
            "/api/v1/agents/a",
            json!({"description": "", "content": "c"}),
            422,
            "invalid_extension",
        ),
        (Method::PUT, "/api/v1/mcp-servers/a", json!({"type": "stdio"}), 422, "invalid_extension"),
        (
            Method::PUT,
            "/api/v1/mcp-servers/a",
            json!({"type": "ws", "url": "https://a"}),
            422,
            "invalid_request",
        ),
        (
            Method::PUT,
            "/api/v1/mcp-servers/a",
            json!({"type": "stdio", "command": "x", "env": {"T": {"secret": "NOPE"}}}),
            422,
            "unknown_secret",
        ),
    ] {
        let answer = app.call(method.clone(), path, token, Some(&body)).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (status, code.to_owned()),
            "{method} {path} {body}"
        );
    }
    for path in ["commands", "skills", "agents", "mcp-servers"] {
        let list = app.call(Method::GET, &format!("/api/v1/{path}"), token, None).await;
        assert_eq!(list.json(), json!([]), "{path}");
    }
    // At most 100 of a kind.
    for i in 0..100 {
        let body = json!({"content": "x"});
        let answer =
            app.call(Method::PUT, &format!("/api/v1/commands/c{i}"), token, Some(&body)).await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let over = app
        .call(Method::PUT, "/api/v1/commands/one-more", token, Some(&json!({"content": "x"})))
        .await;
    assert_eq!(
        (over.status, over.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_extensions")
    );
    // Replacing one at the limit is fine, and another kind has its own count.
    let replace =
        app.call(Method::PUT, "/api/v1/commands/c0", token, Some(&json!({"content": "y"}))).await;
    assert_eq!(replace.status, StatusCode::OK);
    let agent = json!({"description": "d", "content": "c"});
    assert_eq!(
        app.call(Method::PUT, "/api/v1/agents/c0", token, Some(&agent)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_chats_set_is_the_users_with_the_chats_own_over_it() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let token = Some(alice.access.as_str());
    let chat = app.call(Method::POST, "/api/v1/chats", token, Some(&json!({}))).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (name, content) in [("review", "user review"), ("fix", "user fix")] {
        let body = json!({"content": content});
        app.call(Method::PUT, &format!("/api/v1/commands/{name}"), token, Some(&body)).await;
    }
    let own = app
        .call(
            Method::PUT,
            &format!("/api/v1/chats/{chat}/commands/review"),
            token,
            Some(&json!({"content": "chat review"})),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.json());
    let added = app
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/commands"),
            token,
            Some(&json!({"name": "only-here", "content": "x"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED);

    let list =
        app.call(Method::GET, &format!("/api/v1/chats/{chat}/commands"), token, None).await.json();
    let shown: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
                e["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("fix", "user", "user fix"),
            ("only-here", "chat", "x"),
            ("review", "chat", "chat review")
        ]
    );
    // The user's own list is untouched by the chat's.
    let users = app.call(Method::GET, "/api/v1/commands", token, None).await.json();
    assert_eq!(names(&users), ["fix", "review"]);
    let effective =
        app.call(Method::GET, &format!("/api/v1/chats/{chat}/commands/fix"), token, None).await;
    assert_eq!(effective.json()["source"], "user");

    // Deleting the chat's own brings the user's back; a user's one cannot be deleted here.
    let deleted = app
        .call(Method::DELETE, &format!("/api/v1/chats/{chat}/commands/review"), token, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let back =
        app.call(Method::GET, &format!("/api/v1/chats/{chat}/commands/review"), token, None).await;
    assert_eq!(
        (back.json()["source"].as_str(), back.json()["content"].as_str()),
        (Some("user"), Some("user review"))
    );
    let not_here =
        app.call(Method::DELETE, &format!("/api/v1/chats/{chat}/commands/fix"), token, None).await;
    assert_eq!(
        (not_here.status, not_here.code().as_str()),
        (StatusCode::NOT_FOUND, "extension_not_found")
    );

    // Another user's view of the chat is a 404 of the chat.
    let bob = app.user("bob@example.com").await;
    let theirs = app
        .call(Method::GET, &format!("/api/v1/chats/{chat}/commands"), Some(&bob.access), None)
        .await;
    assert_eq!((theirs.status, theirs.code().as_str()), (StatusCode::NOT_FOUND, "chat_not_found"));
}

#[tokio::test]
async fn an_mcp_server_names_secrets_and_never_shows_their_values() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let token = Some(alice.access.as_str());
    let value = "ghp-extension-marker-0123456789";
    let set = app
        .call(Method::PUT, "/api/v1/secrets/GITHUB_TOKEN", token, Some(&json!({"value": value})))
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let server = json!({
        "type": "http", "url": "https://mcp.example.com/mcp",
        "headers": {"Authorization": {"secret": "GITHUB_TOKEN"}, "X-Team": "core"}
    });
    let put = app.call(Method::PUT, "/api/v1/mcp-servers/github", token, Some(&server)).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.json());
    assert_eq!(put.json()["headers"]["Authorization"], json!({"secret": "GITHUB_TOKEN"}));
    for path in ["/api/v1/mcp-servers", "/api/v1/mcp-servers/github"] {
        let answer = app.call(Method::GET, path, token, None).await;
        assert!(!String::from_utf8_lossy(&answer.body).contains("extension-marker"), "{path}");
    }
    // Another user cannot name Alice's secret.
    let bob = app.user("bob@example.com").await;
    let theirs =
        app.call(Method::PUT, "/api/v1/mcp-servers/github", Some(&bob.access), Some(&server)).await;
    assert_eq!(theirs.code(), "unknown_secret");
}
