//! Agent extensions end to end, with the real CLI, sandboxes and the mock model: a user's
//! command, skill and agent appear in the CLI's `system/init`, `/name args` sends the
//! command's text with `$ARGUMENTS` filled in, `Task` with the agent's name runs it with
//! the agent's prompt, a changed definition reaches the next turn
//! with a notice, a stdio MCP server the test writes connects and answers a tool call
//! (asked for in `auto`, like other risky tools) with an environment value from a secret
//! that no API answer and no file of the workspace holds, a server whose command fails shows
//! as failed, another user's definitions never reach this user's sandbox, and a link the
//! agent planted out of the workspace is not followed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, SseEvent, TestServer, files_containing};

async fn put(api: &Api, path: &str, body: Value) {
    let (status, answer) = api.call(Method::PUT, path, Some(body)).await;
    assert!(status == StatusCode::CREATED || status == StatusCode::OK, "{path}: {answer}");
}

async fn turn(api: &Api, chat: &str, prompt: &str) -> Vec<SseEvent> {
    let message = api.send(chat, prompt).await;
    api.turn_events(chat, &message)
        .await
        .into_iter()
        .filter(|e| e.data["message_id"] == message)
        .collect()
}

/// The turn's `system/init`, if the CLI started in it.
fn init_of(events: &[SseEvent]) -> Option<&Value> {
    events.iter().map(|e| &e.data).find(|d| d["type"] == "system" && d["subtype"] == "init")
}

