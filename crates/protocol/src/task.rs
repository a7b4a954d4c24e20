//! Scheduled tasks: a prompt that runs on a schedule, its runs, and the API bodies
//! (`/api/v1/tasks`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::PermissionMode;

/// When a task runs. Times of day are `HH:MM` on the wall clock of the task's time zone;
/// `weekday` is `0` (Sunday) to `6` (Saturday), as in cron; a `monthly` day a month does not
/// have (31 in April) is skipped that month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Once, at this instant.
    Once {
        at: DateTime<Utc>,
    },
    /// Every hour at this minute.
    Hourly {
        minute: u8,
    },
    Daily {
        time: String,
    },
    /// Monday to Friday.
    Weekdays {
        time: String,
    },
    Weekly {
        weekday: u8,
        time: String,
    },
    Monthly {
        day: u8,
        time: String,
    },
    /// A cron expression: five fields (minute hour day-of-month month day-of-week) or six
    /// with seconds first.
    Cron {
        expression: String,
    },
}

/// Where a task's runs go.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskTarget {
    /// A new chat for every run, titled with the task's name.
    #[default]
    NewChat,
    /// Always this chat of the task's owner. A run finds the chat busy with a turn: it fails.
    Chat { chat_id: Uuid },
}

/// What happens to due times that passed while no scheduler ran (the server was down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MissedRunPolicy {
    /// They are recorded as one `skipped` run; the task waits for its next due time.
    #[default]
    Skip,
    /// The latest of them runs once, at once.
    RunOnce,
}

impl MissedRunPolicy {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::RunOnce => "run_once",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Skip, Self::RunOnce].into_iter().find(|p| p.as_str() == text)
    }
}

/// A scheduled task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: Uuid,
    pub name: String,
    pub prompt: String,
    pub schedule: Schedule,
    /// An IANA time zone name (`Europe/Berlin`); the schedule's wall clock.
    pub time_zone: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    /// How long a request for a person waits in a run before it is denied; `null` is the
    /// server's `--task-permission-timeout-secs`.
    pub permission_timeout_secs: Option<u64>,
    pub target: TaskTarget,
    pub enabled: bool,
    pub missed_runs: MissedRunPolicy,
    /// The next due time the scheduler will run; `null` when disabled or when a `once`
    /// task has had its run.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The next five due times of the schedule from now (the server's computation, which
    /// the scheduler follows), also for a disabled task.
    pub next_runs: Vec<DateTime<Utc>>,
    /// The run with the latest due time, if any: what the web UI notifies about when it ends.
    pub last_run: Option<TaskRun>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a run exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// Its due time came.
    Scheduled,
    /// A due time passed while no scheduler ran, and the task's policy said what to do.
    Missed,
    /// `POST /api/v1/tasks/{task_id}/run`.
    Manual,
}

impl RunTrigger {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Missed => "missed",
            Self::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Scheduled, Self::Missed, Self::Manual].into_iter().find(|t| t.as_str() == text)
    }
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Claimed by a scheduler, its turn not started yet.
    Claimed,
    /// Its turn is running.
    Running,
    Completed,
    /// Its turn failed, or it could not start (see `error`).
    Failed,
    Interrupted,
    /// A missed due time the policy skipped.
    Skipped,
}

/// One run of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskRun {
    pub id: Uuid,
    pub task_id: Uuid,
    /// The due time it ran for (for a manual run, when it was asked for).
    pub due_at: DateTime<Utc>,
    pub trigger: RunTrigger,
    pub status: RunStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// What its turn cost, as the CLI reported it.
    pub cost_usd: Option<f64>,
    pub chat_id: Option<Uuid>,
    /// The turn's assistant message.
    pub message_id: Option<Uuid>,
    /// Why it failed or was skipped, when it did not get to run a turn.
    pub error: Option<String>,
    /// When the task's owner opened the run's chat after the run ended
    /// (`POST /api/v1/chats/{chat_id}/seen`); until then an ended run with a chat counts in
    /// the web UI's attention badge.
    pub seen_at: Option<DateTime<Utc>>,
}

/// An ended run of a task that its owner has not seen yet, as a chat shows it
/// (`Chat.unseen_task_run`): the latest such run of the chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnseenTaskRun {
    pub run_id: Uuid,
    pub task_id: Uuid,
    pub task_name: String,
    pub chat_id: Uuid,
    /// `completed`, `failed` or `interrupted`.
    pub status: RunStatus,
    pub ended_at: Option<DateTime<Utc>>,
}

/// The body of `POST /api/v1/tasks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    pub name: String,
    pub prompt: String,
    pub schedule: Schedule,
    /// IANA name [default: `UTC`].
    #[serde(default)]
    pub time_zone: Option<String>,
    /// [default: the server's default model]
    #[serde(default)]
    pub model: Option<String>,
    /// [default: `auto`]
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
    #[serde(default)]
    pub permission_timeout_secs: Option<u64>,
    /// [default: a new chat each run]
    #[serde(default)]
    pub target: Option<TaskTarget>,
    /// [default: `true`]
    #[serde(default)]
    pub enabled: Option<bool>,
    /// [default: `skip`]
    #[serde(default)]
    pub missed_runs: Option<MissedRunPolicy>,
}

/// The body of `PATCH /api/v1/tasks/{task_id}`: absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
    /// `null` goes back to the server's default.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>, nullable))]
    pub permission_timeout_secs: Option<Option<u64>>,
    #[serde(default)]
    pub target: Option<TaskTarget>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub missed_runs: Option<MissedRunPolicy>,
}

/// The body of `POST /api/v1/tasks/preview`: a schedule to show the due times of.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskPreviewRequest {
    pub schedule: Schedule,
    /// [default: `UTC`]
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// The next due times of a schedule, from now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskPreview {
    pub next_runs: Vec<DateTime<Utc>>,
}

/// A field that is present (`null` included) is `Some`; an absent one is `None` through
/// `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    <Option<T> as Deserialize>::deserialize(deserializer).map(Some)
}
