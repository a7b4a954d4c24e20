//! The index of permission requests agrees with the log; rules are stored once.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{EventPayload, PermissionRequest, PermissionResolution};
use agentbox_protocol::permission::{PermissionKind, PermissionRule, ResolvedBy};
use agentbox_store::{NewEvent, StoreError};
use serde_json::json;

use super::support::{TestStore, conformance};

conformance!(the_index_of_open_requests_follows_the_log);

fn request(id: &str) -> EventPayload {
    EventPayload::PermissionRequest(PermissionRequest {
        request_id: id.into(),
        kind: PermissionKind::Tool,
        tool_name: "Bash".into(),
        input: json!({"command": "ls", "nul": "\u{0}", "n": 1.5}),
        tool_use_id: None,
        description: None,
        reason: None,
        plan: None,
        blocked_path: None,
        suggestions: Vec::new(),
        // Nanoseconds: the store keeps microseconds, in the log and in the index alike.
        expires_at: Some(chrono::Utc::now() + chrono::Duration::nanoseconds(600_000_000_123)),
    })
}

async fn the_index_of_open_requests_follows_the_log(t: TestStore) {
    let (_, chat) = t.user_and_chat().await;
    let store = &t.store;
    let turn = store.begin_turn(chat, "go", "m", PermissionMode::Ask).await.unwrap();
    let append =
        |payload| store.append_permission_event(chat, NewEvent::new(turn.message_id, payload));
    let asked = append(request("r1")).await.unwrap();
    append(request("r2")).await.unwrap();
    let open = store.pending_permissions(chat).await.unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!((open[0].request_id.as_str(), open[0].seq), ("r1", asked.seq));
    // The index holds what the log holds.
    let EventPayload::PermissionRequest(logged) = &asked.payload else { unreachable!() };
    assert_eq!(open[0].input, logged.input);
    assert_eq!(open[0].expires_at, logged.expires_at);
    assert_eq!(open[0].created_at, asked.created_at);
    let from_log = store.events_after(chat, asked.seq - 1, 1).await.unwrap();
    assert_eq!(from_log, std::slice::from_ref(&asked));
    // The same request twice is refused, and the log does not get it either.
    let twice = append(request("r1")).await;
    assert!(matches!(twice, Err(StoreError::Conflict("permission_request_exists"))), "{twice:?}");
    let last_seq = store.chat_unscoped(chat).await.unwrap().unwrap().last_seq;
    assert_eq!(store.events_after(chat, 0, 100).await.unwrap().len() as i64, last_seq);

    let resolved = PermissionResolution::new("r1", true, ResolvedBy::User);
    append(EventPayload::PermissionResolved(resolved)).await.unwrap();
    let record = store.permission_request(chat, "r1").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.resolved_by, record.is_pending()),
        ("allowed", Some(ResolvedBy::User), false)
    );
    // A second resolution is logged but changes nothing.
    let again = PermissionResolution::new("r1", false, ResolvedBy::Timeout);
    append(EventPayload::PermissionResolved(again)).await.unwrap();
    let record = store.permission_request(chat, "r1").await.unwrap().unwrap();
    assert_eq!(record.status, "allowed");
    assert_eq!(store.pending_permissions(chat).await.unwrap().len(), 1);
    assert_eq!(
        store.all_pending_permissions().await.unwrap(),
        [(chat, turn.message_id, "r2".to_owned())]
    );
    assert!(store.permission_request(uuid::Uuid::now_v7(), "r2").await.unwrap().is_none());
    let denied = PermissionResolution::new("r2", false, ResolvedBy::ServerRestarted);
    append(EventPayload::PermissionResolved(denied)).await.unwrap();
    assert!(store.all_pending_permissions().await.unwrap().is_empty());
    assert_eq!(store.permission_request(chat, "r2").await.unwrap().unwrap().status, "denied");

    // Rules: stored once, listed, removed.
    let rule = PermissionRule { tool_name: "Bash".into(), rule_content: None };
    let first = store.add_permission_rule(chat, &rule).await.unwrap();
    let second = store.add_permission_rule(chat, &rule).await.unwrap();
    assert_eq!(first, second);
    let narrower = PermissionRule { tool_name: "Bash".into(), rule_content: Some("ls:*".into()) };
    let third = store.add_permission_rule(chat, &narrower).await.unwrap();
    assert_eq!(store.permission_rules(chat).await.unwrap(), [first.clone(), third]);
    assert!(store.delete_permission_rule(chat, first.id).await.unwrap());
    assert!(!store.delete_permission_rule(chat, first.id).await.unwrap());
    assert_eq!(store.permission_rules(chat).await.unwrap().len(), 1);
}
