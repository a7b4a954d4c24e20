//! The queue: order, and each prompt handed to exactly one turn even when raced.

use std::collections::HashSet;

use agentbox_protocol::api::{PermissionMode, QueuedMessage};
use agentbox_protocol::event::MessageStatus;
use agentbox_store::{QueuedUpdate, StoreError, TurnResult};

use super::support::{TestStore, conformance};

conformance!(
    the_queue_keeps_order_and_a_prompt_is_queued_or_a_turn_never_both,
    a_raced_queue_hands_each_prompt_to_exactly_one_turn,
);

fn order(queue: Vec<QueuedMessage>) -> Vec<String> {
    queue.into_iter().map(|q| q.prompt).collect()
}

async fn the_queue_keeps_order_and_a_prompt_is_queued_or_a_turn_never_both(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let store = &t.store;
    let a = store.enqueue(chat, "a", None, None).await.unwrap();
    let b = store.enqueue(chat, "b", Some("other-model"), Some(PermissionMode::Plan)).await;
    let b = b.unwrap();
    let c = store.enqueue(chat, "c", None, None).await.unwrap();
    assert_eq!(store.queue(chat).await.unwrap(), [a.clone(), b.clone(), c.clone()]);
    assert!(store.move_queued_to_front(chat, c.id).await.unwrap());
    assert!(!store.move_queued_to_front(chat, uuid::Uuid::now_v7()).await.unwrap());
    assert_eq!(order(store.queue(chat).await.unwrap()), ["c", "a", "b"]);
    let edited = QueuedUpdate { prompt: Some("a2".into()), ..QueuedUpdate::default() };
    let a2 = store.update_queued(chat, a.id, edited).await.unwrap().unwrap();
    assert_eq!((a2.prompt.as_str(), a2.created_at), ("a2", a.created_at));
    assert!(
        store
            .update_queued(chat, uuid::Uuid::now_v7(), QueuedUpdate::default())
            .await
            .unwrap()
            .is_none()
    );

    // The next prompt leaves the queue as a turn, with the chat's settings where it has
    // none of its own.
    let (queued, started) =
        store.begin_queued_turn(chat, None, "m", PermissionMode::Ask).await.unwrap().unwrap();
    assert_eq!((queued.id, queued.message_id), (c.id, Some(started.message_id)));
    // While it runs, another cannot start, and stays queued.
    let busy = store.begin_queued_turn(chat, Some(b.id), "m", PermissionMode::Ask).await;
    assert!(matches!(busy, Err(StoreError::Conflict("turn_in_progress"))), "{busy:?}");
    assert_eq!(order(store.queue(chat).await.unwrap()), ["a2", "b"]);
    assert!(store.delete_queued(chat, a.id).await.unwrap());
    assert!(!store.delete_queued(chat, a.id).await.unwrap());
    assert_eq!(store.chats_with_queued_messages().await.unwrap(), [chat]);
    let messages = store.messages(chat).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].model.as_deref(), Some("m"));

    // A prompt with its own model and mode keeps them.
    store
        .finish_turn(chat, started.message_id, TurnResult::status(MessageStatus::Completed))
        .await
        .unwrap();
    let (queued, started) =
        store.begin_queued_turn(chat, Some(b.id), "m", PermissionMode::Ask).await.unwrap().unwrap();
    assert_eq!(queued.id, b.id);
    let messages = store.messages(chat).await.unwrap();
    assert_eq!(messages[3].id, started.message_id);
    assert_eq!(
        (messages[3].model.as_deref(), messages[3].permission_mode),
        (Some("other-model"), Some(PermissionMode::Plan))
    );
    assert!(store.queue(chat).await.unwrap().is_empty());
    assert!(store.chats_with_queued_messages().await.unwrap().is_empty());
    assert!(store.begin_queued_turn(chat, None, "m", PermissionMode::Ask).await.unwrap().is_none());
    let missing = store.enqueue(uuid::Uuid::now_v7(), "x", None, None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

async fn a_raced_queue_hands_each_prompt_to_exactly_one_turn(t: TestStore) {
    const PROMPTS: usize = 6;
    const WORKERS: usize = 8;
    let (_, chat) = t.user_and_chat().await;
    let mut expected = Vec::new();
    for i in 0..PROMPTS {
        expected.push(t.store.enqueue(chat, &format!("p{i}"), None, None).await.unwrap().id);
    }
    let mut pools = Vec::new();
    for _ in 0..4 {
        pools.push(t.another_pool().await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(WORKERS));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (store, barrier) = (pools[w % pools.len()].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut taken = Vec::new();
                // Bounded: each round either takes a prompt, sees a turn running or sees
                // the queue empty; the turn another worker runs ends within its round.
                for _ in 0..10_000 {
                    match store.begin_queued_turn(chat, None, "m", PermissionMode::Ask).await {
                        Ok(Some((queued, started))) => {
                            taken.push(queued.id);
                            let done = TurnResult::status(MessageStatus::Completed);
                            store.finish_turn(chat, started.message_id, done).await.unwrap();
                        }
                        Ok(None) => return taken,
                        Err(StoreError::Conflict("turn_in_progress")) => {
                            tokio::task::yield_now().await
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                }
                panic!("the queue never emptied");
            })
        })
        .collect();
    let mut taken = Vec::new();
    for task in tasks {
        taken.extend(task.await.unwrap());
    }
    assert_eq!(taken.len(), PROMPTS, "each prompt handed out once: {taken:?}");
    assert_eq!(taken.iter().collect::<HashSet<_>>(), expected.iter().collect::<HashSet<_>>());
    assert!(t.store.queue(chat).await.unwrap().is_empty());
    // Turns ran one at a time, in queue order.
    let messages = t.store.messages(chat).await.unwrap();
    assert_eq!(messages.len(), 2 * PROMPTS);
    let prompts: Vec<_> = messages
        .iter()
        .step_by(2)
        .map(|m| match &m.content[0].payload {
            agentbox_protocol::event::EventPayload::UserText { text } => text.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(prompts, (0..PROMPTS).map(|i| format!("p{i}")).collect::<Vec<_>>());
}
