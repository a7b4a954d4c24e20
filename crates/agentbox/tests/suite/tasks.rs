//! Scheduled tasks end to end: real servers, the real CLI, `mock-llm`, and a manual clock
//! that the tests move and tick instead of waiting for due times.

use std::path::Path;
use std::sync::Arc;

use agentbox::config::Config;
use agentbox::serve::{Server, start};
use agentbox_runs::schedule::{ManualWallClock, WallClock};
use agentbox_store::testing::TestDatabase;
use chrono::{DateTime, Duration, Utc};
use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::redis_bus::{Keys, node, redis_url};
use super::support::{Api, TestServerless, init_logs, test_config};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// A server whose scheduler reads `clock`, on `data_dir`, with `configure`'s settings.
async fn start_server(
    data_dir: &Path,
    mock: &MockLlm,
    clock: &Arc<ManualWallClock>,
    configure: impl FnOnce(&mut Config),
) -> (Server, Api) {
    let mut config: Config = test_config(data_dir, mock);
    config.tasks.clock = Some(clock.clone());
    configure(&mut config);
    let server = start(config).await.unwrap();
    let api = Api {
        base: format!("http://{}", server.address),
        http: reqwest::Client::new(),
        token: None,
    };
    (server, api)
}

async fn sign_in(api: &Api, email: &str) -> Api {
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Api { token: Some(body["access_token"].as_str().unwrap().to_owned()), ..api.clone() }
}

