//! Sealed secrets: one scope per user and per chat, upserts that keep the row, deletes,
//! cascades, and the all-or-nothing re-sealing of the key rotation.

use super::support::{TestStore, conformance};

conformance!(secrets_are_scoped_replaced_and_deleted);
conformance!(secrets_go_with_their_user_and_chat);
conformance!(resealing_changes_every_given_row);

async fn secrets_are_scoped_replaced_and_deleted(t: TestStore) {
    let store = &t.store;
    let (alice, chat) = t.user_and_chat().await;
    let (bob, _) = t.user_and_chat().await;
    assert!(store.put_secret(alice, None, "b_TOKEN", "k1", "sealed-1").await.unwrap());
    assert!(store.put_secret(alice, None, "A_TOKEN", "k1", "sealed-2").await.unwrap());
    assert!(store.put_secret(alice, Some(chat), "b_TOKEN", "k1", "sealed-3").await.unwrap());
    assert!(store.put_secret(bob, None, "b_TOKEN", "k1", "sealed-4").await.unwrap());

    let own = store.secrets(alice, None).await.unwrap();
    let names: Vec<_> = own.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["A_TOKEN", "b_TOKEN"], "by name, bytewise on both backends");
    assert!(own.iter().all(|s| s.chat_id.is_none() && s.user_id == alice));
    let overrides = store.secrets(alice, Some(chat)).await.unwrap();
    assert_eq!(overrides.len(), 1);
    assert_eq!((overrides[0].sealed.as_str(), overrides[0].chat_id), ("sealed-3", Some(chat)));
    assert_eq!(store.secrets(bob, None).await.unwrap()[0].sealed, "sealed-4");

    // Replacing keeps the row and its creation time.
    let before = own[1].clone();
    assert!(!store.put_secret(alice, None, "b_TOKEN", "k2", "sealed-5").await.unwrap());
    let after = store.secrets(alice, None).await.unwrap()[1].clone();
    assert_eq!((after.id, after.created_at), (before.id, before.created_at));
    assert_eq!((after.key_id.as_str(), after.sealed.as_str()), ("k2", "sealed-5"));
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(store.secrets(alice, Some(chat)).await.unwrap()[0].sealed, "sealed-3");

    // A delete names its scope.
    assert!(!store.delete_secret(bob, None, "A_TOKEN").await.unwrap());
    assert!(store.delete_secret(alice, Some(chat), "b_TOKEN").await.unwrap());
    assert!(store.secrets(alice, Some(chat)).await.unwrap().is_empty());
    assert_eq!(store.secrets(alice, None).await.unwrap().len(), 2);
    assert!(store.delete_secret(alice, None, "b_TOKEN").await.unwrap());
    assert!(!store.delete_secret(alice, None, "b_TOKEN").await.unwrap());
    assert_eq!(store.all_secrets().await.unwrap().len(), 2);
}

async fn secrets_go_with_their_user_and_chat(t: TestStore) {
    let store = &t.store;
    // The first account is the administrator, who cannot be deleted while alone.
    let _admin = t.user_and_chat().await;
    let (alice, chat) = t.user_and_chat().await;
    store.put_secret(alice, None, "X", "k", "s").await.unwrap();
    store.put_secret(alice, Some(chat), "X", "k", "s").await.unwrap();
    assert!(store.delete_chat(alice, chat).await.unwrap());
    assert!(store.secrets(alice, Some(chat)).await.unwrap().is_empty());
    assert_eq!(store.secrets(alice, None).await.unwrap().len(), 1);
    store.delete_user(alice).await.unwrap();
    assert!(store.all_secrets().await.unwrap().is_empty());
}

async fn resealing_changes_every_given_row(t: TestStore) {
    let store = &t.store;
    let (alice, chat) = t.user_and_chat().await;
    store.put_secret(alice, None, "X", "old", "s1").await.unwrap();
    store.put_secret(alice, Some(chat), "X", "old", "s2").await.unwrap();
    let mut all = store.all_secrets().await.unwrap();
    for secret in &mut all {
        secret.key_id = "new".into();
        secret.sealed = format!("{}-resealed", secret.sealed);
    }
    assert_eq!(store.reseal_secrets(&all).await.unwrap(), 2);
    let mut now = store.all_secrets().await.unwrap();
    now.sort_by_key(|s| s.id);
    all.sort_by_key(|s| s.id);
    assert_eq!(now, all);
}