fn names(init: &Value, key: &str) -> Vec<String> {
    init[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {init}"))
        .iter()
        .map(|v| {
            v.as_str()
                .map_or_else(|| v["name"].as_str().unwrap_or_default().to_owned(), str::to_owned)
        })
        .collect()
}

fn mcp_status(init: &Value, server: &str) -> Option<String> {
    init["mcp_servers"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == server)
        .and_then(|s| s["status"].as_str())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_skills_and_agents_reach_the_cli_and_a_change_the_next_turn() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    put(
        &alice,
        "/api/v1/commands/greet",
        json!({"description": "Greet someone", "content": "Please greet $ARGUMENTS warmly. [[text:greeted]]"}),
    )
    .await;
    put(
        &alice,
        "/api/v1/skills/checker",
        json!({"description": "Checks the build", "content": "Run the checks.", "files": {"scripts/check.sh": "echo ok"}}),
    )
    .await;
    put(
        &alice,
        "/api/v1/agents/reviewer",
        json!({"description": "Reviews code", "content": "You review code."}),
    )
    .await;

    let chat = alice.new_chat().await;
    let events = turn(&alice, &chat, "/greet the whole team").await;
    let init = init_of(&events).unwrap_or_else(|| panic!("no init: {events:?}"));
    assert!(names(init, "slash_commands").contains(&"greet".to_owned()), "{init}");
    assert!(names(init, "skills").contains(&"checker".to_owned()), "{init}");
    assert!(names(init, "agents").contains(&"reviewer".to_owned()), "{init}");
    let sent = server.mock.message_requests();
    assert!(
        sent.iter().any(|r| r
            .user_texts()
            .iter()
            .any(|t| t.contains("Please greet the whole team warmly."))),
        "the model got the command's text with the arguments: {:?}",
        sent.iter().map(|r| r.user_texts()).collect::<Vec<_>>()
    );
    let home = server.sandbox_home(&chat);
    let skill = std::fs::read_to_string(home.join(".claude/skills/checker/SKILL.md")).unwrap();
    assert!(
        skill.starts_with("---\nname: checker\ndescription: \"Checks the build\"\n---"),
        "{skill}"
    );
    assert!(home.join(".claude/skills/checker/scripts/check.sh").is_file());

    // The model calling `Task` with the agent's name runs it: the sub-agent's request has
    // the agent's prompt as its system text.
    let task = json!({"description": "Review it", "prompt": "[[text:looks fine]] review-task",
                      "subagent_type": "reviewer", "run_in_background": false});
    let events = turn(&alice, &chat, &format!("[[tool:Task:{task}]] delegate")).await;
    assert!(events.iter().any(|e| e.event == "message_completed"), "{events:?}");
    assert!(
        server.mock.message_requests().iter().any(|r| {
            r.user_texts().iter().any(|t| t.contains("review-task"))
                && r.system_text().contains("You review code.")
        }),
        "the sub-agent ran with the agent's prompt"
    );

    // A file of the user's own in the same directory is left alone when a definition goes.
    std::fs::write(home.join(".claude/commands/mine.md"), "Mine.").unwrap();
    put(
        &alice,
        "/api/v1/commands/greet",
        json!({"content": "Now wave at $ARGUMENTS. [[text:waved]]"}),
    )
    .await;
    let (status, _) = alice.call(Method::DELETE, "/api/v1/agents/reviewer", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let events = turn(&alice, &chat, "/greet everyone").await;
    let notice = events
        .iter()
        .find(|e| e.data["subtype"] == "extensions_changed")
        .unwrap_or_else(|| panic!("no notice: {events:?}"));
    let text = notice.data["text"].as_str().unwrap();
    assert!(
        text.starts_with("Extensions changed: ")
            && text.contains("command greet changed")
            && text.contains("agent reviewer removed"),
        "{text}"
    );
    let init = init_of(&events).expect("a new CLI process");
    assert!(!names(init, "agents").contains(&"reviewer".to_owned()), "{init}");
    assert!(names(init, "slash_commands").contains(&"mine".to_owned()), "{init}");
    assert!(
        server
            .mock
            .message_requests()
            .iter()
            .any(|r| r.user_texts().iter().any(|t| t.contains("Now wave at everyone."))),
        "the changed command reached the model"
    );
    assert!(!home.join(".claude/agents/reviewer.md").exists());
    assert!(home.join(".claude/commands/mine.md").is_file());

    // Nothing changed: the kept CLI serves the next turn, and no notice.
    let events = turn(&alice, &chat, "[[text:plain]] plain").await;
    assert!(!events.iter().any(|e| e.data["subtype"] == "extensions_changed"), "{events:?}");

    // Another user's sandbox gets none of Alice's definitions.
    let bob = server.user("bob@example.com").await;
    let bob_chat = bob.new_chat().await;
    let events = turn(&bob, &bob_chat, "[[text:hello]] bob").await;
    let init = init_of(&events).expect("bob's CLI started");
    for (key, name) in [("slash_commands", "greet"), ("skills", "checker")] {
        assert!(!names(init, key).contains(&name.to_owned()), "{key}: {init}");
    }
    assert!(!server.sandbox_home(&bob_chat).join(".claude/commands/greet.md").exists());
    // Without definitions, agentbox writes nothing into a workspace.
    assert!(!server.sandbox_home(&bob_chat).join(".claude/.agentbox-extensions.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_out_of_the_workspace_is_not_followed_and_the_turn_goes_on() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    put(&alice, "/api/v1/commands/greet", json!({"content": "Greet $ARGUMENTS."})).await;
    let chat = alice.new_chat().await;
    let response = alice
        .request(Method::PUT, &format!("/api/v1/chats/{chat}/files/content?path=hello.txt"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // What an agent could plant: `~/.claude/commands` as a link to a directory outside.
    let outside = tempfile::tempdir().unwrap();
    let home = server.sandbox_home(&chat);
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::os::unix::fs::symlink(outside.path(), home.join(".claude/commands")).unwrap();

    let events = turn(&alice, &chat, "[[text:still here]] hostile").await;
    let notice = events
        .iter()
        .find(|e| e.data["subtype"] == "extensions_not_installed")
        .unwrap_or_else(|| panic!("no notice: {events:?}"));
    assert!(notice.data["text"].as_str().unwrap().contains("~/.claude"), "{notice:?}");
    assert!(events.iter().any(|e| e.event == "assistant_text"), "the turn ran: {events:?}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside");
}

/// An MCP server over stdio: initialize, tools/list, and tools/call of `echo`, which answers
/// with the text and the reversed value of `$TOK` (so that the secret itself never travels
/// back through the conversation).
const MCP_SERVER: &str = r#"import json, os, sys
for line in sys.stdin:
    message = json.loads(line)
    method, ident = message.get("method"), message.get("id")
    if method == "initialize":
        result = {"protocolVersion": message["params"].get("protocolVersion", "2024-11-05"),
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "test", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [{"name": "echo", "description": "Echo a text",
                             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}]}
    elif method == "tools/call":
        text = message["params"]["arguments"].get("text", "")
        result = {"content": [{"type": "text", "text": "echo:" + text + " tok-reversed:" + os.environ.get("TOK", "unset")[::-1]}]}
    else:
        continue
    if ident is not None:
        print(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}), flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stdio_mcp_server_connects_answers_and_gets_its_secret_in_its_environment_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let marker = format!("mcpmarker{}", uuid::Uuid::new_v4().simple());
    let (status, _) =
        alice.call(Method::PUT, "/api/v1/secrets/MCP_TOKEN", Some(json!({"value": marker}))).await;
    assert_eq!(status, StatusCode::OK);
    let chat = alice.new_chat().await;
    let response = alice
        .request(Method::PUT, &format!("/api/v1/chats/{chat}/files/content?path=mcp_server.py"))
        .body(MCP_SERVER)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{:?}", response.text().await);
    // The chat's own servers: one that works, one whose command does not exist.
    put(
        &alice,
        &format!("/api/v1/chats/{chat}/mcp-servers/tools"),
        json!({"type": "stdio", "command": "python3", "args": ["/home/user/mcp_server.py"],
               "env": {"TOK": {"secret": "MCP_TOKEN"}}}),
    )
    .await;
    put(
        &alice,
        &format!("/api/v1/chats/{chat}/mcp-servers/broken"),
        json!({"type": "stdio", "command": "/home/user/no-such-program"}),
    )
    .await;

    let message = alice.send(&chat, "[[tool:mcp__tools__echo:{\"text\":\"ping\"}]] mcp-1").await;
    let mut stream = alice.stream(&chat, None).await;
    // An MCP tool asks in `auto`, like any tool the policy does not know to be safe.
    let before = stream.until("permission_request").await;
    let request = before.last().unwrap();
    assert_eq!(request.data["tool_name"], "mcp__tools__echo");
    let init = init_of(&before).unwrap_or_else(|| panic!("no init: {before:?}"));
    assert_eq!(mcp_status(init, "tools").as_deref(), Some("connected"), "{init}");
    assert_eq!(mcp_status(init, "broken").as_deref(), Some("failed"), "{init}");
    let request_id = request.data["request_id"].as_str().unwrap();
    let (status, body) = alice
        .call(
            Method::POST,
            &format!("/api/v1/chats/{chat}/permissions/{request_id}"),
            Some(json!({"approved": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = stream.until_completed(&message).await;
    let result = events
        .iter()
        .find(|e| e.event == "tool_completed")
        .unwrap_or_else(|| panic!("no tool_completed: {events:?}"));
    let text = result.data["tool"]["result"].to_string();
    let reversed: String = marker.chars().rev().collect();
    assert!(text.contains("echo:ping") && text.contains(&reversed), "{text}");

    // The value is in no API answer, no event and no file of the workspace.
    for path in [
        "/api/v1/mcp-servers".to_owned(),
        format!("/api/v1/chats/{chat}/mcp-servers"),
        format!("/api/v1/chats/{chat}/mcp-servers/tools"),
        format!("/api/v1/chats/{chat}/messages"),
    ] {
        let (status, body) = alice.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.to_string().contains(&marker), "{path}: {body}");
    }
    let shown = alice.get(&format!("/api/v1/chats/{chat}/mcp-servers/tools")).await.1;
    assert_eq!(shown["env"]["TOK"], json!({"secret": "MCP_TOKEN"}));
    assert_eq!(shown["source"], "chat");
    let leaked = files_containing(&server.sandbox_home(&chat), &[marker.as_str()]);
    assert!(leaked.is_empty(), "{leaked:?}");

    // The chat's status: what the CLI reported, and each definition of the chat.
    let (status, report) = alice.get(&format!("/api/v1/chats/{chat}/extensions/status")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(report["reported_at"].is_string(), "{report}");
    let servers: Vec<(String, String)> = report["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned()))
        .collect();
    assert!(servers.contains(&("tools".into(), "connected".into())), "{report}");
    assert!(servers.contains(&("broken".into(), "failed".into())), "{report}");
    let loaded: Vec<(&str, bool)> = report["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["loaded"].as_bool().unwrap()))
        .collect();
    assert_eq!(loaded, [("broken", false), ("tools", true)], "{report}");

    // Another user's chat gets none of Alice's servers.
    let bob = server.user("bob@example.com").await;
    let bob_chat = bob.new_chat().await;
    let events = turn(&bob, &bob_chat, "[[text:hello]] bob").await;
    let init = init_of(&events).expect("bob's CLI started");
    assert_eq!(init["mcp_servers"], json!([]), "{init}");
}
