//! The scheduler: claims the due times of tasks and starts their turns, exactly once per
//! due time, on any number of nodes.
//!
//! Each [`Scheduler::tick`] reads "now" from its [`WallClock`] and
//! 1. fails the runs claimed more than `claim_timeout` ago whose turn never started (a
//!    crash between the claim and the turn's start): such a run is *not* started late,
//!    because its turn may have started just before the crash without the run knowing, and
//!    a second turn would break "once"; the history shows it failed, saying why;
//! 2. for each enabled task whose next run is due, claims the due time (the insert of its
//!    `task_runs` row, which the unique key (task, due time) lets through once, whichever
//!    scheduler tries) and, if this scheduler won, starts the turn; a due time older than
//!    `late_after` was missed (no scheduler ran then) and follows the task's policy: `skip`
//!    records one `skipped` run, `run_once` runs the latest missed due time once; then
//!    moves the task's next run past now (compare-and-set, so a scheduler that lost the
//!    race changes nothing);
//! 3. denies the requests for a person that a running task's turn has waited on for longer
//!    than the task's permission timeout (a task runs unattended). While it waits the chat
//!    counts as waiting, which the web UI's attention count and notifications show.

use std::sync::Arc;
use std::time::Duration;

use agentbox_protocol::permission::PermissionAnswerRequest;
use agentbox_protocol::task::{RunTrigger, Task, TaskRun};
use agentbox_store::{ChatRecord, NewChat, NewTaskRun, Store, StoreError, TaskRecord};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::calendar::Calendar;
use super::clock::WallClock;
use crate::error::RunError;
use crate::request::TurnRequest;
use crate::runner::TurnRunner;

/// How many next due times a task's JSON shows.
pub const NEXT_RUNS_SHOWN: usize = 5;

