//! The audit log: events read back newest first, filtered by kind, user and time, paged
//! with `before`, and purged by age.

use agentbox_store::AuditFilter;
use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use super::support::{TestStore, conformance};

conformance!(audit_events_are_filtered_paged_and_purged);

async fn audit_events_are_filtered_paged_and_purged(t: TestStore) {
    let store = &t.store;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let first = store
        .audit("sign_in_failed", None, None, Some("Alice@Example.com"), Some("127.0.0.1"), None)
        .await
        .unwrap();
    assert_eq!(first.email.as_deref(), Some("alice@example.com"));
    let second = store.audit("sign_in", Some(alice), None, None, Some("::1"), None).await.unwrap();
    let detail = json!({"disabled": true, "note": "nul \u{0} ✓"});
    let third = store
        .audit("user_updated", Some(bob), Some(alice), None, None, Some(&detail))
        .await
        .unwrap();

    let all = |filter: AuditFilter| async move { store.audit_events(&filter).await.unwrap() };
    let everything = all(AuditFilter { limit: 10, ..Default::default() }).await;
    assert_eq!(everything, [third.clone(), second.clone(), first.clone()]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(everything[0].detail.as_deref().unwrap())
            .unwrap(),
        detail
    );
    let kind =
        all(AuditFilter { kind: Some("sign_in".into()), limit: 10, ..Default::default() }).await;
    assert_eq!(kind, std::slice::from_ref(&second));
    let of_alice = all(AuditFilter { user_id: Some(alice), limit: 10, ..Default::default() }).await;
    assert_eq!(of_alice, [third.clone(), second.clone()], "as actor and as target");
    let page = all(AuditFilter { limit: 1, ..Default::default() }).await;
    assert_eq!(page, std::slice::from_ref(&third));
    let next =
        all(AuditFilter { before: Some(second.created_at), limit: 10, ..Default::default() }).await;
    assert!(next.iter().all(|e| e.created_at < second.created_at), "{next:?}");
    let since =
        all(AuditFilter { since: Some(second.created_at), limit: 10, ..Default::default() }).await;
    assert!(since.contains(&second) && since.contains(&third) && !since.contains(&first));

    assert_eq!(store.purge_audit(first.created_at - Duration::seconds(1)).await.unwrap(), 0);
    assert_eq!(store.purge_audit(third.created_at + Duration::seconds(1)).await.unwrap(), 3);
    assert!(all(AuditFilter { limit: 10, ..Default::default() }).await.is_empty());
}
