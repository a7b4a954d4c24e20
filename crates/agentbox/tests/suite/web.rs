//! What the web UI relies on from the server: the public set-up status, the single-page app's
//! fallback that never answers an API path with HTML, and `agentbox openapi` printing the same
//! document the server publishes (the source of the UI's generated types).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::support::TestServer;

#[tokio::test]
async fn setup_status_says_whether_any_account_exists_without_a_token() {
    let server = TestServer::start().await;
    let anonymous = server.api();
    let (status, body) = anonymous.get("/api/v1/setup").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({"has_accounts": false, "registration": "open"}));

    server.user("first@example.com").await;
    let (status, body) = anonymous.get("/api/v1/setup").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({"has_accounts": true, "registration": "open"}));

    // Only GET exists; the method error keeps the API's error shape.
    let (status, body) = anonymous.call(Method::POST, "/api/v1/setup", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn client_routes_get_the_app_and_unknown_api_paths_keep_their_json_404() {
    let server = TestServer::start().await;
    let api = server.api();
    for path in ["/", "/chats/5f0c6a62-8d0e-4c6e-9a51-3f1b1d3f0e11"] {
        let response = api.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{path}: {content_type}");
        assert_eq!(response.headers()["cache-control"], "no-cache", "{path}");
        let html = response.text().await.unwrap();
        // The built app, or (in a build without web/dist) the page that says how to build it.
        assert!(
            html.contains("<div id=\"root\">") || html.contains("agentbox is running"),
            "{path}: {html}"
        );
    }
    for path in
        ["/api/v1/no-such-thing", "/api/v1/chats/x/y/z", "/assets/index-gone.js", "/health/x"]
    {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
}

#[tokio::test]
async fn the_openapi_command_prints_the_served_document() {
    let server = TestServer::start().await;
    let (status, served) = server.api().get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);

    #[allow(clippy::disallowed_methods)] // The test runs the real binary, not agent code.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbox"))
        .arg("openapi")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, served);
    assert!(printed["paths"]["/api/v1/setup"]["get"].is_object());
}
