//! Permission modes, approvals, questions, plans, live controls and queued prompts, through
//! the HTTP API and the SSE stream, with the real CLI and the scripted model.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, Db, Sse, SseEvent, TestServer, kinds};

/// A new chat with these settings.
async fn chat_with(api: &Api, settings: Value) -> String {
    let (status, chat) = api.call(Method::POST, "/api/v1/chats", Some(settings)).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    chat["id"].as_str().unwrap().to_owned()
}

async fn chat_in(api: &Api, mode: &str) -> String {
    chat_with(api, json!({"permission_mode": mode})).await
}

async fn answer(api: &Api, chat: &str, request_id: &str, body: Value) -> (StatusCode, Value) {
    api.call(Method::POST, &format!("/api/v1/chats/{chat}/permissions/{request_id}"), Some(body))
        .await
}

async fn pending(api: &Api, chat: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/chats/{chat}/permissions")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// The next `permission_request` on the stream.
async fn next_request(stream: &mut Sse) -> SseEvent {
    stream.until("permission_request").await.pop().unwrap()
}

fn request_id(event: &SseEvent) -> String {
    event.data["request_id"].as_str().unwrap().to_owned()
}

fn of_kind<'a>(events: &'a [SseEvent], kind: &str) -> Vec<&'a SseEvent> {
    events.iter().filter(|e| e.event == kind).collect()
}

