//! Scenario files, option precedence, and starting and stopping the server.

use std::io::Write;

use mock_llm::{MockError, MockLlm, MockOptions, Script, serve};
use serde_json::json;

use super::support::{cli_body, continue_after_tools, post, stream};

fn scenario_file(contents: &serde_json::Value) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.to_string().as_bytes()).unwrap();
    file
}

fn options_with(file: &tempfile::NamedTempFile) -> MockOptions {
    MockOptions { scenario_file: Some(file.path().to_owned()), default_script: None }
}

async fn start(options: MockOptions) -> MockLlm {
    MockLlm::start_with("127.0.0.1:0".parse().unwrap(), options).await.unwrap()
}

#[tokio::test]
async fn scenario_scripts_are_served() {
    let file = scenario_file(&json!({
        "default": {"steps": [{"blocks": [{"type": "text", "text": "file default"}]}]},
        "scripts": {
            "review": {"steps": [
                {"blocks": [
                    {"type": "thinking", "text": "Let me look.", "signature": "c2ln"},
                    {"type": "tool_use", "name": "Read", "input": {"file_path": "/tmp/a"}}
                ], "error": {"status": 429, "times": 1}},
                {"blocks": [{"type": "text", "text": "Looks fine."}], "stop_reason": "max_tokens"}
            ]}
        }
    }));
    let mock = start(options_with(&file)).await;

    let plain = stream(&mock, &cli_body("no markers here", true)).await;
    assert_eq!(plain.blocks(), vec![json!({"type": "text", "text": "file default"})]);

    let first = cli_body("[[scenario:review]] please", true);
    let limited = post(&mock, "/v1/messages", &first).await;
    assert_eq!(limited.status(), 429);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let reply = stream(&mock, &first).await;
    let blocks = reply.blocks();
    assert_eq!(
        blocks[0],
        json!({"type": "thinking", "thinking": "Let me look.", "signature": "c2ln"})
    );
    assert_eq!(blocks[1]["name"], "Read");
    assert_eq!(blocks[1]["input"], json!({"file_path": "/tmp/a"}));
    assert_eq!(reply.stop_reason(), Some("tool_use"));

    let done = stream(&mock, &continue_after_tools(first, &blocks, "contents")).await;
    assert_eq!(done.blocks(), vec![json!({"type": "text", "text": "Looks fine."})]);
    assert_eq!(done.stop_reason(), Some("max_tokens"));
}

#[tokio::test]
async fn the_options_default_wins_over_the_file_default() {
    let file = scenario_file(
        &json!({"default": {"steps": [{"blocks": [{"type": "text", "text": "file"}]}]}}),
    );
    let options =
        MockOptions { default_script: Some(Script::text("options")), ..options_with(&file) };
    let mock = start(options).await;
    let blocks = stream(&mock, &cli_body("hello", true)).await.blocks();
    assert_eq!(blocks, vec![json!({"type": "text", "text": "options"})]);
}

#[tokio::test]
async fn a_broken_scenario_file_is_reported() {
    let typo = scenario_file(&json!({"scripts": {"x": {"stepz": []}}}));
    let error =
        MockLlm::start_with("127.0.0.1:0".parse().unwrap(), options_with(&typo)).await.unwrap_err();
    assert!(matches!(error, MockError::ScenarioParse { .. }), "{error}");
    assert!(error.to_string().contains(&typo.path().display().to_string()));

    let missing = MockOptions {
        scenario_file: Some("/nonexistent/mock-llm.json".into()),
        default_script: None,
    };
    let error = MockLlm::start_with("127.0.0.1:0".parse().unwrap(), missing).await.unwrap_err();
    assert!(matches!(error, MockError::ScenarioRead { .. }), "{error}");
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let mock = MockLlm::start().await.unwrap();
    let url = format!("{}/", mock.base_url());
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        mock.addr().port(),
        url.rsplit(':').next().unwrap().trim_end_matches('/').parse::<u16>().unwrap()
    );
    reqwest::get(&url).await.unwrap();
    mock.shutdown().await;
    assert!(reqwest::get(&url).await.is_err());
}

#[tokio::test]
async fn serve_runs_until_its_shutdown_future_completes() {
    // Bind a port first to learn a free one, then hand it to `serve`.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(addr, MockOptions::default(), async move {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}/v1/messages");
    let mut answered = None;
    for _ in 0..200 {
        match reqwest::Client::new()
            .post(&url)
            .json(&cli_body("[[text:served]]", false))
            .send()
            .await
        {
            Ok(response) => {
                answered = Some(response.json::<serde_json::Value>().await.unwrap());
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    assert_eq!(answered.unwrap()["content"][0]["text"], "served");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let error = serve(busy, MockOptions::default(), async {}).await.unwrap_err();
    assert!(matches!(error, MockError::Bind { .. }), "{error}");
}
