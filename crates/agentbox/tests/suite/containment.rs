//! Containment: every attempt is made from inside a sandbox, by the agent's own Bash tool in
//! a real turn, and must fail while the server stays healthy. The network targets are
//! servers on this machine's loopback (the test's own, agentbox's port, PostgreSQL, Redis):
//! no traffic leaves the machine.

use std::time::Duration;

use agentbox_sandbox::local::limits::Limits;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::{Api, SseEvent, TestServer, kinds};

/// Tries, as the sandbox's user, everything a sandbox must not be able to do, and prints one
/// JSON object: `{name: {"ok": bool, "detail": str}}`. Its argument is a JSON object of
/// paths, pids and ports to aim at.
const PROBE: &str = r#"
import ctypes, json, os, socket, sys
target = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
results = {}

def attempt(name, fn):
    try:
        detail = fn()
        results[name] = {"ok": True, "detail": str(detail)[:300]}
    except BaseException as e:
        results[name] = {"ok": False, "detail": (type(e).__name__ + ": " + str(e))[:300]}

def check(rc):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc

def through_proxy(request):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
    s.sendall(request.encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    status = data.split(b"\r\n", 1)[0].decode()
    if " 200 " not in status:
        raise PermissionError(status)
    return data.decode(errors="replace")

attempt("read_database", lambda: open(target["database"], "rb").read(16))
attempt("read_secret_key", lambda: open(target["secret_key"]).read())
attempt("read_etc_shadow", lambda: open("/etc/shadow").read())
attempt("list_root_home", lambda: os.listdir("/root"))
attempt("read_other_workspace", lambda: os.listdir(target["other_home"]))
attempt("write_other_workspace", lambda: open(target["other_home"] + "/pwned", "w").write("x"))
attempt("signal_the_server", lambda: os.kill(target["server_pid"], 9))
attempt("see_host_services", lambda: [p for p in os.listdir("/proc") if p.isdigit() and
        any(s in open("/proc/%s/cmdline" % p, "rb").read() for s in (b"postgres", b"redis-server"))] or 1/0)
attempt("mount_tmpfs", lambda: check(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
attempt("ptrace_attach", lambda: check(libc.ptrace(16, 1, None, None)))
attempt("load_module", lambda: check(libc.syscall(313, -1, b"", 0)))
attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("packet_socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
attempt("new_user_namespace", lambda: check(libc.unshare(0x10000000)))
for port in target["host_ports"]:
    attempt("connect_host_%d" % port, lambda port=port: socket.create_connection(("127.0.0.1", port), timeout=3))
    attempt("proxy_to_host_%d" % port, lambda port=port: through_proxy("CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % port))
attempt("proxy_to_denied_server", lambda: through_proxy(
    "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % target["denied_port"]))
attempt("proxy_to_allowed_server", lambda: through_proxy(
    "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % target["allowed_port"]))
attempt("curl_allowed_server_via_env", lambda: os.popen(
    "curl -s --max-time 10 http://127.0.0.1:%d/" % target["allowed_port"]).read() or 1/0)
print("PROBE-RESULTS " + json.dumps(results))
"#;

/// A tiny HTTP server on loopback that answers `body` to every request.
async fn loopback_server(body: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = conn.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

/// The tool output of a turn that runs `command` (through the mock's `[[bash:...]]`).
pub(super) async fn run_in_sandbox(
    api: &Api,
    chat: &str,
    command: &str,
) -> (String, Vec<SseEvent>) {
    assert!(!command.contains("]]"), "the marker cannot carry ]]");
    let message = api.send(chat, &format!("[[bash:{command}]] run this")).await;
    let events: Vec<SseEvent> = api
        .turn_events(chat, &message)
        .await
        .into_iter()
        .filter(|e| e.data["message_id"] == message)
        .collect();
    let output = events
        .iter()
        .find_map(|e| match e.event.as_str() {
            "tool_completed" => e.data["tool"]["result"].as_str().map(str::to_owned),
            "tool_failed" => e.data["tool"]["error"].as_str().map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default();
    (output, events)
}

async fn assert_healthy(api: &Api) {
    let (status, health) = api.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["database"]["status"], "ok", "{health}");
    assert_eq!(health["sandbox"]["status"], "ok", "{health}");
}

fn can_connect(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        .is_ok()
}

#[tokio::test]
async fn nothing_reaches_the_host_the_server_or_other_sandboxes() {
    let allowed_port = loopback_server("allowed-ok").await;
    let denied_port = loopback_server("denied-should-not-be-seen").await;
    let server = TestServer::start_with(move |config| {
        config.sandbox.allow_hosts = vec![format!("127.0.0.1:{allowed_port}")];
    })
    .await;
    let api = server.user("contain@example.com").await;
    let victim = server.user("victim@example.com").await;
    let victim_chat = victim.new_chat().await;
    let (status, _) = victim
        .request(
            Method::PUT,
            &format!("/api/v1/chats/{victim_chat}/files/content?path=private.txt"),
        )
        .body("victim's secret")
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let chat = api.new_chat().await;
    let (status, _) = api
        .request(Method::PUT, &format!("/api/v1/chats/{chat}/files/content?path=probe.py"))
        .body(PROBE)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::OK);

    // The host services the probe aims at really are there, seen from the host.
    let agentbox_port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut host_ports = vec![agentbox_port];
    for port in [5432, 6379] {
        if can_connect(port) {
            host_ports.push(port);
        }
    }
    assert_eq!(
        host_ports.len(),
        3,
        "PostgreSQL and Redis should run on this machine: {host_ports:?}"
    );
    let target = json!({
        "database": server.data_dir.join("agentbox.sqlite"),
        "secret_key": server.data_dir.join("secret.key"),
        "other_home": server.sandbox_home(&victim_chat),
        "server_pid": std::process::id(),
        "host_ports": host_ports,
        "allowed_port": allowed_port,
        "denied_port": denied_port,
    });
    let (output, events) =
        run_in_sandbox(&api, &chat, &format!("python3 probe.py '{target}'")).await;
    let results: Value = output
        .split("PROBE-RESULTS ")
        .nth(1)
        .and_then(|json| serde_json::from_str(json.trim()).ok())
        .unwrap_or_else(|| panic!("no probe results: {output}\n{:?}", kinds(&events)));
    let mut escaped = Vec::new();
    for (name, result) in results.as_object().unwrap() {
        let should_work =
            name == "proxy_to_allowed_server" || name == "curl_allowed_server_via_env";
        if result["ok"].as_bool() != Some(should_work) {
            escaped.push(format!("{name}: {result}"));
        }
    }
    assert!(escaped.is_empty(), "containment failures:\n{}", escaped.join("\n"));
    assert!(results["proxy_to_allowed_server"]["detail"].as_str().unwrap().contains("allowed-ok"));
    assert!(
        results["proxy_to_denied_server"]["detail"].as_str().unwrap().contains("403"),
        "{results}"
    );
    assert!(results["read_etc_shadow"]["detail"].as_str().unwrap().contains("No such file"));
    assert!(
        results["signal_the_server"]["detail"].as_str().unwrap().contains("ProcessLookupError")
    );
    let ports = target["host_ports"].as_array().unwrap().len();
    assert_eq!(results.as_object().unwrap().len(), 17 + 2 * ports, "every attempt ran: {results}");
    assert_eq!(
        std::fs::read_to_string(server.sandbox_home(&victim_chat).join("private.txt")).unwrap(),
        "victim's secret"
    );
    assert!(!server.sandbox_home(&victim_chat).join("pwned").exists());
    assert_healthy(&api).await;
}

#[tokio::test]
async fn bombs_and_floods_are_stopped_by_the_limits() {
    let limits = Limits {
        processes: 200,
        memory_bytes: 1 << 30,
        disk_bytes: 100 << 20,
        ..Limits::default()
    };
    let server = TestServer::start_with(|config| {
        config.sandbox.limits = limits;
        config.sandbox.disk_check_interval = Duration::from_millis(500);
    })
    .await;
    let api = server.user("bombs@example.com").await;
    let chat = api.new_chat().await;

    // A fork bomb: forking stops at the process limit; the children go away on their own.
    let bomb = "python3 -c 'import os,time\nn=0\ntry:\n  while True:\n    if os.fork()==0:\n      time.sleep(3); os._exit(0)\n    n+=1\nexcept OSError as e:\n  print(\"stopped after\", n, e)'";
    let (output, _) = run_in_sandbox(&api, &chat, bomb).await;
    assert!(
        output.contains("stopped after") && output.contains("Resource temporarily unavailable"),
        "{output}"
    );
    let forked: u64 = output.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(forked < 200, "more processes than the limit: {forked}");
    assert_healthy(&api).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // A memory bomb: the process dies, the server does not.
    let (output, events) =
        run_in_sandbox(&api, &chat, "python3 -c 'x = bytearray(8 * 1024**3)'; echo exit=$?").await;
    assert!(
        output.contains("MemoryError") && output.contains("exit=1"),
        "{output} {:?}",
        kinds(&events)
    );
    assert_healthy(&api).await;

    // One file cannot outgrow its limit, which is below the disk quota by a reserve larger
    // than the CLI's own files: a file written up to it never puts the workspace over the
    // quota, so the periodic size check has nothing to stop, whenever it runs...
    let (output, _) = run_in_sandbox(
        &api,
        &chat,
        "dd if=/dev/zero of=big bs=1M count=300 2>/dev/null; echo dd-exit=$?",
    )
    .await;
    // SIGXFSZ (25) stops dd at the limit: exit status 128 + 25.
    assert!(output.contains("dd-exit=153"), "{output}");
    let big = std::fs::metadata(server.sandbox_home(&chat).join("big")).unwrap().len();
    assert_eq!(big, limits.max_file_bytes());
    let (_, sandbox) = api.get(&format!("/api/v1/chats/{chat}/sandbox")).await;
    assert_ne!(sandbox["status"], "stopped", "{sandbox}");
    let (status, _) =
        api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/files?path=big"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // ...and many files that do together stop the sandbox.
    let fill = "for i in $(seq 1 12); do head -c 20000000 /dev/zero > fill$i; done; python3 -c 'import time; time.sleep(30)'";
    let (_, events) = run_in_sandbox(&api, &chat, fill).await;
    assert_eq!(events.last().unwrap().data["status"], "failed", "{:?}", kinds(&events));
    // The turn says which limit ended it, and what to do.
    let error = events.iter().rev().find(|e| e.event == "error").expect("an error event");
    assert_eq!(error.data["code"], "sandbox_out_of_disk", "{}", error.data);
    assert!(error.data["message"].as_str().unwrap().contains("Delete files"), "{}", error.data);
    assert_healthy(&api).await;
    let (_, sandbox) = api.get(&format!("/api/v1/chats/{chat}/sandbox")).await;
    assert_eq!(sandbox["status"], "stopped", "{sandbox}");
    // While over quota the sandbox does not start, and says why.
    let message = api.send(&chat, "[[text:hello]] again").await;
    let events = api.turn_events(&chat, &message).await;
    let error = events.iter().rev().find(|e| e.event == "error").expect("an error event");
    assert!(error.data["message"].as_str().unwrap().contains("quota"), "{}", error.data);
    assert_eq!(error.data["code"], "sandbox_out_of_disk", "{}", error.data);
    // Deleting files through the API brings it back.
    for i in 1..=12 {
        api.call(Method::DELETE, &format!("/api/v1/chats/{chat}/files?path=fill{i}"), None).await;
    }
    let message = api.send(&chat, "[[text:hello]] once more").await;
    let events = api.turn_events(&chat, &message).await;
    assert_eq!(events.last().unwrap().data["status"], "completed", "{:?}", kinds(&events));
}

/// A chat of `api` in `bypassPermissions` (curl reaches the network, which `auto` would ask
/// about; these tests are about the proxy).
pub(super) async fn bypass_chat(api: &Api) -> String {
    let body = json!({"permission_mode": "bypassPermissions"});
    let (status, chat) = api.call(Method::POST, "/api/v1/chats", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    chat["id"].as_str().unwrap().to_owned()
}

async fn allow_hosts(api: &Api, hosts: Value) -> (StatusCode, Value) {
    api.call(Method::PATCH, "/api/v1/settings", Some(json!({"sandbox_allowed_hosts": hosts}))).await
}

#[tokio::test]
async fn a_users_own_hosts_never_open_the_hosts_local_services() {
    let port = loopback_server("must-not-be-reached").await;
    let server = TestServer::start().await;
    let alice = server.user("alice-local@example.com").await;
    let (status, body) = allow_hosts(&alice, json!(["bad host!"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_host"))
    );
    let (_, settings) = alice.get("/api/v1/settings").await;
    assert_eq!(settings["sandbox_allowed_hosts"], json!([]));

    // Allowing the host's loopback (or anything that resolves there) opens nothing.
    let targets =
        [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "127.0.0.1:5432".into()];
    let (status, body) = allow_hosts(&alice, json!(targets)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let chat = bypass_chat(&alice).await;
    for target in ["127.0.0.1", "localhost"] {
        let fetch = format!("curl -s --max-time 10 http://{target}:{port}/");
        let (output, _) = run_in_sandbox(&alice, &chat, &fetch).await;
        assert!(!output.contains("must-not-be-reached"), "{output}");
        assert!(output.contains("loopback or private network"), "{output}");
    }
    assert_healthy(&alice).await;
}

#[tokio::test]
async fn a_user_can_allow_more_hosts_for_their_own_sandboxes_only() {
    let port = loopback_server("user-allowed-ok").await;
    // Tests can only serve on loopback: the operator lets users' hosts be local here.
    let server = TestServer::start_with(|config| config.sandbox.user_hosts_private = true).await;
    let alice = server.user("alice-net@example.com").await;
    let bob = server.user("bob-net@example.com").await;
    let fetch = format!("curl -s --max-time 10 http://127.0.0.1:{port}/");

    let alice_chat = bypass_chat(&alice).await;
    let (before, _) = run_in_sandbox(&alice, &alice_chat, &fetch).await;
    assert!(before.contains("not on this sandbox's allow-list"), "{before}");

    let (status, settings) = allow_hosts(&alice, json!([format!("127.0.0.1:{port}")])).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    let (after, _) = run_in_sandbox(&alice, &alice_chat, &fetch).await;
    assert!(after.contains("user-allowed-ok"), "{after}");

    // Alice's list is hers: Bob's sandbox is still refused.
    let bob_chat = bypass_chat(&bob).await;
    let (refused, _) = run_in_sandbox(&bob, &bob_chat, &fetch).await;
    assert!(refused.contains("not on this sandbox's allow-list"), "{refused}");
}
