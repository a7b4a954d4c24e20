//! `--max-kept-cli`: with a cap of one kept CLI process, a turn in a second chat ends the
//! first chat's kept process (counted in `/metrics`), and the first chat's next turn resumes
//! its session in a new process: the model still sees the earlier turn.

use super::ops::scrape;
use super::support::{Api, TestServer, kinds};

async fn turn(api: &Api, chat: &str, prompt: &str) {
    let message = api.send(chat, prompt).await;
    let events = api.stream(chat, None).await.until_completed(&message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
}

const EVICTED: &str = "agentbox_kept_cli_evicted_total";
const KEPT: &str = "agentbox_kept_cli_processes";

#[tokio::test]
async fn the_least_recently_used_kept_cli_is_ended_and_its_chat_resumes() {
    let server = TestServer::start_with(|config| {
        config.idle_session = std::time::Duration::from_secs(600);
        config.max_kept_cli = 1;
    })
    .await;
    let api = server.user("kept@example.com").await;
    let a = api.new_chat().await;
    let b = api.new_chat().await;

    turn(&api, &a, "[[text:the secret word is plum]] remember this").await;
    let (after_a, text) = scrape(&api).await;
    assert_eq!(after_a.value(KEPT, &[]), 1.0, "{text}");

    // B's CLI is kept in A's place: A's is ended.
    turn(&api, &b, "[[text:hello from b]] chat b").await;
    let (after_b, text) = scrape(&api).await;
    assert_eq!(after_b.value(KEPT, &[]), 1.0, "{text}");
    // Other tests of this process may evict too (`cargo test` runs them on threads).
    let evicted = after_b.value(EVICTED, &[]) - after_a.value(EVICTED, &[]);
    assert!(evicted >= 1.0, "evicted {evicted}:\n{text}");

    // A's next turn starts a new process that resumes A's session: the model sees the
    // earlier turn. B's kept process is ended for it, which shows B's was the one kept.
    turn(&api, &a, "what was the word?").await;
    let (after_a2, text) = scrape(&api).await;
    assert_eq!(after_a2.value(KEPT, &[]), 1.0, "{text}");
    let evicted = after_a2.value(EVICTED, &[]) - after_b.value(EVICTED, &[]);
    assert!(evicted >= 1.0, "evicted {evicted}:\n{text}");

    let last = server.mock.message_requests().pop().unwrap();
    let history = last.user_texts();
    assert!(history.iter().any(|t| t.contains("remember this")), "{history:?}");
    assert!(history.iter().any(|t| t.contains("what was the word?")), "{history:?}");
    assert!(!history.iter().any(|t| t.contains("chat b")), "B's turn leaked into A: {history:?}");
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
}

#[tokio::test]
async fn a_cap_of_zero_keeps_no_cli_and_turns_still_continue() {
    let server = TestServer::start_with(|config| config.max_kept_cli = 0).await;
    let api = server.user("keepnone@example.com").await;
    let chat = api.new_chat().await;
    turn(&api, &chat, "[[text:noted the colour teal]] remember teal").await;
    let (scrape1, text) = scrape(&api).await;
    assert_eq!(scrape1.value(KEPT, &[]), 0.0, "{text}");
    turn(&api, &chat, "which colour?").await;
    let last = server.mock.message_requests().pop().unwrap();
    assert!(last.user_texts().iter().any(|t| t.contains("remember teal")));
}
