//! Accounts end to end: an administrator disables a user in the middle of a session, and
//! at once the user's open SSE stream ends, their terminal WebSocket closes, their running
//! turn is interrupted and their tokens stop working.

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::support::{Api, PATIENCE, TestServer};

async fn open_terminal(
    api: &Api,
    chat: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("{}/api/v1/chats/{chat}/terminal", api.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", api.token.as_ref().unwrap()).parse().unwrap(),
    );
    let (mut socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .unwrap()
        .unwrap();
    // The shell answers before the test goes on, so the terminal is really open.
    socket.send(Message::Binary(b"echo READY-$((20+22))\n".to_vec().into())).await.unwrap();
    let mut output = String::new();
    while !output.contains("READY-42") {
        match tokio::time::timeout(PATIENCE, socket.next()).await.unwrap().unwrap().unwrap() {
            Message::Binary(data) => output.push_str(&String::from_utf8_lossy(&data)),
            Message::Close(frame) => panic!("closed early: {frame:?}"),
            _ => {}
        }
    }
    socket
}

#[tokio::test]
async fn disabling_a_user_mid_session_closes_their_stream_and_terminal_and_interrupts_their_turn() {
    let server = TestServer::start().await;
    let admin = server.user("admin@example.com").await;
    let user = server.user("user@example.com").await;
    let (_, me) = user.get("/api/v1/auth/me").await;
    let user_id = me["id"].as_str().unwrap().to_owned();
    let chat = user.new_chat().await;
    let mut terminal = open_terminal(&user, &chat).await;
    let message = user.send(&chat, "[[sleep:120]] a long job").await;
    let mut stream = user.stream(&chat, None).await;
    stream.until("tool_started").await;

    let (status, body) = admin
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The stream ends (after whatever the interrupt still sent) and the terminal closes.
    stream.until_closed().await;
    loop {
        match tokio::time::timeout(PATIENCE, terminal.next())
            .await
            .expect("the terminal stayed open")
        {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
            Some(Ok(_)) => {}
        }
    }
    // Every token of the user is refused, a new stream too.
    let (status, body) = user.get("/api/v1/chats").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("account_disabled"))
    );
    let (status, _) = user.get(&format!("/api/v1/chats/{chat}/stream")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The turn was interrupted: seen once the account is enabled again.
    let (status, _) = admin
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let messages = user.messages(&chat).await;
        let status =
            messages.iter().find(|m| m["id"] == message.as_str()).unwrap()["status"].clone();
        if status != "in_progress" {
            assert_eq!(status, "interrupted");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the turn was never interrupted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The admin sees the user's turn in their usage.
    let (_, users) = admin.get("/api/v1/admin/users").await;
    let listed = users.as_array().unwrap().iter().find(|u| u["id"] == user_id.as_str()).unwrap();
    assert_eq!(
        (listed["usage"]["chats"].as_i64(), listed["usage"]["turns"].as_i64()),
        (Some(1), Some(1))
    );
}
