//! Scheduled tasks: scoped by their owner, a due time claimed once however many pools race
//! for it, runs that take their outcome from their turn, stale claims, history pruning.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::MessageStatus;
use agentbox_protocol::task::{MissedRunPolicy, RunStatus, RunTrigger, Schedule};
use agentbox_store::{NewTaskRun, TaskRecord, TurnResult};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::support::{TestStore, conformance};

conformance!(
    tasks_are_their_owners_and_move_on,
    a_due_time_is_claimed_once_across_pools,
    runs_follow_their_turns_and_are_pruned,
    ended_runs_stay_unseen_until_their_chat_is_opened,
);

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, 1, hour, 0, 0).unwrap()
}

fn task_of(user_id: Uuid, next: Option<DateTime<Utc>>) -> TaskRecord {
    TaskRecord {
        id: Uuid::now_v7(),
        user_id,
        name: "nightly".into(),
        prompt: "summarise".into(),
        schedule: Schedule::Daily { time: "09:00".into() },
        time_zone: "Europe/Berlin".into(),
        model: "m".into(),
        permission_mode: PermissionMode::Auto,
        permission_timeout_secs: Some(30),
        target_chat_id: None,
        enabled: true,
        missed_runs: MissedRunPolicy::RunOnce,
        next_run_at: next,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn claim(task_id: Uuid, due_at: DateTime<Utc>, node: &str) -> NewTaskRun {
    NewTaskRun {
        id: Uuid::now_v7(),
        task_id,
        due_at,
        trigger: RunTrigger::Scheduled,
        skipped: false,
        claimed_at: due_at,
        claimed_by: node.into(),
        error: None,
    }
}

async fn tasks_are_their_owners_and_move_on(t: TestStore) {
    let store = &t.store;
    let (alice, _) = t.user_and_chat().await;
    let (bob, _) = t.user_and_chat().await;
    let task = store.create_task(&task_of(alice, Some(at(8)))).await.unwrap();
    assert_eq!(store.task(alice, task.id).await.unwrap().as_ref(), Some(&task));
    assert_eq!(store.task(bob, task.id).await.unwrap(), None, "another user's task is none");
    assert_eq!(store.list_tasks(alice).await.unwrap(), std::slice::from_ref(&task));
    assert!(store.list_tasks(bob).await.unwrap().is_empty());

    let mut changed = task.clone();
    changed.schedule = Schedule::Cron { expression: "30 2 * * *".into() };
    changed.target_chat_id = Some(Uuid::now_v7());
    changed.permission_timeout_secs = None;
    assert_eq!(
        store.update_task(&TaskRecord { user_id: bob, ..changed.clone() }).await.unwrap(),
        None
    );
    let changed = store.update_task(&changed).await.unwrap().unwrap();
    assert_eq!(store.task_unscoped(task.id).await.unwrap(), Some(changed.clone()));

    // Due: enabled, with a next run at or before now.
    let disabled = store
        .create_task(&TaskRecord { enabled: false, ..task_of(alice, Some(at(7))) })
        .await
        .unwrap();
    let later = store.create_task(&task_of(alice, Some(at(10)))).await.unwrap();
    let due = store.due_tasks(at(9), 10).await.unwrap();
    assert_eq!(due.iter().map(|t| t.id).collect::<Vec<_>>(), [task.id]);
    assert!(!due.iter().any(|t| t.id == disabled.id || t.id == later.id));

    // Advancing is compare-and-set: a second scheduler with the old value changes nothing.
    assert!(store.advance_task(task.id, at(8), Some(at(9) + Duration::days(1))).await.unwrap());
    assert!(!store.advance_task(task.id, at(8), Some(at(12))).await.unwrap());
    assert_eq!(
        store.task(alice, task.id).await.unwrap().unwrap().next_run_at,
        Some(at(9) + Duration::days(1))
    );
    assert!(store.due_tasks(at(9), 10).await.unwrap().is_empty());

    assert!(!store.delete_task(bob, task.id).await.unwrap());
    assert!(store.delete_task(alice, task.id).await.unwrap());
    assert_eq!(store.task(alice, task.id).await.unwrap(), None);
}

async fn a_due_time_is_claimed_once_across_pools(t: TestStore) {
    let (alice, _) = t.user_and_chat().await;
    let task = t.store.create_task(&task_of(alice, Some(at(9)))).await.unwrap();
    // Two pools, as two server processes would have, each with several claimers.
    let pools = [t.store.clone(), t.another_pool().await];
    let mut racers = Vec::new();
    for (n, pool) in pools.iter().enumerate() {
        for i in 0..4 {
            let pool = pool.clone();
            let node = format!("node-{n}-{i}");
            racers.push(tokio::spawn(async move {
                pool.claim_task_run(&claim(task.id, at(9), &node)).await.unwrap()
            }));
        }
    }
    let mut won = Vec::new();
    for racer in racers {
        if let Some(run) = racer.await.unwrap() {
            won.push(run);
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(won[0].status, RunStatus::Claimed);
    assert_eq!(won[0].due_at, at(9));
    let runs = t.store.task_runs(task.id, 10).await.unwrap();
    assert_eq!(runs, won);
    // Another due time of the same task is a claim of its own.
    assert!(t.store.claim_task_run(&claim(task.id, at(10), "a")).await.unwrap().is_some());
}

async fn runs_follow_their_turns_and_are_pruned(t: TestStore) {
    let store = &t.store;
    let (alice, chat) = t.user_and_chat().await;
    let task = store.create_task(&task_of(alice, Some(at(9)))).await.unwrap();

    // A run whose turn starts takes its status, cost and end from the message.
    let run = store.claim_task_run(&claim(task.id, at(1), "a")).await.unwrap().unwrap();
    let turn = store.begin_turn(chat, "hi", "m", PermissionMode::Auto).await.unwrap();
    assert!(store.start_task_run(run.id, chat, turn.message_id, at(1)).await.unwrap());
    assert!(!store.start_task_run(run.id, chat, turn.message_id, at(1)).await.unwrap());
    assert!(!store.fail_task_run(run.id, None, "late", at(1)).await.unwrap(), "started");
    let running = store.task_run(run.id).await.unwrap().unwrap();
    assert_eq!(running.status, RunStatus::Running);
    assert_eq!((running.chat_id, running.message_id), (Some(chat), Some(turn.message_id)));
    assert_eq!(store.running_task_runs().await.unwrap(), std::slice::from_ref(&running));
    let result =
        TurnResult { total_cost_usd: Some(0.25), ..TurnResult::status(MessageStatus::Completed) };
    store.finish_turn(chat, turn.message_id, result).await.unwrap();
    let done = store.task_run(run.id).await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.cost_usd, Some(0.25));
    assert!(done.ended_at.is_some());
    assert!(store.running_task_runs().await.unwrap().is_empty());

    // A claim whose turn never started is stale after the bound, and fails once.
    let stuck = store.claim_task_run(&claim(task.id, at(2), "a")).await.unwrap().unwrap();
    assert!(store.stale_task_runs(at(2)).await.unwrap().is_empty());
    assert_eq!(
        store.stale_task_runs(at(3)).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
        [stuck.id]
    );
    assert!(store.fail_task_run(stuck.id, None, "the server stopped", at(3)).await.unwrap());
    let failed = store.task_run(stuck.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (RunStatus::Failed, Some("the server stopped"))
    );
    assert_eq!(failed.ended_at, Some(at(3)));
    assert!(store.stale_task_runs(at(4)).await.unwrap().is_empty());

    // A skipped due time is ended at once.
    let skipped = NewTaskRun {
        skipped: true,
        trigger: RunTrigger::Missed,
        error: Some("missed".into()),
        ..claim(task.id, at(3), "a")
    };
    let skipped = store.claim_task_run(&skipped).await.unwrap().unwrap();
    assert_eq!((skipped.status, skipped.trigger), (RunStatus::Skipped, RunTrigger::Missed));

    // History: newest due time first; pruning keeps the latest N.
    for hour in 4..8 {
        let run = store.claim_task_run(&claim(task.id, at(hour), "a")).await.unwrap().unwrap();
        store.fail_task_run(run.id, None, "x", at(hour)).await.unwrap();
    }
    let all = store.task_runs(task.id, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].due_at > w[1].due_at));
    assert_eq!(store.prune_task_runs(task.id, 3).await.unwrap(), 4);
    let kept = store.task_runs(task.id, 100).await.unwrap();
    assert_eq!(kept, all[..3]);

    // Deleting the chat leaves the run, failed, saying why.
    let other = t.chat_of(alice).await;
    let run = store.claim_task_run(&claim(task.id, at(8), "a")).await.unwrap().unwrap();
    let turn = store.begin_turn(other, "hi", "m", PermissionMode::Auto).await.unwrap();
    store.start_task_run(run.id, other, turn.message_id, at(8)).await.unwrap();
    assert!(store.delete_chat(alice, other).await.unwrap());
    let orphan = store.task_run(run.id).await.unwrap().unwrap();
    assert_eq!(orphan.status, RunStatus::Failed);
    assert_eq!(orphan.error.as_deref(), Some("the run's chat was deleted"));
}

async fn ended_runs_stay_unseen_until_their_chat_is_opened(t: TestStore) {
    let store = &t.store;
    let (alice, chat) = t.user_and_chat().await;
    let (bob, bobs_chat) = t.user_and_chat().await;
    let task = store.create_task(&task_of(alice, Some(at(9)))).await.unwrap();
    let unseen = |user| async move {
        store
            .unseen_task_runs(user, None)
            .await
            .unwrap()
            .iter()
            .map(|r| r.run_id)
            .collect::<Vec<_>>()
    };

    // A running run is not news yet; nor is a claim, or a skipped due time without a chat.
    let run = store.claim_task_run(&claim(task.id, at(1), "a")).await.unwrap().unwrap();
    let turn = store.begin_turn(chat, "hi", "m", PermissionMode::Auto).await.unwrap();
    store.start_task_run(run.id, chat, turn.message_id, at(1)).await.unwrap();
    store.claim_task_run(&claim(task.id, at(2), "a")).await.unwrap().unwrap();
    let skipped = NewTaskRun { skipped: true, ..claim(task.id, at(3), "a") };
    store.claim_task_run(&skipped).await.unwrap().unwrap();
    assert!(unseen(alice).await.is_empty());
    assert_eq!(store.mark_task_runs_seen(alice, chat, at(1)).await.unwrap(), 0, "still running");

    // Once its turn ended it is, with the task's name and the turn's outcome.
    let result = TurnResult::status(MessageStatus::Interrupted);
    store.finish_turn(chat, turn.message_id, result).await.unwrap();
    let found = store.unseen_task_runs(alice, None).await.unwrap();
    assert_eq!(store.unseen_task_runs(alice, Some(chat)).await.unwrap(), found, "in its chat");
    assert!(store.unseen_task_runs(alice, Some(bobs_chat)).await.unwrap().is_empty());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].run_id, found[0].chat_id), (run.id, chat));
    assert_eq!((found[0].task_name.as_str(), found[0].status), ("nightly", RunStatus::Interrupted));
    assert!(found[0].ended_at.is_some());
    assert!(unseen(bob).await.is_empty(), "another user sees none of it");

    // A run that failed before its turn, in a chat, counts too; the latest due time first.
    let failed = store.claim_task_run(&claim(task.id, at(4), "a")).await.unwrap().unwrap();
    store.fail_task_run(failed.id, Some(chat), "over the limit", at(4)).await.unwrap();
    assert_eq!(unseen(alice).await, [failed.id, run.id]);

    // Another user cannot mark them; the owner opening another chat does not either.
    assert_eq!(store.mark_task_runs_seen(bob, chat, at(5)).await.unwrap(), 0);
    assert_eq!(store.mark_task_runs_seen(alice, bobs_chat, at(5)).await.unwrap(), 0);
    assert_eq!(unseen(alice).await.len(), 2);
    // Opening the chat sees both, once.
    assert_eq!(store.mark_task_runs_seen(alice, chat, at(5)).await.unwrap(), 2);
    assert_eq!(store.mark_task_runs_seen(alice, chat, at(6)).await.unwrap(), 0);
    assert!(unseen(alice).await.is_empty());
    assert_eq!(store.task_run(run.id).await.unwrap().unwrap().seen_at, Some(at(5)));
}
