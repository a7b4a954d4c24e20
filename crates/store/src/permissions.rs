//! Permission requests and "always allow" rules.
//!
//! The log is the truth about a request: its `permission_request` event and its
//! `permission_resolved` event. The `permission_requests` table is an index of the same
//! facts, written in the transaction that appends each of the two events, so the open
//! requests of a chat can be listed cheaply and never disagree with the log.

use agentbox_protocol::event::{ChatEvent, EventPayload};
use agentbox_protocol::permission::{
    PendingPermission, PermissionKind, PermissionRule, ResolvedBy, StoredPermissionRule,
};
use sqlx::Row;
use uuid::Uuid;

use crate::events::{NewEvent, append};
use crate::{Result, Store, StoreError, conflict_on_unique, now, parse_uuid};

/// Where a permission request stands, for answering it.
#[derive(Clone, Debug, PartialEq)]
pub struct PermissionRecord {
    pub request_id: String,
    pub message_id: Uuid,
    pub kind: PermissionKind,
    pub tool_name: String,
    /// `pending`, `allowed` or `denied`.
    pub status: String,
    pub resolved_by: Option<ResolvedBy>,
}

impl PermissionRecord {
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }
}

fn kind_of(text: &str) -> Result<PermissionKind> {
    PermissionKind::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown permission kind {text:?}")))
}

impl Store {
    /// Append an event like [`Store::append_event`], keeping the index of permission
    /// requests in step when it is a `permission_request` or `permission_resolved` event.
    /// A resolution of a request that is not open is still logged but changes nothing else.
    pub async fn append_permission_event(
        &self,
        chat_id: Uuid,
        event: NewEvent,
    ) -> Result<ChatEvent> {
        let mut tx = self.write().await?;
        let event = append(&mut tx, chat_id, event).await?;
        match &event.payload {
            EventPayload::PermissionRequest(request) => {
                let input = serde_json::to_string(&request.input)
                    .map_err(|err| StoreError::Corrupt(err.to_string()))?;
                sqlx::query(
                    "INSERT INTO permission_requests (chat_id, request_id, message_id, seq, kind,
                                 tool_name, input, status, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)",
                )
                .bind(chat_id.to_string())
                .bind(&request.request_id)
                .bind(event.message_id.to_string())
                .bind(event.seq)
                .bind(request.kind.as_str())
                .bind(&request.tool_name)
                .bind(input)
                .bind(event.created_at)
                .bind(request.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|err| conflict_on_unique(err, "permission_request_exists"))?;
            }
            EventPayload::PermissionResolved(resolution) => {
                sqlx::query(
                    "UPDATE permission_requests SET status = $3, resolved_by = $4, resolved_at = $5
                     WHERE chat_id = $1 AND request_id = $2 AND status = 'pending'",
                )
                .bind(chat_id.to_string())
                .bind(&resolution.request_id)
                .bind(if resolution.approved { "allowed" } else { "denied" })
                .bind(resolution.resolved_by.map(ResolvedBy::as_str))
                .bind(event.created_at)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        tx.commit().await?;
        Ok(event)
    }

    /// The chat's open permission requests, oldest first.
    pub async fn pending_permissions(&self, chat_id: Uuid) -> Result<Vec<PendingPermission>> {
        let rows = sqlx::query(
            "SELECT request_id, message_id, seq, kind, tool_name, input, created_at, expires_at
             FROM permission_requests WHERE chat_id = $1 AND status = 'pending' ORDER BY seq",
        )
        .bind(chat_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let input: String = row.try_get("input")?;
                Ok(PendingPermission {
                    request_id: row.try_get("request_id")?,
                    message_id: parse_uuid(row.try_get("message_id")?)?,
                    kind: kind_of(row.try_get("kind")?)?,
                    tool_name: row.try_get("tool_name")?,
                    input: serde_json::from_str(&input)
                        .map_err(|err| StoreError::Corrupt(format!("request input: {err}")))?,
                    seq: row.try_get("seq")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// One request of the chat, open or not.
    pub async fn permission_request(
        &self,
        chat_id: Uuid,
        request_id: &str,
    ) -> Result<Option<PermissionRecord>> {
        let row = sqlx::query(
            "SELECT request_id, message_id, kind, tool_name, status, resolved_by
             FROM permission_requests WHERE chat_id = $1 AND request_id = $2",
        )
        .bind(chat_id.to_string())
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let resolved_by: Option<String> = row.try_get("resolved_by")?;
            Ok(PermissionRecord {
                request_id: row.try_get("request_id")?,
                message_id: parse_uuid(row.try_get("message_id")?)?,
                kind: kind_of(row.try_get("kind")?)?,
                tool_name: row.try_get("tool_name")?,
                status: row.try_get("status")?,
                resolved_by: resolved_by.as_deref().and_then(ResolvedBy::parse),
            })
        })
        .transpose()
    }

    /// Every open request of every chat, as (chat, message, request id): what a restart
    /// must close.
    pub async fn all_pending_permissions(&self) -> Result<Vec<(Uuid, Uuid, String)>> {
        let rows = sqlx::query(
            "SELECT chat_id, message_id, request_id FROM permission_requests
             WHERE status = 'pending' ORDER BY chat_id, seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_uuid(row.try_get("chat_id")?)?,
                    parse_uuid(row.try_get("message_id")?)?,
                    row.try_get("request_id")?,
                ))
            })
            .collect()
    }

