//! `agentbox backup`'s database snapshot: on SQLite a copy taken while another pool writes
//! holds every table as it was and opens as a store of its own; PostgreSQL refuses it and
//! says what to use instead.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::EventPayload;
use agentbox_store::{Backend, NewEvent, Store, StoreError, Table};

use super::support::{TestStore, conformance, small_pool};

conformance!(a_snapshot_is_the_whole_database_at_one_moment);

async fn a_snapshot_is_the_whole_database_at_one_moment(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let turn = t.store.begin_turn(chat, "prompt", "m", PermissionMode::Ask).await.unwrap();
    for k in 0..20 {
        let text = EventPayload::AssistantText { text: format!("text {k}") };
        t.store.append_event(chat, NewEvent::new(turn.message_id, text)).await.unwrap();
    }
    t.store.put_secret(user, None, "TOKEN", "key-id", "sealed").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.sqlite");
    if t.backend == Backend::Postgres {
        let refused = t.store.snapshot_into(&path).await;
        let Err(StoreError::Refused(reason)) = refused else { panic!("{refused:?}") };
        assert!(reason.contains("pg_dump"), "{reason}");
        assert!(!path.exists());
        return;
    }
    // Another process goes on appending while the snapshot is taken.
    let writer = t.another_pool().await;
    let appending = tokio::spawn(async move {
        for k in 0..50 {
            let text = EventPayload::AssistantText { text: format!("more {k}") };
            writer.append_event(chat, NewEvent::new(turn.message_id, text)).await.unwrap();
        }
        writer
    });
    t.store.snapshot_into(&path).await.unwrap();
    let writer = appending.await.unwrap();
    writer.close().await;

    let copy =
        Store::open_with(&format!("sqlite://{}", path.display()), &small_pool()).await.unwrap();
    // Consistent: the chat's last seq is its last event's, whatever the writer had done.
    let events = copy.count_rows(Table::ChatEvents).await.unwrap();
    assert!(events >= 21, "{events} events");
    let last_seq = copy.chat_unscoped(chat).await.unwrap().unwrap().last_seq;
    let replay = copy.events_after(chat, 0, 1000).await.unwrap();
    assert_eq!(replay.last().map(|e| e.seq), Some(last_seq));
    assert_eq!(i64::try_from(replay.len()).unwrap(), events);
    assert_eq!(copy.count_rows(Table::Users).await.unwrap(), 1);
    assert_eq!(copy.all_secrets().await.unwrap(), t.store.all_secrets().await.unwrap());
    copy.close().await;
    // The snapshot never overwrites a file.
    assert!(t.store.snapshot_into(&path).await.is_err());
}
