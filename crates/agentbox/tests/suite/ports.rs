//! Port previews end to end: a dev server the agent starts in its sandbox (`local`, real
//! bubblewrap) is listed by `GET .../ports` and answers through the preview proxy for the
//! chat's owner only, pages, a WebSocket, a server-sent-events stream and a 50 MB download
//! streaming through; a port that stops listening answers 502.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::containment::{bypass_chat, run_in_sandbox};
use super::support::{Api, PATIENCE, TestServer};

const DEV_SERVER: &str = include_str!("preview_server.py");
const PORT: u16 = 8000;

/// Put the dev server into the chat's workspace and have the agent start it in the
/// background; returns once the sandbox lists its port.
async fn start_dev_server(api: &Api, chat: &str, port: u16) -> Value {
    let response = api
        .request(Method::PUT, &format!("/api/v1/chats/{chat}/files/content?path=devserver.py"))
        .body(DEV_SERVER)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (output, _) = run_in_sandbox(
        api,
        chat,
        &format!("nohup python3 devserver.py {port} >/dev/null 2>&1 & echo started"),
    )
    .await;
    assert!(output.contains("started"), "{output}");
    wait_for_ports(api, chat, |ports| ports.iter().any(|p| p["port"] == port)).await
}

/// Poll `GET .../ports` until `done` holds for its list.
async fn wait_for_ports(api: &Api, chat: &str, done: impl Fn(&[Value]) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = api.get(&format!("/api/v1/chats/{chat}/ports")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(body["ports"].as_array().unwrap()) {
            return body;
        }
        assert!(start.elapsed() < PATIENCE, "the ports never became what was wanted: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client that follows no redirects, so the test sees the cookie exchange.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Open the port's preview as `api`'s user: the signed URL, exchanged for the cookie.
/// Returns the preview's root URL and the `Cookie` header to send.
async fn open_preview(server: &TestServer, api: &Api, chat: &str, port: u16) -> (String, String) {
    let (status, link) =
        api.call(Method::POST, &format!("/api/v1/chats/{chat}/ports/{port}/open"), None).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["origin_isolated"], false, "{link}");
    let url = format!("{}{}", server.base, link["url"].as_str().unwrap());
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let root = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(root, format!("/preview/{chat}/{port}/"));
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains(&format!("Path=/preview/{chat}/{port}/")), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    (format!("{}{root}", server.base), pair)
}

async fn get(url: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client().get(url);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    tokio::time::timeout(PATIENCE, request.send()).await.expect("the preview hung").unwrap()
}

#[tokio::test]
async fn a_dev_server_in_the_sandbox_is_previewed_for_its_owner_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice-ports@example.com").await;
    let bob = server.user("bob-ports@example.com").await;
    let chat = bypass_chat(&alice).await;

    // Before anything ran, the sandbox is not running, and listing does not start it.
    let (status, body) = alice.get(&format!("/api/v1/chats/{chat}/ports")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["running"].clone(), body["ports"].clone()),
        (Value::Bool(false), Value::Array(vec![]))
    );
    assert_eq!(body["origin_isolated"], false);
    let (_, sandbox) = alice.get(&format!("/api/v1/chats/{chat}/sandbox")).await;
    assert_eq!(sandbox["status"], "stopped", "listing the ports started the sandbox");

    let listed = start_dev_server(&alice, &chat, PORT).await;
    assert_eq!(listed["running"], true);
    let port = listed["ports"].as_array().unwrap().iter().find(|p| p["port"] == PORT).unwrap();
    assert_eq!(port["process"], "python3", "{listed}");
    assert!(port["first_seen"].is_string(), "{listed}");
    // First seen stays what it was while the port keeps listening.
    let again = wait_for_ports(&alice, &chat, |_| true).await;
    assert_eq!(again["ports"][0]["first_seen"], port["first_seen"]);

    // Bob may neither list nor open Alice's ports.
    let (status, _) = bob.get(&format!("/api/v1/chats/{chat}/ports")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        bob.call(Method::POST, &format!("/api/v1/chats/{chat}/ports/{PORT}/open"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (root, cookie) = open_preview(&server, &alice, &chat, PORT).await;
    let page = get(&format!("{root}some/page?x=1"), Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("hello from the sandbox") && text.contains("path=/some/page?x=1"),
        "{text}"
    );
    // The root without its final slash is sent to it (the app's relative links need it).
    let bare = get(root.trim_end_matches('/'), None).await;
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[LOCATION].to_str().unwrap(), format!("/preview/{chat}/{PORT}/"));
    // The app never sees agentbox's cookie, and is told it is at localhost.
    let echoed = get(&format!("{root}echo-headers"), Some(&format!("{cookie}; theirs=1"))).await;
    assert_eq!(echoed.text().await.unwrap(), format!("cookie=theirs=1 host=localhost:{PORT}"));

    // Anonymous, Bob's own cookie for his own chat, a forged cookie, the URL token used as a
    // cookie, and a cookie for another port: all the same 404 as a path that does not exist.
    assert_eq!(get(&root, None).await.status(), StatusCode::NOT_FOUND);
    let bob_chat = bypass_chat(&bob).await;
    let (_, bob_cookie) = open_preview(&server, &bob, &bob_chat, PORT).await;
    let bob_value = bob_cookie.split_once('=').unwrap().1.to_owned();
    assert_eq!(get(&root, Some(&bob_cookie)).await.status(), StatusCode::NOT_FOUND);
    let forged = bob_value.replace(&bob_chat, &chat);
    assert_eq!(
        get(&root, Some(&format!("agentbox_preview={forged}"))).await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, link) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/ports/{PORT}/open"), None).await;
    let url_token = link["url"].as_str().unwrap().split("token=").nth(1).unwrap().to_owned();
    assert_eq!(
        get(&root, Some(&format!("agentbox_preview={url_token}"))).await.status(),
        StatusCode::NOT_FOUND
    );
    let other_port = format!("{}/preview/{chat}/8001/", server.base);
    assert_eq!(get(&other_port, Some(&cookie)).await.status(), StatusCode::NOT_FOUND);
    // Bob cannot exchange a token that is not his for a cookie either (it is bound to the
    // chat, which he does not own): a garbage token gets 404.
    let garbage =
        format!("{}/preview/{chat}/{PORT}/__agentbox_preview/auth?token=x.y", server.base);
    assert_eq!(get(&garbage, None).await.status(), StatusCode::NOT_FOUND);

    // A WebSocket through the proxy.
    let ws_url = format!("{}ws", root.replacen("http://", "ws://", 1));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            ws_url.as_str(),
        )
        .unwrap();
    request.headers_mut().insert(COOKIE, cookie.parse().unwrap());
    let (mut socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("the WebSocket handshake hung")
        .unwrap();
    for word in ["one", "two", &"long ".repeat(100)] {
        socket.send(tokio_tungstenite::tungstenite::Message::text(word)).await.unwrap();
        let reply = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), format!("echo: {word}"));
    }
    let _ = socket.close(None).await;

    // Server-sent events stream: the first event arrives while the response is still open
    // (the server holds it until /release).
    let sse = get(&format!("{root}sse"), Some(&cookie)).await;
    assert_eq!(sse.status(), StatusCode::OK);
    let mut body = sse.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("data: first") {
        let chunk = tokio::time::timeout(PATIENCE, body.next())
            .await
            .expect("the first event did not arrive while the stream was open")
            .expect("the stream ended before its first event")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("second"), "{seen}");
    assert_eq!(get(&format!("{root}release"), Some(&cookie)).await.status(), StatusCode::OK);
    while let Some(chunk) = tokio::time::timeout(PATIENCE, body.next()).await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(seen.contains("data: second"), "{seen}");

    // 50 MB, counted as it streams.
    let big = get(&format!("{root}big"), Some(&cookie)).await;
    assert_eq!(big.status(), StatusCode::OK);
    let mut body = big.bytes_stream();
    let mut total = 0usize;
    while let Some(chunk) =
        tokio::time::timeout(PATIENCE, body.next()).await.expect("the download stalled")
    {
        let chunk = chunk.unwrap();
        assert!(chunk.iter().all(|b| *b == b'x'));
        total += chunk.len();
    }
    assert_eq!(total, 50 * 1024 * 1024);

    // The server stops: the port is no longer listed and the preview says so with 502.
    run_in_sandbox(&alice, &chat, "pkill -f devserver.py; echo stopped").await;
    wait_for_ports(&alice, &chat, |ports| ports.iter().all(|p| p["port"] != PORT)).await;
    let gone = get(&root, Some(&cookie)).await;
    assert_eq!(gone.status(), StatusCode::BAD_GATEWAY);
    assert!(gone.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = gone.text().await.unwrap();
    assert!(page.contains(&format!("Nothing on port {PORT}")), "{page}");
}

#[tokio::test]
async fn with_a_preview_domain_each_preview_has_an_origin_of_its_own() {
    let server = TestServer::start_with(|config| {
        config.preview_domain = Some(
            agentbox_server::DomainPattern::parse("http://p-{port}-{chat}.preview.localhost")
                .unwrap(),
        );
    })
    .await;
    let alice = server.user("alice-domain@example.com").await;
    let chat = bypass_chat(&alice).await;
    start_dev_server(&alice, &chat, PORT).await;
    let (status, link) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/ports/{PORT}/open"), None).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["origin_isolated"], true);
    let host = format!("p-{PORT}-{chat}.preview.localhost");
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{host}/__agentbox_preview/auth?token=")), "{url}");
    // The name resolves to the test server; the port is the server's.
    let address =
        server.base.trim_start_matches("http://").parse::<std::net::SocketAddr>().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, address)
        .build()
        .unwrap();
    let with_port = |url: &str| url.replacen(&host, &format!("{host}:{}", address.port()), 1);
    let exchange = client.get(with_port(url)).send().await.unwrap();
    assert_eq!(exchange.status(), StatusCode::SEE_OTHER);
    assert_eq!(exchange.headers()[LOCATION], "/");
    let cookie = exchange.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("Path=/;") && !cookie.contains("Domain"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let root = with_port(&format!("http://{host}/"));
    let page = client.get(&root).header(COOKIE, &pair).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("path=/"));
    // agentbox's own API is not served at the preview's origin, and previews are not served
    // under /preview/ on agentbox's origin.
    let api = client.get(with_port(&format!("http://{host}/api/v1/auth/me"))).header(COOKIE, &pair);
    let text = api.send().await.unwrap().text().await.unwrap();
    assert!(text.contains("path=/api/v1/auth/me"), "the app, not agentbox, answered: {text}");
    assert_eq!(client.get(&root).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let (_, body) = alice.get(&format!("/preview/{chat}/{PORT}/")).await;
    assert!(!body.to_string().contains("hello from the sandbox"), "{body}");
}
