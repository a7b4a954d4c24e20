//! The worker-internal API at router level: a worker serves a chat's files under
//! `/internal/v1/...` to a request with a node credential (minted from the installation's
//! key for that node, user and chat), as that user, and refuses everything else.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use agentbox_server::AuthKeys;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use uuid::Uuid;

use support::{App, KEY};

async fn send(router: &axum::Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

#[tokio::test]
async fn a_worker_serves_a_chats_files_to_a_node_credential_only() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let chat = app.call(Method::POST, "/api/v1/chats", Some(&alice.access), Some(&json!({}))).await;
    let chat = chat.json()["id"].as_str().unwrap().to_owned();
    let chat_id: Uuid = chat.parse().unwrap();
    let (status, health) =
        send(&app.worker, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let node = serde_json::from_slice::<Value>(&health).unwrap()["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = AuthKeys::new(&KEY, Duration::from_secs(60), Duration::from_secs(60));
    let alice_id: Uuid = alice.id.parse().unwrap();
    let credential = keys.internal.mint(&node, alice_id, chat_id);
    let internal = |method: Method, rest: &str, credential: Option<&str>, body: &'static str| {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/internal/v1/chats/{chat}/{rest}"))
            .header("content-type", "application/octet-stream");
        if let Some(credential) = credential {
            request = request.header("x-agentbox-internal", credential);
        }
        request.body(Body::from(body)).unwrap()
    };

    // Written and read back through the internal API, as alice.
    let (status, body) = send(
        &app.worker,
        internal(Method::PUT, "files/content?path=a.txt", Some(&credential), "hello"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, body) =
        send(&app.worker, internal(Method::GET, "files/content?path=a.txt", Some(&credential), ""))
            .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, b"hello".as_slice()));
    let (status, _) =
        send(&app.worker, internal(Method::GET, "sandbox", Some(&credential), "")).await;
    assert_eq!(status, StatusCode::OK);
    // The same file through alice's public API: one workspace.
    let answer = app
        .call(Method::GET, &format!("/api/v1/chats/{chat}/files?path="), Some(&alice.access), None)
        .await;
    assert!(answer.json().to_string().contains("a.txt"), "{}", answer.json());

    // Refused: no credential, a user's token, another node's, another chat's, a forged one;
    // and a credential for bob on alice's chat is bob's request (404).
    let other_node = keys.internal.mint("another-node", alice_id, chat_id);
    let other_chat = keys.internal.mint(&node, alice_id, Uuid::new_v4());
    let other_key =
        AuthKeys::new(b"another key of at least thirty-two bytes", Duration::ZERO, Duration::ZERO)
            .internal
            .mint(&node, alice_id, chat_id);
    for refused in
        [None, Some(alice.access.as_str()), Some(&other_node), Some(&other_chat), Some(&other_key)]
    {
        let (status, body) =
            send(&app.worker, internal(Method::GET, "files?path=", refused, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused:?}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let bobs = keys.internal.mint(&node, bob.id.parse().unwrap(), chat_id);
    let (status, _) =
        send(&app.worker, internal(Method::GET, "files?path=", Some(&bobs), "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The public router has no internal routes, and the worker no public ones.
    // (the public router answers with the web UI's page, never the file).
    let (_, body) =
        send(&app.router, internal(Method::GET, "files/content?path=a.txt", Some(&credential), ""))
            .await;
    assert_ne!(body.as_slice(), b"hello".as_slice());
    let mut public =
        Request::get(format!("/api/v1/chats/{chat}/files?path=")).body(Body::empty()).unwrap();
    public
        .headers_mut()
        .insert("authorization", format!("Bearer {}", alice.access).parse().unwrap());
    let (status, _) = send(&app.worker, public).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
