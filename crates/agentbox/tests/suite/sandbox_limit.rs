//! The limit on sandboxes a user keeps running (`--max-running-sandboxes-per-user`), with the
//! real `local` provider: a new sandbox stops the least recently used idle one, and with
//! none idle (a terminal open, a turn waiting for a permission answer) it is refused.

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::support::{Api, PATIENCE, TestServer};

async fn status(api: &Api, chat: &str) -> String {
    let (code, body) = api.get(&format!("/api/v1/chats/{chat}/sandbox")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["status"].as_str().unwrap().to_owned()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A terminal of `chat`, or the status it was refused with.
async fn terminal(api: &Api, chat: &str) -> Result<Socket, u16> {
    let url = format!("{}/api/v1/chats/{chat}/terminal", api.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    let token = api.token.clone().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(err) => panic!("{err}"),
    }
}

async fn run_turn(api: &Api, chat: &str) {
    let message = api.send(chat, "hello").await;
    api.turn_events(chat, &message).await;
}

#[tokio::test]
async fn a_new_sandbox_stops_the_least_recently_used_idle_one_or_is_refused() {
    let server = TestServer::start_with(|config| {
        config.turn_limits.running_sandboxes = Some(2);
    })
    .await;
    let api = server.user("sandboxes@example.com").await;
    let a = api.new_chat().await;
    let b = api.new_chat().await;
    let (code, c) =
        api.call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "ask"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{c}");
    let c = c["id"].as_str().unwrap().to_owned();

    run_turn(&api, &a).await;
    run_turn(&api, &b).await;
    assert_eq!(
        (status(&api, &a).await, status(&api, &b).await),
        ("running".into(), "running".into())
    );

    // C's turn makes room: A, used least recently and idle, is stopped. The turn holds on a
    // permission request, so C's sandbox is busy from here on.
    let mut stream = api.stream(&c, None).await;
    api.send(&c, "[[write:held.txt:yes]] write it").await;
    stream.until("permission_request").await;
    assert_eq!(status(&api, &a).await, "stopped");
    assert_eq!(
        (status(&api, &b).await, status(&api, &c).await),
        ("running".into(), "running".into())
    );

    // A terminal in B keeps B busy too.
    let mut socket = terminal(&api, &b).await.unwrap();
    let hello = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap().unwrap().unwrap();
    let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "session", "{hello}");

    // Nothing idle to stop: A's turn is refused, and nothing was stopped for it.
    let (code, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{a}/messages"),
            Some(json!({"prompt": "again"})),
        )
        .await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "limit_reached", "{body}");
    assert_eq!(
        body["error"]["message"],
        "Limit reached: sandboxes running (2 at once). Stop one of your chats' sandboxes or wait for a turn to end"
    );
    assert_eq!(status(&api, &a).await, "stopped");
    assert_eq!(
        (status(&api, &b).await, status(&api, &c).await),
        ("running".into(), "running".into())
    );
    // A terminal of A is refused the same way.
    assert_eq!(terminal(&api, &a).await.err(), Some(429));
    assert_eq!(status(&api, &a).await, "stopped");
    drop(socket);
}

/// A prompt queued behind a turn meets the limit when the runner takes it: with the other
/// sandbox busy (a terminal), the queue pauses with a notice naming the limit.
#[tokio::test]
async fn a_queued_prompt_at_the_limit_pauses_the_queue() {
    let server = TestServer::start().await;
    let admin = server.user("admin@example.com").await;
    let api = server.user("queued@example.com").await;
    let (code, me) = api.get("/api/v1/auth/me").await;
    assert_eq!(code, StatusCode::OK, "{me}");
    let user_id = me["id"].as_str().unwrap().to_owned();
    let (code, a) =
        api.call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "ask"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{a}");
    let a = a["id"].as_str().unwrap().to_owned();
    let b = api.new_chat().await;

    let mut stream = api.stream(&a, None).await;
    let message = api.send(&a, "[[write:held.txt:yes]] write it").await;
    let request = stream.until("permission_request").await.pop().unwrap();
    let (code, body) = api
        .call(Method::POST, &format!("/api/v1/chats/{a}/queue"), Some(json!({"prompt": "next"})))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let _socket = terminal(&api, &b).await.unwrap();
    // The administrator lowers the user's limit while both sandboxes run.
    let (code, body) = admin
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{user_id}/limits"),
            Some(json!({"running_sandboxes": 1})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let id = request.data["request_id"].as_str().unwrap();
    let (code, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/chats/{a}/permissions/{id}"),
            Some(json!({"approved": false})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    stream.until_completed(&message).await;
    let notice = stream.until("system").await.pop().unwrap();
    let text = notice.data.to_string();
    assert!(
        text.contains("queue_paused") && text.contains("sandboxes running (1 at once)"),
        "{text}"
    );
    let (code, queue) = api.get(&format!("/api/v1/chats/{a}/queue")).await;
    assert_eq!(code, StatusCode::OK, "{queue}");
    assert!(queue.to_string().contains("\"next\""), "the prompt left the queue: {queue}");
    assert_eq!(status(&api, &b).await, "running");
}
