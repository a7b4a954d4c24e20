//! `agentbox migrate --from --to` leaves the cluster's per-run tables behind (nodes, turn
//! jobs, controls), and that loses no turn: on the target, a turn that was queued or
//! running at the copy has no live node, so the first node's sweep finds it orphaned and
//! closes it, as after a crash.

use agentbox_protocol::api::PermissionMode;
use agentbox_store::{Backend, NodeRecord, NodeRole, copy_installation};
use chrono::{TimeDelta, Utc};

use super::support::TestStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_run_state_is_not_copied_and_its_turns_are_orphaned_on_the_target() {
    let source = TestStore::new(Backend::Sqlite, "copy_per_run_source").await;
    let target = TestStore::new(Backend::Postgres, "copy_per_run_target").await;
    let (user, queued_chat) = source.user_and_chat().await;
    let running_chat = source.chat_of(user).await;
    let now = Utc::now();
    for (id, role) in [("api-old", NodeRole::Api), ("worker-old", NodeRole::Worker)] {
        let node =
            NodeRecord { id: id.into(), role, address: None, started_at: now, heartbeat_at: now };
        source.store.register_node(&node).await.unwrap();
    }
    let store = &source.store;
    let queued = store.begin_turn(queued_chat, "q", "m", PermissionMode::Ask).await.unwrap();
    store
        .push_turn_job(queued_chat, queued.message_id, "q", "m", PermissionMode::Ask)
        .await
        .unwrap();
    let running = store.begin_turn(running_chat, "r", "m", PermissionMode::Ask).await.unwrap();
    assert!(store.start_turn_on(running.message_id, "worker-old").await.unwrap());

    copy_installation(&source.store, &target.store, &|_, _, _| {}).await.unwrap();

    assert!(target.store.nodes().await.unwrap().is_empty(), "nodes are per run");
    assert!(target.store.turn_jobs().await.unwrap().is_empty(), "jobs are per run");
    // A new node's sweep, once the turns are older than its expiry, finds both.
    let later = Utc::now() + TimeDelta::hours(1);
    let mut orphans: Vec<_> = target
        .store
        .orphaned_turns("new-node", false, later)
        .await
        .unwrap()
        .into_iter()
        .map(|turn| turn.message_id)
        .collect();
    orphans.sort();
    let mut expected = vec![queued.message_id, running.message_id];
    expected.sort();
    assert_eq!(orphans, expected);
}
