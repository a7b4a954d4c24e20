//! Finding a chat: generated titles that never replace the user's, pins and the archive as
//! filters, previews, and search over titles and the words of prompts and replies.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{EventPayload, MessageStatus};
use agentbox_store::{
    ChatQuery, ChatUpdate, CheckpointKind, DEFAULT_CHAT_TITLE, NewEvent, TitleSource, TurnResult,
};
use uuid::Uuid;

use super::support::{TestStore, conformance, new_chat};

conformance!(
    a_generated_title_never_replaces_the_users,
    pins_and_the_archive_filter_the_list,
    search_finds_titles_and_words_of_visible_messages,
    hostile_searches_are_plain_words,
    spending_adds_up_a_chat_and_a_users_day,
);

/// A finished turn with `prompt` and `reply`, and a checkpoint after it.
async fn turn(t: &TestStore, chat: Uuid, prompt: &str, reply: &str) -> Uuid {
    let store = &t.store;
    let started = store.begin_turn(chat, prompt, "m", PermissionMode::Ask).await.unwrap();
    let text = EventPayload::AssistantText { text: reply.into() };
    store.append_event(chat, NewEvent::new(started.message_id, text)).await.unwrap();
    store
        .finish_turn(chat, started.message_id, TurnResult::status(MessageStatus::Completed))
        .await
        .unwrap();
    store
        .record_checkpoint(
            chat,
            Uuid::now_v7(),
            CheckpointKind::Turn,
            Some(started.message_id),
            None,
        )
        .await
        .unwrap();
    started.message_id
}

async fn untitled_chat(t: &TestStore, user: Uuid) -> Uuid {
    let chat = agentbox_store::NewChat { title: DEFAULT_CHAT_TITLE.into(), ..new_chat(user) };
    t.store.create_chat(chat).await.unwrap().id
}

async fn titles(t: &TestStore, user: Uuid, query: &ChatQuery) -> Vec<String> {
    let found = t.store.find_chats(user, query).await.unwrap();
    found.into_iter().map(|listing| listing.chat.title).collect()
}

fn search(text: &str) -> ChatQuery {
    ChatQuery { search: Some(text.into()), ..ChatQuery::default() }
}

async fn a_generated_title_never_replaces_the_users(t: TestStore) {
    let (user, named) = t.user_and_chat().await;
    let store = &t.store;
    // A chat created with a title of its own is the user's.
    let record = store.chat_unscoped(named).await.unwrap().unwrap();
    assert_eq!((record.title.as_str(), record.title_source), ("t", TitleSource::User));
    assert!(!store.set_generated_title(named, "Generated").await.unwrap());

    let chat = untitled_chat(&t, user).await;
    let record = store.chat_unscoped(chat).await.unwrap().unwrap();
    assert_eq!(record.title_source, TitleSource::Default);
    assert!(store.set_generated_title(chat, "Fix the login bug").await.unwrap());
    // Only the first generated title sticks.
    assert!(!store.set_generated_title(chat, "Something else").await.unwrap());
    let record = store.chat_unscoped(chat).await.unwrap().unwrap();
    assert_eq!(
        (record.title.as_str(), record.title_source),
        ("Fix the login bug", TitleSource::Generated)
    );

    // A rename wins, and nothing generated replaces it afterwards.
    let renamed = ChatUpdate { title: Some("Mine".into()), ..ChatUpdate::default() };
    store.update_chat(user, chat, renamed).await.unwrap().unwrap();
    let other = untitled_chat(&t, user).await;
    let renamed = ChatUpdate { title: Some("Also mine".into()), ..ChatUpdate::default() };
    store.update_chat(user, other, renamed).await.unwrap().unwrap();
    assert!(!store.set_generated_title(other, "Generated").await.unwrap());
    for (id, title) in [(chat, "Mine"), (other, "Also mine")] {
        let record = store.chat_unscoped(id).await.unwrap().unwrap();
        assert_eq!((record.title.as_str(), record.title_source), (title, TitleSource::User));
    }
    // An unknown chat is no error, just nothing named.
    assert!(!store.set_generated_title(Uuid::now_v7(), "x").await.unwrap());
}

