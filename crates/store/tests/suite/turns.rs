//! Turns: begin and finish, one turn per chat under races, and records that read back
//! exactly as they were written.

use agentbox_protocol::api::{PermissionMode, Role};
use agentbox_protocol::event::{EventPayload, MessageStatus, Usage};
use agentbox_store::{ChatUpdate, StoreError, TurnResult};

use super::support::{TestStore, conformance};

conformance!(
    a_turn_begins_and_finishes_atomically,
    only_one_of_many_racing_turns_starts,
    records_read_back_exactly_as_written,
    chats_are_scoped_by_their_user,
);

async fn a_turn_begins_and_finishes_atomically(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let store = &t.store;
    let turn = store.begin_turn(chat, "hello", "m", PermissionMode::Ask).await.unwrap();
    assert_eq!(turn.user_event.seq, 1);
    assert_eq!(turn.user_event.payload, EventPayload::UserText { text: "hello".into() });
    assert_eq!(store.running_turn(chat).await.unwrap(), Some(turn.message_id));
    assert_eq!(store.unfinished_turns().await.unwrap(), [(chat, turn.message_id)]);

    let result = TurnResult {
        status: MessageStatus::Completed,
        total_cost_usd: Some(0.1 + 0.2),
        usage: Some(Usage { input_tokens: 3, output_tokens: 4, ..Usage::default() }),
        session_id: Some("session-1".into()),
    };
    let done = store.finish_turn(chat, turn.message_id, result.clone()).await.unwrap();
    assert_eq!(done.seq, 2);
    assert_eq!(store.running_turn(chat).await.unwrap(), None);
    assert!(store.unfinished_turns().await.unwrap().is_empty());
    // Finishing twice is refused, and so is finishing in progress.
    let again = store.finish_turn(chat, turn.message_id, result).await;
    assert!(matches!(again, Err(StoreError::Conflict("turn_not_running"))), "{again:?}");
    let in_progress = store
        .finish_turn(chat, turn.message_id, TurnResult::status(MessageStatus::InProgress))
        .await;
    assert!(matches!(in_progress, Err(StoreError::Corrupt(_))), "{in_progress:?}");

    let chat_record = store.chat_unscoped(chat).await.unwrap().unwrap();
    assert_eq!((chat_record.session_id.as_deref(), chat_record.last_seq), (Some("session-1"), 2));
    let messages = store.messages(chat).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0].role, messages[1].role), (Role::User, Role::Assistant));
    assert_eq!(messages[0].content, [turn.user_event]);
    assert_eq!(messages[1].content, [done]);
    assert_eq!(messages[1].status, MessageStatus::Completed);
    assert_eq!(messages[1].total_cost_usd, Some(0.1 + 0.2));
    assert_eq!(messages[1].usage.as_ref().map(|u| u.output_tokens), Some(4));
    assert!(messages[1].completed_at.is_some());

    // A turn of a chat that does not exist.
    let missing = store.begin_turn(uuid::Uuid::now_v7(), "x", "m", PermissionMode::Ask).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

async fn only_one_of_many_racing_turns_starts(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let mut pools = vec![t.store.clone()];
    for _ in 0..3 {
        pools.push(t.another_pool().await);
    }
    for round in 0..3 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = pools[i % pools.len()].clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.begin_turn(chat, &format!("p{i}"), "m", PermissionMode::Ask).await
                })
            })
            .collect();
        let mut started = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(turn) => started.push(turn),
                Err(StoreError::Conflict("turn_in_progress")) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(started.len(), 1, "round {round}: exactly one turn starts");
        let turn = &started[0];
        assert_eq!(t.store.running_turn(chat).await.unwrap(), Some(turn.message_id));
        t.store
            .finish_turn(chat, turn.message_id, TurnResult::status(MessageStatus::Completed))
            .await
            .unwrap();
    }
    // Three turns, two messages and two events each, nothing of the losers.
    let messages = t.store.messages(chat).await.unwrap();
    assert_eq!(messages.len(), 6);
    let events = t.store.events_after(chat, 0, 100).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
}

