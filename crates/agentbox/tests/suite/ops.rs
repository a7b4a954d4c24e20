//! Operations end to end: `/metrics` moves with a real turn (real CLI, mock model), and
//! SIGTERM drains the real binary: the turn that can finish does, the one that cannot is
//! interrupted after `--shutdown-grace-secs`, the exit status is 0 and no committed event is
//! lost; a second SIGTERM exits at once.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{
    Api, PATIENCE, SseEvent, TestServer, TestServerless, kinds, spawn_node, spawn_node_logged,
    unique_uid_base,
};

#[path = "../../../server/tests/common/prometheus.rs"]
pub(super) mod prometheus;

/// `/metrics` parsed (also used by `kept_cli`: the parser may be loaded once per binary).
pub(super) async fn scrape(api: &Api) -> (prometheus::Scrape, String) {
    let response = api.http.get(format!("{}/metrics", api.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    (prometheus::parse(&text), text)
}

#[tokio::test]
async fn metrics_move_with_a_real_turn() {
    let server = TestServer::start().await;
    let api = server.user("metrics@example.com").await;
    let chat = api.new_chat().await;
    let (before, _) = scrape(&api).await;

    let message = api.send(&chat, "[[text:counted]] count this").await;
    let events = api.stream(&chat, None).await.until_completed(&message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    let (after, text) = scrape(&api).await;

    // Other tests of this process may run turns too (`cargo test` runs them on threads):
    // each count grew by at least this turn's share.
    let grew = |name: &str, labels: &[(&str, &str)], by: f64| {
        let delta = after.value(name, labels) - before.value(name, labels);
        assert!(delta >= by, "{name}{labels:?} grew by {delta}, not {by}:\n{text}");
    };
    grew("agentbox_turns_started_total", &[], 1.0);
    grew("agentbox_turns_finished_total", &[("status", "completed")], 1.0);
    grew("agentbox_turn_duration_seconds_count", &[], 1.0);
    grew("agentbox_turn_first_event_seconds_count", &[], 1.0);
    grew("agentbox_checkpoint_duration_seconds_count", &[], 1.0);
    // Every event the stream showed was appended on this node (the user's text included).
    grew("agentbox_events_appended_total", &[], events.len() as f64);
    let posted =
        [("route", "/api/v1/chats/{chat_id}/messages"), ("method", "POST"), ("status", "202")];
    grew("agentbox_http_requests_total", &posted, 1.0);
    assert_eq!(after.types.get("agentbox_turn_duration_seconds").unwrap(), "histogram");
    // The chat's CLI is kept for its next turn, and the sandbox runs.
    assert!(after.value("agentbox_kept_cli_processes", &[]) >= 1.0, "{text}");
    assert!(after.value("agentbox_sandboxes", &[("state", "running")]) >= 1.0, "{text}");
}

fn sigterm(server: &tokio::process::Child) {
    let pid = nix::unistd::Pid::from_raw(server.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

/// The stream ends, and the last thing it said was to reconnect.
async fn told_to_reconnect(stream: &mut super::support::Sse) {
    let rest = stream.until_closed().await.concat();
    assert!(rest.ends_with("event: reconnect\ndata: {\"reason\":\"shutting_down\"}\n\n"), "{rest}");
}

async fn chat_in(api: &Api, mode: &str) -> String {
    let (status, chat) =
        api.call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": mode}))).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    chat["id"].as_str().unwrap().to_owned()
}

/// The events seen before the shutdown are the first ones after the restart, unchanged.
fn kept(before: &[SseEvent], after: &[SseEvent]) {
    assert!(after.len() > before.len(), "{:?}", kinds(after));
    assert_eq!(
        before.iter().map(|e| (e.id, &e.data)).collect::<Vec<_>>(),
        after[..before.len()].iter().map(|e| (e.id, &e.data)).collect::<Vec<_>>(),
        "events committed before the shutdown changed or vanished"
    );
}

#[tokio::test]
async fn sigterm_lets_the_short_turn_finish_and_interrupts_the_long_one_after_the_grace() {
    super::support::init_logs();
    let mock = mock_llm::MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let uid_base = unique_uid_base();
    let args = ["serve", "--shutdown-grace-secs", "30"];
    let (mut server, base) = spawn_node(&args, data.path(), None, &mock, uid_base).await;
    let api = TestServerless(Api { base, http: reqwest::Client::new(), token: None })
        .user("drain@example.com")
        .await;

    // The short turn waits for a person's answer, so that it is running at the signal and
    // can finish after it; the long one runs a ten-minute command.
    let short_chat = chat_in(&api, "ask").await;
    let short = api.send(&short_chat, "[[write:short.txt:done]] write it").await;
    let mut short_stream = api.stream(&short_chat, None).await;
    let short_before = short_stream.until("permission_request").await;
    let request_id = short_before.last().unwrap().data["request_id"].as_str().unwrap().to_owned();
    let long_chat = api.new_chat().await;
    let long = api.send(&long_chat, "[[sleep:600]] a long job").await;
    let mut long_stream = api.stream(&long_chat, None).await;
    let long_before = long_stream.until("tool_started").await;
    let idle_chat = api.new_chat().await;

    sigterm(&server);
    // Streams are told to go elsewhere; the answer is there once the drain has begun.
    told_to_reconnect(&mut short_stream).await;
    told_to_reconnect(&mut long_stream).await;
    let refused = api
        .request(Method::POST, &format!("/api/v1/chats/{idle_chat}/messages"))
        .json(&json!({"prompt": "too late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"), "{:?}", refused.headers());
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "shutting_down", "{body}");
    let (status, ready) = api.get("/readyz").await;
    assert_eq!(
        (status, ready["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("shutting_down"))
    );
    // The running turn still takes its answer, and finishes.
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{short_chat}/permissions/{request_id}"),
            Some(json!({"approved": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let exit = tokio::time::timeout(PATIENCE, server.wait()).await.unwrap().unwrap();
    assert_eq!(exit.code(), Some(0), "{exit:?}");

    let (_restarted, base) = spawn_node(&["serve"], data.path(), None, &mock, uid_base).await;
    let api = Api { base, ..api };
    let short_after = api.stream(&short_chat, None).await.until_completed(&short).await;
    kept(&short_before, &short_after);
    assert_eq!(
        short_after.last().unwrap().data["status"],
        "completed",
        "{:?}",
        kinds(&short_after)
    );
    let long_after = api.stream(&long_chat, None).await.until_completed(&long).await;
    kept(&long_before, &long_after);
    let long_kinds = kinds(&long_after);
    assert_eq!(long_after.last().unwrap().data["status"], "interrupted", "{long_kinds:?}");
    assert!(long_kinds.contains(&"system/interrupted_by_shutdown".to_owned()), "{long_kinds:?}");
    // Closed by the drain, not by the next start's recovery of a crash.
    assert!(!long_kinds.contains(&"error".to_owned()), "{long_kinds:?}");
    // The refused prompt left nothing behind.
    assert!(api.messages(&idle_chat).await.is_empty());
}

#[tokio::test]
async fn a_second_sigterm_exits_at_once_and_loses_no_committed_event() {
    super::support::init_logs();
    let mock = mock_llm::MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let uid_base = unique_uid_base();
    // A grace far longer than the test's patience: only the second signal can end it in time.
    let args = ["serve", "--shutdown-grace-secs", "3600"];
    let (mut server, base) = spawn_node(&args, data.path(), None, &mock, uid_base).await;
    let api = TestServerless(Api { base, http: reqwest::Client::new(), token: None })
        .user("impatient@example.com")
        .await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[sleep:600]] a long job").await;
    let mut stream = api.stream(&chat, None).await;
    let before = stream.until("tool_started").await;

    sigterm(&server);
    // The first signal was taken (the drain began) before the second is sent.
    told_to_reconnect(&mut stream).await;
    sigterm(&server);
    let exit = tokio::time::timeout(PATIENCE, server.wait()).await.unwrap().unwrap();
    assert_eq!(exit.code(), Some(143), "{exit:?}");

    let (_restarted, base) = spawn_node(&["serve"], data.path(), None, &mock, uid_base).await;
    let api = Api { base, ..api };
    let after = api.stream(&chat, None).await.until_completed(&message).await;
    kept(&before, &after);
    // The next start closes the cut-off turn, as after a crash.
    assert_eq!(after.last().unwrap().data["status"], "interrupted", "{:?}", kinds(&after));
}

#[tokio::test]
async fn a_turns_log_lines_carry_the_request_id_and_the_chat_and_message_ids() {
    super::support::init_logs();
    let mock = mock_llm::MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let args = ["serve", "--log-format", "json"];
    let (_server, base, mut log) =
        spawn_node_logged(&args, data.path(), None, &mock, unique_uid_base()).await;
    let api = TestServerless(Api { base, http: reqwest::Client::new(), token: None })
        .user("logs@example.com")
        .await;
    let chat = api.new_chat().await;
    let request_id = format!("ops-test-{}", uuid::Uuid::new_v4());
    let response = api
        .request(Method::POST, &format!("/api/v1/chats/{chat}/messages"))
        .header("x-request-id", &request_id)
        .json(&json!({"prompt": "[[text:logged]] log this"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    let message = response.json::<serde_json::Value>().await.unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.stream(&chat, None).await.until_completed(&message).await;

    // The turn's last line, in the spans of the request that started it and of the turn.
    let finished = tokio::time::timeout(PATIENCE, async {
        loop {
            let line = log.recv().await.expect("the server's log ended");
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if entry["fields"]["message"] == "turn finished" {
                return entry;
            }
        }
    })
    .await
    .expect("no `turn finished` line");
    let spans = finished["spans"].as_array().unwrap();
    let field = |name: &str, key: &str| {
        spans.iter().find(|span| span["name"] == name).map(|span| span[key].clone())
    };
    assert_eq!(field("request", "request_id"), Some(json!(request_id)), "{finished}");
    assert_eq!(field("turn", "chat_id"), Some(json!(chat)), "{finished}");
    assert_eq!(field("turn", "message_id"), Some(json!(message)), "{finished}");
}
