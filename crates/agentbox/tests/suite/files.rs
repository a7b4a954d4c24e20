//! The files API against a hostile workspace: what the agent leaves behind through its own
//! Bash tool in a real sandbox (a FIFO, a directory chain thousands of levels deep, a planted
//! upload name) gets a clean JSON answer at once and never harms the server. Checkpoints are
//! off: these trees are the files API's to handle, not the checkpoint engine's.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::containment::run_in_sandbox;
use super::support::{Api, TestServer, kinds};

/// Status and error code of a request; the body must be the API's JSON error shape.
async fn error_of(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let (status, json) = api.call(method, path, body).await;
    let code =
        json["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {json}"));
    assert!(json["error"]["message"].is_string(), "{json}");
    (status, code.to_owned())
}

async fn put(api: &Api, chat: &str, path: &str, body: &'static str) -> (StatusCode, Value) {
    let response = api
        .request(Method::PUT, &format!("/api/v1/chats/{chat}/files/content?path={path}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A chat whose commands run without asking (some of them name paths outside the
/// workspace, which `auto` would ask about).
async fn bypass_chat(api: &Api) -> String {
    let body = json!({"permission_mode": "bypassPermissions"});
    let (status, chat) = api.call(Method::POST, "/api/v1/chats", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    chat["id"].as_str().unwrap().to_owned()
}

async fn assert_healthy(api: &Api) {
    let (status, health) = api.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
}

#[tokio::test]
async fn hostile_files_get_clean_answers_and_a_deep_chain_is_deleted() {
    let server = TestServer::start_with(|config| config.checkpoints.root = None).await;
    let api = server.user("hostile-files@example.com").await;
    let chat = bypass_chat(&api).await;
    let files = format!("/api/v1/chats/{chat}/files");
    // The upload names the server used to use, planted by the agent.
    let planted = format!(".up.agentbox-upload-{}", std::process::id());
    let (output, events) = run_in_sandbox(
        &api,
        &chat,
        &format!(
            "mkfifo ff && ln -s ff to-ff && ln -s /etc/passwd {planted} && mkdir -p m/sub && \
             python3 -c \"import os\nfor _ in range(3000): os.mkdir('d'); os.chdir('d')\" && \
             echo made"
        ),
    )
    .await;
    assert!(output.contains("made"), "{output} {:?}", kinds(&events));

    // A FIFO is refused at once, read or written through a link.
    let (status, code) =
        error_of(&api, Method::GET, &format!("{files}/content?path=ff"), None).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "not_a_regular_file"));
    let (status, body) = put(&api, &chat, "to-ff", "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "not_a_regular_file");
    // Listing and stat only look at it.
    let response = api.request(Method::GET, &files).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let total: u64 =
        response.headers()["x-agentbox-total-entries"].to_str().unwrap().parse().unwrap();
    let listing: Value = response.json().await.unwrap();
    assert_eq!(total as usize, listing.as_array().unwrap().len());
    let ff = listing.as_array().unwrap().iter().find(|e| e["name"] == "ff").unwrap();
    assert_eq!(ff["kind"], "other");
    let (status, stat) = api.get(&format!("{files}/stat?path=ff")).await;
    assert_eq!((status, stat["kind"].as_str()), (StatusCode::OK, Some("other")));

    // Names and paths too long, and a move into itself, are the client's fault.
    let long_name = "n".repeat(300);
    for (method, path) in [
        (Method::GET, format!("{files}/stat?path={long_name}")),
        (Method::POST, format!("{files}/directory?path={long_name}")),
        (Method::GET, format!("{files}/stat?path={}", vec!["p".repeat(99); 60].join("/"))),
    ] {
        let (status, code) = error_of(&api, method, &path, None).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "name_too_long"), "{path}");
    }
    let (status, body) = put(&api, &chat, &long_name, "x").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name_too_long"))
    );
    let (status, code) = error_of(
        &api,
        Method::POST,
        &format!("{files}/move"),
        Some(json!({"from": "m", "to": "m/sub/inner"})),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_move"));

    // An upload goes through a name of its own: the planted one is neither used nor followed.
    let (status, body) = put(&api, &chat, "up", "uploaded").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let home = server.sandbox_home(&chat);
    assert_eq!(std::fs::read_to_string(home.join("up")).unwrap(), "uploaded");
    assert_eq!(std::fs::read_link(home.join(&planted)).unwrap().to_str(), Some("/etc/passwd"));

    // The zip refuses the chain before it sends anything.
    let (status, code) = error_of(&api, Method::GET, &format!("{files}/zip"), None).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "workspace_too_deep"));
    let zip = api.request(Method::GET, &format!("{files}/zip?path=m")).send().await.unwrap();
    assert_eq!(zip.status(), StatusCode::OK);
    assert!(zip.bytes().await.unwrap().starts_with(b"PK"));

    // Deleting the chain works, and the server is still there for everyone.
    let (status, body) = api.call(Method::DELETE, &format!("{files}?path=d"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!home.join("d").exists());
    assert_healthy(&api).await;
    let (status, _) = api.get(&files).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn data_nested_deeper_than_any_path_still_counts_against_the_disk_quota() {
    let server = TestServer::start_with(|config| {
        config.checkpoints.root = None;
        config.sandbox.limits.disk_bytes = 100 << 20;
        config.sandbox.disk_check_interval = Duration::from_millis(500);
    })
    .await;
    let api = server.user("too-deep@example.com").await;
    let chat = bypass_chat(&api).await;
    // 3,000 levels (no path names them), then three files of 40 MB at the bottom: each is
    // below the per-file limit, together they are over the quota. Then waiting: the size
    // check stops the sandbox, which ends the command.
    let (_, events) = run_in_sandbox(
        &api,
        &chat,
        "python3 -c \"import os, time\nfor _ in range(3000): os.mkdir('d'); os.chdir('d')\nfor i in range(3): open('f%d' % i, 'wb').write(bytes(40000000))\ntime.sleep(600)\"",
    )
    .await;
    assert_eq!(events.last().unwrap().data["status"], "failed", "{:?}", kinds(&events));
    let (_, sandbox) = api.get(&format!("/api/v1/chats/{chat}/sandbox")).await;
    assert_eq!(sandbox["status"], "stopped", "{sandbox}");
    // It does not start again, and says why in words the user can act on.
    let message = api.send(&chat, "[[text:hello]] again").await;
    let events = api.turn_events(&chat, &message).await;
    let error = events.iter().rev().find(|e| e.event == "error").expect("an error event");
    let text = error.data["message"].as_str().unwrap();
    assert!(text.contains("disk quota"), "{text}");
    assert!(text.contains("files panel"), "{text}");
    // Deleting the chain through the API brings it back.
    let (status, body) =
        api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/files?path=d"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let message = api.send(&chat, "[[text:hello]] once more").await;
    let events = api.turn_events(&chat, &message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    assert_healthy(&api).await;
}
