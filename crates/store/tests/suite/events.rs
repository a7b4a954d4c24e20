//! The event log: `Last-Event-ID` reads, and `seq` gapless under concurrent appenders.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::EventPayload;
use agentbox_store::{NewEvent, StoreError};

use super::support::{TestStore, conformance};

conformance!(
    events_after_reads_what_follows_the_last_event_id,
    concurrent_appends_keep_seq_gapless,
    the_last_system_event_of_a_subtype_is_found
);

async fn the_last_system_event_of_a_subtype_is_found(t: TestStore) {
    use agentbox_protocol::event::SystemEvent;
    let (_, chat) = t.user_and_chat().await;
    let (_, other) = t.user_and_chat().await;
    let store = &t.store;
    assert!(store.last_system_event(chat, "init").await.unwrap().is_none());
    let turn = store.begin_turn(chat, "go", "m", PermissionMode::Ask).await.unwrap();
    let other_turn = store.begin_turn(other, "go", "m", PermissionMode::Ask).await.unwrap();
    let system =
        |subtype: &str, n: i64| EventPayload::System(SystemEvent::new(subtype).with("n", n));
    for (subtype, n) in [("init", 1), ("status", 2), ("init", 3), ("status", 4)] {
        store.append_event(chat, NewEvent::new(turn.message_id, system(subtype, n))).await.unwrap();
    }
    store
        .append_event(other, NewEvent::new(other_turn.message_id, system("init", 9)))
        .await
        .unwrap();
    let found = store.last_system_event(chat, "init").await.unwrap().unwrap();
    let EventPayload::System(event) = &found.payload else { panic!("{found:?}") };
    assert_eq!(event.details["n"], 3);
    assert!(store.last_system_event(chat, "nothing").await.unwrap().is_none());
}

async fn events_after_reads_what_follows_the_last_event_id(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let (_, other) = t.user_and_chat().await;
    let store = &t.store;
    let turn = store.begin_turn(chat, "go", "m", PermissionMode::Ask).await.unwrap();
    store.begin_turn(other, "elsewhere", "m", PermissionMode::Ask).await.unwrap();
    for i in 0..9 {
        let text = EventPayload::AssistantText { text: format!("t{i}") };
        let event = store.append_event(chat, NewEvent::new(turn.message_id, text)).await.unwrap();
        assert_eq!(event.seq, i + 2);
    }
    let seqs = |events: Vec<agentbox_protocol::event::ChatEvent>| {
        events.into_iter().map(|e| e.seq).collect::<Vec<_>>()
    };
    assert_eq!(seqs(store.events_after(chat, 0, 100).await.unwrap()), (1..=10).collect::<Vec<_>>());
    // After the last seen id, at most `limit`, in order.
    assert_eq!(seqs(store.events_after(chat, 4, 3).await.unwrap()), [5, 6, 7]);
    assert_eq!(seqs(store.events_after(chat, 9, 100).await.unwrap()), [10]);
    assert!(store.events_after(chat, 10, 100).await.unwrap().is_empty());
    assert!(store.events_after(chat, 99, 100).await.unwrap().is_empty());
    // Another chat's log is its own.
    assert_eq!(seqs(store.events_after(other, 0, 100).await.unwrap()), [1]);
    // An event keeps its parent tool call.
    let child = NewEvent {
        parent_tool_use_id: Some("toolu_parent".into()),
        ..NewEvent::new(turn.message_id, EventPayload::AssistantText { text: "sub".into() })
    };
    let appended = store.append_event(chat, child).await.unwrap();
    assert_eq!(store.events_after(chat, 10, 1).await.unwrap(), [appended]);
    // No such chat.
    let missing = store
        .append_event(
            uuid::Uuid::now_v7(),
            NewEvent::new(turn.message_id, EventPayload::UserText { text: "x".into() }),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert_eq!(store.chat_unscoped(chat).await.unwrap().unwrap().last_seq, 11);
}

async fn concurrent_appends_keep_seq_gapless(t: TestStore) {
    const POOLS: usize = 4;
    const TASKS_PER_POOL: usize = 4;
    const EVENTS_PER_TASK: i64 = 25;
    let (_, chat) = t.user_and_chat().await;
    let (_, quiet) = t.user_and_chat().await;
    let turn = t.store.begin_turn(chat, "go", "m", PermissionMode::Ask).await.unwrap();
    let quiet_turn = t.store.begin_turn(quiet, "go", "m", PermissionMode::Ask).await.unwrap();
    // Separate pools, as separate processes would have: on SQLite each connection locks the
    // file, on PostgreSQL each is a backend of its own.
    let mut pools = Vec::new();
    for _ in 0..POOLS {
        pools.push(t.another_pool().await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(POOLS * TASKS_PER_POOL));
    let mut tasks = Vec::new();
    for (p, store) in pools.iter().enumerate() {
        for k in 0..TASKS_PER_POOL {
            let (store, barrier, message) = (store.clone(), barrier.clone(), turn.message_id);
            let quiet_message = quiet_turn.message_id;
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut seqs = Vec::new();
                for i in 0..EVENTS_PER_TASK {
                    let text = EventPayload::AssistantText { text: format!("{p}/{k}/{i}") };
                    seqs.push(
                        store.append_event(chat, NewEvent::new(message, text)).await.unwrap().seq,
                    );
                    // Another chat's appends go on meanwhile.
                    if i % 5 == 0 {
                        let text = EventPayload::AssistantText { text: "q".into() };
                        store
                            .append_event(quiet, NewEvent::new(quiet_message, text))
                            .await
                            .unwrap();
                    }
                }
                seqs
            }));
        }
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one appender's seqs increase: {seqs:?}");
        all.extend(seqs);
    }
    all.sort_unstable();
    let total = 1 + EVENTS_PER_TASK * (POOLS * TASKS_PER_POOL) as i64;
    assert_eq!(all, (2..=total).collect::<Vec<_>>(), "every seq taken once, none skipped");
    let log = t.store.events_after(chat, 0, 10_000).await.unwrap();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
    assert_eq!(t.store.chat_unscoped(chat).await.unwrap().unwrap().last_seq, total);
    let quiet_log = t.store.events_after(quiet, 0, 10_000).await.unwrap();
    let quiet_total = 1 + 5 * (POOLS * TASKS_PER_POOL) as i64;
    assert_eq!(
        quiet_log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=quiet_total).collect::<Vec<_>>()
    );
}
