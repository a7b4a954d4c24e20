//! A chat started from a git repository, end to end: a real git server on the host (`git
//! http-backend`, smart HTTP, behind a small CGI bridge that wants basic auth with a
//! token), the real binary, sandboxes and CLI. The clone before the first turn with its
//! progress, the agent working in the repository, status, diff, commit and push landing on
//! the host's bare repository, the token nowhere on disk, and a wrong token's clear error.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode as HttpStatus, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::containment::run_in_sandbox;
use super::support::{Api, SseEvent, TestServer, files_containing};

/// Run git on the host (the test's own repository, never agent code).
fn host_git(dir: &Path, args: &[&str]) -> String {
    #[allow(clippy::disallowed_methods)] // The test's git server, not agent code.
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=Seeder", "-c", "user.email=seeder@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A bare repository `project.git` with one commit on `main`, served over smart HTTP by
/// `git http-backend` to clients that send `token` as their basic-auth password.
struct GitServer {
    port: u16,
    root: tempfile::TempDir,
}

impl GitServer {
    async fn start(token: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let bare = root.path().join("acme/project.git");
        host_git(root.path(), &["init", "--bare", "-b", "main", bare.to_str().unwrap()]);
        host_git(&bare, &["config", "http.receivepack", "true"]);
        let seed = root.path().join("seed");
        std::fs::create_dir(&seed).unwrap();
        host_git(&seed, &["init", "-b", "main"]);
        std::fs::write(seed.join("README.md"), "# project\n").unwrap();
        host_git(&seed, &["add", "README.md"]);
        host_git(&seed, &["commit", "-m", "seed commit"]);
        host_git(&seed, &["push", bare.to_str().unwrap(), "main"]);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (project_root, token) = (root.path().to_owned(), token.to_owned());
        let app = axum::Router::new().fallback(move |method, uri, headers, body| {
            cgi(project_root.clone(), token.clone(), method, uri, headers, body)
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, root }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/acme/project.git", self.port)
    }

    fn bare(&self) -> PathBuf {
        self.root.path().join("acme/project.git")
    }
}

/// What the fake GitHub API was asked: path, `Authorization` and the JSON body.
type Recorded = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

/// A fake GitHub API (GitHub's API is a true outside): records each request and answers
/// a pull request's creation as GitHub does.
async fn fake_github() -> (u16, Recorded) {
    let recorded = Recorded::default();
    let kept = recorded.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let kept = kept.clone();
        async move {
            let auth =
                headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            kept.lock().unwrap().push((uri.path().to_owned(), auth, json));
            let answer =
                json!({"html_url": "https://github.example/acme/project/pull/7", "number": 7});
            (HttpStatus::CREATED, axum::Json(answer))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, recorded)
}

/// One request through `git http-backend` as CGI, after the basic-auth check.
async fn cgi(
    root: PathBuf,
    token: String,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let password = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, password)| password.to_owned()));
    if password.as_deref() != Some(token.as_str()) {
        return (HttpStatus::UNAUTHORIZED, [("www-authenticate", "Basic realm=\"git\"")], "")
            .into_response();
    }
    let header = |name: &str| {
        headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned()
    };
    #[allow(clippy::disallowed_methods)] // The test's git server, not agent code.
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", "tester")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writing = async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    };
    let (output, ()) = tokio::join!(child.wait_with_output(), writing);
    let output = output.unwrap().stdout;
    let split = output.windows(4).position(|w| w == b"\r\n\r\n").map(|at| (at, 4));
    let split = split.or_else(|| output.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2)));
    let Some((at, gap)) = split else {
        return (HttpStatus::INTERNAL_SERVER_ERROR, "no CGI headers").into_response();
    };
    let head = String::from_utf8_lossy(&output[..at]).into_owned();
    let mut response = Response::builder().status(200);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().and_then(|c| c.parse().ok()).unwrap_or(500);
            response = response.status(code);
        } else {
            response = response.header(name, value);
        }
    }
    response.body(axum::body::Body::from(output[at + gap..].to_vec())).unwrap()
}

