//! Checkpoints' metadata: rewind hides and shows messages, a fork copies what was visible.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{EventPayload, MessageStatus};
use agentbox_store::{CheckpointKind, NewEvent, TurnResult};
use uuid::Uuid;

use super::support::{TestStore, conformance};

conformance!(rewind_and_fork_show_exactly_what_was_visible);

async fn turn(t: &TestStore, chat: Uuid, prompt: &str) -> Uuid {
    let store = &t.store;
    let started = store.begin_turn(chat, prompt, "m", PermissionMode::Ask).await.unwrap();
    let text = EventPayload::AssistantText { text: format!("answer to {prompt}") };
    store.append_event(chat, NewEvent::new(started.message_id, text)).await.unwrap();
    let done = TurnResult {
        session_id: Some(format!("s-{prompt}")),
        ..TurnResult::status(MessageStatus::Completed)
    };
    store.finish_turn(chat, started.message_id, done).await.unwrap();
    store
        .record_checkpoint(
            chat,
            Uuid::now_v7(),
            CheckpointKind::Turn,
            Some(started.message_id),
            Some(&format!("s-{prompt}")),
        )
        .await
        .unwrap();
    started.message_id
}

async fn rewind_and_fork_show_exactly_what_was_visible(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let store = &t.store;
    let first = turn(&t, chat, "one").await;
    let second = turn(&t, chat, "two").await;
    let checkpoints = store.checkpoints(chat).await.unwrap();
    assert_eq!(checkpoints.len(), 2);
    let (newest, oldest) = (&checkpoints[0], &checkpoints[1]);
    assert_eq!(newest.message_id, Some(second));
    assert_eq!(oldest.visible_messages.len(), 2);
    assert_eq!(store.checkpoint(chat, oldest.id).await.unwrap().as_ref(), Some(oldest));
    let messages = store.messages(chat).await.unwrap();
    assert_eq!(messages[1].checkpoint_id, Some(oldest.id.to_string()));

    // Back to after the first turn: the second is hidden, and the chat resumes its session.
    let before = store
        .record_checkpoint(chat, Uuid::now_v7(), CheckpointKind::BeforeRestore, Some(second), None)
        .await
        .unwrap();
    let rewind = store.rewind(chat, oldest).await.unwrap();
    assert_eq!(rewind.hidden.len(), 2);
    assert!(rewind.shown.is_empty());
    let visible: Vec<_> = store.messages(chat).await.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(visible, oldest.visible_messages);
    assert_eq!(
        store.chat_unscoped(chat).await.unwrap().unwrap().session_id.as_deref(),
        Some("s-one")
    );
    let EventPayload::System(system) = &rewind.event.payload else { panic!("{:?}", rewind.event) };
    assert_eq!(system.subtype, "rewind");
    assert_eq!(rewind.event.message_id, first);
    // The rewind's event is in the log, after everything else.
    let log = store.events_after(chat, 0, 100).await.unwrap();
    assert_eq!(log.last(), Some(&rewind.event));

    // Undo: the checkpoint taken before the restore shows the second turn again.
    let undo = store.rewind(chat, &before).await.unwrap();
    assert_eq!((undo.hidden.len(), undo.shown.len()), (0, 2));
    assert_eq!(store.messages(chat).await.unwrap().len(), 4);

    // A fork up to the first turn: its messages and events, renumbered, no rewind events.
    let fork = t.chat_of(user).await;
    let source = store.chat_unscoped(chat).await.unwrap().unwrap();
    store.copy_conversation(&source, fork, first, Some("s-one")).await.unwrap();
    let forked = store.messages(fork).await.unwrap();
    let original = store.messages(chat).await.unwrap();
    assert_eq!(forked.len(), 2);
    for (copy, from) in forked.iter().zip(&original) {
        assert_ne!(copy.id, from.id);
        assert_eq!(
            (copy.role, copy.status, copy.created_at),
            (from.role, from.status, from.created_at)
        );
        assert_eq!(copy.checkpoint_id, None);
        // Everything but the parent's rewinds, which are not the fork's history.
        let payloads = |m: &agentbox_protocol::api::Message| {
            m.content
                .iter()
                .map(|e| e.payload.clone())
                .filter(|p| !matches!(p, EventPayload::System(s) if s.subtype == "rewind"))
                .collect::<Vec<_>>()
        };
        assert_eq!(payloads(copy), payloads(from));
    }
    let fork_log = store.events_after(fork, 0, 100).await.unwrap();
    assert_eq!(fork_log.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let fork_record = store.chat_unscoped(fork).await.unwrap().unwrap();
    assert_eq!((fork_record.last_seq, fork_record.session_id.as_deref()), (3, Some("s-one")));
    let missing = store.copy_conversation(&source, fork, Uuid::now_v7(), None).await;
    assert!(matches!(missing, Err(agentbox_store::StoreError::NotFound)), "{missing:?}");

    // Forgetting pruned checkpoints unlinks their messages.
    store.forget_checkpoints(chat, &[oldest.id]).await.unwrap();
    assert!(store.checkpoint(chat, oldest.id).await.unwrap().is_none());
    assert_eq!(store.messages(chat).await.unwrap()[1].checkpoint_id, None);
    assert_eq!(store.checkpoints(chat).await.unwrap().len(), 2);
}