    /// Store an "always allow" rule; storing one the chat already has returns the existing one.
    pub async fn add_permission_rule(
        &self,
        chat_id: Uuid,
        rule: &PermissionRule,
    ) -> Result<StoredPermissionRule> {
        let stored =
            StoredPermissionRule { id: Uuid::now_v7(), rule: rule.clone(), created_at: now() };
        let inserted = sqlx::query(
            "INSERT INTO permission_rules (id, chat_id, tool_name, rule_content, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(stored.id.to_string())
        .bind(chat_id.to_string())
        .bind(&rule.tool_name)
        .bind(&rule.rule_content)
        .bind(stored.created_at)
        .execute(&self.pool)
        .await;
        match inserted.map_err(|err| conflict_on_unique(err, "rule_exists")) {
            Ok(_) => Ok(stored),
            Err(StoreError::Conflict("rule_exists")) => self
                .permission_rules(chat_id)
                .await?
                .into_iter()
                .find(|existing| existing.rule == *rule)
                .ok_or(StoreError::NotFound),
            Err(other) => Err(other),
        }
    }

    /// The chat's "always allow" rules, oldest first.
    pub async fn permission_rules(&self, chat_id: Uuid) -> Result<Vec<StoredPermissionRule>> {
        let rows = sqlx::query(
            "SELECT id, tool_name, rule_content, created_at FROM permission_rules
             WHERE chat_id = $1 ORDER BY created_at, id",
        )
        .bind(chat_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredPermissionRule {
                    id: parse_uuid(row.try_get("id")?)?,
                    rule: PermissionRule {
                        tool_name: row.try_get("tool_name")?,
                        rule_content: row.try_get("rule_content")?,
                    },
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Remove one rule of the chat; `false` if the chat has no such rule.
    pub async fn delete_permission_rule(&self, chat_id: Uuid, rule_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM permission_rules WHERE chat_id = $1 AND id = $2")
            .bind(chat_id.to_string())
            .bind(rule_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use agentbox_protocol::api::PermissionMode;
    use agentbox_protocol::event::{EventPayload, PermissionRequest, PermissionResolution};
    use agentbox_protocol::permission::{PermissionKind, PermissionRule, ResolvedBy};
    use serde_json::json;

    use crate::NewEvent;
    use crate::test_support::store_with_chat;

    fn request(id: &str) -> EventPayload {
        EventPayload::PermissionRequest(PermissionRequest {
            request_id: id.into(),
            kind: PermissionKind::Tool,
            tool_name: "Bash".into(),
            input: json!({"command": "ls"}),
            tool_use_id: None,
            description: None,
            reason: None,
            plan: None,
            blocked_path: None,
            suggestions: Vec::new(),
            expires_at: None,
        })
    }

    #[tokio::test]
    async fn the_index_of_open_requests_follows_the_log() {
        let (_dir, store, chat) = store_with_chat().await;
        let turn = store.begin_turn(chat, "go", "m", PermissionMode::Ask).await.unwrap();
        let append =
            |payload| store.append_permission_event(chat, NewEvent::new(turn.message_id, payload));
        let asked = append(request("r1")).await.unwrap();
        append(request("r2")).await.unwrap();
        let open = store.pending_permissions(chat).await.unwrap();
        assert_eq!(open.len(), 2);
        assert_eq!((open[0].request_id.as_str(), open[0].seq), ("r1", asked.seq));
        // The same request twice is refused.
        assert!(append(request("r1")).await.is_err());

        let resolved = PermissionResolution::new("r1", true, ResolvedBy::User);
        append(EventPayload::PermissionResolved(resolved)).await.unwrap();
        let record = store.permission_request(chat, "r1").await.unwrap().unwrap();
        assert_eq!(
            (record.status.as_str(), record.resolved_by),
            ("allowed", Some(ResolvedBy::User))
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

        // Rules: stored once, listed, removed.
        let rule = PermissionRule { tool_name: "Bash".into(), rule_content: None };
        let first = store.add_permission_rule(chat, &rule).await.unwrap();
        let second = store.add_permission_rule(chat, &rule).await.unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(store.permission_rules(chat).await.unwrap().len(), 1);
        assert!(store.delete_permission_rule(chat, first.id).await.unwrap());
        assert!(store.permission_rules(chat).await.unwrap().is_empty());
    }
}
