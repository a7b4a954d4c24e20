//! Whole turns: the real CLI in a host sandbox, the scripted model, events over SSE.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Db, TestServer, assert_strictly_increasing, kinds};

#[tokio::test]
async fn a_turn_streams_thinking_text_and_a_bash_call_that_writes_a_file() {
    a_turn_streams_thinking_text_and_a_bash_call_that_writes_a_file_on(Db::Sqlite).await;
}

#[tokio::test]
async fn a_turn_streams_thinking_text_and_a_bash_call_that_writes_a_file_on_postgres() {
    a_turn_streams_thinking_text_and_a_bash_call_that_writes_a_file_on(Db::Postgres).await;
}

async fn a_turn_streams_thinking_text_and_a_bash_call_that_writes_a_file_on(db: Db) {
    let server = TestServer::start_on(db, "a_turn_streams_thinking_").await;
    let api = server.user("turn@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[think]] [[write:hello.txt:hi there]] make a file").await;
    let events = api.turn_events(&chat, &message).await;

    assert_eq!(
        kinds(&events),
        [
            "user_text",
            "system/init",
            "assistant_thinking",
            "assistant_text",
            "tool_started",
            "tool_completed",
            "assistant_text",
            "usage",
            "message_completed"
        ]
    );
    assert_strictly_increasing(&events);
    assert_eq!(events[0].id, 1);
    let tool = &events[4].data["tool"];
    assert_eq!(tool["name"], "Bash");
    assert_eq!(events[5].data["tool"]["id"], tool["id"]);
    assert_eq!(events[5].data["tool"]["result"], "written");
    assert_eq!(events[8].data["status"], "completed");
    // The Bash call really ran, in the chat's own directory.
    let written = std::fs::read_to_string(server.sandbox_home(&chat).join("hello.txt")).unwrap();
    assert_eq!(written, "hi there");

    // GET messages holds the same events, split into the user's and the assistant's message.
    let messages = api.messages(&chat).await;
    assert_eq!(messages.len(), 2);
    let (user, assistant) = (&messages[0], &messages[1]);
    assert_eq!((user["role"].as_str(), user["status"].as_str()), (Some("user"), Some("completed")));
    assert_eq!(assistant["id"], message);
    assert_eq!(assistant["status"], "completed");
    assert!(assistant["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(assistant["total_cost_usd"].as_f64().is_some());
    let stored: Vec<&Value> = user["content"]
        .as_array()
        .unwrap()
        .iter()
        .chain(assistant["content"].as_array().unwrap())
        .collect();
    let streamed: Vec<&Value> = events.iter().map(|e| &e.data).collect();
    assert_eq!(stored, streamed, "GET messages and the stream disagree");

    // The model saw the prompt; the system prompt is the CLI's own.
    let requests = server.mock.message_requests();
    assert_eq!(requests.len(), 2, "one call for the tool, one after its result");
    assert_eq!(
        requests[0].prompt().as_deref(),
        Some("[[think]] [[write:hello.txt:hi there]] make a file")
    );
    assert_eq!(requests[0].model(), Some("claude-sonnet-4-5"));
    assert!(requests[1].tool_results().iter().any(|r| r.to_string().contains("written")));
}

async fn second_turn_sees_the_first(idle_session_secs: u64) {
    let server = TestServer::start_with(|config| {
        config.idle_session = std::time::Duration::from_secs(idle_session_secs);
    })
    .await;
    let api = server.user("resume@example.com").await;
    let chat = api.new_chat().await;
    let first = api.send(&chat, "[[text:the secret word is plum]] remember this").await;
    let events = api.turn_events(&chat, &first).await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let (_, chat_after_first) = api.get(&format!("/api/v1/chats/{chat}")).await;
    let session = chat_after_first["session_id"].as_str().unwrap().to_owned();

    let second = api.send(&chat, "what was the word?").await;
    let mut stream = api.stream(&chat, Some(events.last().unwrap().id)).await;
    let events = stream.until_completed(&second).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));

    let last = server.mock.message_requests().pop().unwrap();
    let history = last.user_texts();
    assert!(
        history.iter().any(|t| t.contains("remember this")),
        "first prompt missing: {history:?}"
    );
    assert!(history.iter().any(|t| t.contains("what was the word?")));
    let assistant_said: Vec<String> = last
        .messages()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| m["content"].to_string())
        .collect();
    assert!(
        assistant_said.iter().any(|t| t.contains("the secret word is plum")),
        "{assistant_said:?}"
    );
    let messages = api.messages(&chat).await;
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[3]["session_id"], session, "the second turn ran in another CLI session");
}

