//! Scheduled tasks and their runs on PostgreSQL. Each method is one statement, atomic alone;
//! the claim of a due time is the insert that the unique key (task, due time) lets through
//! once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Postgres;
use crate::Result;
use crate::repository::TaskRepository;
use crate::tasks::{
    MARK_TASK_RUNS_SEEN, NewTaskRun, TaskRecord, UNSEEN_TASK_RUNS, schedule_json, task_columns,
    task_from_row, task_run_columns, task_run_from_row, unseen_run_from_row,
};
use agentbox_protocol::task::{TaskRun, UnseenTaskRun};

fn secs(value: Option<u64>) -> Option<i64> {
    value.map(|secs| i64::try_from(secs).unwrap_or(i64::MAX))
}

#[async_trait]
impl TaskRepository for Postgres {
    async fn create_task(&self, task: &TaskRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tasks (id, user_id, name, prompt, schedule, time_zone, model,
                 permission_mode, permission_timeout_secs, target_chat_id, enabled, missed_runs,
                 next_run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(task.id)
        .bind(task.user_id)
        .bind(&task.name)
        .bind(&task.prompt)
        .bind(schedule_json(&task.schedule)?)
        .bind(&task.time_zone)
        .bind(&task.model)
        .bind(task.permission_mode.as_str())
        .bind(secs(task.permission_timeout_secs))
        .bind(task.target_chat_id)
        .bind(i64::from(task.enabled))
        .bind(task.missed_runs.as_str())
        .bind(task.next_run_at)
        .bind(task.created_at)
        .bind(task.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn task(&self, user_id: Uuid, task_id: Uuid) -> Result<Option<TaskRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE id = $1 AND user_id = $2"
        ))
        .bind(task_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn task_unscoped(&self, task_id: Uuid) -> Result<Option<TaskRecord>> {
        let row = sqlx::query(concat!("SELECT ", task_columns!(), " FROM tasks WHERE id = $1"))
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list_tasks(&self, user_id: Uuid) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn update_task(&self, task: &TaskRecord) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET name = $3, prompt = $4, schedule = $5, time_zone = $6, model = $7,
                 permission_mode = $8, permission_timeout_secs = $9, target_chat_id = $10,
                 enabled = $11, missed_runs = $12, next_run_at = $13, updated_at = $14
             WHERE id = $1 AND user_id = $2",
        )
        .bind(task.id)
        .bind(task.user_id)
        .bind(&task.name)
        .bind(&task.prompt)
        .bind(schedule_json(&task.schedule)?)
        .bind(&task.time_zone)
        .bind(&task.model)
        .bind(task.permission_mode.as_str())
        .bind(secs(task.permission_timeout_secs))
        .bind(task.target_chat_id)
        .bind(i64::from(task.enabled))
        .bind(task.missed_runs.as_str())
        .bind(task.next_run_at)
        .bind(task.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_task(&self, user_id: Uuid, task_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tasks WHERE id = $1 AND user_id = $2")
            .bind(task_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn due_tasks(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE enabled = 1 AND next_run_at IS NOT NULL AND next_run_at <= $1
             ORDER BY next_run_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn advance_task(
        &self,
        task_id: Uuid,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE tasks SET next_run_at = $3 WHERE id = $1 AND next_run_at = $2")
                .bind(task_id)
                .bind(from)
                .bind(to)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_task_run(&self, run: &NewTaskRun) -> Result<Option<TaskRun>> {
        let done = sqlx::query(
            "INSERT INTO task_runs (id, task_id, due_at, trigger, status, claimed_at, claimed_by,
                 ended_at, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (task_id, due_at) DO NOTHING",
        )
        .bind(run.id)
        .bind(run.task_id)
        .bind(run.due_at)
        .bind(run.trigger.as_str())
        .bind(if run.skipped { "skipped" } else { "claimed" })
        .bind(run.claimed_at)
        .bind(&run.claimed_by)
        .bind(run.skipped.then_some(run.claimed_at))
        .bind(&run.error)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.task_run(run.id).await
    }

    async fn task_run(&self, run_id: Uuid) -> Result<Option<TaskRun>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            task_run_columns!(),
            " FROM task_runs r LEFT JOIN messages m ON m.id = r.message_id WHERE r.id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(task_run_from_row).transpose()
    }

    async fn start_task_run(
        &self,
        run_id: Uuid,
        chat_id: Uuid,
        message_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE task_runs SET status = 'started', chat_id = $2, message_id = $3, started_at = $4
             WHERE id = $1 AND status = 'claimed'",
        )
        .bind(run_id)
        .bind(chat_id)
        .bind(message_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail_task_run(
        &self,
        run_id: Uuid,
        chat_id: Option<Uuid>,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE task_runs SET status = 'failed', chat_id = $2, error = $3, ended_at = $4
             WHERE id = $1 AND status = 'claimed'",
        )
        .bind(run_id)
        .bind(chat_id)
        .bind(error)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn stale_task_runs(&self, claimed_before: DateTime<Utc>) -> Result<Vec<TaskRun>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            task_run_columns!(),
            " FROM task_runs r LEFT JOIN messages m ON m.id = r.message_id
             WHERE r.status = 'claimed' AND r.claimed_at < $1 ORDER BY r.claimed_at"
        ))
        .bind(claimed_before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_run_from_row).collect()
    }

    async fn running_task_runs(&self) -> Result<Vec<TaskRun>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            task_run_columns!(),
            " FROM task_runs r JOIN messages m ON m.id = r.message_id
             WHERE r.status = 'started' AND m.status = 'in_progress'"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_run_from_row).collect()
    }

    async fn task_runs(&self, task_id: Uuid, limit: i64) -> Result<Vec<TaskRun>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            task_run_columns!(),
            " FROM task_runs r LEFT JOIN messages m ON m.id = r.message_id
             WHERE r.task_id = $1 ORDER BY r.due_at DESC, r.id DESC LIMIT $2"
        ))
        .bind(task_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_run_from_row).collect()
    }

    async fn prune_task_runs(&self, task_id: Uuid, keep: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM task_runs WHERE task_id = $1 AND status <> 'claimed' AND id NOT IN
                 (SELECT id FROM task_runs WHERE task_id = $1 ORDER BY due_at DESC, id DESC LIMIT $2)",
        )
        .bind(task_id)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn unseen_task_runs(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
    ) -> Result<Vec<UnseenTaskRun>> {
        let rows =
            sqlx::query(UNSEEN_TASK_RUNS).bind(user_id).bind(chat_id).fetch_all(&self.pool).await?;
        rows.iter().map(unseen_run_from_row).collect()
    }

    async fn mark_task_runs_seen(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(MARK_TASK_RUNS_SEEN)
            .bind(user_id)
            .bind(chat_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
