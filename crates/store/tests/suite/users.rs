//! Accounts: the first user is an administrator, the last enabled administrator stays one,
//! disabling revokes refresh tokens, refresh-token rotation with reuse detection, invites
//! used once, and each user's usage.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::MessageStatus;
use agentbox_store::{RefreshRotation, StoreError, TurnResult};
use chrono::{Duration, Utc};

use super::support::{TestStore, conformance};

conformance!(
    the_first_user_is_the_admin_and_the_last_admin_stays,
    disabling_revokes_refresh_tokens,
    a_reused_refresh_token_revokes_its_family,
    invites_work_once_and_until_they_expire,
    usage_counts_turns_and_cost_per_user,
    activity_counts_running_turns_and_the_turns_and_cost_since_a_time,
    limits_set_for_a_user_are_theirs_and_clear_back_to_none,
    a_password_change_replaces_the_hash_and_ends_every_refresh_family,
    server_settings_are_unset_until_set_and_then_replaced,
);

async fn limits_set_for_a_user_are_theirs_and_clear_back_to_none(t: TestStore) {
    let store = &t.store;
    let alice = store.create_user("alice@example.com", None, "h").await.unwrap();
    let bob = store.create_user("bob@example.com", None, "h").await.unwrap();
    assert!(store.user_limits(alice.id).await.unwrap().is_empty());
    // Instructions set before are kept beside the limits, and the other way round.
    store.set_user_instructions(alice.id, Some("be brief")).await.unwrap();
    let serde_json::Value::Object(limits) =
        serde_json::json!({"turns_per_day": 3, "spend_per_day_usd": 0.25, "running_turns": null})
    else {
        unreachable!()
    };
    store.set_user_limits(alice.id, &limits).await.unwrap();
    assert_eq!(store.user_limits(alice.id).await.unwrap(), limits);
    assert!(store.user_limits(bob.id).await.unwrap().is_empty(), "only alice's");
    let settings = store.user_settings(alice.id).await.unwrap();
    assert_eq!(settings.custom_instructions.as_deref(), Some("be brief"));

    store.set_user_limits(alice.id, &serde_json::Map::new()).await.unwrap();
    assert!(store.user_limits(alice.id).await.unwrap().is_empty());
    // A user without a settings row gets one.
    store.set_user_limits(bob.id, &limits).await.unwrap();
    assert_eq!(store.user_limits(bob.id).await.unwrap(), limits);
    // The limits go with the account.
    store.set_user_admin(bob.id, true).await.unwrap();
    assert!(store.delete_user(alice.id).await.unwrap());
    assert!(store.user_limits(alice.id).await.unwrap().is_empty());
}

async fn a_password_change_replaces_the_hash_and_ends_every_refresh_family(t: TestStore) {
    let store = &t.store;
    let alice = store.create_user("alice@example.com", None, "old").await.unwrap();
    let bob = store.create_user("bob@example.com", None, "h").await.unwrap();
    let later = Utc::now() + Duration::days(1);
    store.add_refresh_token(alice.id, "a1", "fa", later).await.unwrap();
    store.add_refresh_token(alice.id, "a2", "fb", later).await.unwrap();
    store.add_refresh_token(bob.id, "b1", "fc", later).await.unwrap();

    assert!(store.set_password_hash(alice.id, "new").await.unwrap());
    assert_eq!(store.user(alice.id).await.unwrap().unwrap().password_hash, "new");
    for token in ["a1", "a2"] {
        let rotated = store.rotate_refresh_token(token, "next", later).await.unwrap();
        assert!(matches!(rotated, RefreshRotation::Invalid), "{token}: {rotated:?}");
    }
    let bobs = store.rotate_refresh_token("b1", "b2", later).await.unwrap();
    assert!(matches!(bobs, RefreshRotation::Rotated { .. }), "another user's stay: {bobs:?}");
    assert_eq!(store.user(bob.id).await.unwrap().unwrap().password_hash, "h");
    assert!(!store.set_password_hash(uuid::Uuid::now_v7(), "x").await.unwrap());
}

async fn server_settings_are_unset_until_set_and_then_replaced(t: TestStore) {
    let store = &t.store;
    assert_eq!(store.server_setting("registration").await.unwrap(), None);
    store.set_server_setting("registration", "closed").await.unwrap();
    store.set_server_setting("registration", "invite").await.unwrap();
    assert_eq!(store.server_setting("registration").await.unwrap().as_deref(), Some("invite"));
    assert_eq!(store.server_setting("other").await.unwrap(), None);
}