#[tokio::test]
async fn the_second_turn_continues_the_same_cli_process() {
    second_turn_sees_the_first(600).await;
}

#[tokio::test]
async fn the_second_turn_resumes_the_session_in_a_new_process() {
    second_turn_sees_the_first(0).await;
}

#[tokio::test]
async fn interrupting_a_long_turn_leaves_it_interrupted() {
    let server = TestServer::start().await;
    let api = server.user("stop@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[sleep:120]] take your time").await;
    let mut stream = api.stream(&chat, None).await;
    stream.until("tool_started").await;

    // One turn at a time: a second prompt is refused and changes nothing.
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/messages"),
            Some(json!({"prompt": "me too"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "turn_in_progress");
    assert_eq!(api.messages(&chat).await.len(), 2);
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["status"], "running");

    let (status, body) =
        api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/stream"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["message_id"], message);
    let rest = stream.until_completed(&message).await;
    assert_eq!(rest.last().unwrap().data["status"], "interrupted");
    assert!(
        !kinds(&rest).contains(&"error".to_owned()),
        "an interrupt is not an error: {:?}",
        kinds(&rest)
    );
    let messages = api.messages(&chat).await;
    assert_eq!(messages[1]["status"], "interrupted");

    // Nothing to interrupt any more, and the chat takes the next turn.
    let (status, body) =
        api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/stream"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_running_turn"))
    );
    let next = api.send(&chat, "[[text:back again]] hello").await;
    let events = stream.until_completed(&next).await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
}

#[tokio::test]
async fn last_event_id_replays_exactly_the_events_after_it() {
    last_event_id_replays_exactly_the_events_after_it_on(Db::Sqlite).await;
}

#[tokio::test]
async fn last_event_id_replays_exactly_the_events_after_it_on_postgres() {
    last_event_id_replays_exactly_the_events_after_it_on(Db::Postgres).await;
}