async fn pins_and_the_archive_filter_the_list(t: TestStore) {
    let (user, first) = t.user_and_chat().await;
    let store = &t.store;
    let second = t.chat_of(user).await;
    let third = t.chat_of(user).await;
    let rename = |title: &str| ChatUpdate { title: Some(title.into()), ..ChatUpdate::default() };
    for (chat, title) in [(first, "first"), (second, "second"), (third, "third")] {
        store.update_chat(user, chat, rename(title)).await.unwrap().unwrap();
    }
    let before = store.chat_unscoped(first).await.unwrap().unwrap();
    let pin = ChatUpdate { pinned: Some(true), ..ChatUpdate::default() };
    let pinned = store.update_chat(user, first, pin.clone()).await.unwrap().unwrap();
    assert!(pinned.pinned && !pinned.archived);
    // Pinning is not activity: the chat keeps its place in the list.
    assert_eq!(pinned.updated_at, before.updated_at);
    // Pinning twice keeps it pinned.
    assert!(store.update_chat(user, first, pin).await.unwrap().unwrap().pinned);
    let archive = ChatUpdate { archived: Some(true), ..ChatUpdate::default() };
    assert!(store.update_chat(user, second, archive).await.unwrap().unwrap().archived);

    let all = ChatQuery::default();
    assert_eq!(titles(&t, user, &all).await, ["third", "second", "first"]);
    let pinned_only = ChatQuery { pinned: Some(true), ..ChatQuery::default() };
    assert_eq!(titles(&t, user, &pinned_only).await, ["first"]);
    let active = ChatQuery { archived: Some(false), ..ChatQuery::default() };
    assert_eq!(titles(&t, user, &active).await, ["third", "first"]);
    let archived = ChatQuery { archived: Some(true), ..ChatQuery::default() };
    assert_eq!(titles(&t, user, &archived).await, ["second"]);
    let unpinned_active =
        ChatQuery { pinned: Some(false), archived: Some(false), ..ChatQuery::default() };
    assert_eq!(titles(&t, user, &unpinned_active).await, ["third"]);

    // Unpinning and unarchiving undo it; other fields stay.
    let undo = ChatUpdate { pinned: Some(false), archived: Some(false), ..ChatUpdate::default() };
    let first_again = store.update_chat(user, first, undo.clone()).await.unwrap().unwrap();
    let second_again = store.update_chat(user, second, undo).await.unwrap().unwrap();
    assert!(!first_again.pinned && !second_again.archived);
    assert_eq!(first_again.title, "first");
    assert_eq!(titles(&t, user, &active).await, ["third", "second", "first"]);
    // Another user sees none of them.
    let (stranger, _) = t.user_and_chat().await;
    assert_eq!(titles(&t, stranger, &pinned_only).await, Vec::<String>::new());
}

async fn search_finds_titles_and_words_of_visible_messages(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let store = &t.store;
    let rename = ChatUpdate { title: Some("Deploy Notes".into()), ..ChatUpdate::default() };
    store.update_chat(user, chat, rename).await.unwrap().unwrap();
    turn(&t, chat, "Why does the login form crash?", "The session cookie expired.").await;
    let other = t.chat_of(user).await;
    turn(&t, other, "Write a haiku about autumn", "Leaves fall quietly").await;
    // Another user's chat with the same words is never found.
    let (stranger, strangers_chat) = t.user_and_chat().await;
    turn(&t, strangers_chat, "login crash", "cookie").await;

    // Words of the prompt and of the reply, in any case, as prefixes, all required.
    for (query, expected) in [
        ("login", vec!["Deploy Notes"]),
        ("COOKIE", vec!["Deploy Notes"]),
        ("sess cook", vec!["Deploy Notes"]),
        ("login haiku", vec![]),
        ("autumn", vec!["t"]),
        ("leaves", vec!["t"]),
        // The title matches as text.
        ("ploy no", vec!["Deploy Notes"]),
        ("nothing like this", vec![]),
    ] {
        assert_eq!(titles(&t, user, &search(query)).await, expected, "search {query:?}");
    }
    // The preview is the start of the latest prompt or reply.
    let listing = store.find_chats(user, &ChatQuery::default()).await.unwrap();
    assert_eq!(listing[0].preview.as_deref(), Some("Leaves fall quietly"));
    assert_eq!(listing[1].preview.as_deref(), Some("The session cookie expired."));
    assert_eq!(titles(&t, stranger, &search("deploy")).await, Vec::<String>::new());

    // A restore hides the turns after its checkpoint: their words are no longer found and
    // the preview goes back with them.
    let oldest = store.checkpoints(other).await.unwrap().pop().unwrap();
    turn(&t, other, "Now a limerick", "There once was a zebra").await;
    assert_eq!(titles(&t, user, &search("zebra")).await, ["t"]);
    store.rewind(other, &oldest).await.unwrap();
    assert_eq!(titles(&t, user, &search("zebra")).await, Vec::<String>::new());
    let listing = store.find_chats(user, &search("autumn")).await.unwrap();
    assert_eq!(listing[0].preview.as_deref(), Some("Leaves fall quietly"));

    // Search combines with the filters, and a deleted chat is gone from the index.
    let archive = ChatUpdate { archived: Some(true), ..ChatUpdate::default() };
    store.update_chat(user, other, archive).await.unwrap().unwrap();
    let active = ChatQuery { archived: Some(false), ..search("autumn") };
    assert_eq!(titles(&t, user, &active).await, Vec::<String>::new());
    assert_eq!(titles(&t, user, &search("autumn")).await, ["t"]);
    assert!(store.delete_chat(user, other).await.unwrap());
    assert_eq!(titles(&t, user, &search("autumn")).await, Vec::<String>::new());
    // Text appended later (a reply's events) is found at once.
    let started = store.begin_turn(chat, "another", "m", PermissionMode::Ask).await.unwrap();
    let text = EventPayload::AssistantText { text: "Kubernetes manifests".into() };
    store.append_event(chat, NewEvent::new(started.message_id, text)).await.unwrap();
    assert_eq!(titles(&t, user, &search("kubernetes")).await, ["Deploy Notes"]);
    // A text with a NUL (a tool's output quoted back) is stored and found all the same.
    let text = EventPayload::AssistantText { text: "binary \u{0} helm chart".into() };
    store.append_event(chat, NewEvent::new(started.message_id, text)).await.unwrap();
    assert_eq!(titles(&t, user, &search("helm")).await, ["Deploy Notes"]);
}

