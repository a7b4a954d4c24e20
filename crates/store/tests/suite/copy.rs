//! `agentbox migrate --from sqlite --to postgres`: a whole installation, copied, reads the
//! same through the store (and so through the API) on the target, and a copy into a
//! database that is not empty is refused.

use std::sync::Mutex;

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{EventPayload, MessageStatus, PermissionRequest, Usage};
use agentbox_protocol::permission::{PermissionKind, PermissionRule};
use agentbox_store::{
    Backend, ChatQuery, ChatUpdate, CheckpointKind, NewEvent, StoreError, Table, TurnResult,
    copy_installation,
};
use uuid::Uuid;

use super::support::TestStore;

/// A bit of everything the product stores.
async fn fill(t: &TestStore) -> (Uuid, Vec<Uuid>) {
    let store = &t.store;
    let (user, chat) = t.user_and_chat().await;
    let second = t.chat_of(user).await;
    store.set_user_instructions(user, Some("be brief")).await.unwrap();
    store.set_user_allowed_hosts(user, &["example.com".into()]).await.unwrap();
    store
        .set_user_defaults(user, Some("claude-opus-4-1"), Some(PermissionMode::Plan))
        .await
        .unwrap();
    let serde_json::Value::Object(limits) =
        serde_json::json!({"turns_per_day": 5, "running_sandboxes": null})
    else {
        unreachable!()
    };
    store.set_user_limits(user, &limits).await.unwrap();
    store.set_server_setting("registration", "invite").await.unwrap();
    store
        .add_refresh_token(
            user,
            "token-hash",
            "family",
            chrono::Utc::now() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    store
        .rotate_refresh_token(
            "token-hash",
            "token-hash-2",
            chrono::Utc::now() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    store
        .create_invite(user, "invite-hash", chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    store.put_secret(user, None, "TOKEN", "key-id", "sealed-user").await.unwrap();
    store.put_secret(user, Some(chat), "TOKEN", "key-id", "sealed-chat").await.unwrap();
    store.put_extension(user, None, "command", "review", r#"{"content":"Review"}"#).await.unwrap();
    store
        .put_extension(user, Some(chat), "mcp_server", "tools", r#"{"type":"http"}"#)
        .await
        .unwrap();
    store
        .audit(
            "sign_in",
            Some(user),
            None,
            Some("a@example.com"),
            Some("::1"),
            Some(&serde_json::json!({"k": "v"})),
        )
        .await
        .unwrap();
    for (i, target) in [chat, second, chat].into_iter().enumerate() {
        let turn = store
            .begin_turn(target, &format!("prompt {i}"), "m", PermissionMode::Ask)
            .await
            .unwrap();
        for k in 0..40 {
            let text = EventPayload::AssistantText { text: format!("text {k} \u{0} ✓") };
            store.append_event(target, NewEvent::new(turn.message_id, text)).await.unwrap();
        }
        let request = EventPayload::PermissionRequest(PermissionRequest {
            request_id: format!("r{i}"),
            kind: PermissionKind::Tool,
            tool_name: "Bash".into(),
            input: serde_json::json!({"command": "curl x", "i": i}),
            tool_use_id: Some("toolu".into()),
            description: None,
            reason: Some("network".into()),
            plan: None,
            blocked_path: None,
            suggestions: Vec::new(),
            expires_at: Some(chrono::Utc::now()),
        });
        store
            .append_permission_event(target, NewEvent::new(turn.message_id, request))
            .await
            .unwrap();
        if i < 2 {
            let result = TurnResult {
                status: MessageStatus::Completed,
                total_cost_usd: Some(0.1 + 0.2 * i as f64),
                usage: Some(Usage { input_tokens: 10, output_tokens: 20, ..Usage::default() }),
                session_id: Some(format!("s{i}")),
            };
            store.finish_turn(target, turn.message_id, result).await.unwrap();
            store
                .record_checkpoint(
                    target,
                    Uuid::now_v7(),
                    CheckpointKind::Turn,
                    Some(turn.message_id),
                    Some("s"),
                )
                .await
                .unwrap();
        }
    }
    // A scheduled task with an ended run in the chat, seen, and a claim still pending.
    let task = store
        .create_task(&agentbox_store::TaskRecord {
            id: Uuid::now_v7(),
            user_id: user,
            name: "nightly".into(),
            prompt: "summarise".into(),
            schedule: agentbox_protocol::task::Schedule::Cron { expression: "0 9 * * 1-5".into() },
            time_zone: "Europe/Berlin".into(),
            model: "m".into(),
            permission_mode: PermissionMode::Auto,
            permission_timeout_secs: Some(30),
            target_chat_id: Some(chat),
            enabled: true,
            missed_runs: agentbox_protocol::task::MissedRunPolicy::RunOnce,
            next_run_at: Some(chrono::Utc::now()),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    for (hour, fail) in [(1, true), (2, false)] {
        let due = chrono::Utc::now() - chrono::Duration::hours(hour);
        let run = store
            .claim_task_run(&agentbox_store::NewTaskRun {
                id: Uuid::now_v7(),
                task_id: task.id,
                due_at: due,
                trigger: agentbox_protocol::task::RunTrigger::Scheduled,
                skipped: false,
                claimed_at: due,
                claimed_by: "node-a".into(),
                error: None,
            })
            .await
            .unwrap()
            .unwrap();
        if fail {
            store.fail_task_run(run.id, Some(chat), "over the limit", due).await.unwrap();
        }
    }
    store.mark_task_runs_seen(user, chat, chrono::Utc::now()).await.unwrap();
    // The repository the chat was started from.
    store
        .set_chat_repository(&agentbox_store::ChatRepositoryRecord {
            chat_id: chat,
            url: "https://git.example.com/team/project.git".into(),
            branch: Some("dev".into()),
            secret: None,
            directory: "project".into(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    // Finding chats: a pin, the archive (and the search index, rebuilt on the target from
    // the copied events).
    let pin = ChatUpdate { pinned: Some(true), archived: Some(true), ..ChatUpdate::default() };
    store.update_chat(user, chat, pin).await.unwrap().unwrap();
    store
        .add_permission_rule(
            chat,
            &PermissionRule { tool_name: "Bash".into(), rule_content: Some("ls:*".into()) },
        )
        .await
        .unwrap();
    store.enqueue(chat, "later", Some("other"), Some(PermissionMode::Plan)).await.unwrap();
    store.enqueue(second, "later too", None, None).await.unwrap();
    (user, vec![chat, second])
}

/// What the API would show of the installation, as JSON.
async fn view(store: &agentbox_store::Store, user: Uuid, chats: &[Uuid]) -> String {
    let mut out = Vec::new();
    let user_record = store.user(user).await.unwrap().unwrap();
    out.push(format!("{:?}", user_record));
    out.push(serde_json::to_string(&store.user_settings(user).await.unwrap()).unwrap());
    out.push(serde_json::to_string(&store.user_limits(user).await.unwrap()).unwrap());
    out.push(format!("{:?}", store.server_setting("registration").await.unwrap()));
    out.push(format!("{:?}", store.list_chats(user).await.unwrap()));
    let search = ChatQuery { search: Some("text 3".into()), ..ChatQuery::default() };
    // The chats found (a preview of a text with a NUL differs by backend: SQLite's ends at
    // the NUL, PostgreSQL's is the event's JSON).
    let found = store.find_chats(user, &search).await.unwrap();
    out.push(format!("{:?}", found.iter().map(|listing| &listing.chat).collect::<Vec<_>>()));
    for &chat in chats {
        out.push(serde_json::to_string(&store.messages(chat).await.unwrap()).unwrap());
        out.push(
            serde_json::to_string(&store.events_after(chat, 0, 10_000).await.unwrap()).unwrap(),
        );
        out.push(serde_json::to_string(&store.pending_permissions(chat).await.unwrap()).unwrap());
        out.push(serde_json::to_string(&store.permission_rules(chat).await.unwrap()).unwrap());
        out.push(serde_json::to_string(&store.queue(chat).await.unwrap()).unwrap());
        out.push(format!("{:?}", store.checkpoints(chat).await.unwrap()));
        out.push(format!("{:?}", store.chat_repository(chat).await.unwrap()));
    }
    out.push(format!("{:?}", store.unfinished_turns().await.unwrap()));
    for task in store.list_tasks(user).await.unwrap() {
        out.push(format!("{task:?}"));
        out.push(serde_json::to_string(&store.task_runs(task.id, 100).await.unwrap()).unwrap());
    }
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_installation_reads_the_same_and_a_full_target_is_refused() {
    let source = TestStore::new(Backend::Sqlite, "copy_source").await;
    let target = TestStore::new(Backend::Postgres, "copy_target").await;
    let (user, chats) = fill(&source).await;
    let heard = Mutex::new(Vec::new());
    let report = copy_installation(&source.store, &target.store, &|table, done, total| {
        heard.lock().unwrap().push((table, done, total));
    })
    .await
    .unwrap();
    let counts: std::collections::HashMap<_, _> = report.tables.iter().copied().collect();
    assert_eq!(counts[&Table::Users], 1);
    assert_eq!(counts[&Table::Chats], 2);
    assert_eq!(counts[&Table::Messages], 6);
    assert_eq!(counts[&Table::ChatEvents], 3 * 42 + 2);
    assert_eq!((counts[&Table::PermissionRequests], counts[&Table::PermissionRules]), (3, 1));
    assert_eq!((counts[&Table::QueuedMessages], counts[&Table::Checkpoints]), (2, 2));
    assert_eq!((counts[&Table::RefreshTokens], counts[&Table::UserSettings]), (2, 1));
    assert_eq!((counts[&Table::Invites], counts[&Table::AuditEvents]), (1, 1));
    assert_eq!(counts[&Table::ServerSettings], 1);
    assert_eq!(counts[&Table::Secrets], 2);
    assert_eq!((counts[&Table::Tasks], counts[&Table::TaskRuns]), (1, 2));
    assert_eq!(counts[&Table::Extensions], 2);
    assert_eq!(counts[&Table::ChatRepositories], 1);
    for table in Table::ALL {
        assert_eq!(target.store.count_rows(table).await.unwrap(), counts[&table]);
    }
    // Progress was told, and the last word on each table was all of it.
    let heard = heard.into_inner().unwrap();
    assert!(
        heard.iter().any(|&(t, done, total)| t == Table::ChatEvents && done == total && total > 0)
    );

    // Byte for byte what the API would answer, timestamps and documents included.
    let (before, after) =
        (view(&source.store, user, &chats).await, view(&target.store, user, &chats).await);
    for (line, (a, b)) in before.lines().zip(after.lines()).enumerate() {
        if a != b {
            let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            let around = |s: &str| {
                s.get(at.saturating_sub(80)..(at + 80).min(s.len())).unwrap_or(s).to_owned()
            };
            panic!(
                "line {line} differs at byte {at}:\n source {}\n target {}",
                around(a),
                around(b)
            );
        }
    }
    assert_eq!(before.lines().count(), after.lines().count());
    // The target works on from where the source was: the next seq, the running turn.
    let next = target
        .store
        .append_event(
            chats[0],
            NewEvent::new(
                target.store.running_turn(chats[0]).await.unwrap().unwrap(),
                EventPayload::AssistantText { text: "on".into() },
            ),
        )
        .await
        .unwrap();
    let last = source.store.chat_unscoped(chats[0]).await.unwrap().unwrap().last_seq;
    assert_eq!(next.seq, last + 1);
    // The copied tokens keep their family and use: the used one is recognised as reused.
    assert_eq!(
        target.store.rotate_refresh_token("token-hash", "x", chrono::Utc::now()).await.unwrap(),
        agentbox_store::RefreshRotation::Reused { user_id: user }
    );
    let copied = target.store.user(user).await.unwrap().unwrap();
    assert!(copied.is_admin, "{copied:?}");
    assert_eq!(target.store.list_invites().await.unwrap().len(), 1);
    let audit = agentbox_store::AuditFilter { limit: 10, ..Default::default() };
    assert_eq!(
        target.store.audit_events(&audit).await.unwrap(),
        source.store.audit_events(&audit).await.unwrap()
    );
    assert_eq!(
        target.store.all_secrets().await.unwrap(),
        source.store.all_secrets().await.unwrap()
    );
    assert_eq!(
        target.store.extensions(user, None, None).await.unwrap(),
        source.store.extensions(user, None, None).await.unwrap()
    );

    // A second copy into the now full target is refused, saying what it found, and
    // changes nothing.
    let refused = copy_installation(&source.store, &target.store, &|_, _, _| {}).await;
    let Err(StoreError::Refused(reason)) = refused else { panic!("{refused:?}") };
    assert!(reason.contains("not empty") && reason.contains("rows in users"), "{reason}");
    assert_eq!(target.store.count_rows(Table::Users).await.unwrap(), 1);
}
