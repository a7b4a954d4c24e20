//! The control table on PostgreSQL, with `LISTEN/NOTIFY` to wake the node that runs the
//! turn. The row is the control; the notification (sent when the inserting transaction
//! commits, and lost if nobody listens at that moment) only saves the node a poll.

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use super::Postgres;
use crate::records::{StoredControl, control_from_row, now};
use crate::repository::{ControlRepository, Wake};
use crate::{Result, StoreError};

/// The channel every node listens on; the payload is the node id the controls are for.
const CHANNEL: &str = "agentbox_controls";

#[async_trait]
impl ControlRepository for Postgres {
    async fn push_control(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        command: &str,
    ) -> Result<Option<String>> {
        let mut tx = self.begin().await?;
        // The message's row lock keeps the turn from being finished or adopted between
        // reading its node and queueing the control for that node.
        let node: Option<String> = sqlx::query_scalar(
            "SELECT node_id FROM messages
             WHERE id = $1 AND chat_id = $2 AND status = 'in_progress' FOR UPDATE",
        )
        .bind(message_id)
        .bind(chat_id)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        let Some(node) = node else { return Ok(None) };
        sqlx::query(
            "INSERT INTO turn_controls (id, node_id, chat_id, message_id, command, created_at)
             VALUES ($1, $2, $3, $4, $5::json, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(&node)
        .bind(chat_id)
        .bind(message_id)
        .bind(command)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(&node).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(node))
    }

    async fn take_controls(&self, node_id: &str) -> Result<Vec<StoredControl>> {
        let rows = sqlx::query(
            "DELETE FROM turn_controls WHERE node_id = $1
             RETURNING id, chat_id, message_id, command",
        )
        .bind(node_id)
        .fetch_all(&self.pool)
        .await?;
        let mut controls = rows.iter().map(control_from_row).collect::<Result<Vec<_>>>()?;
        // Ids are UUIDv7: their order is the order they were queued in.
        controls.sort_by_key(|control| control.id);
        Ok(controls)
    }

    async fn listen_controls(&self, node_id: &str) -> Result<Option<Box<dyn Wake>>> {
        Ok(Some(Box::new(Listener::start(&self.pool, CHANNEL, Some(node_id)).await?)))
    }
}

/// A dedicated connection listening on one channel, woken by the notifications whose
/// payload is `payload` (any, when `None`).
pub(super) struct Listener {
    listener: PgListener,
    payload: Option<String>,
}

impl Listener {
    pub(super) async fn start(
        pool: &sqlx::PgPool,
        channel: &str,
        payload: Option<&str>,
    ) -> Result<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok(Self { listener, payload: payload.map(str::to_owned) })
    }
}

#[async_trait]
impl Wake for Listener {
    async fn notified(&mut self) -> Result<()> {
        loop {
            // `try_recv` returns `None` when the connection was lost (notifications sent
            // meanwhile are gone): the caller polls the table and listens again.
            let notification = self.listener.try_recv().await?.ok_or_else(|| {
                StoreError::Database("the notification connection was lost".into())
            })?;
            if self.payload.as_deref().is_none_or(|wanted| notification.payload() == wanted) {
                return Ok(());
            }
        }
    }
}