/// Every text the model received in `tool_result` blocks of its latest request.
fn last_tool_results(server: &TestServer) -> String {
    let last = server.mock.message_requests().pop().expect("the model was called");
    last.tool_results().iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn ask_mode_runs_an_approved_call_and_tells_the_model_why_one_was_denied() {
    ask_mode_runs_an_approved_call_and_tells_the_model_why_one_was_denied_on(Db::Sqlite).await;
}

#[tokio::test]
async fn ask_mode_runs_an_approved_call_and_tells_the_model_why_one_was_denied_on_postgres() {
    ask_mode_runs_an_approved_call_and_tells_the_model_why_one_was_denied_on(Db::Postgres).await;
}

async fn ask_mode_runs_an_approved_call_and_tells_the_model_why_one_was_denied_on(db: Db) {
    let server = TestServer::start_on(db, "ask_mode_runs_an_approve").await;
    let api = server.user("ask@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let home = server.sandbox_home(&chat);

    let message = api.send(&chat, "[[write:approved.txt:yes]] write it").await;
    let mut stream = api.stream(&chat, None).await;
    let request = next_request(&mut stream).await;
    assert_eq!(request.data["kind"], "tool");
    assert_eq!(request.data["tool_name"], "Bash");
    assert!(request.data["input"]["command"].as_str().unwrap().contains("approved.txt"));
    assert!(request.data["reason"].as_str().unwrap().contains("ask mode"), "{}", request.data);
    assert!(request.data["expires_at"].is_string());
    let id = request_id(&request);
    // The request waits; nothing ran, and it is listed as open.
    let open = pending(&api, &chat).await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0]["request_id"].as_str(), open[0]["seq"].as_i64()),
        (Some(&*id), Some(request.id))
    );
    assert!(!home.join("approved.txt").exists());
    // The chat says it waits for the user (what the chat list shows).
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["pending_requests"], 1, "{chat_json}");

    let (status, body) = answer(&api, &chat, &id, json!({"approved": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approved"], true);
    let rest = stream.until_completed(&message).await;
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["pending_requests"], 0, "{chat_json}");
    let resolved = of_kind(&rest, "permission_resolved");
    assert_eq!(resolved.len(), 1, "{:?}", kinds(&rest));
    assert_eq!(
        (resolved[0].data["request_id"].as_str(), resolved[0].data["approved"].as_bool()),
        (Some(&*id), Some(true))
    );
    assert_eq!(resolved[0].data["resolved_by"], "user");
    assert_eq!(of_kind(&rest, "tool_completed")[0].data["tool"]["result"], "written");
    assert_eq!(rest.last().unwrap().data["status"], "completed");
    assert_eq!(std::fs::read_to_string(home.join("approved.txt")).unwrap(), "yes");
    assert!(pending(&api, &chat).await.is_empty());

    // Answering twice, or after the turn, is refused and changes nothing.
    let (status, body) = answer(&api, &chat, &id, json!({"approved": false})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("permission_request_resolved"))
    );

    let message = api.send(&chat, "[[write:denied.txt:no]] write that too").await;
    let request = next_request(&mut stream).await;
    let (status, _) = answer(
        &api,
        &chat,
        &request_id(&request),
        json!({"approved": false, "message": "not today, use the scratch directory"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rest = stream.until_completed(&message).await;
    assert_eq!(rest.last().unwrap().data["status"], "completed");
    let failed = of_kind(&rest, "tool_failed");
    assert!(
        failed[0].data["tool"]["error"]
            .as_str()
            .unwrap()
            .contains("not today, use the scratch directory")
    );
    assert!(!home.join("denied.txt").exists(), "a denied call ran");
    assert!(
        last_tool_results(&server).contains("not today, use the scratch directory"),
        "the model did not get the denial: {}",
        last_tool_results(&server)
    );
}

#[tokio::test]
async fn auto_mode_runs_safe_calls_and_asks_about_risky_ones_with_its_reason() {
    let server = TestServer::start().await;
    let api = server.user("auto@example.com").await;
    let chat = api.new_chat().await;
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["permission_mode"], "auto");

    let message = api
        .send(
            &chat,
            r#"[[tool:Read:{"file_path":"notes.txt"}]] [[write:safe.txt:fine]] [[bash:git push origin main]] go"#,
        )
        .await;
    let mut stream = api.stream(&chat, None).await;
    let before = stream.until("permission_request").await;
    let request = before.last().unwrap();
    // The read and the write in the workspace ran without asking.
    assert_eq!(of_kind(&before, "permission_request").len(), 1, "{:?}", kinds(&before));
    let started: Vec<&Value> =
        of_kind(&before, "tool_started").iter().map(|e| &e.data["tool"]["name"]).collect();
    assert_eq!(started, ["Read", "Bash", "Bash"]);
    assert_eq!(
        std::fs::read_to_string(server.sandbox_home(&chat).join("safe.txt")).unwrap(),
        "fine"
    );
    // The push asks, and says why.
    assert_eq!(request.data["input"]["command"], "git push origin main");
    let reason = request.data["reason"].as_str().unwrap();
    assert!(reason.contains("auto policy") && reason.contains("git push"), "{reason}");

    let (status, _) = answer(&api, &chat, &request_id(request), json!({"approved": false})).await;
    assert_eq!(status, StatusCode::OK);
    let rest = stream.until_completed(&message).await;
    assert_eq!(rest.last().unwrap().data["status"], "completed");
    assert!(last_tool_results(&server).contains("The user denied this tool call"));
}

#[tokio::test]
async fn plan_mode_writes_nothing_until_the_plan_is_approved() {
    let server = TestServer::start().await;
    let api = server.user("plan@example.com").await;
    let chat = chat_in(&api, "plan").await;
    let file = server.sandbox_home(&chat).join("plan.txt");

    // The plan is sent back: nothing is written, and the model hears the feedback.
    let first = api.send(&chat, "[[exitplan]] [[write:plan.txt:built]] plan it").await;
    let mut stream = api.stream(&chat, None).await;
    let request = next_request(&mut stream).await;
    assert_eq!(request.data["kind"], "plan");
    assert_eq!(request.data["tool_name"], "ExitPlanMode");
    assert_eq!(request.data["plan"], "1. Write plan.txt\n2. Report back");
    assert_eq!(pending(&api, &chat).await[0]["kind"], "plan");
    let (status, _) = answer(
        &api,
        &chat,
        &request_id(&request),
        json!({"approved": false, "message": "add a test step first"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rest = stream.until_completed(&first).await;
    assert_eq!(rest.last().unwrap().data["status"], "completed");
    assert!(!file.exists(), "plan mode wrote a file");
    let results = last_tool_results(&server);
    assert!(results.contains("add a test step first"), "{results}");
    assert!(results.contains("plan mode"), "the write was not refused for plan mode: {results}");
    assert_eq!(
        of_kind(&rest, "permission_request").len(),
        0,
        "the write asked instead of being refused"
    );

    // Approved, continuing in auto: the edit happens and the chat leaves plan mode.
    let second = api.send(&chat, "[[exitplan]] [[write:plan.txt:built]] again").await;
    let request = next_request(&mut stream).await;
    assert!(!file.exists());
    let (status, body) =
        answer(&api, &chat, &request_id(&request), json!({"approved": true, "mode": "auto"})).await;
    assert_eq!((status, body["mode"].as_str()), (StatusCode::OK, Some("auto")), "{body}");
    let rest = stream.until_completed(&second).await;
    assert_eq!(rest.last().unwrap().data["status"], "completed", "{:?}", kinds(&rest));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "built");
    let resolved = of_kind(&rest, "permission_resolved");
    assert_eq!(resolved[0].data["mode"], "auto");
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["permission_mode"], "auto");
}

async fn question_round_trip(mode: &str) {
    let server = TestServer::start().await;
    let api = server.user(&format!("question-{}@example.com", mode.to_lowercase())).await;
    let chat = chat_in(&api, mode).await;
    let message = api.send(&chat, "[[ask]] pick a color").await;
    let mut stream = api.stream(&chat, None).await;
    let request = next_request(&mut stream).await;
    assert_eq!(request.data["kind"], "question");
    assert_eq!(request.data["tool_name"], "AskUserQuestion");
    let question = &request.data["input"]["questions"][0];
    assert_eq!(question["question"], "Which color?");
    assert_eq!(question["options"][1]["label"], "blue");
    let id = request_id(&request);

    // Answers that do not fit the questions are refused and the question stays open.
    for (bad, code) in [
        (json!({"approved": true}), "answers_required"),
        (json!({"approved": true, "answers": {"Which colour?": "blue"}}), "unknown_question"),
        (
            json!({"approved": true, "answers": {"Which color?": "blue"}, "remember": true}),
            "remember_not_applicable",
        ),
        (
            json!({"approved": true, "answers": {"Which color?": "blue"}, "extra": 1}),
            "invalid_request",
        ),
    ] {
        let (status, body) = answer(&api, &chat, &id, bad).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
    }
    assert_eq!(pending(&api, &chat).await.len(), 1);

    let (status, body) =
        answer(&api, &chat, &id, json!({"approved": true, "answers": {"Which color?": "blue"}}))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rest = stream.until_completed(&message).await;
    assert_eq!(rest.last().unwrap().data["status"], "completed");
    let resolved = of_kind(&rest, "permission_resolved");
    assert_eq!(resolved[0].data["answers"], json!({"Which color?": "blue"}));
    // The CLI acted on the answers: its tool result and the model's next request carry them.
    let result =
        of_kind(&rest, "tool_completed")[0].data["tool"]["result"].as_str().unwrap().to_owned();
    assert!(result.contains(r#""Which color?"="blue""#), "{result}");
    assert!(
        last_tool_results(&server).contains(r#"\"Which color?\"=\"blue\""#),
        "{}",
        last_tool_results(&server)
    );
}

#[tokio::test]
async fn a_question_round_trip_in_ask_mode() {
    question_round_trip("ask").await;
}

#[tokio::test]
async fn a_question_round_trip_in_bypass_mode() {
    question_round_trip("bypassPermissions").await;
}

#[tokio::test]
async fn an_unanswered_request_is_denied_after_the_timeout_and_the_turn_finishes() {
    let server = TestServer::start_with(|config| {
        config.permissions.timeout = Duration::from_secs(2);
    })
    .await;
    let api = server.user("timeout@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let message = api.send(&chat, "[[write:late.txt:x]] nobody is watching").await;
    let events = api.turn_events(&chat, &message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    let request = of_kind(&events, "permission_request")[0];
    let resolved = of_kind(&events, "permission_resolved")[0];
    assert_eq!(resolved.data["request_id"], request.data["request_id"]);
    assert_eq!(
        (resolved.data["approved"].as_bool(), resolved.data["resolved_by"].as_str()),
        (Some(false), Some("timeout"))
    );
    assert!(resolved.data["message"].as_str().unwrap().contains("Nobody answered"));
    assert!(!server.sandbox_home(&chat).join("late.txt").exists());
    assert!(last_tool_results(&server).contains("Nobody answered"));
    let (status, body) = answer(&api, &chat, &request_id(request), json!({"approved": true})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["message"].as_str().unwrap().contains("in time"), "{body}");
}

#[tokio::test]
async fn always_allow_skips_the_second_identical_request() {
    let server = TestServer::start().await;
    let api = server.user("always@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let message = api.send(&chat, "[[write:twice.txt:x]] [[write:twice.txt:x]] twice").await;
    let mut stream = api.stream(&chat, None).await;
    let request = next_request(&mut stream).await;
    let command = request.data["input"]["command"].as_str().unwrap().to_owned();
    let (status, body) =
        answer(&api, &chat, &request_id(&request), json!({"approved": true, "remember": true}))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rule"], json!({"tool_name": "Bash", "rule_content": command}));
    let rest = stream.until_completed(&message).await;
    assert_eq!(rest.last().unwrap().data["status"], "completed");
    assert_eq!(
        of_kind(&rest, "permission_request").len(),
        0,
        "the second call asked again: {:?}",
        kinds(&rest)
    );
    assert_eq!(of_kind(&rest, "tool_completed").len(), 2);
    assert_eq!(of_kind(&rest, "permission_resolved")[0].data["rule"]["rule_content"], command);

    // The rule is listed, and once deleted the same call asks again.
    let (_, rules) = api.get(&format!("/api/v1/chats/{chat}/permissions/rules")).await;
    let rules = rules.as_array().unwrap().clone();
    assert_eq!(rules.len(), 1);
    let rule_id = rules[0]["id"].as_str().unwrap();
    let (status, _) = api
        .call(Method::DELETE, &format!("/api/v1/chats/{chat}/permissions/rules/{rule_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let again = api.send(&chat, "[[write:twice.txt:x]] once more").await;
    let request = next_request(&mut stream).await;
    answer(&api, &chat, &request_id(&request), json!({"approved": true})).await;
    stream.until_completed(&again).await;
}

#[tokio::test]
async fn an_interrupt_withdraws_an_open_request_and_the_chat_goes_on() {
    let server = TestServer::start().await;
    let api = server.user("interrupt@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let message = api.send(&chat, "[[write:never.txt:x]] wait for me").await;
    let mut stream = api.stream(&chat, None).await;
    let request = next_request(&mut stream).await;
    let (status, _) = api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/stream"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let rest = stream.until_completed(&message).await;
    assert_eq!(rest.last().unwrap().data["status"], "interrupted");
    let resolved = of_kind(&rest, "permission_resolved")[0];
    assert_eq!(
        (resolved.data["approved"].as_bool(), resolved.data["resolved_by"].as_str()),
        (Some(false), Some("cancelled"))
    );
    assert!(pending(&api, &chat).await.is_empty());
    assert!(!server.sandbox_home(&chat).join("never.txt").exists());
    let (status, _) = answer(&api, &chat, &request_id(&request), json!({"approved": true})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let next = api.send(&chat, "[[text:still here]] hello").await;
    assert_eq!(stream.until_completed(&next).await.last().unwrap().data["status"], "completed");
}

#[tokio::test]
async fn model_and_mode_changes_reach_a_running_turn() {
    let server = TestServer::start().await;
    let api = server.user("live@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let message = api.send(&chat, "[[write:one.txt:1]] [[write:two.txt:2]] go").await;
    let mut stream = api.stream(&chat, None).await;
    let request = next_request(&mut stream).await;
    assert_eq!(server.mock.message_requests().last().unwrap().model(), Some("claude-sonnet-4-5"));

    // A new model while the turn waits: the model's next request uses it.
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/chats/{chat}"),
            Some(json!({"model": "claude-haiku-4-5", "max_thinking_tokens": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The CLI confirms both changes on the stream.
    let mut confirmed = Vec::new();
    while confirmed.len() < 2 {
        let event = stream.next().await;
        match event.data["subtype"].as_str() {
            Some("model_changed") => assert_eq!(event.data["model"], "claude-haiku-4-5"),
            Some("thinking_changed") => assert_eq!(event.data["max_thinking_tokens"], 0),
            _ => continue,
        }
        confirmed.push(event.data["subtype"].clone());
    }
    answer(&api, &chat, &request_id(&request), json!({"approved": true})).await;
    let second = next_request(&mut stream).await;
    // The CLI (2.1.332) applies a thinking budget from its next turn on; the model at once.
    assert_eq!(server.mock.message_requests().pop().unwrap().model(), Some("claude-haiku-4-5"));

    // Switching to bypassPermissions settles the open request and lets the call run.
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/chats/{chat}"),
            Some(json!({"permission_mode": "bypassPermissions"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rest = stream.until_completed(&message).await;
    assert_eq!(rest.last().unwrap().data["status"], "completed", "{:?}", kinds(&rest));
    let resolved = of_kind(&rest, "permission_resolved");
    let settled =
        resolved.iter().find(|e| e.data["request_id"] == second.data["request_id"]).unwrap();
    assert_eq!(
        (settled.data["approved"].as_bool(), settled.data["resolved_by"].as_str()),
        (Some(true), Some("mode_changed"))
    );
    let home = server.sandbox_home(&chat);
    assert!(home.join("one.txt").exists() && home.join("two.txt").exists());
    let models: Vec<Option<String>> =
        server.mock.message_requests().iter().map(|r| r.model().map(str::to_owned)).collect();
    assert_eq!(models.last().unwrap().as_deref(), Some("claude-haiku-4-5"), "{models:?}");

    // The next turn starts with the chat's new settings.
    let next = api.send(&chat, "[[write:three.txt:3]] more").await;
    let events = stream.until_completed(&next).await;
    assert_eq!(of_kind(&events, "permission_request").len(), 0);
    let last = server.mock.message_requests().pop().unwrap();
    assert_eq!(last.model(), Some("claude-haiku-4-5"));
    assert_eq!(last.body["thinking"], json!({"type": "disabled"}));
}

#[tokio::test]
async fn two_chats_with_open_requests_never_cross_answers() {
    let server = TestServer::start().await;
    let api = server.user("two@example.com").await;
    let other = server.user("intruder@example.com").await;
    let a = chat_in(&api, "ask").await;
    let b = chat_in(&api, "ask").await;
    let message_a = api.send(&a, "[[write:a.txt:A]] in a").await;
    let message_b = api.send(&b, "[[write:b.txt:B]] in b").await;
    let mut stream_a = api.stream(&a, None).await;
    let mut stream_b = api.stream(&b, None).await;
    let request_a = request_id(&next_request(&mut stream_a).await);
    let request_b = request_id(&next_request(&mut stream_b).await);

    // A request answered through the other chat, or by another user, is not found.
    let (status, body) = answer(&api, &b, &request_a, json!({"approved": true})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("permission_request_not_found"))
    );
    let (status, body) = answer(&other, &a, &request_a, json!({"approved": true})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("chat_not_found"))
    );
    let (status, _) = other.get(&format!("/api/v1/chats/{a}/permissions")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(pending(&api, &a).await.len(), 1);
    assert_eq!(pending(&api, &b).await.len(), 1);

    answer(&api, &b, &request_b, json!({"approved": false, "message": "not in b"})).await;
    answer(&api, &a, &request_a, json!({"approved": true})).await;
    assert_eq!(
        stream_a.until_completed(&message_a).await.last().unwrap().data["status"],
        "completed"
    );
    assert_eq!(
        stream_b.until_completed(&message_b).await.last().unwrap().data["status"],
        "completed"
    );
    assert!(server.sandbox_home(&a).join("a.txt").exists());
    assert!(!server.sandbox_home(&b).join("b.txt").exists());
}

async fn queue(api: &Api, chat: &str, prompt: &str) -> Value {
    let (status, body) = api
        .call(Method::POST, &format!("/api/v1/chats/{chat}/queue"), Some(json!({"prompt": prompt})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn queued(api: &Api, chat: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/chats/{chat}/queue")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// The prompts of a chat's user messages, in order.
async fn prompts(api: &Api, chat: &str) -> Vec<String> {
    api.messages(chat)
        .await
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"][0]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn queued_messages_run_in_order_after_the_current_turn() {
    let server = TestServer::start().await;
    let api = server.user("queue@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let first = api.send(&chat, "[[write:first.txt:1]] first").await;
    let mut stream = api.stream(&chat, None).await;
    // The turn waits for a person, so it surely still runs while prompts are queued.
    let request = next_request(&mut stream).await;

    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/messages"),
            Some(json!({"prompt": "not queued"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("turn_in_progress"))
    );
    let second = queue(&api, &chat, "[[text:two]] second").await;
    assert!(second.get("message_id").is_none(), "{second}");
    let third = queue(&api, &chat, "[[text:three]] third").await;
    let doomed = queue(&api, &chat, "[[text:never]] dropped").await;
    let listed: Vec<Value> = queued(&api, &chat).await.iter().map(|q| q["id"].clone()).collect();
    assert_eq!(listed, [second["id"].clone(), third["id"].clone(), doomed["id"].clone()]);

    // Edit one, delete one; bad edits change nothing.
    let third_path = format!("/api/v1/chats/{chat}/queue/{}", third["id"].as_str().unwrap());
    let (status, _) = api.call(Method::PATCH, &third_path, Some(json!({"prompt": "  "}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, edited) = api
        .call(
            Method::PATCH,
            &third_path,
            Some(json!({"prompt": "[[text:three, edited]] third, edited"})),
        )
        .await;
    assert_eq!(
        (status, edited["prompt"].as_str()),
        (StatusCode::OK, Some("[[text:three, edited]] third, edited"))
    );
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/chats/{chat}/queue/{}", doomed["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(queued(&api, &chat).await.len(), 2);

    answer(&api, &chat, &request_id(&request), json!({"approved": true})).await;
    stream.until_completed(&first).await;
    // The queued prompts follow, one turn each, in order.
    let mut completed = Vec::new();
    while completed.len() < 2 {
        let event = stream.next().await;
        if event.event == "message_completed" {
            assert_eq!(event.data["status"], "completed");
            completed.push(event.data["message_id"].clone());
        }
    }
    assert!(queued(&api, &chat).await.is_empty());
    assert_eq!(
        prompts(&api, &chat).await,
        [
            "[[write:first.txt:1]] first",
            "[[text:two]] second",
            "[[text:three, edited]] third, edited"
        ]
    );
    let said: Vec<String> =
        server.mock.message_requests().iter().filter_map(|r| r.prompt()).collect();
    let order: Vec<&str> = ["second", "third, edited"]
        .into_iter()
        .filter(|p| said.iter().any(|s| s.ends_with(p)))
        .collect();
    assert_eq!(order.len(), 2, "{said:?}");
    let position = |p: &str| said.iter().position(|s| s.ends_with(p)).unwrap();
    assert!(position("second") < position("third, edited"), "{said:?}");

    // With nothing running, a queued prompt starts at once.
    let now = queue(&api, &chat, "[[text:at once]] idle").await;
    let message = now["message_id"].as_str().expect("an idle chat starts a queued prompt at once");
    assert_eq!(stream.until_completed(message).await.last().unwrap().data["status"], "completed");
}

#[tokio::test]
async fn send_now_interrupts_the_turn_and_runs_the_queued_prompt_next() {
    let server = TestServer::start().await;
    let api = server.user("sendnow@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let first = api.send(&chat, "[[write:slow.txt:1]] first").await;
    let mut stream = api.stream(&chat, None).await;
    next_request(&mut stream).await;
    let later = queue(&api, &chat, "[[text:later]] later").await;
    let urgent = queue(&api, &chat, "[[text:urgent]] urgent").await;
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/queue/{}/send", urgent["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body["message_id"].is_null());
    let rest = stream.until_completed(&first).await;
    assert_eq!(rest.last().unwrap().data["status"], "interrupted");
    let mut statuses = Vec::new();
    while statuses.len() < 2 {
        let event = stream.next().await;
        if event.event == "message_completed" {
            statuses.push(event.data["status"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(statuses, ["completed", "completed"]);
    assert_eq!(
        prompts(&api, &chat).await,
        ["[[write:slow.txt:1]] first", "[[text:urgent]] urgent", "[[text:later]] later"]
    );
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/queue/{}/send", later["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a prompt that ran is no longer queued");
}

#[tokio::test]
async fn open_requests_and_queued_prompts_survive_a_crash_and_restart() {
    super::support::init_logs();
    let mock = mock_llm::MockLlm::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let uid_base = super::support::unique_uid_base();
    let (mut server, base) = super::support::spawn_server(data.path(), &mock, uid_base).await;
    let anonymous = Api { base, http: reqwest::Client::new(), token: None };
    let api = super::support::TestServerless(anonymous).user("restart@example.com").await;
    let chat = chat_in(&api, "ask").await;
    let message = api.send(&chat, "[[write:never.txt:x]] before the crash").await;
    let mut stream = api.stream(&chat, None).await;
    let request = next_request(&mut stream).await;
    let waiting = queue(&api, &chat, "[[text:after]] after the restart").await;
    // A reconnecting client sees the same open request.
    let again = api.stream(&chat, Some(request.id - 1)).await.next().await;
    assert_eq!(again.data, request.data);

    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let (_restarted, base) = super::support::spawn_server(data.path(), &mock, uid_base).await;
    let api = Api { base, ..api };

    // The open request was denied by the restart, and cannot be answered any more.
    let events = api.stream(&chat, Some(request.id)).await.until_completed(&message).await;
    let resolved = of_kind(&events, "permission_resolved")[0];
    assert_eq!(resolved.data["request_id"], request.data["request_id"]);
    assert_eq!(
        (resolved.data["approved"].as_bool(), resolved.data["resolved_by"].as_str()),
        (Some(false), Some("server_restarted"))
    );
    assert_eq!(events.last().unwrap().data["status"], "interrupted");
    assert!(pending(&api, &chat).await.is_empty());
    let (status, _) = answer(&api, &chat, &request_id(&request), json!({"approved": true})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The queued prompt is still there, paused until it is sent.
    let left = queued(&api, &chat).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], waiting["id"]);
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/queue/{}/send", left[0]["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let started = body["message_id"].as_str().unwrap();
    let events =
        api.stream(&chat, Some(events.last().unwrap().id)).await.until_completed(started).await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert!(!data.path().join("sandboxes").join(&chat).join("home/never.txt").exists());
}

#[tokio::test]
async fn custom_instructions_and_the_thinking_budget_reach_the_cli() {
    let server = TestServer::start().await;
    let api = server.user("instructions@example.com").await;
    let (status, settings) = api
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(json!({"custom_instructions": "Always answer in haiku (USER-RULE-42)."})),
        )
        .await;
    assert_eq!(
        (status, settings["custom_instructions"].as_str()),
        (StatusCode::OK, Some("Always answer in haiku (USER-RULE-42)."))
    );
    let chat = chat_with(&api, json!({"custom_instructions": "This chat is about boats (CHAT-RULE-7).", "max_thinking_tokens": 0})).await;
    let message = api.send(&chat, "[[text:ok]] hello").await;
    api.turn_events(&chat, &message).await;
    let request = server.mock.message_requests().pop().unwrap();
    let system = request.system_text();
    let (user_rule, chat_rule) = (system.find("USER-RULE-42"), system.find("CHAT-RULE-7"));
    assert!(user_rule.is_some() && chat_rule.is_some() && user_rule < chat_rule, "{system}");
    assert_eq!(request.body["thinking"], json!({"type": "disabled"}));

    // Changed between turns: the next turn runs with the new budget and instructions.
    let (status, chat_json) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/chats/{chat}"),
            Some(json!({"max_thinking_tokens": 2048, "custom_instructions": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{chat_json}");
    assert_eq!(
        (chat_json["max_thinking_tokens"].as_u64(), chat_json["custom_instructions"].as_str()),
        (Some(2048), None)
    );
    let message = api.send(&chat, "[[text:ok]] again").await;
    api.turn_events(&chat, &message).await;
    let request = server.mock.message_requests().pop().unwrap();
    assert_eq!(request.body["thinking"]["budget_tokens"], 2048);
    assert!(!request.system_text().contains("CHAT-RULE-7"));
    assert!(request.system_text().contains("USER-RULE-42"));

    for bad in
        [json!({"max_thinking_tokens": 5}), json!({"custom_instructions": "x".repeat(20_000)})]
    {
        let (status, _) =
            api.call(Method::PATCH, &format!("/api/v1/chats/{chat}"), Some(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn bypass_needs_an_isolating_sandbox_or_the_operators_consent() {
    let server = TestServer::start_with(|config| config.sandbox_provider = "host".into()).await;
    let api = server.user("bypass@example.com").await;
    let (status, body) = api
        .call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "bypassPermissions"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("bypass_not_allowed"))
    );
    let chat = api.new_chat().await;
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/chats/{chat}"),
            json!({"permission_mode": "bypassPermissions"}),
        ),
        (
            Method::POST,
            format!("/api/v1/chats/{chat}/messages"),
            json!({"prompt": "hi", "permission_mode": "bypassPermissions"}),
        ),
        (
            Method::POST,
            format!("/api/v1/chats/{chat}/queue"),
            json!({"prompt": "hi", "permission_mode": "bypassPermissions"}),
        ),
    ] {
        let (status, body) = api.call(method, &path, Some(body)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("bypass_not_allowed")),
            "{path}"
        );
    }
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["permission_mode"], "auto");
    assert!(api.messages(&chat).await.is_empty());

    let server = TestServer::start_with(|config| {
        config.sandbox_provider = "host".into();
        config.permissions.allow_bypass_without_isolation = true;
    })
    .await;
    let api = server.user("consent@example.com").await;
    let chat = chat_in(&api, "bypassPermissions").await;
    let message = api.send(&chat, "[[write:free.txt:x]] go").await;
    let events = api.turn_events(&chat, &message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert_eq!(of_kind(&events, "permission_request").len(), 0);
}