async fn hostile_searches_are_plain_words(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    turn(&t, chat, "near the end of the line", "or not").await;
    // Query syntax of either backend is only words here: no error, no operator.
    for query in [
        "\"",
        "'",
        "*",
        "near(",
        "NEAR(end line)",
        "end OR zzz",
        "end & !zzz",
        "end:*",
        "-end",
        "^end",
        "end AND",
        "%",
        "_",
        "\\",
        "\u{0}",
        "((((",
        "💥",
    ] {
        let found = t.store.find_chats(user, &search(query)).await;
        assert!(found.is_ok(), "search {query:?}: {found:?}");
    }
    assert_eq!(titles(&t, user, &search("end OR zzz")).await, Vec::<String>::new());
    assert_eq!(titles(&t, user, &search("(near) \"end\"")).await, ["t"]);
    // Punctuation alone searches titles only, as text.
    assert_eq!(titles(&t, user, &search("%")).await, Vec::<String>::new());
    assert_eq!(titles(&t, user, &search("   ")).await, ["t"]);
}

async fn paid_turn(t: &TestStore, chat: Uuid, cost: Option<f64>) -> chrono::DateTime<chrono::Utc> {
    let store = &t.store;
    let started = store.begin_turn(chat, "p", "m", PermissionMode::Ask).await.unwrap();
    let result =
        TurnResult { total_cost_usd: cost, ..TurnResult::status(MessageStatus::Completed) };
    store.finish_turn(chat, started.message_id, result).await.unwrap();
    let messages = store.messages(chat).await.unwrap();
    messages.last().unwrap().completed_at.unwrap()
}

async fn spending_adds_up_a_chat_and_a_users_day(t: TestStore) {
    let (user, chat) = t.user_and_chat().await;
    let other = t.chat_of(user).await;
    let (stranger, strangers_chat) = t.user_and_chat().await;
    let store = &t.store;
    let early = paid_turn(&t, chat, Some(0.25)).await;
    // Later turns finish strictly after `since`, whatever the clock's resolution.
    let since = early + chrono::Duration::microseconds(1);
    while chrono::Utc::now() <= since + chrono::Duration::milliseconds(1) {
        tokio::task::yield_now().await;
    }
    paid_turn(&t, chat, Some(0.5)).await;
    paid_turn(&t, chat, None).await;
    paid_turn(&t, other, Some(1.0)).await;
    paid_turn(&t, strangers_chat, Some(8.0)).await;

    let spent = store.spending(user, chat, since).await.unwrap();
    assert_eq!((spent.chat_usd, spent.since_usd), (0.75, 1.5));
    let spent = store.spending(user, other, early).await.unwrap();
    assert_eq!((spent.chat_usd, spent.since_usd), (1.0, 1.75));
    // Another user's chat counts nothing for this user, and nothing is nothing.
    let spent = store.spending(user, strangers_chat, since).await.unwrap();
    assert_eq!((spent.chat_usd, spent.since_usd), (0.0, 1.5));
    let spent = store.spending(stranger, chat, chrono::Utc::now()).await.unwrap();
    assert_eq!((spent.chat_usd, spent.since_usd), (0.0, 0.0));
}