async fn the_first_user_is_the_admin_and_the_last_admin_stays(t: TestStore) {
    let store = &t.store;
    let first = store.create_user("first@example.com", None, "h").await.unwrap();
    let second = store.create_user("second@example.com", None, "h").await.unwrap();
    assert!(first.is_admin && !second.is_admin);
    assert_eq!(store.user(first.id).await.unwrap(), Some(first.clone()));
    let listed = store.list_users().await.unwrap();
    assert_eq!(listed, [first.clone(), second.clone()]);

    let last = store.set_user_admin(first.id, false).await;
    assert!(matches!(last, Err(StoreError::Conflict("last_admin"))), "{last:?}");
    let disabled = store.set_user_disabled(first.id, true).await;
    assert!(matches!(disabled, Err(StoreError::Conflict("last_admin"))), "{disabled:?}");
    let deleted = store.delete_user(first.id).await;
    assert!(matches!(deleted, Err(StoreError::Conflict("last_admin"))), "{deleted:?}");
    assert!(store.user(first.id).await.unwrap().unwrap().is_admin, "nothing changed");

    // With a second administrator the first can step down, and then the second cannot.
    assert!(store.set_user_admin(second.id, true).await.unwrap().unwrap().is_admin);
    assert!(!store.set_user_admin(first.id, false).await.unwrap().unwrap().is_admin);
    let last = store.set_user_admin(second.id, false).await;
    assert!(matches!(last, Err(StoreError::Conflict("last_admin"))), "{last:?}");
    // A disabled administrator does not count as the one that remains.
    assert!(store.set_user_admin(first.id, true).await.unwrap().is_some());
    assert!(store.set_user_disabled(first.id, true).await.unwrap().is_some());
    let last = store.delete_user(second.id).await;
    assert!(matches!(last, Err(StoreError::Conflict("last_admin"))), "{last:?}");
    // Deleting a user who is not the last admin works; an unknown one is `false`/`None`.
    assert!(store.delete_user(first.id).await.unwrap());
    assert!(!store.delete_user(first.id).await.unwrap());
    assert_eq!(store.set_user_admin(first.id, true).await.unwrap(), None);
    assert_eq!(store.set_user_disabled(first.id, true).await.unwrap(), None);
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn disabling_revokes_refresh_tokens(t: TestStore) {
    let store = &t.store;
    let _admin = store.create_user("admin@example.com", None, "h").await.unwrap();
    let user = store.create_user("user@example.com", None, "h").await.unwrap();
    let later = Utc::now() + Duration::hours(1);
    store.add_refresh_token(user.id, "a", "fa", later).await.unwrap();
    let disabled = store.set_user_disabled(user.id, true).await.unwrap().unwrap();
    let at = disabled.disabled_at.expect("disabled");
    // Disabling again keeps the first time.
    let again = store.set_user_disabled(user.id, true).await.unwrap().unwrap();
    assert_eq!(again.disabled_at, Some(at));
    assert_eq!(
        store.rotate_refresh_token("a", "b", later).await.unwrap(),
        RefreshRotation::Invalid,
        "the token was deleted with the disable"
    );
    let enabled = store.set_user_disabled(user.id, false).await.unwrap().unwrap();
    assert_eq!(enabled.disabled_at, None);
}

async fn a_reused_refresh_token_revokes_its_family(t: TestStore) {
    let store = &t.store;
    let user = store.create_user("user@example.com", None, "h").await.unwrap().id;
    let later = Utc::now() + Duration::hours(1);
    // Two sign-ins: two families.
    store.add_refresh_token(user, "a1", "fa", later).await.unwrap();
    store.add_refresh_token(user, "b1", "fb", later).await.unwrap();
    // Rotation: a1 -> a2 -> a3.
    let rotated = RefreshRotation::Rotated { user_id: user };
    assert_eq!(store.rotate_refresh_token("a1", "a2", later).await.unwrap(), rotated);
    assert_eq!(store.rotate_refresh_token("a2", "a3", later).await.unwrap(), rotated);
    // a1 again: reuse. The family (a3 included) dies, the other sign-in lives.
    assert_eq!(
        store.rotate_refresh_token("a1", "x", later).await.unwrap(),
        RefreshRotation::Reused { user_id: user }
    );
    assert_eq!(
        store.rotate_refresh_token("a3", "a4", later).await.unwrap(),
        RefreshRotation::Invalid
    );
    assert_eq!(
        store.rotate_refresh_token("x", "y", later).await.unwrap(),
        RefreshRotation::Invalid
    );
    assert_eq!(store.rotate_refresh_token("b1", "b2", later).await.unwrap(), rotated);

    // Unknown and expired tokens are invalid and change nothing.
    assert_eq!(
        store.rotate_refresh_token("nope", "z", later).await.unwrap(),
        RefreshRotation::Invalid
    );
    store.add_refresh_token(user, "old", "fo", Utc::now() - Duration::hours(1)).await.unwrap();
    assert_eq!(
        store.rotate_refresh_token("old", "z", later).await.unwrap(),
        RefreshRotation::Invalid
    );

    // Logout revokes one family, only with the token's own user.
    let other = store.create_user("other@example.com", None, "h").await.unwrap().id;
    assert!(!store.revoke_refresh_family(other, "b2").await.unwrap());
    assert!(store.revoke_refresh_family(user, "b2").await.unwrap());
    assert_eq!(
        store.rotate_refresh_token("b2", "b3", later).await.unwrap(),
        RefreshRotation::Invalid
    );

    // Racing rotations of one token: exactly one wins, and the loser's reuse kills both.
    store.add_refresh_token(user, "r1", "fr", later).await.unwrap();
    let (one, two) = tokio::join!(
        store.rotate_refresh_token("r1", "r2", later),
        store.rotate_refresh_token("r1", "r3", later)
    );
    let mut outcomes = [one.unwrap(), two.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, RefreshRotation::Reused { .. }));
    assert_eq!(outcomes, [rotated, RefreshRotation::Reused { user_id: user }]);
    for token in ["r2", "r3"] {
        assert_eq!(
            store.rotate_refresh_token(token, "q", later).await.unwrap(),
            RefreshRotation::Invalid
        );
    }
}