/// The scheduler's settings (`agentbox serve` flags in brackets).
#[derive(Clone, Debug)]
pub struct TaskSettings {
    /// How long a request for a person in a task's turn waits before it is denied, unless
    /// the task says [`--task-permission-timeout-secs`, default 300].
    pub permission_timeout: Duration,
    /// Runs kept per task; older ones are deleted [`--task-history`, default 50].
    pub keep_runs: usize,
    /// A claimed run whose turn has not started after this is failed (a crash in between).
    pub claim_timeout: Duration,
    /// A due time older than this when a scheduler first sees it was missed.
    pub late_after: Duration,
    /// How often the scheduler looks (a real clock only).
    pub interval: Duration,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            permission_timeout: Duration::from_secs(300),
            keep_runs: 50,
            claim_timeout: Duration::from_secs(300),
            late_after: Duration::from_secs(120),
            interval: Duration::from_secs(5),
        }
    }
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tick {
    /// Runs this scheduler claimed and started (or tried to: see each run's status).
    pub started: Vec<TaskRun>,
    /// Missed due times recorded as skipped.
    pub skipped: Vec<TaskRun>,
    /// Stale claims failed.
    pub recovered: usize,
    /// Requests for a person denied because nobody answered in time.
    pub denied: usize,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleRunError {
    /// A run for this instant exists already (two "run now" at the same microsecond).
    #[error("a run of this task for this instant exists already")]
    Duplicate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
pub struct Scheduler {
    store: Store,
    runner: Arc<TurnRunner>,
    clock: Arc<dyn WallClock>,
    settings: TaskSettings,
}

impl Scheduler {
    pub fn new(
        store: Store,
        runner: Arc<TurnRunner>,
        clock: Arc<dyn WallClock>,
        settings: TaskSettings,
    ) -> Arc<Self> {
        Arc::new(Self { store, runner, clock, settings })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn settings(&self) -> &TaskSettings {
        &self.settings
    }

    /// Tick every `interval` until `shutdown`, unless the clock is manual (then the clock's
    /// owner ticks).
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) {
        if self.clock.is_manual() {
            return;
        }
        let scheduler = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(scheduler.settings.interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = every.tick() => {}
                }
                if let Err(err) = scheduler.tick().await {
                    tracing::warn!(%err, "the task scheduler could not look at due tasks");
                }
            }
        });
    }

    /// Look once: recover stale claims, run what is due, deny requests nobody answered.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let mut tick = Tick { recovered: self.recover(now).await?, ..Tick::default() };
        for task in self.store.due_tasks(now, 100).await? {
            self.fire(&task, now, &mut tick).await?;
        }
        tick.denied = self.deny_unanswered(now).await?;
        Ok(tick)
    }

    /// Run a task now, outside its schedule (`POST .../run`).
    pub async fn run_now(&self, task: &TaskRecord) -> Result<TaskRun, ScheduleRunError> {
        let now = self.clock.now();
        let claim = self.claim(task, now, RunTrigger::Manual, None).await?;
        let run = claim.ok_or(ScheduleRunError::Duplicate)?;
        Ok(self.start_run(task, run, now).await?)
    }

    /// The task as the API shows it, with its next due times from now (`last_run` is left
    /// to the caller, which reads it from the store).
    pub fn task_json(&self, task: TaskRecord) -> Task {
        let next_runs = Calendar::new(&task.schedule, &task.time_zone)
            .map(|calendar| calendar.next_n(self.clock.now(), NEXT_RUNS_SHOWN))
            .unwrap_or_default();
        Task {
            id: task.id,
            name: task.name,
            prompt: task.prompt,
            schedule: task.schedule,
            time_zone: task.time_zone,
            model: task.model,
            permission_mode: task.permission_mode,
            permission_timeout_secs: task.permission_timeout_secs,
            target: match task.target_chat_id {
                None => agentbox_protocol::task::TaskTarget::NewChat,
                Some(chat_id) => agentbox_protocol::task::TaskTarget::Chat { chat_id },
            },
            enabled: task.enabled,
            missed_runs: task.missed_runs,
            next_run_at: task.next_run_at,
            next_runs,
            last_run: None,
            created_at: task.created_at,
            updated_at: task.updated_at,
        }
    }

    async fn recover(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let bound =
            now - chrono::Duration::from_std(self.settings.claim_timeout).unwrap_or_default();
        let mut failed = 0;
        for run in self.store.stale_task_runs(bound).await? {
            let text = "The server stopped between claiming this run and starting its turn; \
                        it was not run, so that it cannot run twice.";
            if self.store.fail_task_run(run.id, None, text, now).await? {
                tracing::warn!(task_id = %run.task_id, run_id = %run.id, due_at = %run.due_at, "a claimed task run never started; marked failed");
                failed += 1;
            }
        }
        Ok(failed)
    }

    async fn fire(
        &self,
        task: &TaskRecord,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<(), StoreError> {
        let Some(due) = task.next_run_at else { return Ok(()) };
        let calendar = match Calendar::new(&task.schedule, &task.time_zone) {
            Ok(calendar) => calendar,
            Err(err) => {
                // Checked when written; a zone a newer tz database dropped could get here.
                tracing::warn!(task_id = %task.id, %err, "a task's schedule is no longer valid; it stops");
                self.store.advance_task(task.id, due, None).await?;
                return Ok(());
            }
        };
        let late = chrono::Duration::from_std(self.settings.late_after).unwrap_or_default();
        if now - due <= late {
            if let Some(run) = self.claim(task, due, RunTrigger::Scheduled, None).await? {
                tick.started.push(self.start_run(task, run, now).await?);
            }
        } else {
            let latest = calendar.latest_until(now).filter(|at| *at >= due).unwrap_or(due);
            match task.missed_runs {
                agentbox_protocol::task::MissedRunPolicy::RunOnce => {
                    if let Some(run) = self.claim(task, latest, RunTrigger::Missed, None).await? {
                        tick.started.push(self.start_run(task, run, now).await?);
                    }
                }
                agentbox_protocol::task::MissedRunPolicy::Skip => {
                    let why = if latest == due {
                        format!("Missed: no scheduler ran at {due}.")
                    } else {
                        format!("Missed: no scheduler ran from {due} to {latest}.")
                    };
                    if let Some(run) =
                        self.claim(task, latest, RunTrigger::Missed, Some(why)).await?
                    {
                        tick.skipped.push(run);
                    }
                }
            }
        }
        self.store.advance_task(task.id, due, calendar.next_after(now)).await?;
        let keep = i64::try_from(self.settings.keep_runs.max(1)).unwrap_or(i64::MAX);
        self.store.prune_task_runs(task.id, keep).await?;
        Ok(())
    }

    /// Claim `due_at` for the task (`skipped` with the reason when given); `None` when it
    /// was claimed before.
    async fn claim(
        &self,
        task: &TaskRecord,
        due_at: DateTime<Utc>,
        trigger: RunTrigger,
        skipped: Option<String>,
    ) -> Result<Option<TaskRun>, StoreError> {
        self.store
            .claim_task_run(&NewTaskRun {
                id: Uuid::now_v7(),
                task_id: task.id,
                due_at,
                trigger,
                skipped: skipped.is_some(),
                claimed_at: self.clock.now(),
                claimed_by: self.runner.config().node.id.clone(),
                error: skipped,
            })
            .await
    }

    /// Start the claimed run's turn in its chat; a run that cannot start fails, saying why.
    async fn start_run(
        &self,
        task: &TaskRecord,
        run: TaskRun,
        now: DateTime<Utc>,
    ) -> Result<TaskRun, StoreError> {
        let chat = match self.target_chat(task).await {
            Ok(chat) => chat,
            Err(why) => {
                self.store.fail_task_run(run.id, None, &why, now).await?;
                return self.reread(run).await;
            }
        };
        // The owner's limits hold for scheduled turns as for posted ones: over one, the run
        // fails saying which (and a chat made for it goes, since it would stay empty).
        if let Some(admission) = self.runner.admission.get()
            && let Err(why) = admission.admit(&chat).await
        {
            let mut kept = Some(chat.id);
            if task.target_chat_id.is_none() {
                match self.store.delete_chat(task.user_id, chat.id).await {
                    Ok(_) => kept = None,
                    Err(err) => {
                        tracing::warn!(task_id = %task.id, %err, "could not remove a task run's unused chat");
                    }
                }
            }
            tracing::info!(task_id = %task.id, run_id = %run.id, "a task run was refused: {why}");
            self.store.fail_task_run(run.id, kept, &why, now).await?;
            return self.reread(run).await;
        }
        let request = TurnRequest {
            prompt: task.prompt.clone(),
            model: Some(task.model.clone()),
            permission_mode: Some(task.permission_mode),
        };
        match self.runner.submit(&chat, request).await {
            Ok(started) => {
                self.store.start_task_run(run.id, chat.id, started.message_id, now).await?;
                tracing::info!(task_id = %task.id, run_id = %run.id, chat_id = %chat.id, due_at = %run.due_at, "started a task run");
            }
            Err(err) => {
                let why = match err {
                    RunError::Busy => "The chat was running another turn.".to_owned(),
                    RunError::BypassNotAllowed => {
                        "bypassPermissions needs an isolating sandbox.".to_owned()
                    }
                    other => format!("The turn could not start: {other}"),
                };
                self.store.fail_task_run(run.id, Some(chat.id), &why, now).await?;
            }
        }
        self.reread(run).await
    }

    async fn reread(&self, run: TaskRun) -> Result<TaskRun, StoreError> {
        Ok(self.store.task_run(run.id).await?.unwrap_or(run))
    }

    /// The chat a run goes to, or why there is none.
    async fn target_chat(&self, task: &TaskRecord) -> Result<ChatRecord, String> {
        let found = match task.target_chat_id {
            None => self
                .store
                .create_chat(NewChat {
                    user_id: task.user_id,
                    title: task.name.clone(),
                    model: task.model.clone(),
                    permission_mode: task.permission_mode,
                    sandbox_provider: self.runner.sandbox_provider().name().to_owned(),
                    custom_instructions: None,
                    max_thinking_tokens: None,
                })
                .await
                .map(Some),
            Some(chat_id) => self.store.chat(task.user_id, chat_id).await,
        };
        match found {
            Ok(Some(chat)) => Ok(chat),
            Ok(None) => Err("The task's chat no longer exists.".into()),
            Err(err) => Err(format!("The run's chat could not be made: {err}")),
        }
    }

    /// Deny the open requests of running task turns older than their task's timeout.
    async fn deny_unanswered(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut denied = 0;
        for run in self.store.running_task_runs().await? {
            let (Some(chat_id), Some(message_id)) = (run.chat_id, run.message_id) else { continue };
            let Some(task) = self.store.task_unscoped(run.task_id).await? else { continue };
            let timeout = task
                .permission_timeout_secs
                .map_or(self.settings.permission_timeout, Duration::from_secs);
            let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
            for request in self.store.pending_permissions(chat_id).await? {
                if request.message_id != message_id || request.created_at + timeout > now {
                    continue;
                }
                let answer = PermissionAnswerRequest {
                    approved: false,
                    message: Some(format!(
                        "Nobody answered within {} s: this turn is a scheduled task running \
                         unattended, so the request is denied. Go on without it if you can.",
                        timeout.num_seconds()
                    )),
                    answers: None,
                    remember: false,
                    mode: None,
                };
                match self.runner.answer_permission(chat_id, &request.request_id, &answer).await {
                    Ok(_) => {
                        tracing::info!(task_id = %task.id, %chat_id, request_id = %request.request_id, "denied an unanswered request of a task run");
                        denied += 1;
                    }
                    Err(err) => {
                        tracing::debug!(%chat_id, request_id = %request.request_id, %err, "could not deny a task run's request");
                    }
                }
            }
        }
        Ok(denied)
    }
}
