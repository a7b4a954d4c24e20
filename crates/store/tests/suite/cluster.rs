//! The cluster's tables: nodes and heartbeats, the node running each turn (started once),
//! orphaned turns of expired nodes, the durable turn queue's claims and leases, and the
//! control table. Two store handles on one database stand in for two nodes; instants are
//! explicit, so expiry is tested without waiting.

use std::collections::HashSet;
use std::time::Duration;

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::MessageStatus;
use agentbox_store::{Backend, NodeRecord, NodeRole, OrphanedTurn, Store, TurnResult};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::support::{TestStore, conformance};

conformance!(
    nodes_register_beat_and_register_again,
    a_turn_starts_on_one_node_only,
    an_expired_nodes_turns_are_orphaned_and_adopted_once,
    a_job_is_leased_to_one_worker_until_its_lease_expires,
    a_second_delivery_of_a_job_whose_turn_started_or_ended_does_nothing,
    racing_workers_each_claim_different_jobs,
    controls_reach_the_node_running_the_turn_in_order,
    a_queued_turn_is_cancelled_only_while_no_node_has_started_it,
    a_paused_queue_is_paused_for_every_node,
    a_queued_job_wakes_listening_workers,
    a_bound_chats_jobs_wait_for_its_worker_while_it_lives,
);

/// A fixed instant, so that the tests' clocks are their own.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn node(id: &str, role: NodeRole, at: DateTime<Utc>) -> NodeRecord {
    NodeRecord { id: id.into(), role, address: None, started_at: at, heartbeat_at: at }
}

async fn turn(store: &Store, chat: Uuid) -> Uuid {
    store.begin_turn(chat, "p", "m", PermissionMode::Ask).await.unwrap().message_id
}

async fn nodes_register_beat_and_register_again(t: TestStore) {
    let store = &t.store;
    let mut a = node("a", NodeRole::Worker, t0());
    a.address = Some("http://10.0.0.1:8080".into());
    store.register_node(&a).await.unwrap();
    store.register_node(&node("b", NodeRole::Api, t0())).await.unwrap();
    assert!(store.node_heartbeat("a", t0() + secs(5)).await.unwrap());
    assert!(!store.node_heartbeat("nobody", t0()).await.unwrap());
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0], NodeRecord { heartbeat_at: t0() + secs(5), ..a.clone() });
    assert_eq!(nodes[1].role, NodeRole::Api);
    // A restart registers the same id again.
    store.register_node(&node("a", NodeRole::All, t0() + secs(60))).await.unwrap();
    let nodes = store.nodes().await.unwrap();
    assert_eq!((nodes[0].role, nodes[0].started_at), (NodeRole::All, t0() + secs(60)));
    assert_eq!(nodes[0].address, None);
}

async fn a_turn_starts_on_one_node_only(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let other = t.another_pool().await;
    let message = turn(&t.store, chat).await;
    assert_eq!(t.store.turn_node(message).await.unwrap(), None);
    assert!(t.store.start_turn_on(message, "a").await.unwrap());
    assert!(!other.start_turn_on(message, "b").await.unwrap());
    assert!(!t.store.start_turn_on(message, "a").await.unwrap(), "started once");
    assert_eq!(other.turn_node(message).await.unwrap().as_deref(), Some("a"));
    t.store.finish_turn(chat, message, TurnResult::status(MessageStatus::Completed)).await.unwrap();
    assert_eq!(t.store.turn_node(message).await.unwrap(), None, "only while it runs");
    let (_, chat2) = t.user_and_chat().await;
    let ended = turn(&t.store, chat2).await;
    t.store
        .finish_turn(chat2, ended, TurnResult::status(MessageStatus::Interrupted))
        .await
        .unwrap();
    assert!(!t.store.start_turn_on(ended, "a").await.unwrap(), "an ended turn never starts");
}

