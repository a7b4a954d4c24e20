//! The chat's sandbox over the API: a whole turn inside it, the files API with its escape
//! attempts, and terminals over a real WebSocket.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::support::{Api, PATIENCE, TestServer, kinds};

/// The text of the turn's first tool result (or failure).
fn first_tool_output(events: &[super::support::SseEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e.event.as_str() {
            "tool_completed" => e.data["tool"]["result"].as_str().map(str::to_owned),
            "tool_failed" => e.data["tool"]["error"].as_str().map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no tool result in {:?}", kinds(events)))
}

#[tokio::test]
async fn a_turn_runs_inside_the_sandbox_as_the_unprivileged_user() {
    let server = TestServer::start().await;
    let api = server.user("inside@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[bash:id -un; id -u; hostname; pwd]] who are you").await;
    let events = api.turn_events(&chat, &message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    let output = first_tool_output(&events);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines[..2], ["user", "1000"], "{output}");
    assert_eq!(lines[3], "/home/user");
    let init = events.iter().find(|e| e.data["subtype"] == "init").unwrap();
    assert_eq!(init.data["cwd"], "/home/user");
    // The model was reached through the egress proxy: the mock saw both calls.
    assert_eq!(server.mock.message_requests().len(), 2);
    let (_, sandbox) = api.get(&format!("/api/v1/chats/{chat}/sandbox")).await;
    assert_eq!(
        (sandbox["provider"].as_str(), sandbox["isolated"].as_bool()),
        (Some("local"), Some(true))
    );
    assert_eq!(sandbox["status"], "running");
    // The chat itself says where its sandbox stands.
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["sandbox_status"], "running");
    let (status, paused) =
        api.call(Method::POST, &format!("/api/v1/chats/{chat}/sandbox/pause"), None).await;
    assert_eq!((status, paused["status"].as_str()), (StatusCode::OK, Some("paused")));
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["sandbox_status"], "paused");
    // The next turn resumes it by itself.
    let next = api.send(&chat, "[[text:awake]] hello again").await;
    let events =
        api.stream(&chat, Some(events.last().unwrap().id)).await.until_completed(&next).await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let (_, chat_json) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["sandbox_status"], "running");
    let fresh = api.new_chat().await;
    let (_, fresh_json) = api.get(&format!("/api/v1/chats/{fresh}")).await;
    assert_eq!(fresh_json["sandbox_status"], "stopped", "a new chat's sandbox starts on first use");
}

