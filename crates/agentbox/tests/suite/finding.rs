//! Finding a chat through the API: a title from the first turn that never replaces the
//! user's, pins and the archive, previews, and search by the words of a reply.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Db, TestServer};

#[tokio::test]
async fn chats_are_named_pinned_archived_and_found_by_their_words() {
    chats_are_named_pinned_archived_and_found_on(Db::Sqlite).await;
}

#[tokio::test]
async fn chats_are_named_pinned_archived_and_found_by_their_words_on_postgres() {
    chats_are_named_pinned_archived_and_found_on(Db::Postgres).await;
}

fn titles(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|chat| chat["title"].as_str().unwrap()).collect()
}

async fn chats_are_named_pinned_archived_and_found_on(db: Db) {
    let server = TestServer::start_on(db, "chats_are_named_").await;
    let api = server.user("finding@example.com").await;

    // The first turn names the chat from its prompt.
    let chat = api.new_chat().await;
    let (_, body) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(body["title"], "New chat");
    let message =
        api.send(&chat, "why is the deploy slow? [[text:Because of the pelican cache.]]").await;
    api.turn_events(&chat, &message).await;
    let (_, body) = api.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(body["title"], "Why is the deploy slow? [[text:Because of the pelican…");
    assert_eq!((&body["pinned"], &body["archived"]), (&json!(false), &json!(false)));

    // A chat the user renamed before its first turn keeps the user's title.
    let named = api.new_chat().await;
    let path = format!("/api/v1/chats/{named}");
    let (status, _) = api.call(Method::PATCH, &path, Some(json!({"title": "Mine"}))).await;
    assert_eq!(status, StatusCode::OK);
    let message = api.send(&named, "another question [[text:walrus]]").await;
    api.turn_events(&named, &message).await;
    let (_, body) = api.get(&path).await;
    assert_eq!(body["title"], "Mine");

    // The list: newest first, with a one-line preview of the latest text.
    let (status, list) = api.get("/api/v1/chats").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["title"], "Mine");
    assert_eq!(list[0]["preview"], "walrus");
    assert_eq!(list[1]["preview"], "Because of the pelican cache.");

    // Search by a word of a reply, and by the title.
    let (_, found) = api.get("/api/v1/chats?q=pelican").await;
    assert_eq!(titles(&found), ["Why is the deploy slow? [[text:Because of the pelican…"]);
    let (_, found) = api.get("/api/v1/chats?q=MIN").await;
    assert_eq!(titles(&found), ["Mine"]);
    let (_, found) = api.get("/api/v1/chats?q=nothing%20here").await;
    assert_eq!(titles(&found), Vec::<&str>::new());

    // Pinned and archived, as PATCH fields and list filters; a search finds archived chats.
    let (status, body) =
        api.call(Method::PATCH, &path, Some(json!({"pinned": true, "archived": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["pinned"], &body["archived"]), (&json!(true), &json!(true)));
    let (_, list) = api.get("/api/v1/chats").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "an archived chat is left out: {list}");
    let (_, list) = api.get("/api/v1/chats?archived=true").await;
    assert_eq!(titles(&list), ["Mine"]);
    let (_, list) = api.get("/api/v1/chats?pinned=true&archived=true").await;
    assert_eq!(titles(&list), ["Mine"]);
    let (_, found) = api.get("/api/v1/chats?q=walrus").await;
    assert_eq!(titles(&found), ["Mine"]);
    let (_, found) = api.get("/api/v1/chats?q=walrus&archived=false").await;
    assert_eq!(titles(&found), Vec::<&str>::new());

    // Another user finds nothing of it.
    let stranger = server.user("stranger@example.com").await;
    let (_, found) = stranger.get("/api/v1/chats?q=walrus").await;
    assert_eq!(titles(&found), Vec::<&str>::new());

    // Bad input: a clear 4xx, and nothing changes.
    for (query, status, code) in [
        ("?archived=maybe", StatusCode::BAD_REQUEST, "invalid_query"),
        ("?sort=title", StatusCode::BAD_REQUEST, "invalid_query"),
        (&*format!("?q={}", "a".repeat(201)), StatusCode::UNPROCESSABLE_ENTITY, "search_too_long"),
    ] {
        let (actual, body) = api.get(&format!("/api/v1/chats{query}")).await;
        assert_eq!((actual, body["error"]["code"].as_str()), (status, Some(code)), "{query}");
    }
    let (status, body) = api.call(Method::PATCH, &path, Some(json!({"pinned": "yes"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, body) = api.get(&path).await;
    assert_eq!(body["pinned"], true);
}
