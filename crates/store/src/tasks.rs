//! Scheduled tasks' records and their one row → record mapping (both backends read their
//! rows through [`Fields`]).

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::event::MessageStatus;
use agentbox_protocol::task::{
    MissedRunPolicy, RunStatus, RunTrigger, Schedule, TaskRun, UnseenTaskRun,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::records::{Fields, stored_time};
use crate::{Result, StoreError};

/// A task as stored. The schedule and time zone were checked by whoever wrote it; the
/// store keeps them as given.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prompt: String,
    pub schedule: Schedule,
    pub time_zone: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    pub permission_timeout_secs: Option<u64>,
    /// `None`: a new chat for every run.
    pub target_chat_id: Option<Uuid>,
    pub enabled: bool,
    pub missed_runs: MissedRunPolicy,
    pub next_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A claim of one due time of a task: `claimed` (its turn is about to start) or, for a
/// missed due time the policy skips, `skipped` (ended at once).
#[derive(Clone, Debug, PartialEq)]
pub struct NewTaskRun {
    pub id: Uuid,
    pub task_id: Uuid,
    pub due_at: DateTime<Utc>,
    pub trigger: RunTrigger,
    pub skipped: bool,
    pub claimed_at: DateTime<Utc>,
    /// The node that claimed it.
    pub claimed_by: String,
    pub error: Option<String>,
}

macro_rules! task_columns {
    () => {
        "id, user_id, name, prompt, schedule, time_zone, model, permission_mode,
         permission_timeout_secs, target_chat_id, enabled, missed_runs, next_run_at,
         created_at, updated_at"
    };
}
pub(crate) use task_columns;

pub(crate) fn task_from_row(row: &impl Fields) -> Result<TaskRecord> {
    let schedule = row.text("schedule")?;
    let mode = row.text("permission_mode")?;
    let missed = row.text("missed_runs")?;
    Ok(TaskRecord {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        name: row.text("name")?,
        prompt: row.text("prompt")?,
        schedule: serde_json::from_str(&schedule)
            .map_err(|err| StoreError::Corrupt(format!("task schedule: {err}")))?,
        time_zone: row.text("time_zone")?,
        model: row.text("model")?,
        permission_mode: PermissionMode::parse(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown permission mode {mode:?}")))?,
        permission_timeout_secs: row
            .opt_int("permission_timeout_secs")?
            .map(|secs| u64::try_from(secs).unwrap_or(0)),
        target_chat_id: row.opt_id("target_chat_id")?,
        enabled: row.int("enabled")? != 0,
        missed_runs: MissedRunPolicy::parse(&missed)
            .ok_or_else(|| StoreError::Corrupt(format!("missed-run policy {missed:?}")))?,
        next_run_at: row.opt_time("next_run_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) fn schedule_json(schedule: &Schedule) -> Result<String> {
    crate::records::to_json(schedule)
}

/// A run's columns, its message joined (`FROM task_runs r LEFT JOIN messages m ON m.id =
/// r.message_id`): a started run's outcome, cost and end are its turn's.
macro_rules! task_run_columns {
    () => {
        "r.id, r.task_id, r.due_at, r.trigger, r.status, r.started_at,
         COALESCE(r.ended_at, m.completed_at) AS ended_at, m.total_cost_usd, r.chat_id,
         r.message_id, r.error, m.status AS message_status, r.seen_at"
    };
}
pub(crate) use task_run_columns;

/// The user's ended, unseen runs that have a chat of theirs, in chat `$2` or, when it is
/// NULL, in any (the same SQL on both backends). Ended: failed before its turn, or its turn
/// is over. One definition for the list and for marking them seen.
macro_rules! unseen_runs {
    () => {
        " FROM task_runs r JOIN tasks t ON t.id = r.task_id
              JOIN chats c ON c.id = r.chat_id AND c.user_id = t.user_id
              LEFT JOIN messages m ON m.id = r.message_id
         WHERE t.user_id = $1 AND ($2 IS NULL OR r.chat_id = $2) AND r.seen_at IS NULL
           AND (r.status = 'failed' OR (r.status = 'started' AND m.status <> 'in_progress'))"
    };
}

/// The unseen runs, the latest due time first.
pub(crate) const UNSEEN_TASK_RUNS: &str = concat!(
    "SELECT ",
    task_run_columns!(),
    ", t.name AS task_name",
    unseen_runs!(),
    " ORDER BY r.due_at DESC, r.id DESC LIMIT 1000"
);

/// Mark the unseen runs of one chat seen at `$3`; a run still going stays unseen.
pub(crate) const MARK_TASK_RUNS_SEEN: &str =
    concat!("UPDATE task_runs SET seen_at = $3 WHERE id IN (SELECT r.id", unseen_runs!(), ")");

pub(crate) fn unseen_run_from_row(row: &impl Fields) -> Result<UnseenTaskRun> {
    let run = task_run_from_row(row)?;
    Ok(UnseenTaskRun {
        run_id: run.id,
        task_id: run.task_id,
        task_name: row.text("task_name")?,
        chat_id: run.chat_id.ok_or_else(|| StoreError::Corrupt("an unseen run's chat".into()))?,
        status: run.status,
        ended_at: run.ended_at,
    })
}

pub(crate) fn task_run_from_row(row: &impl Fields) -> Result<TaskRun> {
    let trigger = row.text("trigger")?;
    let stored = row.text("status")?;
    let mut error = row.opt_text("error")?;
    let status = match stored.as_str() {
        "claimed" => RunStatus::Claimed,
        "failed" => RunStatus::Failed,
        "skipped" => RunStatus::Skipped,
        "started" => match row.opt_text("message_status")?.as_deref().map(MessageStatus::parse) {
            Some(Some(MessageStatus::InProgress)) => RunStatus::Running,
            Some(Some(MessageStatus::Completed)) => RunStatus::Completed,
            Some(Some(MessageStatus::Failed)) => RunStatus::Failed,
            Some(Some(MessageStatus::Interrupted)) => RunStatus::Interrupted,
            Some(None) => return Err(StoreError::Corrupt("a run's message status".into())),
            None => {
                error.get_or_insert_with(|| "the run's chat was deleted".into());
                RunStatus::Failed
            }
        },
        other => return Err(StoreError::Corrupt(format!("task run status {other:?}"))),
    };
    Ok(TaskRun {
        id: row.id("id")?,
        task_id: row.id("task_id")?,
        due_at: row.time("due_at")?,
        trigger: RunTrigger::parse(&trigger)
            .ok_or_else(|| StoreError::Corrupt(format!("task run trigger {trigger:?}")))?,
        status,
        started_at: row.opt_time("started_at")?,
        ended_at: row.opt_time("ended_at")?,
        cost_usd: row.opt_real("total_cost_usd")?,
        chat_id: row.opt_id("chat_id")?,
        message_id: row.opt_id("message_id")?,
        error,
        seen_at: row.opt_time("seen_at")?,
    })
}

// The handle's methods for tasks: instants cut to the precision both backends keep, so
// that a due time reads back (and matches its claim) exactly as it was written.
impl crate::Store {
    pub async fn create_task(&self, task: &TaskRecord) -> Result<TaskRecord> {
        let task = stored_task(task);
        self.repo.create_task(&task).await?;
        Ok(task)
    }

    /// The task if it exists and belongs to `user_id`.
    pub async fn task(&self, user_id: Uuid, task_id: Uuid) -> Result<Option<TaskRecord>> {
        self.repo.task(user_id, task_id).await
    }

    /// The task whoever owns it: for the scheduler, never for a request handler.
    pub async fn task_unscoped(&self, task_id: Uuid) -> Result<Option<TaskRecord>> {
        self.repo.task_unscoped(task_id).await
    }

    /// The user's tasks, oldest first.
    pub async fn list_tasks(&self, user_id: Uuid) -> Result<Vec<TaskRecord>> {
        self.repo.list_tasks(user_id).await
    }

    /// Replace the task's fields; the task as stored, `None` if the user has no such task.
    pub async fn update_task(&self, task: &TaskRecord) -> Result<Option<TaskRecord>> {
        let task = stored_task(task);
        Ok(self.repo.update_task(&task).await?.then_some(task))
    }

    pub async fn delete_task(&self, user_id: Uuid, task_id: Uuid) -> Result<bool> {
        self.repo.delete_task(user_id, task_id).await
    }

    /// Enabled tasks due at `now`, the longest due first, at most `limit`.
    pub async fn due_tasks(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<TaskRecord>> {
        self.repo.due_tasks(stored_time(now), limit).await
    }

    /// Move the task's next run from `from` to `to`, if nobody moved it before.
    pub async fn advance_task(
        &self,
        task_id: Uuid,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        self.repo.advance_task(task_id, stored_time(from), to.map(stored_time)).await
    }

    /// Claim a due time; `None` when it was claimed before (by anyone).
    pub async fn claim_task_run(&self, run: &NewTaskRun) -> Result<Option<TaskRun>> {
        let run = NewTaskRun {
            due_at: stored_time(run.due_at),
            claimed_at: stored_time(run.claimed_at),
            ..run.clone()
        };
        self.repo.claim_task_run(&run).await
    }

    pub async fn task_run(&self, run_id: Uuid) -> Result<Option<TaskRun>> {
        self.repo.task_run(run_id).await
    }

    /// A claimed run's turn started; `false` if it was not `claimed` any more.
    pub async fn start_task_run(
        &self,
        run_id: Uuid,
        chat_id: Uuid,
        message_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.repo.start_task_run(run_id, chat_id, message_id, stored_time(at)).await
    }

    /// A claimed run could not start; `false` if it was not `claimed` any more.
    pub async fn fail_task_run(
        &self,
        run_id: Uuid,
        chat_id: Option<Uuid>,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.repo.fail_task_run(run_id, chat_id, error, stored_time(at)).await
    }

    /// Runs claimed before `claimed_before` whose turn never started.
    pub async fn stale_task_runs(&self, claimed_before: DateTime<Utc>) -> Result<Vec<TaskRun>> {
        self.repo.stale_task_runs(stored_time(claimed_before)).await
    }

    /// Started runs whose turn is still in progress.
    pub async fn running_task_runs(&self) -> Result<Vec<TaskRun>> {
        self.repo.running_task_runs().await
    }

    /// The task's runs, the latest due time first.
    pub async fn task_runs(&self, task_id: Uuid, limit: i64) -> Result<Vec<TaskRun>> {
        self.repo.task_runs(task_id, limit).await
    }

    /// Keep the task's latest `keep` runs.
    pub async fn prune_task_runs(&self, task_id: Uuid, keep: i64) -> Result<u64> {
        self.repo.prune_task_runs(task_id, keep).await
    }

    /// The user's ended runs they have not seen, in `chat_id` or in any chat of theirs, the
    /// latest first.
    pub async fn unseen_task_runs(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
    ) -> Result<Vec<UnseenTaskRun>> {
        self.repo.unseen_task_runs(user_id, chat_id).await
    }

    /// The user opened the chat: its ended runs are seen. How many runs that marked.
    pub async fn mark_task_runs_seen(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        self.repo.mark_task_runs_seen(user_id, chat_id, stored_time(at)).await
    }
}

fn stored_task(task: &TaskRecord) -> TaskRecord {
    TaskRecord {
        next_run_at: task.next_run_at.map(stored_time),
        created_at: stored_time(task.created_at),
        updated_at: stored_time(task.updated_at),
        schedule: match &task.schedule {
            Schedule::Once { at } => Schedule::Once { at: stored_time(*at) },
            other => other.clone(),
        },
        ..task.clone()
    }
}