async fn invites_work_once_and_until_they_expire(t: TestStore) {
    let store = &t.store;
    let admin = store.create_user("admin@example.com", None, "h").await.unwrap();
    let later = Utc::now() + Duration::hours(1);
    let invite = store.create_invite(admin.id, "i1", later).await.unwrap();
    let expired =
        store.create_invite(admin.id, "i2", Utc::now() - Duration::seconds(1)).await.unwrap();
    assert_eq!(store.list_invites().await.unwrap(), [expired.clone(), invite.clone()]);

    // A bad invite is refused before the email is looked at.
    for bad in ["nope", "i2"] {
        let refused = store.create_user_with("admin@example.com", None, "h", Some(bad)).await;
        assert!(matches!(refused, Err(StoreError::Conflict("invalid_invite"))), "{refused:?}");
    }
    let user = store.create_user_with("new@example.com", None, "h", Some("i1")).await.unwrap();
    assert!(!user.is_admin);
    let again = store.create_user_with("newer@example.com", None, "h", Some("i1")).await;
    assert!(matches!(again, Err(StoreError::Conflict("invalid_invite"))), "{again:?}");
    // A taken email spends a valid invite too.
    store.create_invite(admin.id, "i3", later).await.unwrap();
    let taken = store.create_user_with("admin@example.com", None, "h", Some("i3")).await;
    assert!(matches!(taken, Err(StoreError::Conflict("email_taken"))), "{taken:?}");
    let spent = store.create_user_with("third@example.com", None, "h", Some("i3")).await;
    assert!(matches!(spent, Err(StoreError::Conflict("invalid_invite"))), "{spent:?}");
    let used = store.list_invites().await.unwrap();
    let used = used.iter().find(|i| i.id == invite.id).unwrap();
    assert_eq!(used.used_by, Some(user.id));
    assert!(used.used_at.is_some());
    assert_eq!(store.count_users().await.unwrap(), 2);

    assert!(store.delete_invite(expired.id).await.unwrap());
    assert!(!store.delete_invite(expired.id).await.unwrap());
    assert_eq!(store.list_invites().await.unwrap().len(), 2);
}

async fn usage_counts_turns_and_cost_per_user(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let store = &t.store;
    let idle = store.create_user("idle@example.com", None, "h").await.unwrap();
    let _empty_chat = t.chat_of(user).await;
    for cost in [Some(0.25), None, Some(0.5)] {
        let turn = store.begin_turn(chat, "p", "m", PermissionMode::Ask).await.unwrap();
        let result =
            TurnResult { total_cost_usd: cost, ..TurnResult::status(MessageStatus::Completed) };
        store.finish_turn(chat, turn.message_id, result).await.unwrap();
    }
    let usage = store.users_usage().await.unwrap();
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!((usage[0].user_id, usage[0].chats, usage[0].turns), (user, 2, 3));
    assert!((usage[0].cost_usd - 0.75).abs() < 1e-9, "{usage:?}");
    assert!(usage.iter().all(|u| u.user_id != idle.id));
}

async fn activity_counts_running_turns_and_the_turns_and_cost_since_a_time(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let store = &t.store;
    let other_chat = t.chat_of(user).await;
    let before = Utc::now() - Duration::seconds(1);
    assert_eq!(store.user_activity(user, before).await.unwrap(), Default::default());
    for cost in [Some(0.25), Some(0.5)] {
        let turn = store.begin_turn(chat, "p", "m", PermissionMode::Ask).await.unwrap();
        let result =
            TurnResult { total_cost_usd: cost, ..TurnResult::status(MessageStatus::Completed) };
        store.finish_turn(chat, turn.message_id, result).await.unwrap();
    }
    store.begin_turn(other_chat, "running", "m", PermissionMode::Ask).await.unwrap();
    let activity = store.user_activity(user, before).await.unwrap();
    assert_eq!((activity.running_turns, activity.turns), (1, 3));
    assert!((activity.cost_usd - 0.75).abs() < 1e-9, "{activity:?}");
    // Since a later time: only the running turn counts, and nothing was spent.
    let later = store.user_activity(user, Utc::now() + Duration::seconds(1)).await.unwrap();
    assert_eq!((later.running_turns, later.turns, later.cost_usd), (1, 0, 0.0));
    // Another user's activity is their own.
    let (stranger, _) = t.user_and_chat().await;
    assert_eq!(store.user_activity(stranger, before).await.unwrap(), Default::default());
}