async fn records_read_back_exactly_as_written(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let store = &t.store;
    let record = store.user(user).await.unwrap().unwrap();
    assert_eq!(
        store.user_by_email(&record.email.to_uppercase()).await.unwrap(),
        Some(record.clone())
    );
    let taken = store.create_user(&record.email.to_uppercase(), None, "h").await;
    assert!(matches!(taken, Err(StoreError::Conflict("email_taken"))), "{taken:?}");

    let updated = store
        .update_chat(
            user,
            chat,
            ChatUpdate {
                title: Some("ünïcode ✓".into()),
                custom_instructions: Some(Some("be brief".into())),
                max_thinking_tokens: Some(Some(0)),
                ..ChatUpdate::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.chat(user, chat).await.unwrap(), Some(updated.clone()));
    assert_eq!(store.list_chats(user).await.unwrap(), std::slice::from_ref(&updated));
    let cleared = store
        .update_chat(
            user,
            chat,
            ChatUpdate { max_thinking_tokens: Some(None), ..Default::default() },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (cleared.max_thinking_tokens, cleared.custom_instructions.as_deref()),
        (None, Some("be brief"))
    );

    // Every timestamp and document comes back as the value that was handed out.
    let turn = store
        .begin_turn(chat, "a\u{0}b \"quoted\" \u{1F600}", "m", PermissionMode::Ask)
        .await
        .unwrap();
    let payload = EventPayload::System(
        agentbox_protocol::event::SystemEvent::new("probe")
            .with("text", "line\nnul:\u{0} tab:\t \u{1F600} \"q\" \\")
            .with("big", 12_345_678_901_234_567_890_u64)
            .with("negative", -9_007_199_254_740_993_i64)
            .with("float", 1e300)
            .with("third", 0.1 + 0.2)
            .with("nested", serde_json::json!({"z": 1, "a": [1.5, null, true, {}], "": ""})),
    );
    let appended = store
        .append_event(chat, agentbox_store::NewEvent::new(turn.message_id, payload))
        .await
        .unwrap();
    let read = store.events_after(chat, 0, 10).await.unwrap();
    assert_eq!(read, [turn.user_event.clone(), appended.clone()]);
    assert_eq!(
        serde_json::to_string(&read).unwrap(),
        serde_json::to_string(&[turn.user_event, appended]).unwrap(),
        "the API's JSON of the events is the same as when they were appended"
    );

    // Refresh tokens: see users.rs.

    // Settings.
    assert_eq!(store.user_settings(user).await.unwrap(), Default::default());
    let hosts = vec!["example.com".to_owned(), "*.example.org".to_owned()];
    assert_eq!(
        store.set_user_allowed_hosts(user, &hosts).await.unwrap().sandbox_allowed_hosts,
        hosts
    );
    let settings = store.set_user_instructions(user, Some("mine")).await.unwrap();
    assert_eq!(
        (settings.custom_instructions.as_deref(), settings.sandbox_allowed_hosts.len()),
        (Some("mine"), 2)
    );
    assert!(
        store.set_user_allowed_hosts(user, &[]).await.unwrap().sandbox_allowed_hosts.is_empty()
    );
    let defaults =
        store.set_user_defaults(user, Some("claude-x"), Some(PermissionMode::Ask)).await.unwrap();
    assert_eq!(
        (defaults.default_model.as_deref(), defaults.default_permission_mode),
        (Some("claude-x"), Some(PermissionMode::Ask))
    );
    assert_eq!(defaults.custom_instructions.as_deref(), Some("mine"), "the rest stays");
    let cleared = store.set_user_defaults(user, None, None).await.unwrap();
    assert_eq!((cleared.default_model, cleared.default_permission_mode), (None, None));
    store.set_chat_permission_mode(chat, PermissionMode::Plan).await.unwrap();
    assert_eq!(
        store.chat(user, chat).await.unwrap().unwrap().permission_mode,
        PermissionMode::Plan
    );
    store.clear_session_id(chat).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn chats_are_scoped_by_their_user(t: TestStore) {
    let (alice, chat) = t.user_and_chat().await;
    let (bob, _) = t.user_and_chat().await;
    let store = &t.store;
    assert!(store.chat(bob, chat).await.unwrap().is_none());
    assert!(store.update_chat(bob, chat, ChatUpdate::default()).await.unwrap().is_none());
    assert!(!store.delete_chat(bob, chat).await.unwrap());
    assert_eq!(store.list_chats(bob).await.unwrap().len(), 1);
    let second = t.chat_of(alice).await;
    // Most recently active first.
    let turn = store.begin_turn(chat, "x", "m", PermissionMode::Ask).await.unwrap();
    let ids: Vec<_> = store.list_chats(alice).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, [chat, second]);
    assert!(store.delete_chat(alice, chat).await.unwrap());
    assert!(store.chat_unscoped(chat).await.unwrap().is_none());
    assert!(store.events_after(chat, 0, 10).await.unwrap().is_empty());
    assert!(store.running_turn(chat).await.unwrap().is_none());
    let _ = turn;
}
