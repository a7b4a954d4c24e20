//! The operator's commands, the real binary: `agentbox user ...` on the database of a
//! running server (the server's account rules, the audit log with `cli` as actor, a
//! disabled account's sign-ins ended at once) and `agentbox doctor` on this machine.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::backup::agentbox;
use super::support::{Api, TestServer, TestServerless, cli_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_user_commands_keep_the_servers_rules_while_it_runs() {
    let server = TestServer::start().await;
    let _admin = TestServerless(server.api()).user("admin@example.com").await;
    let data = server.data_dir.to_str().unwrap().to_owned();
    let user = |args: &[&str]| {
        let mut all = vec!["user"];
        all.extend_from_slice(args);
        all.extend(["--data-dir", data.as_str()]);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        agentbox(&args, &[]).await
    };

    // Create with a generated password, printed once, that signs in on the server.
    let (code, stdout, stderr) = run(user(&["create", "bob@example.com", "--json"])).await;
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let password = created["generated_password"].as_str().unwrap().to_owned();
    let bob_id = created["users"][0]["id"].as_str().unwrap().to_owned();
    let login = |password: String| {
        let api = server.api();
        async move {
            api.call(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"email": "bob@example.com", "password": password})),
            )
            .await
        }
    };
    let (status, tokens) = login(password.clone()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // The server's rules: a weak password and a taken email are refused, exit status 1.
    let (code, _, stderr) = run(user(&["create", "carol@example.com", "--password-stdin"])).await;
    assert_eq!(code, 1, "an empty stdin gives no password");
    assert!(stderr.contains("no password"), "{stderr}");
    let (code, _, stderr) = run(user(&["create", "bob@example.com"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("exists already"), "{stderr}");
    let (code, _, stderr) = run(user(&["create", "not-an-email"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid_email"), "{stderr}");
    // Unknown users, and the last administrator, are refused with a message.
    let (code, _, stderr) = run(user(&["disable", "nobody@example.com"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no user \"nobody@example.com\""), "{stderr}");
    let (code, _, stderr) = run(user(&["remove-admin", "admin@example.com"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("last enabled administrator"), "{stderr}");

    // Disabling ends Bob's sign-ins at once: his refresh token no longer works.
    let (code, stdout, stderr) = run(user(&["disable", &bob_id])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("disabled"), "{stdout}");
    let (status, _) = server
        .api()
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({"refresh_token": tokens["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_ne!(login(password.clone()).await.0, StatusCode::OK);
    let (code, _, _) = run(user(&["enable", "bob@example.com"])).await;
    assert_eq!(code, 0);
    assert_eq!(login(password).await.0, StatusCode::OK);
    let (code, _, _) = run(user(&["make-admin", "bob@example.com"])).await;
    assert_eq!(code, 0);
    let (code, _, stderr) = run(user(&["remove-admin", "admin@example.com"])).await;
    assert_eq!(code, 0, "another administrator exists now: {stderr}");

    // The table lists both; the admin API sees the change.
    let (code, stdout, _) = run(user(&["list"])).await;
    assert_eq!(code, 0);
    assert!(stdout.lines().next().unwrap().starts_with("ID"), "{stdout}");
    assert!(stdout.contains("bob@example.com") && stdout.contains("admin@example.com"), "{stdout}");

    // A password reset from stdin: the old one stops working, the new one signs in.
    let args = user(&["reset-password", "bob@example.com", "--password-stdin"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = agentbox_with_stdin(&args, "a new long password\n").await;
    assert_eq!(code, 0, "{stderr}");
    let (status, tokens) = server
        .api()
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": "bob@example.com", "password": "a new long password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // Every change is in the audit log, with the CLI as the actor (Bob administers now).
    let bob =
        Api { token: Some(tokens["access_token"].as_str().unwrap().to_owned()), ..server.api() };
    let (status, audit) = bob.get("/api/v1/admin/audit?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let kinds: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["address"] == "cli" && e["detail"]["actor"] == "cli")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "user_updated").count(),
        4,
        "disable, enable, make-admin, remove-admin: {kinds:?}"
    );
    assert!(kinds.contains(&"user_created") && kinds.contains(&"password_reset"), "{kinds:?}");
}

async fn agentbox_with_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    #[allow(clippy::disallowed_methods)] // The test runs the real binary, not agent code.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbox"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SECRET_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(super::support::PATIENCE, child.wait_with_output())
        .await
        .expect("the command hung")
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_checks_this_machine_and_fails_a_missing_cli() {
    let server = TestServer::start().await;
    let data = server.data_dir.to_str().unwrap().to_owned();
    let cli = cli_path();
    let base = server.mock.base_url();
    let env = [("ANTHROPIC_API_KEY", "test-key"), ("ANTHROPIC_BASE_URL", base.as_str())];
    let (code, stdout, stderr) = agentbox(
        &["doctor", "--json", "--data-dir", &data, "--claude-path", cli.to_str().unwrap()],
        &env,
    )
    .await;
    let checks: Vec<Value> =
        serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}\n{stderr}"));
    let status = |name: &str| {
        checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name}: {checks:?}"))
            ["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // This machine runs the suite: every check passes, but cgroups may be degraded (v1),
    // which is said as a warning with the reason.
    for name in [
        "bubblewrap",
        "user namespaces",
        "data directory",
        "secret key",
        "claude CLI",
        "model endpoint",
        "database",
    ] {
        assert_eq!(status(name), "ok", "{checks:?}");
    }
    let cgroups = checks.iter().find(|c| c["name"] == "cgroups").unwrap();
    match cgroups["status"].as_str().unwrap() {
        "ok" => assert!(cgroups["detail"].as_str().unwrap().contains("cgroup v2")),
        "warn" => assert!(cgroups["detail"].as_str().unwrap().contains("DEGRADED"), "{cgroups}"),
        other => panic!("cgroups {other}: {cgroups}"),
    }
    assert_eq!(code, 0, "{checks:?}");
    assert!(checks.iter().all(|c| c["status"] == "ok" || c["fix"].is_string()), "{checks:?}");

    // A CLI path that does not exist is a fail, with what to do, and the exit status says so.
    let (code, stdout, _) =
        agentbox(&["doctor", "--data-dir", &data, "--claude-path", "/nonexistent/claude"], &env)
            .await;
    assert_eq!(code, 1, "{stdout}");
    let line = stdout.lines().find(|l| l.contains("claude CLI")).unwrap();
    assert!(line.starts_with("fail") && line.contains("/nonexistent/claude"), "{stdout}");
    assert!(stdout.contains("fix: run scripts/setup"), "{stdout}");
    // So is a key file others can read; a directory not served yet only warns.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("secret.key"), "k".repeat(40)).unwrap();
    std::fs::set_permissions(
        fresh.path().join("secret.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let (code, stdout, _) = agentbox(
        &[
            "doctor",
            "--data-dir",
            fresh.path().to_str().unwrap(),
            "--claude-path",
            cli.to_str().unwrap(),
        ],
        &env,
    )
    .await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("fail") && l.contains("mode 644")), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("warn") && l.contains("no database yet")),
        "{stdout}"
    );
    // Redis, when configured: the test Redis answers, a port nobody listens on fails.
    let redis = std::env::var("AGENTBOX_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    for (url, expected) in [(redis.as_str(), "ok"), ("redis://127.0.0.1:1/0", "fail")] {
        let env = [env[0], env[1], ("REDIS_URL", url)];
        let (_, stdout, _) = agentbox(
            &["doctor", "--data-dir", &data, "--claude-path", cli.to_str().unwrap()],
            &env,
        )
        .await;
        let line =
            stdout.lines().find(|l| l.contains("redis")).unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.starts_with(expected), "{url}: {stdout}");
    }
    // So is a model endpoint nobody listens on.
    let (code, stdout, _) = agentbox(
        &["doctor", "--data-dir", &data, "--claude-path", cli.to_str().unwrap()],
        &[("ANTHROPIC_API_KEY", "k"), ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        stdout.lines().any(|l| l.starts_with("fail") && l.contains("model endpoint")),
        "{stdout}"
    );
}