async fn create_task(api: &Api, body: Value) -> Value {
    let (status, task) = api.call(Method::POST, "/api/v1/tasks", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    task
}

async fn runs(api: &Api, task: &Value) -> Vec<Value> {
    let (status, runs) =
        api.get(&format!("/api/v1/tasks/{}/runs", task["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    runs.as_array().unwrap().clone()
}

/// Wait for the run's turn to end (its `message_completed`), then the run as listed.
async fn finished(api: &Api, task: &Value, run: &agentbox_protocol::task::TaskRun) -> Value {
    let chat = run.chat_id.expect("a started run has a chat").to_string();
    let message = run.message_id.expect("a started run has a message").to_string();
    api.stream(&chat, None).await.until_completed(&message).await;
    runs(api, task).await.into_iter().find(|r| r["id"] == run.id.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daily_task_fires_once_a_day_across_a_restart_and_a_disabled_one_never() {
    init_logs();
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let clock = Arc::new(ManualWallClock::new(utc("2030-01-01T08:00:00Z")));
    let (server, api) = start_server(&data, &mock, &clock, |_| ()).await;
    let alice = TestServerless(api.clone()).user("alice@example.com").await;
    let daily = json!({"kind": "daily", "time": "09:00"});
    let task = create_task(
        &alice,
        json!({"name": "Morning", "prompt": "[[text:good morning]]", "schedule": daily}),
    )
    .await;
    assert_eq!(task["next_run_at"], "2030-01-01T09:00:00Z");
    let off = create_task(
        &alice,
        json!({"name": "Off", "prompt": "[[text:no]]", "schedule": daily, "enabled": false}),
    )
    .await;
    assert_eq!(off["next_run_at"], Value::Null);

    assert_eq!(server.scheduler.tick().await.unwrap().started, [], "not due yet");
    clock.set(utc("2030-01-01T09:00:20Z"));
    let tick = server.scheduler.tick().await.unwrap();
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    let first = finished(&alice, &task, &tick.started[0]).await;
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(first["due_at"], "2030-01-01T09:00:00Z");
    assert_eq!(first["trigger"], "scheduled");
    assert!(first["cost_usd"].is_number(), "{first}");
    assert!(first["ended_at"].is_string());
    let chat = first["chat_id"].as_str().unwrap();
    let (_, chat_json) = alice.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["title"], "Morning", "a new chat named after the task");
    // The ended run is news in its chat (the web UI's attention count) until the chat is
    // opened, in the chat list as in the chat.
    let unseen = &chat_json["unseen_task_run"];
    assert_eq!(unseen["run_id"], first["id"], "{chat_json}");
    assert_eq!(
        (unseen["task_name"].as_str(), unseen["status"].as_str()),
        (Some("Morning"), Some("completed"))
    );
    let (_, list) = alice.get("/api/v1/chats").await;
    let listed = list.as_array().unwrap().iter().find(|c| c["id"] == chat).unwrap();
    assert_eq!(listed["unseen_task_run"]["run_id"], first["id"]);
    let (status, _) = alice.call(Method::POST, &format!("/api/v1/chats/{chat}/seen"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, chat_json) = alice.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(chat_json["unseen_task_run"], Value::Null, "{chat_json}");
    let seen = runs(&alice, &task).await;
    assert!(seen[0]["seen_at"].is_string(), "{seen:?}");
    assert_eq!(server.scheduler.tick().await.unwrap().started, [], "once per due time");

    // A restart on the same data directory, the same day: nothing runs again.
    server.stop().await.unwrap();
    let (server, api) = start_server(&data, &mock, &clock, |_| ()).await;
    let alice = sign_in(&api, "alice@example.com").await;
    clock.set(utc("2030-01-01T09:01:00Z"));
    assert_eq!(server.scheduler.tick().await.unwrap().started, []);
    assert_eq!(runs(&alice, &task).await.len(), 1);

    // The next day it runs again, once.
    clock.set(utc("2030-01-02T09:00:05Z"));
    let tick = server.scheduler.tick().await.unwrap();
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    let second = finished(&alice, &task, &tick.started[0]).await;
    assert_eq!(
        (second["status"].as_str(), second["due_at"].as_str()),
        (Some("completed"), Some("2030-01-02T09:00:00Z"))
    );
    assert_ne!(second["chat_id"], first["chat_id"], "a new chat each run");
    assert_eq!(server.scheduler.tick().await.unwrap().started, []);
    assert_eq!(runs(&alice, &task).await.len(), 2);
    assert!(runs(&alice, &off).await.is_empty(), "the disabled task never ran");
    let (_, task_now) = alice.get(&format!("/api/v1/tasks/{}", task["id"].as_str().unwrap())).await;
    assert_eq!(task_now["next_run_at"], "2030-01-03T09:00:00Z");
    assert_eq!(task_now["last_run"]["id"], second["id"], "the latest run, for notifications");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_due_while_the_server_was_down_follows_its_missed_run_policy() {
    init_logs();
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let clock = Arc::new(ManualWallClock::new(utc("2030-01-01T10:00:00Z")));
    let (server, api) = start_server(&data, &mock, &clock, |_| ()).await;
    let alice = TestServerless(api.clone()).user("alice@example.com").await;
    let hourly = json!({"kind": "hourly", "minute": 0});
    let skip = create_task(&alice, json!({"name": "Skip", "prompt": "[[text:skip]]", "schedule": hourly, "missed_runs": "skip"})).await;
    let once = create_task(&alice, json!({"name": "Once", "prompt": "[[text:once]]", "schedule": hourly, "missed_runs": "run_once"})).await;
    server.stop().await.unwrap();

    // Down from 10:00 to 15:20: the runs of 11:00 to 15:00 were missed.
    clock.set(utc("2030-01-01T15:20:00Z"));
    let (server, api) = start_server(&data, &mock, &clock, |_| ()).await;
    let alice = sign_in(&api, "alice@example.com").await;
    let tick = server.scheduler.tick().await.unwrap();
    assert_eq!((tick.started.len(), tick.skipped.len()), (1, 1), "{tick:?}");
    let ran = finished(&alice, &once, &tick.started[0]).await;
    assert_eq!(ran["status"], "completed", "{ran}");
    assert_eq!(
        (ran["trigger"].as_str(), ran["due_at"].as_str()),
        (Some("missed"), Some("2030-01-01T15:00:00Z")),
        "the latest missed due time, once"
    );
    assert_eq!(runs(&alice, &once).await.len(), 1);
    let skipped = runs(&alice, &skip).await;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["status"], "skipped");
    assert_eq!(skipped[0]["chat_id"], Value::Null, "no turn");
    let why = skipped[0]["error"].as_str().unwrap();
    assert!(
        why.contains("2030-01-01 11:00:00 UTC") && why.contains("2030-01-01 15:00:00 UTC"),
        "{why}"
    );
    for task in [&skip, &once] {
        let (_, now) = alice.get(&format!("/api/v1/tasks/{}", task["id"].as_str().unwrap())).await;
        assert_eq!(now["next_run_at"], "2030-01-01T16:00:00Z", "back on schedule");
    }
    assert_eq!(server.scheduler.tick().await.unwrap(), Default::default());

    // A crash between a claim and its turn's start: the claim is failed after the bound,
    // never run late.
    let stuck = server
        .store
        .claim_task_run(&agentbox_store::NewTaskRun {
            id: uuid::Uuid::now_v7(),
            task_id: skip["id"].as_str().unwrap().parse().unwrap(),
            due_at: utc("2030-01-01T15:30:00Z"),
            trigger: agentbox_protocol::task::RunTrigger::Manual,
            skipped: false,
            claimed_at: clock.now(),
            claimed_by: "a-node-that-crashed".into(),
            error: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server.scheduler.tick().await.unwrap().recovered, 0, "within the bound");
    clock.advance(Duration::minutes(6));
    assert_eq!(server.scheduler.tick().await.unwrap().recovered, 1);
    let run =
        runs(&alice, &skip).await.into_iter().find(|r| r["id"] == stuck.id.to_string()).unwrap();
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"].as_str().unwrap().contains("between claiming this run and starting"),
        "{run}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_berlin_cron_fires_at_the_right_instants_across_a_daylight_saving_change() {
    init_logs();
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualWallClock::new(utc("2030-03-29T12:00:00Z")));
    let (server, api) = start_server(&tmp.path().join("data"), &mock, &clock, |_| ()).await;
    let alice = TestServerless(api.clone()).user("alice@example.com").await;
    let chat = alice.new_chat().await;
    let task = create_task(
        &alice,
        json!({"name": "Night", "prompt": "[[text:night]]", "time_zone": "Europe/Berlin",
               "schedule": {"kind": "cron", "expression": "30 2 * * *"},
               "target": {"kind": "chat", "chat_id": chat}}),
    )
    .await;
    // 02:30 CET; on 31 March 02:30 does not exist (02:00 CET becomes 03:00 CEST), so 03:00
    // CEST, the first instant after the gap; then 02:30 CEST.
    let expected = ["2030-03-30T01:30:00Z", "2030-03-31T01:00:00Z", "2030-04-01T00:30:00Z"];
    assert_eq!(task["next_runs"].as_array().unwrap()[..3], expected.map(Value::from));
    // 02:30 as if it were still CET on the change's day is not a due time.
    let not_yet = ["2030-03-31T00:30:00Z", "2030-03-31T00:59:59Z"];
    for (n, due) in expected.iter().enumerate() {
        if n == 1 {
            for at in not_yet {
                clock.set(utc(at));
                assert_eq!(server.scheduler.tick().await.unwrap().started, [], "{at}");
            }
        }
        clock.set(utc(due));
        let tick = server.scheduler.tick().await.unwrap();
        assert_eq!(tick.started.len(), 1, "{due}: {tick:?}");
        let run = finished(&alice, &task, &tick.started[0]).await;
        assert_eq!(
            (run["status"].as_str(), run["due_at"].as_str()),
            (Some("completed"), Some(*due)),
            "{run}"
        );
        assert_eq!(run["chat_id"], chat.as_str(), "the given chat");
    }
    assert_eq!(alice.messages(&chat).await.len(), 6, "three turns in the one chat");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_database_never_run_a_due_time_twice() {
    init_logs();
    let mock = MockLlm::start().await.unwrap();
    let db = TestDatabase::create("tasks_two_servers").await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualWallClock::new(utc("2030-01-01T10:00:00Z")));
    // Two servers, each with its own pool, data directory and node id, one database and one
    // Redis, as a deployment of several nodes has (without Redis a node's streams never show
    // a turn another node runs): the run's turn may run on either, and Alice streams from A.
    let keys = Keys::new("tasks");
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let a_node = node(db.url.clone(), redis_url(), keys.0.clone());
    let (a, api_a) = start_server(&data_a, &mock, &clock, a_node).await;
    let b_node = node(db.url.clone(), redis_url(), keys.0.clone());
    let (b, api_b) = start_server(&data_b, &mock, &clock, b_node).await;
    let alice = TestServerless(api_a.clone()).user("alice@example.com").await;
    let _alice_on_b = sign_in(&api_b, "alice@example.com").await;
    let task = create_task(&alice, json!({"name": "Both", "prompt": "[[text:once]]", "schedule": {"kind": "hourly", "minute": 0}})).await;
    for hour in ["11", "12"] {
        clock.set(utc(&format!("2030-01-01T{hour}:00:01Z")));
        // Both tick at once, several times each.
        let ticks = futures::future::join_all((0..6).map(|n| {
            let scheduler = if n % 2 == 0 { a.scheduler.clone() } else { b.scheduler.clone() };
            async move { scheduler.tick().await.unwrap() }
        }))
        .await;
        let started: Vec<_> = ticks.into_iter().flat_map(|tick| tick.started).collect();
        assert_eq!(started.len(), 1, "one run of {hour}:00 in all: {started:?}");
        let run = finished(&alice, &task, &started[0]).await;
        assert_eq!(run["status"], "completed", "{run}");
    }
    let all = runs(&alice, &task).await;
    let due: Vec<&str> = all.iter().map(|r| r["due_at"].as_str().unwrap()).collect();
    assert_eq!(due, ["2030-01-01T12:00:00Z", "2030-01-01T11:00:00Z"]);
    let (_, chats) = alice.get("/api/v1/chats").await;
    assert_eq!(chats.as_array().unwrap().len(), 2, "one chat per run: {chats}");
    assert_eq!(
        mock.message_requests()
            .iter()
            .filter(|r| r.user_texts().iter().any(|t| t.contains("[[text:once]]")))
            .count(),
        2
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unanswered_request_in_a_task_run_waits_counted_then_is_denied() {
    init_logs();
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualWallClock::new(Utc::now()));
    let (server, api) = start_server(&tmp.path().join("data"), &mock, &clock, |_| ()).await;
    let alice = TestServerless(api.clone()).user("alice@example.com").await;
    let task = create_task(
        &alice,
        json!({"name": "Asks", "prompt": "[[write:notes.txt:hi]]", "permission_mode": "ask",
               "permission_timeout_secs": 60, "schedule": {"kind": "daily", "time": "03:00"}}),
    )
    .await;
    let (status, run) = alice
        .call(Method::POST, &format!("/api/v1/tasks/{}/run", task["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(
        (run["trigger"].as_str(), run["status"].as_str()),
        (Some("manual"), Some("running"))
    );
    let chat = run["chat_id"].as_str().unwrap().to_owned();
    let mut stream = alice.stream(&chat, None).await;
    stream.until("permission_request").await;
    // While it waits, the chat counts as waiting: the web UI's attention count.
    let (_, chats) = alice.get("/api/v1/chats").await;
    let listed =
        chats.as_array().unwrap().iter().find(|c| c["id"] == chat.as_str()).unwrap().clone();
    assert_eq!(listed["pending_requests"], 1, "{listed}");
    // The request's time is the real clock's: the scheduler's starts from now.
    clock.set(Utc::now());
    assert_eq!(server.scheduler.tick().await.unwrap().denied, 0, "within its timeout");
    clock.advance(Duration::seconds(61));
    assert_eq!(server.scheduler.tick().await.unwrap().denied, 1);
    let events = stream.until_completed(run["message_id"].as_str().unwrap()).await;
    let resolved = events.iter().find(|e| e.event == "permission_resolved").expect("resolved");
    assert_eq!(resolved.data["approved"], false, "{:?}", resolved.data);
    let message = resolved.data.to_string();
    assert!(message.contains("unattended"), "{message}");
    assert!(!tmp.path().join("data/sandboxes").join(&chat).join("home/notes.txt").exists());
    server.stop().await.unwrap();
}

/// The owner's limits hold for scheduled turns: with one turn a day, the day's second run
/// fails saying which limit, and the new chat it would have run in does not stay behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_over_the_owners_limit_fails_naming_it_and_leaves_no_chat() {
    init_logs();
    let mock = MockLlm::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualWallClock::new(utc("2030-01-01T08:00:00Z")));
    let mut config: Config = test_config(&tmp.path().join("data"), &mock);
    config.tasks.clock = Some(clock.clone());
    config.turn_limits.turns_per_day = Some(1);
    let server = start(config).await.unwrap();
    let api = Api {
        base: format!("http://{}", server.address),
        http: reqwest::Client::new(),
        token: None,
    };
    let alice = TestServerless(api.clone()).user("alice@example.com").await;
    let task = create_task(
        &alice,
        json!({"name": "Morning", "prompt": "[[text:good morning]]",
               "schedule": {"kind": "daily", "time": "09:00"}}),
    )
    .await;
    clock.set(utc("2030-01-01T09:00:20Z"));
    let tick = server.scheduler.tick().await.unwrap();
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    let first = finished(&alice, &task, &tick.started[0]).await;
    assert_eq!(first["status"], "completed", "{first}");

    let chats = |api: Api| async move { api.get("/api/v1/chats").await.1 };
    let before = chats(alice.clone()).await;
    assert_eq!(before.as_array().map(Vec::len), Some(1), "the first run's chat: {before}");
    let (status, run) = alice
        .call(Method::POST, &format!("/api/v1/tasks/{}/run", task["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("turns per day"), "{run}");
    assert_eq!(run["chat_id"], Value::Null, "{run}");
    assert_eq!(chats(alice.clone()).await, before, "no empty chat was left");
    server.stop().await.unwrap();
}