async fn an_expired_nodes_turns_are_orphaned_and_adopted_once(t: TestStore) {
    let (user, chat_a) = t.user_and_chat().await;
    let chat_b = t.chat_of(user).await;
    let chat_none = t.chat_of(user).await;
    let chat_job = t.chat_of(user).await;
    // Messages carry the real time they were recorded at, so this test's instants are
    // around the real clock: the nodes registered a minute ago.
    let now = Utc::now();
    let (a, b) = (t.store.clone(), t.another_pool().await);
    a.register_node(&node("a", NodeRole::Worker, now - secs(60))).await.unwrap();
    b.register_node(&node("b", NodeRole::Worker, now - secs(60))).await.unwrap();
    let on_a = turn(&a, chat_a).await;
    assert!(a.start_turn_on(on_a, "a").await.unwrap());
    let on_b = turn(&b, chat_b).await;
    assert!(b.start_turn_on(on_b, "b").await.unwrap());
    // Recorded, never started, no job: what a crash between the two leaves.
    let started_nowhere = turn(&a, chat_none).await;
    // Recorded and queued for a worker: not an orphan, the queue holds it.
    let queued = turn(&a, chat_job).await;
    a.push_turn_job(chat_job, queued, "p", "m", PermissionMode::Ask).await.unwrap();

    // b stops beating; a goes on.
    a.node_heartbeat("a", now).await.unwrap();
    let expired_before = now - secs(30);
    let seen = a.orphaned_turns("a", false, expired_before).await.unwrap();
    assert_eq!(
        seen,
        [OrphanedTurn { chat_id: chat_b, message_id: on_b, node_id: Some("b".into()) }],
        "a's own running turn is not an orphan, nor one too young to judge"
    );
    // The recorded-but-never-started turn is an orphan once it is older than the bound.
    let later = a.orphaned_turns("a", false, Utc::now() + secs(60)).await.unwrap();
    let ids: HashSet<Uuid> = later.iter().map(|o| o.message_id).collect();
    assert!(ids.contains(&started_nowhere) && !ids.contains(&queued), "{later:?}");
    // After a restart, a node's own turns are orphans to it too.
    let own = a.orphaned_turns("a", true, expired_before).await.unwrap();
    let ids: HashSet<Uuid> = own.iter().map(|o| o.message_id).collect();
    assert_eq!(ids, HashSet::from([on_a, on_b]));

    // A control sent to b before it was found dead is dropped with the adoption.
    assert_eq!(a.push_control(chat_b, on_b, "{}").await.unwrap().as_deref(), Some("b"));
    // Two sweepers race for b's turn: one takes it.
    let (first, second) =
        tokio::join!(a.adopt_turn(on_b, Some("b"), "a"), b.adopt_turn(on_b, Some("b"), "c"));
    assert!(first.unwrap() ^ second.unwrap(), "exactly one adopter");
    assert!(!a.adopt_turn(on_b, Some("b"), "a").await.unwrap());
    assert!(b.take_controls("b").await.unwrap().is_empty());
    assert!(a.adopt_turn(started_nowhere, None, "a").await.unwrap());
    assert!(!b.adopt_turn(started_nowhere, None, "b").await.unwrap());
    assert_eq!(a.turn_node(started_nowhere).await.unwrap().as_deref(), Some("a"));
}

