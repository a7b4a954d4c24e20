//! Scheduled tasks over HTTP, router-level (no CLI): what is refused and why, the owner's
//! scoping, the preview of due times and what a PATCH does to the next run.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use support::App;

fn daily() -> Value {
    json!({"kind": "daily", "time": "09:00"})
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason_and_changes_nothing() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let create = |body: Value| {
        let token = alice.access.clone();
        let app = &app;
        async move { app.call(Method::POST, "/api/v1/tasks", Some(&token), Some(&body)).await }
    };
    let refused = [
        (
            json!({"name": "t", "prompt": "p", "schedule": {"kind": "cron", "expression": "61 * * * *"}}),
            "invalid_schedule",
            "is not valid",
        ),
        (
            json!({"name": "t", "prompt": "p", "schedule": daily(), "time_zone": "Mars/Olympus"}),
            "invalid_schedule",
            "unknown time zone",
        ),
        (
            json!({"name": "t", "prompt": "p", "schedule": {"kind": "once", "at": "2001-01-01T00:00:00Z"}}),
            "schedule_in_past",
            "has passed",
        ),
        (
            json!({"name": "t", "prompt": "p", "schedule": {"kind": "daily", "time": "25:00"}}),
            "invalid_schedule",
            "HH:MM",
        ),
        (json!({"name": " ", "prompt": "p", "schedule": daily()}), "invalid_name", ""),
        (json!({"name": "t", "prompt": " ", "schedule": daily()}), "empty_prompt", ""),
        (
            json!({"name": "t", "prompt": "p", "schedule": daily(), "permission_timeout_secs": 0}),
            "invalid_permission_timeout",
            "",
        ),
    ];
    for (body, code, words) in refused {
        let answer = create(body.clone()).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", answer.json());
        assert_eq!(answer.json()["error"]["code"], code, "{body}");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(words), "{body}: {message}");
    }
    let unknown = create(json!({"name": "t", "prompt": "p", "schedule": {"kind": "yearly"}})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Another user's chat as the target is no chat at all.
    let bobs_chat =
        app.call(Method::POST, "/api/v1/chats", Some(&bob.access), Some(&json!({}))).await;
    let target = json!({"kind": "chat", "chat_id": bobs_chat.json()["id"]});
    let answer =
        create(json!({"name": "t", "prompt": "p", "schedule": daily(), "target": target})).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"]["code"], "chat_not_found");

    let list = app.call(Method::GET, "/api/v1/tasks", Some(&alice.access), None).await;
    assert_eq!(list.json(), json!([]), "nothing refused was stored");

    // A valid task; a bad PATCH leaves it as it was.
    let task = create(json!({"name": "Morning", "prompt": "p", "schedule": daily(), "time_zone": "Europe/Berlin"})).await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.json());
    let task = task.json();
    let uri = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let bad = app
        .call(
            Method::PATCH,
            &uri,
            Some(&alice.access),
            Some(&json!({"schedule": {"kind": "cron", "expression": "nope"}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let same = app.call(Method::GET, &uri, Some(&alice.access), None).await.json();
    assert_eq!(same["schedule"], task["schedule"]);
    assert_eq!(
        app.call(Method::GET, &uri, Some(&bob.access), None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_task_shows_its_next_runs_and_a_patch_moves_them() {
    let app = App::new().await;
    let alice = app.user("alice@example.com").await;
    let body = json!({"name": "Weekdays", "prompt": "p", "schedule": {"kind": "weekdays", "time": "09:00"}, "time_zone": "America/New_York"});
    let task =
        app.call(Method::POST, "/api/v1/tasks", Some(&alice.access), Some(&body)).await.json();
    let runs: Vec<chrono::DateTime<chrono::Utc>> =
        serde_json::from_value(task["next_runs"].clone()).unwrap();
    assert_eq!(runs.len(), 5);
    assert!(runs.windows(2).all(|w| w[0] < w[1]));
    let ny = chrono_tz::America::New_York;
    for run in &runs {
        let local = run.with_timezone(&ny);
        assert_eq!(local.format("%H:%M").to_string(), "09:00", "{local}");
        assert!(!["Sat", "Sun"].contains(&local.format("%a").to_string().as_str()), "{local}");
    }
    assert_eq!(task["next_run_at"], task["next_runs"][0]);
    assert_eq!(task["target"], json!({"kind": "new_chat"}));
    assert_eq!(task["missed_runs"], "skip");
    assert_eq!(task["last_run"], Value::Null, "no run yet");
    assert_eq!(task["model"], "claude-test", "the server's default model");

    // The preview is the same computation.
    let preview = app
        .call(
            Method::POST,
            "/api/v1/tasks/preview",
            Some(&alice.access),
            Some(&json!({"schedule": body["schedule"], "time_zone": "America/New_York"})),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert_eq!(preview.json()["next_runs"], task["next_runs"]);

    let uri = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let disabled = app
        .call(Method::PATCH, &uri, Some(&alice.access), Some(&json!({"enabled": false})))
        .await
        .json();
    assert_eq!(disabled["next_run_at"], Value::Null, "a disabled task has no next run");
    assert_eq!(disabled["next_runs"], task["next_runs"], "but shows its schedule's");
    let hourly = app
        .call(Method::PATCH, &uri, Some(&alice.access), Some(&json!({"enabled": true, "schedule": {"kind": "hourly", "minute": 0}, "permission_timeout_secs": 60})))
        .await
        .json();
    assert_eq!(hourly["permission_timeout_secs"], 60);
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(hourly["next_run_at"].clone()).unwrap();
    assert_eq!(next.format("%M:%S").to_string(), "00:00", "on the hour");
    assert_ne!(hourly["next_runs"], task["next_runs"]);
    let runs = app.call(Method::GET, &format!("{uri}/runs"), Some(&alice.access), None).await;
    assert_eq!(runs.json(), json!([]));
    assert_eq!(
        app.call(Method::DELETE, &uri, Some(&alice.access), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::GET, &uri, Some(&alice.access), None).await.status,
        StatusCode::NOT_FOUND
    );
}
