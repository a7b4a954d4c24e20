//! The repository a chat was started from: stored once per chat, read back whole, and
//! deleted with the chat.

use agentbox_store::{ChatRepositoryRecord, StoreError};

use super::support::{TestStore, conformance};

conformance!(a_chats_repository_is_kept_once_and_goes_with_the_chat);

async fn a_chats_repository_is_kept_once_and_goes_with_the_chat(t: TestStore) {
    let store = &t.store;
    let _admin = t.user_and_chat().await;
    let (alice, chat) = t.user_and_chat().await;
    let (_, other) = t.user_and_chat().await;
    assert_eq!(store.chat_repository(chat).await.unwrap(), None);
    let record = ChatRepositoryRecord {
        chat_id: chat,
        url: "https://git.example.com/team/project.git".into(),
        branch: Some("main".into()),
        secret: Some("GITHUB_TOKEN".into()),
        directory: "project".into(),
        created_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
    };
    store.set_chat_repository(&record).await.unwrap();
    let plain =
        ChatRepositoryRecord { chat_id: other, branch: None, secret: None, ..record.clone() };
    store.set_chat_repository(&plain).await.unwrap();
    assert_eq!(store.chat_repository(chat).await.unwrap(), Some(record.clone()));
    assert_eq!(store.chat_repository(other).await.unwrap(), Some(plain));
    let again = store.set_chat_repository(&record).await;
    assert!(matches!(again, Err(StoreError::Conflict("repository_exists"))), "{again:?}");

    assert!(store.delete_chat(alice, chat).await.unwrap());
    assert_eq!(store.chat_repository(chat).await.unwrap(), None);
    assert!(store.chat_repository(other).await.unwrap().is_some());
}