async fn a_job_is_leased_to_one_worker_until_its_lease_expires(t: TestStore) {
    let (user, chat1) = t.user_and_chat().await;
    let chat2 = t.chat_of(user).await;
    let (a, b) = (t.store.clone(), t.another_pool().await);
    let first = turn(&a, chat1).await;
    a.push_turn_job(chat1, first, "first", "m", PermissionMode::Ask).await.unwrap();
    let second = turn(&a, chat2).await;
    a.push_turn_job(chat2, second, "second", "m", PermissionMode::Ask).await.unwrap();
    let lease = secs(30);

    let job = a.claim_turn_job("a", t0(), t0() + lease, t0()).await.unwrap().unwrap();
    assert_eq!((job.message_id, job.chat_id, job.prompt.as_str()), (first, chat1, "first"));
    assert_eq!((job.model.as_str(), job.permission_mode), ("m", PermissionMode::Ask));
    assert_eq!((job.claimed_by.as_deref(), job.attempts), (Some("a"), 1));
    assert_eq!(job.lease_expires_at, Some(t0() + lease));
    let job = b.claim_turn_job("b", t0(), t0() + lease, t0()).await.unwrap().unwrap();
    assert_eq!(job.message_id, second);
    assert_eq!(a.claim_turn_job("a", t0(), t0() + lease, t0()).await.unwrap(), None);

    // a's heartbeat extends its lease; b's lapses.
    assert_eq!(a.extend_turn_job_leases("a", t0() + secs(60)).await.unwrap(), 1);
    let now = t0() + secs(31);
    let job = a.claim_turn_job("a", now, now + lease, now).await.unwrap().unwrap();
    assert_eq!((job.message_id, job.attempts), (second, 2), "b's lapsed job goes to a");
    // b comes back late: it no longer holds the lease, so it must not run the turn.
    assert!(!b.start_turn_job(second, "b", now).await.unwrap());
    // Nor may a start a job after its own lease lapsed.
    assert!(!a.start_turn_job(first, "a", t0() + secs(61)).await.unwrap());
    let job = a
        .claim_turn_job("a", t0() + secs(61), t0() + secs(91), t0() + secs(61))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.message_id, job.attempts), (first, 2));
    assert!(a.start_turn_job(first, "a", t0() + secs(62)).await.unwrap());
    assert_eq!(a.turn_node(first).await.unwrap().as_deref(), Some("a"));
    assert!(a.start_turn_job(second, "a", now).await.unwrap());
    assert!(a.turn_jobs().await.unwrap().is_empty(), "started jobs are gone");
}

async fn a_second_delivery_of_a_job_whose_turn_started_or_ended_does_nothing(t: TestStore) {
    let (user, chat1) = t.user_and_chat().await;
    let chat2 = t.chat_of(user).await;
    let store = &t.store;
    // Ended (interrupted before a worker came) and started (by another path): both jobs
    // are delivered again, and neither claim returns anything.
    let ended = turn(store, chat1).await;
    store.push_turn_job(chat1, ended, "p", "m", PermissionMode::Ask).await.unwrap();
    store.finish_turn(chat1, ended, TurnResult::status(MessageStatus::Interrupted)).await.unwrap();
    let started = turn(store, chat2).await;
    store.push_turn_job(chat2, started, "p", "m", PermissionMode::Ask).await.unwrap();
    let job = store.claim_turn_job("a", t0(), t0() + secs(30), t0()).await.unwrap().unwrap();
    assert_eq!(job.message_id, started, "the ended turn's job is never handed out");
    assert!(store.start_turn_on(started, "z").await.unwrap());
    // a's lease lapses; b claims the job again, but its turn has started: nothing.
    assert_eq!(
        store.claim_turn_job("b", t0() + secs(31), t0() + secs(61), t0() + secs(31)).await.unwrap(),
        None
    );
    assert!(!store.start_turn_job(started, "a", t0() + secs(1)).await.unwrap());
    assert!(store.turn_jobs().await.unwrap().is_empty());
    assert_eq!(store.turn_node(started).await.unwrap().as_deref(), Some("z"));
}

