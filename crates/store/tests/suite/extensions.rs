//! Agent extensions: one scope per user and per chat, unique by kind and name, upserts that
//! keep the row and move `updated_at`, deletes, and rows that go with their user and chat.

use super::support::{TestStore, conformance};

conformance!(extensions_are_scoped_replaced_and_deleted);
conformance!(extensions_go_with_their_user_and_chat);

async fn extensions_are_scoped_replaced_and_deleted(t: TestStore) {
    let store = &t.store;
    let (alice, chat) = t.user_and_chat().await;
    let (bob, _) = t.user_and_chat().await;
    assert!(store.put_extension(alice, None, "command", "review", r#"{"a":1}"#).await.unwrap());
    assert!(store.put_extension(alice, None, "skill", "review", r#"{"a":2}"#).await.unwrap());
    assert!(store.put_extension(alice, None, "command", "b-fix", r#"{"a":3}"#).await.unwrap());
    assert!(
        store.put_extension(alice, Some(chat), "command", "review", r#"{"a":4}"#).await.unwrap()
    );
    assert!(store.put_extension(bob, None, "command", "review", r#"{"a":5}"#).await.unwrap());

    let all = store.extensions(alice, None, None).await.unwrap();
    let keys: Vec<_> = all.iter().map(|e| (e.kind.as_str(), e.name.as_str())).collect();
    assert_eq!(keys, [("command", "b-fix"), ("command", "review"), ("skill", "review")]);
    let commands = store.extensions(alice, None, Some("command")).await.unwrap();
    assert_eq!(commands.len(), 2);
    let chat_own = store.extensions(alice, Some(chat), None).await.unwrap();
    assert_eq!(chat_own.len(), 1);
    assert_eq!(chat_own[0].body, r#"{"a":4}"#);
    assert_eq!(chat_own[0].chat_id, Some(chat));
    assert_eq!(store.extensions(bob, None, None).await.unwrap()[0].body, r#"{"a":5}"#);

    // A second put of the same scope, kind and name replaces the body, keeps the row.
    let before = commands[1].clone();
    assert!(!store.put_extension(alice, None, "command", "review", r#"{"a":6}"#).await.unwrap());
    let after = store.extensions(alice, None, Some("command")).await.unwrap()[1].clone();
    assert_eq!(
        (after.id, after.created_at, after.body.as_str()),
        (before.id, before.created_at, r#"{"a":6}"#)
    );
    assert!(after.updated_at >= before.updated_at);
    // The chat's row is its own.
    assert_eq!(store.extensions(alice, Some(chat), None).await.unwrap()[0].body, r#"{"a":4}"#);

    assert!(!store.delete_extension(bob, None, "command", "b-fix").await.unwrap());
    assert!(!store.delete_extension(alice, None, "agent", "review").await.unwrap());
    assert!(store.delete_extension(alice, Some(chat), "command", "review").await.unwrap());
    assert!(store.extensions(alice, Some(chat), None).await.unwrap().is_empty());
    assert_eq!(store.extensions(alice, None, None).await.unwrap().len(), 3);
    assert!(store.delete_extension(alice, None, "command", "review").await.unwrap());
    assert!(!store.delete_extension(alice, None, "command", "review").await.unwrap());
    assert_eq!(store.extensions(alice, None, None).await.unwrap().len(), 2);
}

async fn extensions_go_with_their_user_and_chat(t: TestStore) {
    let store = &t.store;
    // The first account is the administrator, who cannot be deleted while alone.
    let _admin = t.user_and_chat().await;
    let (alice, chat) = t.user_and_chat().await;
    store.put_extension(alice, None, "agent", "x", "{}").await.unwrap();
    store.put_extension(alice, Some(chat), "agent", "x", "{}").await.unwrap();
    assert!(store.delete_chat(alice, chat).await.unwrap());
    assert!(store.extensions(alice, Some(chat), None).await.unwrap().is_empty());
    assert_eq!(store.extensions(alice, None, None).await.unwrap().len(), 1);
    store.delete_user(alice).await.unwrap();
    assert_eq!(store.count_rows(agentbox_store::Table::Extensions).await.unwrap(), 0);
}