async fn raw(api: &Api, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let response = api.request(method, path).body(body).send().await.unwrap();
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_files_api_works_inside_the_workspace_and_nowhere_else() {
    let server = TestServer::start().await;
    let api = server.user("files@example.com").await;
    let chat = api.new_chat().await;
    let base = format!("/api/v1/chats/{chat}/files");

    let (status, body) = raw(
        &api,
        Method::PUT,
        &format!("{base}/content?path=src/main.py"),
        b"print('hi')\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, body) =
        raw(&api, Method::GET, &format!("{base}/content?path=/home/user/src/main.py"), vec![])
            .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, b"print('hi')\n".as_slice()));
    let (status, dir) =
        api.call(Method::POST, &format!("{base}/directory?path=empty/inner"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{dir}");
    let (_, listing) = api.get(&format!("{base}?path=")).await;
    let names: Vec<&str> =
        listing.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"src") && names.contains(&"empty"), "{listing}");
    let (status, moved) = api
        .call(
            Method::POST,
            &format!("{base}/move"),
            Some(json!({"from": "src/main.py", "to": "src/app.py"})),
        )
        .await;
    assert_eq!((status, moved["path"].as_str()), (StatusCode::OK, Some("src/app.py")));

    // What the API wrote belongs to the sandbox's user: the agent can change it.
    let message = api
        .send(&chat, "[[bash:echo more >> src/app.py && cat src/app.py && ls -ln src]] edit")
        .await;
    let events = api.turn_events(&chat, &message).await;
    let output = first_tool_output(&events);
    assert!(output.contains("print('hi')\nmore") && output.contains(" 1000 1000 "), "{output}");

    // Escapes: climbing out, absolute paths elsewhere, and links the agent planted.
    let plant = api
        .send(&chat, "[[bash:ln -s / rootlink && ln -s /etc/hostname hostlink && ln -s .. up && echo planted]] plant")
        .await;
    api.stream(&chat, Some(events.last().unwrap().id)).await.until_completed(&plant).await;
    let outside = server.data_dir.join("secret.key");
    let before = std::fs::read(&outside).unwrap();
    for path in [
        "../../secret.key".to_owned(),
        "/etc/passwd".to_owned(),
        outside.display().to_string(),
        "/home/user/../../etc/passwd".to_owned(),
        "rootlink/etc/passwd".to_owned(),
        "hostlink".to_owned(),
        "up/home/secret.key".to_owned(),
    ] {
        let (status, body) = api.get(&format!("{base}/content?path={path}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "path_outside_workspace", "{path}");
        let (status, _) =
            raw(&api, Method::PUT, &format!("{base}/content?path={path}"), b"overwritten".to_vec())
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "upload through {path}");
        let (status, _) = api.get(&format!("{base}?path={path}")).await;
        assert!(status.is_client_error(), "listing {path}");
    }
    let (status, _) =
        raw(&api, Method::PUT, &format!("{base}/content?path=rootlink/tmp/x"), b"x".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(std::fs::read(&outside).unwrap(), before, "a file outside the workspace changed");
    // The links are shown as links and can be deleted without touching their targets.
    let (_, link) = api.get(&format!("{base}/stat?path=rootlink")).await;
    assert_eq!((link["kind"].as_str(), link["link_target"].as_str()), (Some("symlink"), Some("/")));
    let (status, _) = api.call(Method::DELETE, &format!("{base}?path=rootlink"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(std::path::Path::new("/etc/passwd").exists());

    // The zip holds the workspace, links as links, and nothing from outside.
    let (status, zip) = raw(&api, Method::GET, &format!("{base}/zip"), vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(
        names.contains(&"src/app.py".to_owned()) && names.contains(&"empty/inner/".to_owned()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("up/") || n.contains("secret")), "{names:?}");
    let mut app = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("src/app.py").unwrap(), &mut app).unwrap();
    assert_eq!(app, "print('hi')\nmore\n");
    assert!(archive.by_name("hostlink").unwrap().is_symlink());

    // Someone else's chat is not found; a missing file is a 404.
    let other = server.user("nosy@example.com").await;
    let (status, _) = other.get(&format!("{base}?path=")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api.get(&format!("{base}/content?path=nope.txt")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("file_not_found"))
    );
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(api: &Api, chat: &str, query: &str) -> Result<Socket, u16> {
    let url =
        format!("{}/api/v1/chats/{chat}/terminal?{query}", api.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = &api.token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(err) => panic!("{err}"),
    }
}

/// Read the socket until its terminal output contains `needle`; returns the output and
/// the control messages seen.
async fn read_until(socket: &mut Socket, needle: &str) -> (String, Vec<Value>) {
    let mut output = String::new();
    let mut controls = Vec::new();
    while !output.contains(needle) {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the terminal went quiet")
            .unwrap()
            .unwrap();
        match message {
            Message::Binary(data) => output.push_str(&String::from_utf8_lossy(&data)),
            Message::Text(text) => controls.push(serde_json::from_str(&text).unwrap()),
            Message::Close(frame) => panic!("closed before {needle:?}: {frame:?}\n{output}"),
            _ => {}
        }
    }
    (output, controls)
}

async fn type_line(socket: &mut Socket, line: &str) {
    socket.send(Message::Binary(format!("{line}\n").into_bytes().into())).await.unwrap();
}

#[tokio::test]
async fn terminals_run_commands_resize_and_reattach() {
    let server = TestServer::start().await;
    let api = server.user("term@example.com").await;
    let chat = api.new_chat().await;

    let mut socket = connect(&api, &chat, "cols=100&rows=30").await.unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
    assert_eq!(
        (hello["type"].as_str(), hello["reconnected"].as_bool()),
        (Some("session"), Some(false))
    );
    let session = hello["id"].as_str().unwrap().to_owned();
    // Needles are built by the shell, so that the echo of the typed line never matches them.
    type_line(&mut socket, "echo hello-$((40+2)) from $(id -un); stty size; echo p''id=$$").await;
    let (out, _) = read_until(&mut socket, "pid=").await;
    assert!(out.contains("hello-42 from user") && out.contains("30 100"), "{out}");
    let pid = out.split("pid=").nth(1).unwrap().lines().next().unwrap().trim().to_owned();

    // Resize with a JSON control frame; text input works too.
    socket.send(Message::Text(r#"{"type":"resize","cols":120,"rows":40}"#.into())).await.unwrap();
    socket.send(Message::Text(r#"{"type":"input","data":"stty size\n"}"#.into())).await.unwrap();
    read_until(&mut socket, "40 120").await;
    socket.send(Message::Text(r#"{"type":"resize","cols":0}"#.into())).await.unwrap();
    let bad = loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.unwrap().unwrap().unwrap() {
            Message::Text(text) => break serde_json::from_str::<Value>(&text).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(bad["type"], "error", "{bad}");
    type_line(&mut socket, "export MARK=still-here; echo mar''ked").await;
    read_until(&mut socket, "marked").await;

    // Drop the connection; reconnecting within the grace period finds the same shell.
    drop(socket);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut socket = connect(&api, &chat, &format!("session={session}")).await.unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
    assert_eq!(
        (hello["id"].as_str(), hello["reconnected"].as_bool()),
        (Some(session.as_str()), Some(true))
    );
    let (replay, _) = read_until(&mut socket, "hello-42").await;
    assert!(replay.contains("marked"), "the replay lacks recent output: {replay}");
    type_line(&mut socket, "echo again pid=$$ $MARK").await;
    let (out, _) = read_until(&mut socket, "still-here").await;
    assert!(out.contains(&format!("again pid={pid}")), "another shell: {out}");

    // A second terminal of the same chat is another shell.
    let mut second = connect(&api, &chat, "").await.unwrap();
    second.next().await.unwrap().unwrap();
    type_line(&mut second, "echo sec''ond pid=$$").await;
    let (out, _) = read_until(&mut second, "second pid=").await;
    assert!(!out.contains(&format!("second pid={pid}\r")), "{out}");

    // Exiting the shell ends the session with its exit code.
    type_line(&mut socket, "exit 3").await;
    let mut exit = None;
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "exit" {
                exit = Some(value["code"].clone());
            }
        }
    }
    assert_eq!(exit, Some(json!(3)));
    assert_eq!(connect(&api, &chat, &format!("session={session}")).await.err(), Some(404));
}

#[tokio::test]
async fn terminals_check_the_token_and_the_owner_before_upgrading() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let chat = owner.new_chat().await;
    let stranger = server.user("stranger@example.com").await;
    assert_eq!(connect(&stranger, &chat, "").await.err(), Some(404));
    let anonymous = server.api();
    assert_eq!(connect(&anonymous, &chat, "").await.err(), Some(401));
    assert_eq!(connect(&anonymous, &chat, "access_token=forged").await.err(), Some(401));
    // A browser passes the token in the query string.
    let token = owner.token.clone().unwrap();
    let mut socket = connect(&anonymous, &chat, &format!("access_token={token}")).await.unwrap();
    let hello: Value =
        serde_json::from_str(socket.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    let session = hello["id"].as_str().unwrap().to_owned();
    // Nobody reattaches to someone else's shell, not even through a chat of their own.
    let own_chat = stranger.new_chat().await;
    assert_eq!(connect(&stranger, &own_chat, &format!("session={session}")).await.err(), Some(404));
    // A plain HTTP request is told to upgrade.
    let (status, body) = owner.get(&format!("/api/v1/chats/{chat}/terminal")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("websocket_required"))
    );
}

/// A Unix socket's path must be shorter than 108 bytes, and each sandbox's egress proxy and
/// control sockets live deep in the data directory: a data directory with a long path must
/// still run turns (the CLI reaches the model through the proxy; the Bash call and the CLI
/// itself start through the control socket).
#[tokio::test]
async fn a_data_directory_with_a_long_path_runs_turns_in_sandboxes() {
    use std::os::unix::fs::DirBuilderExt;
    let server = TestServer::start_with(|config| {
        let parent = config.data_dir.parent().unwrap().join(
            "a-directory-whose-name-alone-is-longer-than-what-is-left-of-a-unix-socket-address",
        );
        // Sandbox users must be able to walk through it, as through /var/lib.
        std::fs::DirBuilder::new().mode(0o755).create(&parent).unwrap();
        config.data_dir = parent.join("agentbox-data");
        config.database_url =
            format!("sqlite://{}", config.data_dir.join("agentbox.sqlite").display());
        config.checkpoints.root = Some(config.data_dir.join("checkpoints"));
        assert!(config.data_dir.as_os_str().len() >= 110, "{}", config.data_dir.display());
    })
    .await;
    let api = server.user("long-path@example.com").await;
    let chat = api.new_chat().await;
    let message = api.send(&chat, "[[bash:echo still-here]] run it").await;
    let events = api.turn_events(&chat, &message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
    assert_eq!(first_tool_output(&events).trim(), "still-here");
    assert_eq!(
        server.mock.message_requests().len(),
        2,
        "the model was not reached through the proxy"
    );
}