async fn last_event_id_replays_exactly_the_events_after_it_on(db: Db) {
    let server = TestServer::start_on(db, "last_event_id_replays_ex").await;
    let api = server.user("replay@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[steps:2]] count").await;
    let all = api.turn_events(&chat, &message).await;
    assert_strictly_increasing(&all);
    let last = all.last().unwrap().id;
    for n in [0, 1, 4, last - 1] {
        let mut stream = api.stream(&chat, Some(n)).await;
        let mut got = Vec::new();
        while got.last().is_none_or(|e: &super::support::SseEvent| e.id < last) {
            got.push(stream.next().await);
        }
        let want: Vec<i64> = all.iter().map(|e| e.id).filter(|id| *id > n).collect();
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), want, "after {n}");
        assert_eq!(
            got.iter().map(|e| &e.data).collect::<Vec<_>>(),
            all.iter().filter(|e| e.id > n).map(|e| &e.data).collect::<Vec<_>>()
        );
    }
    // The query parameter works like the header; garbage is refused.
    let response = api
        .request(Method::GET, &format!("/api/v1/chats/{chat}/stream?last_event_id={}", last - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = api
        .call(Method::GET, &format!("/api/v1/chats/{chat}/stream?last_event_id=abc"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_last_event_id"))
    );
    let (status, body) =
        api.call(Method::GET, &format!("/api/v1/chats/{chat}/stream?deltas=maybe"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}

#[tokio::test]
async fn a_live_subscriber_and_a_late_one_see_the_same_turn() {
    let server = TestServer::start().await;
    let api = server.user("live@example.com").await;
    let chat = api.new_chat().await;
    let mut early = api.stream(&chat, None).await;
    let message = api.send(&chat, "[[slow:30]] [[steps:3]] go slowly").await;
    let live = early.until_completed(&message).await;
    let late = api.turn_events(&chat, &message).await;
    assert_strictly_increasing(&live);
    let ids = |events: &[super::support::SseEvent]| events.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&live), ids(&late));
    assert_eq!(ids(&live), (1..=live.len() as i64).collect::<Vec<_>>(), "a gap or a duplicate");
}

#[tokio::test]
async fn a_model_error_fails_the_turn_and_the_chat_goes_on() {
    let server = TestServer::start().await;
    let api = server.user("modelerror@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[error:500]] this will fail").await;
    let events = api.turn_events(&chat, &message).await;
    let errors: Vec<&super::support::SseEvent> =
        events.iter().filter(|e| e.event == "error").collect();
    assert_eq!(errors.len(), 1, "{:?}", kinds(&events));
    assert!(errors[0].data["message"].as_str().unwrap().contains("500"), "{}", errors[0].data);
    assert_eq!(events.last().unwrap().data["status"], "failed");
    assert_eq!(api.messages(&chat).await[1]["status"], "failed");

    let next = api.send(&chat, "[[text:fine now]] again").await;
    let events =
        api.stream(&chat, Some(events.last().unwrap().id)).await.until_completed(&next).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", events);
}

/// A Bash command that kills the CLI running it: the nearest ancestor named `claude`.
const KILL_THE_CLI: &str = "p=$$; while [ \"$p\" -gt 1 ]; do if [ \"$(cat /proc/$p/comm)\" = claude ]; \
                            then kill -9 $p; fi; p=$(cut -d' ' -f4 /proc/$p/stat); done";

#[tokio::test]
async fn a_cli_crash_fails_the_turn_and_the_chat_goes_on() {
    let server = TestServer::start().await;
    let api = server.user("crash@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, &format!("[[bash:{KILL_THE_CLI}]] crash")).await;
    let events = api.turn_events(&chat, &message).await;
    let error = events.iter().find(|e| e.event == "error").expect("an error event");
    assert_eq!(error.data["code"], "cli_exited", "{}", error.data);
    assert!(error.data["message"].as_str().unwrap().contains("signal 9"), "{}", error.data);
    assert_eq!(events.last().unwrap().data["status"], "failed");

    let next = api.send(&chat, "[[text:still here]] hello?").await;
    let events =
        api.stream(&chat, Some(events.last().unwrap().id)).await.until_completed(&next).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
}

#[tokio::test]
async fn without_model_credentials_a_turn_explains_how_to_configure_one() {
    let server = TestServer::start_with(|config| {
        config.anthropic_api_key = None;
    })
    .await;
    let (_, health) = server.api().get("/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["model"]["status"], "not_configured");
    let api = server.user("nokey@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "hello").await;
    let events = api.turn_events(&chat, &message).await;
    let error = events.iter().find(|e| e.event == "error").expect("an error event");
    assert_eq!(error.data["code"], "model_not_configured");
    assert!(error.data["message"].as_str().unwrap().contains("ANTHROPIC_API_KEY"));
    assert!(error.data["message"].as_str().unwrap().contains("--demo"));
    assert_eq!(events.last().unwrap().data["status"], "failed");
    assert!(server.mock.requests().is_empty(), "no model call without credentials");
}

#[tokio::test]
async fn deleting_a_chat_stops_its_turn_and_removes_its_sandbox() {
    let server = TestServer::start().await;
    let api = server.user("delete@example.com").await;
    let chat = api.new_chat().await;
    api.send(&chat, "[[sleep:120]] long").await;
    api.stream(&chat, None).await.until("tool_started").await;
    assert!(server.sandbox_home(&chat).exists());
    let (status, _) = api.call(Method::DELETE, &format!("/api/v1/chats/{chat}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!server.sandbox_home(&chat).exists());
    let (status, _) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The raw frames (`id`, `event`, `data`) of an open stream until `message_id` completes.
async fn raw_frames(
    response: reqwest::Response,
    message_id: &str,
) -> Vec<(Option<String>, String, Value)> {
    use futures::StreamExt;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + super::support::PATIENCE;
    let done = format!("\"message_id\":\"{message_id}\",\"created_at\"");
    while !(text.contains("event: message_completed") && text.contains(&done)) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("the turn did not complete")
            .expect("the stream ended")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text.split("\n\n")
        .filter_map(|frame| {
            let field = |name: &str| {
                frame.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
            };
            let event = field("event:")?;
            Some((field("id:"), event, serde_json::from_str(&field("data:")?).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn text_streams_as_the_model_writes_it_to_streams_that_ask() {
    let server = TestServer::start().await;
    let api = server.user("deltas@example.com").await;
    let chat = api.new_chat().await;
    let reply = "Streaming text arrives in pieces, long before the block is complete.";

    // A slow model: the text comes in several pieces over time. The stream is open (and
    // subscribed) before the turn starts, so no piece can pass before it.
    let path = format!("/api/v1/chats/{chat}/stream?deltas=true");
    let stream = api.request(Method::GET, &path).send().await.unwrap();
    let message = api.send(&chat, &format!("[[slow:50]] [[text:{reply}]] go")).await;
    let frames = raw_frames(stream, &message).await;
    let deltas: Vec<&(Option<String>, String, Value)> =
        frames.iter().filter(|(_, event, _)| event == "assistant_text_delta").collect();
    assert!(deltas.len() > 1, "the text came whole: {frames:?}");
    for (id, _, data) in &deltas {
        assert!(id.is_none(), "a transient event has no id");
        assert!(data.get("seq").is_none());
        assert_eq!(data["message_id"], message.as_str());
    }
    let joined: String = deltas.iter().map(|(_, _, d)| d["text"].as_str().unwrap()).collect();
    assert_eq!(joined, reply);
    // The durable text follows the pieces and holds the whole of it.
    let last_delta = frames.iter().rposition(|(_, e, _)| e == "assistant_text_delta").unwrap();
    let text = frames.iter().position(|(_, e, _)| e == "assistant_text").unwrap();
    assert!(text > last_delta);
    assert_eq!(frames[text].2["text"], reply);
    assert!(
        frames.iter().filter(|(_, e, _)| e != "assistant_text_delta").all(|(id, ..)| id.is_some())
    );

    // Without asking, a stream carries only the log (and the log holds no delta).
    let last = frames.iter().rev().find_map(|(id, ..)| id.clone()).unwrap();
    let path = format!("/api/v1/chats/{chat}/stream?last_event_id={last}");
    let stream = api.request(Method::GET, &path).send().await.unwrap();
    let second = api.send(&chat, &format!("[[slow:50]] [[text:{reply}]] again")).await;
    let frames = raw_frames(stream, &second).await;
    assert!(frames.iter().all(|(id, event, _)| id.is_some() && event != "assistant_text_delta"));
    assert!(frames.iter().any(|(_, event, _)| event == "assistant_text"));
}

#[tokio::test]
async fn thinking_streams_as_the_model_thinks_to_streams_that_ask() {
    let server = TestServer::start().await;
    let api = server.user("thinking-deltas@example.com").await;
    let chat = api.new_chat().await;
    let path = format!("/api/v1/chats/{chat}/stream?deltas=true");
    let stream = api.request(Method::GET, &path).send().await.unwrap();
    let message = api.send(&chat, "[[slow:50]] [[think]] [[text:thought it through]] go").await;
    let frames = raw_frames(stream, &message).await;
    let deltas: Vec<&(Option<String>, String, Value)> =
        frames.iter().filter(|(_, event, _)| event == "assistant_thinking_delta").collect();
    assert!(!deltas.is_empty(), "no thinking delta: {frames:?}");
    for (id, _, data) in &deltas {
        assert!(id.is_none(), "a transient event has no id");
        assert_eq!(data["message_id"], message.as_str());
    }
    // The pieces make the whole block, and the durable block follows them.
    let joined: String = deltas.iter().map(|(_, _, d)| d["text"].as_str().unwrap()).collect();
    let last_delta = frames.iter().rposition(|(_, e, _)| e == "assistant_thinking_delta").unwrap();
    let thinking = frames.iter().position(|(_, e, _)| e == "assistant_thinking").unwrap();
    assert!(thinking > last_delta);
    assert_eq!(frames[thinking].2["thinking"], joined.as_str());
}