async fn racing_workers_each_claim_different_jobs(t: TestStore) {
    let (user, _) = t.user_and_chat().await;
    let mut jobs = HashSet::new();
    for _ in 0..12 {
        let chat = t.chat_of(user).await;
        let message = turn(&t.store, chat).await;
        t.store.push_turn_job(chat, message, "p", "m", PermissionMode::Ask).await.unwrap();
        jobs.insert(message);
    }
    let mut workers = Vec::new();
    for n in 0..4 {
        let store = t.another_pool().await;
        workers.push(tokio::spawn(async move {
            let me = format!("w{n}");
            let mut mine = Vec::new();
            let now = Utc::now();
            while let Some(job) =
                store.claim_turn_job(&me, now, now + secs(300), now).await.unwrap()
            {
                assert!(store.start_turn_job(job.message_id, &me, now).await.unwrap());
                mine.push(job.message_id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    assert_eq!(claimed.len(), jobs.len(), "each job claimed exactly once: {claimed:?}");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), jobs);
}

async fn controls_reach_the_node_running_the_turn_in_order(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let (api, worker) = (t.store.clone(), t.another_pool().await);
    let message = turn(&api, chat).await;
    assert_eq!(api.push_control(chat, message, r#"{"n":0}"#).await.unwrap(), None, "no node");
    let mut wake = worker.listen_controls("w").await.unwrap();
    assert_eq!(wake.is_some(), t.backend == Backend::Postgres);
    assert!(worker.start_turn_on(message, "w").await.unwrap());
    for n in 1..=3 {
        let node = api.push_control(chat, message, &format!(r#"{{"n":{n}}}"#)).await.unwrap();
        assert_eq!(node.as_deref(), Some("w"));
    }
    if let Some(wake) = &mut wake {
        tokio::time::timeout(Duration::from_secs(30), wake.notified())
            .await
            .expect("notified")
            .unwrap();
    }
    assert!(worker.take_controls("other").await.unwrap().is_empty());
    let taken = worker.take_controls("w").await.unwrap();
    let commands: Vec<&str> = taken.iter().map(|c| c.command.as_str()).collect();
    assert_eq!(commands, [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]);
    assert!(taken.iter().all(|c| c.chat_id == chat && c.message_id == message));
    assert!(worker.take_controls("w").await.unwrap().is_empty(), "taken once");
    api.finish_turn(chat, message, TurnResult::status(MessageStatus::Completed)).await.unwrap();
    assert_eq!(api.push_control(chat, message, "{}").await.unwrap(), None, "ended");
}

async fn a_queued_turn_is_cancelled_only_while_no_node_has_started_it(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let (api, worker) = (t.store.clone(), t.another_pool().await);
    let queued = turn(&api, chat).await;
    api.push_turn_job(chat, queued, "p", "m", PermissionMode::Ask).await.unwrap();
    let event = api.cancel_unstarted_turn(chat, queued).await.unwrap().expect("cancelled");
    assert_eq!(event.message_id, queued);
    assert_eq!(api.messages(chat).await.unwrap()[1].status, MessageStatus::Interrupted);
    assert!(api.turn_jobs().await.unwrap().is_empty(), "its job went with it");
    assert!(!worker.start_turn_on(queued, "w").await.unwrap());
    assert_eq!(api.cancel_unstarted_turn(chat, queued).await.unwrap(), None, "ended already");

    // Once a worker has started it, the turn is that worker's to stop.
    let other = t.chat_of(user).await;
    let started = turn(&api, other).await;
    api.push_turn_job(other, started, "p", "m", PermissionMode::Ask).await.unwrap();
    let now = Utc::now();
    let job = worker.claim_turn_job("w", now, now + secs(30), now).await.unwrap().unwrap();
    assert!(worker.start_turn_job(job.message_id, "w", now).await.unwrap());
    assert_eq!(api.cancel_unstarted_turn(other, started).await.unwrap(), None);
    assert_eq!(api.turn_node(started).await.unwrap().as_deref(), Some("w"));
}

async fn a_paused_queue_is_paused_for_every_node(t: TestStore) {
    let (user, waiting) = t.user_and_chat().await;
    let empty = t.chat_of(user).await;
    let (a, b) = (t.store.clone(), t.another_pool().await);
    assert!(!b.queue_paused(waiting).await.unwrap());
    a.set_queue_paused(waiting, true).await.unwrap();
    assert!(b.queue_paused(waiting).await.unwrap(), "seen from another node");
    b.set_queue_paused(waiting, false).await.unwrap();
    assert!(!a.queue_paused(waiting).await.unwrap());
    assert!(!a.queue_paused(Uuid::now_v7()).await.unwrap(), "no such chat: not paused");

    // After a restart, only queues holding prompts are paused.
    a.enqueue(waiting, "later", None, None).await.unwrap();
    assert_eq!(a.pause_waiting_queues().await.unwrap(), 1);
    assert!(b.queue_paused(waiting).await.unwrap());
    assert!(!b.queue_paused(empty).await.unwrap());
    assert_eq!(a.pause_waiting_queues().await.unwrap(), 0, "paused already");
}

async fn a_queued_job_wakes_listening_workers(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let (api, worker) = (t.store.clone(), t.another_pool().await);
    let mut wake = worker.listen_jobs().await.unwrap();
    assert_eq!(wake.is_some(), t.backend == Backend::Postgres, "SQLite's workers poll");
    let message = turn(&api, chat).await;
    api.push_turn_job(chat, message, "p", "m", PermissionMode::Ask).await.unwrap();
    if let Some(wake) = &mut wake {
        tokio::time::timeout(Duration::from_secs(30), wake.notified())
            .await
            .expect("notified")
            .unwrap();
    }
    let now = Utc::now();
    let job = worker.claim_turn_job("w", now, now + secs(30), now).await.unwrap().unwrap();
    assert_eq!(job.message_id, message);
}

async fn a_bound_chats_jobs_wait_for_its_worker_while_it_lives(t: TestStore) {
    let (user, bound) = t.user_and_chat().await;
    let free = t.chat_of(user).await;
    let (w1, w2) = (t.store.clone(), t.another_pool().await);
    w1.register_node(&node("w1", NodeRole::Worker, t0())).await.unwrap();
    w2.register_node(&node("w2", NodeRole::Worker, t0())).await.unwrap();
    assert_eq!(w1.chat_binding(bound).await.unwrap(), None, "a new chat is unbound");
    assert_eq!(w1.bind_chat(bound, "w1").await.unwrap(), None, "unbound before");
    assert_eq!(w1.bind_chat(bound, "w1").await.unwrap().as_deref(), Some("w1"));
    assert_eq!(w2.chat_binding(bound).await.unwrap().as_deref(), Some("w1"));
    assert_eq!(w1.bind_chat(Uuid::now_v7(), "w1").await.unwrap(), None, "no such chat");

    // The bound chat's job is the oldest, yet w2 gets the unbound chat's job, and then
    // nothing while w1 is alive (its heartbeat is not older than the bound).
    let first = turn(&w1, bound).await;
    w1.push_turn_job(bound, first, "bound", "m", PermissionMode::Ask).await.unwrap();
    let other = turn(&w1, free).await;
    w1.push_turn_job(free, other, "free", "m", PermissionMode::Ask).await.unwrap();
    let lease = secs(30);
    let alive_since = t0() - secs(30);
    let job = w2.claim_turn_job("w2", t0(), t0() + lease, alive_since).await.unwrap().unwrap();
    assert_eq!(job.message_id, other, "the unbound chat's job goes to any worker");
    assert!(w2.start_turn_job(other, "w2", t0()).await.unwrap());
    assert_eq!(w2.claim_turn_job("w2", t0(), t0() + lease, alive_since).await.unwrap(), None);
    // The worker it is bound to gets it.
    let job = w1.claim_turn_job("w1", t0(), t0() + lease, alive_since).await.unwrap().unwrap();
    assert_eq!(job.message_id, first);

    // w1's lease lapses and w1 stops beating: once its heartbeat is older than the bound,
    // w2 may take the chat's job (and will rebind the chat to itself).
    let later = t0() + secs(31);
    let w1_still_counts = t0() - secs(1);
    assert_eq!(
        w2.claim_turn_job("w2", later, later + lease, w1_still_counts).await.unwrap(),
        None,
        "within the bound w1 is alive, and its job waits for it"
    );
    let w1_gone = t0() + secs(1);
    let job = w2.claim_turn_job("w2", later, later + lease, w1_gone).await.unwrap().unwrap();
    assert_eq!((job.message_id, job.attempts), (first, 2));
    assert!(w2.start_turn_job(first, "w2", later).await.unwrap());
    assert_eq!(w2.bind_chat(bound, "w2").await.unwrap().as_deref(), Some("w1"), "rebound");
    assert_eq!(w1.chat_binding(bound).await.unwrap().as_deref(), Some("w2"));
    w1.unbind_chat(bound).await.unwrap();
    assert_eq!(w2.chat_binding(bound).await.unwrap(), None);
    assert_eq!(w2.bind_chat(bound, "w2").await.unwrap(), None, "unbound again");

    // A chat bound to a node that is not registered at all is free too.
    let (_, stray) = t.user_and_chat().await;
    w1.bind_chat(stray, "decommissioned").await.unwrap();
    let message = turn(&w1, stray).await;
    w1.push_turn_job(stray, message, "p", "m", PermissionMode::Ask).await.unwrap();
    let job = w1.claim_turn_job("w1", later, later + lease, alive_since).await.unwrap().unwrap();
    assert_eq!(job.message_id, message);
}
