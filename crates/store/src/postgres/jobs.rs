//! The durable turn queue on PostgreSQL: a claim takes the oldest free job with
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers each get a different job without
//! waiting for one another; a lease with an expiry (extended by the holder's heartbeat)
//! bounds how long a dead worker keeps a job from the others.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::{ChatEvent, MessageStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::controls::Listener;
use super::events::append;
use super::{Postgres, lock_chat};
use crate::Result;
use crate::records::{
    TurnJob, TurnQueueSummary, TurnResult, now, stored_time, turn_job_columns, turn_job_from_row,
    turn_queue_summary_from_row,
};
use crate::repository::{TurnJobRepository, Wake};

/// The channel a queued job is announced on.
const JOBS_CHANNEL: &str = "agentbox_jobs";

#[async_trait]
impl TurnJobRepository for Postgres {
    async fn push_turn_job(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        prompt: &str,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO turn_jobs (message_id, chat_id, prompt, model, permission_mode,
                                    created_at, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(message_id)
        .bind(chat_id)
        .bind(prompt)
        .bind(model)
        .bind(permission_mode.as_str())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        // Delivered at commit, to the workers listening; the others find the job by polling.
        sqlx::query("SELECT pg_notify($1, '')").bind(JOBS_CHANNEL).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_turn_job(
        &self,
        node_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        nodes_expired_before: DateTime<Utc>,
    ) -> Result<Option<TurnJob>> {
        let mut tx = self.begin().await?;
        // Jobs whose turn started or ended are done: a second delivery does nothing. Only
        // rows nobody holds are removed, so this never waits either.
        sqlx::query(
            "DELETE FROM turn_jobs WHERE message_id IN (
                 SELECT j.message_id FROM turn_jobs j JOIN messages m ON m.id = j.message_id
                 WHERE m.status <> 'in_progress' OR m.node_id IS NOT NULL
                 FOR UPDATE OF j SKIP LOCKED)",
        )
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(concat!(
            "UPDATE turn_jobs SET claimed_by = $1, lease_expires_at = $3, attempts = attempts + 1
             WHERE message_id = (
                 SELECT j.message_id FROM turn_jobs j
                 JOIN chats c ON c.id = j.chat_id
                 LEFT JOIN nodes n ON n.id = c.sandbox_node_id
                 WHERE (j.lease_expires_at IS NULL OR j.lease_expires_at < $2)
                   -- The chat's sandbox is on its worker's disk: while that worker beats,
                   -- the chat's turns are its alone.
                   AND (c.sandbox_node_id IS NULL OR c.sandbox_node_id = $1 OR n.id IS NULL
                        OR n.heartbeat_at < $4)
                 ORDER BY j.created_at LIMIT 1
                 -- Only the job is locked: the chat and the node rows are only read.
                 FOR UPDATE OF j SKIP LOCKED)
             RETURNING ",
            turn_job_columns!()
        ))
        .bind(node_id)
        .bind(stored_time(now))
        .bind(stored_time(lease_until))
        .bind(stored_time(nodes_expired_before))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(turn_job_from_row).transpose()
    }

    async fn extend_turn_job_leases(&self, node_id: &str, until: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("UPDATE turn_jobs SET lease_expires_at = $2 WHERE claimed_by = $1")
            .bind(node_id)
            .bind(stored_time(until))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn start_turn_job(
        &self,
        message_id: Uuid,
        node_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let held = sqlx::query(
            "DELETE FROM turn_jobs WHERE message_id = $1 AND claimed_by = $2
                 AND lease_expires_at >= $3",
        )
        .bind(message_id)
        .bind(node_id)
        .bind(stored_time(now))
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() == 0 {
            return Ok(false);
        }
        let started = sqlx::query(
            "UPDATE messages SET node_id = $2
             WHERE id = $1 AND status = 'in_progress' AND node_id IS NULL",
        )
        .bind(message_id)
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(started.rows_affected() == 1)
    }

    async fn turn_jobs(&self) -> Result<Vec<TurnJob>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            turn_job_columns!(),
            " FROM turn_jobs ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(turn_job_from_row).collect()
    }

    async fn turn_queue_summary(&self) -> Result<TurnQueueSummary> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS jobs, COUNT(claimed_by) AS claimed, MIN(created_at) AS oldest
             FROM turn_jobs",
        )
        .fetch_one(&self.pool)
        .await?;
        turn_queue_summary_from_row(&row)
    }

    async fn listen_jobs(&self) -> Result<Option<Box<dyn Wake>>> {
        Ok(Some(Box::new(Listener::start(&self.pool, JOBS_CHANNEL, None).await?)))
    }

    async fn cancel_unstarted_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
    ) -> Result<Option<ChatEvent>> {
        let mut tx = self.begin().await?;
        // The chat's row first, as every writer of a chat's state takes it (see mod.rs).
        if !lock_chat(&mut tx, chat_id).await? {
            return Ok(None);
        }
        let ended = sqlx::query(
            "UPDATE messages SET status = 'interrupted', completed_at = $3
             WHERE id = $1 AND chat_id = $2 AND status = 'in_progress' AND node_id IS NULL",
        )
        .bind(message_id)
        .bind(chat_id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if ended.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM turn_jobs WHERE message_id = $1")
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        let result = TurnResult::status(MessageStatus::Interrupted);
        let event = append(&mut tx, chat_id, result.completed_event(message_id)).await?;
        tx.commit().await?;
        Ok(Some(event))
    }
}