async fn put_secret(api: &Api, name: &str, value: &str) {
    let path = format!("/api/v1/secrets/{name}");
    let (status, body) = api.call(Method::PUT, &path, Some(json!({ "value": value }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A chat (in `bypassPermissions`, so that the agent's git commands run at once) started
/// from `repository`.
async fn repository_chat(api: &Api, repository: Value) -> String {
    let body = json!({"permission_mode": "bypassPermissions", "repository": repository});
    let (status, chat) = api.call(Method::POST, "/api/v1/chats", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    chat["id"].as_str().unwrap().to_owned()
}

/// Run a Bash call as the agent; its output and the turn's events. The turn completes.
async fn agent_runs(api: &Api, chat: &str, command: &str) -> (String, Vec<SseEvent>) {
    let (output, events) = run_in_sandbox(api, chat, command).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{events:?}");
    (output, events)
}

fn notices<'a>(events: &'a [SseEvent], subtype: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e.event == "system" && e.data["subtype"] == subtype)
        .filter_map(|e| e.data["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chat_from_a_repository_clones_edits_commits_and_pushes() {
    let token = format!("git-token-marker-{}", uuid::Uuid::new_v4().simple());
    let git = GitServer::start(&token).await;
    let port = git.port;
    let (api_port, github) = fake_github().await;
    let server = TestServer::start_with(move |config| {
        config.sandbox.allow_hosts =
            vec![format!("127.0.0.1:{port}"), format!("127.0.0.1:{api_port}")];
        config.github_api_url = format!("http://127.0.0.1:{api_port}/api/v3");
    })
    .await;
    let alice = server.user("alice-git@example.com").await;
    put_secret(&alice, "GITHUB_TOKEN", &token).await;

    // Bad repositories are refused before a chat exists.
    for (url, code) in [
        (
            format!("http://x-access-token:{token}@127.0.0.1:{port}/project.git"),
            "credentials_in_url",
        ),
        ("http://example.com/a/project.git".to_owned(), "insecure_repository_url"),
        ("git@github.com:a/b.git".to_owned(), "invalid_repository_url"),
    ] {
        let body = json!({"repository": {"url": url}});
        let (status, answer) = alice.call(Method::POST, "/api/v1/chats", Some(body)).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{answer}"
        );
    }
    let body = json!({"repository": {"url": git.url(), "branch": "a..b"}});
    let (status, answer) = alice.call(Method::POST, "/api/v1/chats", Some(body)).await;
    assert_eq!(answer["error"]["code"], "invalid_branch", "{status} {answer}");

    let chat = repository_chat(&alice, json!({"url": git.url()})).await;
    let (status, answer) = alice.get(&format!("/api/v1/chats/{chat}/git/status")).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_cloned"))
    );

    // The first turn clones, tells how it goes, and runs in the repository.
    let (output, events) = agent_runs(&alice, &chat, "pwd && git log --oneline").await;
    assert_eq!(notices(&events, "clone_started").len(), 1, "{events:?}");
    assert!(
        notices(&events, "clone_progress").iter().any(|text| text.contains("Cloning into")),
        "{events:?}"
    );
    assert_eq!(notices(&events, "clone_finished").len(), 1, "{events:?}");
    assert!(output.contains("/home/user/project") && output.contains("seed commit"), "{output}");
    let first_turn = events[0].data["message_id"].as_str().unwrap().to_owned();

    // The agent edits a tracked file and adds one.
    let (_, events) =
        agent_runs(&alice, &chat, "echo changed-by-the-agent >> README.md && echo new > notes.txt")
            .await;
    assert!(notices(&events, "clone_started").is_empty(), "cloned once: {events:?}");
    let (status, changes) = alice.get(&format!("/api/v1/chats/{chat}/git/status")).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    assert_eq!(
        (changes["branch"].as_str(), changes["upstream"].as_str()),
        (Some("main"), Some("origin/main"))
    );
    assert_eq!(changes["path"], "/home/user/project");
    let kinds: Vec<(String, String)> = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_owned(), c["kind"].as_str().unwrap().to_owned()))
        .collect();
    assert!(kinds.contains(&("README.md".into(), "modified".into())), "{changes}");
    assert!(kinds.contains(&("notes.txt".into(), "untracked".into())), "{changes}");

    let (status, diff) = alice.get(&format!("/api/v1/chats/{chat}/git/diff?path=README.md")).await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    let text = diff["diff"].as_str().unwrap();
    assert!(text.contains("+changed-by-the-agent") && text.contains("README.md"), "{text}");
    assert_eq!(diff["truncated"], false);
    let (status, answer) = alice.get(&format!("/api/v1/chats/{chat}/git/diff?path=../x")).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_path"))
    );

    // Commit on a new branch and push it.
    let branch = json!({"name": "agent/change"});
    let (status, answer) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/branch"), Some(branch)).await;
    assert_eq!(
        (status, answer["branch"].as_str()),
        (StatusCode::OK, Some("agent/change")),
        "{answer}"
    );
    let commit = json!({"message": "The agent's change"});
    let (status, committed) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/commit"), Some(commit)).await;
    assert_eq!(status, StatusCode::OK, "{committed}");
    let sha = committed["commit"].as_str().unwrap().to_owned();
    let again = json!({"message": "nothing new"});
    let (status, answer) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/commit"), Some(again)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("nothing_to_commit"))
    );
    let (status, pushed) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/push"), None).await;
    assert_eq!(status, StatusCode::OK, "{pushed}");

    // The host's bare repository has the commit, by the account.
    let bare = git.bare();
    let log = host_git(&bare, &["log", "-1", "--format=%H %ae %s", "agent/change"]);
    assert_eq!(log.trim(), format!("{sha} alice-git@example.com The agent's change"));
    let files = host_git(&bare, &["show", "--name-only", "--format=", "agent/change"]);
    assert!(files.contains("README.md") && files.contains("notes.txt"), "{files}");
    let (status, status_after) = alice.get(&format!("/api/v1/chats/{chat}/git/status")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (status_after["ahead"].as_u64(), status_after["changes"].as_array().map(Vec::len)),
        (Some(0), Some(0)),
        "{status_after}"
    );

    // Someone else pushes to the branch: the chat's next push is refused as
    // non-fast-forward, a pull merges, and then the push lands.
    let other = git.root.path().join("other");
    host_git(
        git.root.path(),
        &["clone", "-b", "agent/change", bare.to_str().unwrap(), other.to_str().unwrap()],
    );
    std::fs::write(other.join("other.txt"), "from someone else\n").unwrap();
    host_git(&other, &["add", "other.txt"]);
    host_git(&other, &["commit", "-m", "someone else's change"]);
    host_git(&other, &["push", "origin", "agent/change"]);
    agent_runs(&alice, &chat, "echo more-from-the-agent >> README.md").await;
    let commit = json!({"message": "More", "paths": ["README.md"]});
    let (status, answer) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/commit"), Some(commit)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/push"), None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("push_rejected")),
        "{answer}"
    );
    assert!(answer["error"]["message"].as_str().unwrap().contains("pull first"), "{answer}");
    let (status, answer) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/pull"), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/git/push"), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let subjects = host_git(&bare, &["log", "--format=%s", "agent/change"]);
    assert!(subjects.contains("More") && subjects.contains("someone else's change"), "{subjects}");

    // A pull request of the branch into the remote's default branch, through the GitHub
    // API with the token.
    let request = json!({"title": "The agent's change", "body": "Made in agentbox."});
    let (status, opened) = alice
        .call(Method::POST, &format!("/api/v1/chats/{chat}/git/pull-request"), Some(request))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!(opened["url"], "https://github.example/acme/project/pull/7");
    assert_eq!(
        (opened["head"].as_str(), opened["base"].as_str()),
        (Some("agent/change"), Some("main"))
    );
    let asked = github.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let (path, auth, body) = &asked[0];
    assert_eq!(path, "/api/v3/repos/acme/project/pulls");
    assert_eq!(auth, &format!("Bearer {token}"));
    assert_eq!(
        (&body["title"], &body["head"], &body["base"], &body["body"]),
        (
            &json!("The agent's change"),
            &json!("agent/change"),
            &json!("main"),
            &json!("Made in agentbox.")
        )
    );

    // The token is nowhere: not in .git/config through the files API, not in the zip, not
    // in the chat's events, and no file of the data directory (database, workspaces,
    // checkpoints) holds it.
    let (status, config) =
        alice.get(&format!("/api/v1/chats/{chat}/files/content?path=project/.git/config")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        config.to_string().contains("127.0.0.1") && !config.to_string().contains(&token),
        "{config}"
    );
    let zip = alice
        .request(Method::GET, &format!("/api/v1/chats/{chat}/files/zip"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut seen_config = false;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().into_owned();
        seen_config |= name.ends_with("project/.git/config");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "{name}");
    }
    assert!(seen_config, "the zip holds the clone");
    let messages = alice.messages(&chat).await;
    assert!(!serde_json::to_string(&messages).unwrap().contains(&token));
    let found = files_containing(&server.data_dir, &[token.as_str()]);
    assert!(found.is_empty(), "{found:?}");
    assert!(server.data_dir.join("checkpoints").exists());

    // A fork after the first turn has the clone as it was then, and its git routes.
    let fork = json!({"message_id": first_turn});
    let (status, forked) =
        alice.call(Method::POST, &format!("/api/v1/chats/{chat}/fork"), Some(fork)).await;
    assert!(status.is_success(), "{status} {forked}");
    let forked = forked["id"].as_str().or(forked["chat"]["id"].as_str()).unwrap().to_owned();
    let (status, fork_status) = alice.get(&format!("/api/v1/chats/{forked}/git/status")).await;
    assert_eq!(status, StatusCode::OK, "{fork_status}");
    assert_eq!(fork_status["branch"], "main");
    assert_eq!(fork_status["changes"], json!([]), "{fork_status}");

    // A chat without a repository has no git routes.
    let plain = alice.new_chat().await;
    let (status, answer) = alice.get(&format!("/api/v1/chats/{plain}/git/status")).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_repository"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_token_is_a_clear_clone_error_and_the_chat_stays_usable() {
    let git = GitServer::start("the-right-token").await;
    let port = git.port;
    let server = TestServer::start_with(move |config| {
        config.sandbox.allow_hosts = vec![format!("127.0.0.1:{port}")];
    })
    .await;
    let bob = server.user("bob-git@example.com").await;
    put_secret(&bob, "REPO_TOKEN", "a-wrong-token").await;
    let chat = repository_chat(&bob, json!({"url": git.url(), "secret": "REPO_TOKEN"})).await;

    let (output, events) = agent_runs(&bob, &chat, "pwd").await;
    let failed = notices(&events, "clone_failed");
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(failed[0].contains("refused the credentials"), "{}", failed[0]);
    assert!(notices(&events, "clone_finished").is_empty());
    assert_eq!(output.trim(), "/home/user", "the turn ran in the home directory");
    let (status, answer) = bob.get(&format!("/api/v1/chats/{chat}/git/status")).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_cloned"))
    );

    // With the right token the next turn clones.
    put_secret(&bob, "REPO_TOKEN", "the-right-token").await;
    let (output, events) = agent_runs(&bob, &chat, "pwd").await;
    assert_eq!(notices(&events, "clone_finished").len(), 1, "{events:?}");
    assert_eq!(output.trim(), "/home/user/project");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_repositorys_host_is_open_to_its_own_chat_only() {
    // The server speaks plain HTTP: only the egress proxy's answer to CONNECT matters here
    // (the TLS handshake after it fails, and so does the clone).
    let git = GitServer::start("unused").await;
    let port = git.port;
    // The repository is on loopback, which hosts a user brings reach only with this flag.
    let server = TestServer::start_with(|config| config.sandbox.user_hosts_private = true).await;
    let carol = server.user("carol-git@example.com").await;
    let url = format!("https://127.0.0.1:{port}/project.git");
    let chat = repository_chat(&carol, json!({ "url": url })).await;
    let (status, plain) = carol
        .call(Method::POST, "/api/v1/chats", Some(json!({"permission_mode": "bypassPermissions"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let plain = plain["id"].as_str().unwrap().to_owned();
    let probe = format!(
        "curl -sv --max-time 10 https://127.0.0.1:{port}/ 2>&1 | grep -io '200 connection established\\|response 403' | head -1"
    );
    let (output, events) = agent_runs(&carol, &chat, &probe).await;
    assert_eq!(notices(&events, "clone_failed").len(), 1, "no TLS on the test's server");
    assert!(output.to_ascii_lowercase().contains("200 connection established"), "{output}");
    let (output, _) = agent_runs(&carol, &plain, &probe).await;
    assert!(output.contains("403"), "another chat of the same user is refused: {output}");
}
