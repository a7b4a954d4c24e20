//! Scheduled tasks (`/api/v1/tasks`): a prompt that runs on a schedule in the owner's chat,
//! its history, "run now", and the preview of a schedule's next due times. The scheduler
//! (`runs::schedule`) runs them; every due time shown here is its computation.

use agentbox_protocol::api::PermissionMode;
use agentbox_protocol::task::{
    CreateTaskRequest, Schedule, Task, TaskPreview, TaskPreviewRequest, TaskRun, TaskTarget,
    UpdateTaskRequest,
};
use agentbox_runs::schedule::{Calendar, NEXT_RUNS_SHOWN};
use agentbox_store::TaskRecord;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::{owned_chat, valid_model};
use crate::error::ApiError;
use crate::extract::{ApiJson, TaskId};
use crate::messages::{bypass_not_allowed, valid_prompt};
use crate::state::AppState;

/// A task's name: what its new chats are called.
const MAX_NAME_CHARS: usize = 100;
/// The longest wait a task may give a request for a person (a day).
const MAX_PERMISSION_TIMEOUT_SECS: u64 = 24 * 3600;
/// Runs `GET .../runs` shows at most (the scheduler keeps `--task-history` of them).
const RUNS_SHOWN: i64 = 200;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(preview))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(run_task))
        .routes(routes!(list_runs))
}

async fn owned_task(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
) -> Result<TaskRecord, ApiError> {
    state.store.task(user.0.id, id).await?.ok_or_else(ApiError::task_not_found)
}

/// The task's JSON: its next due times and its latest run.
async fn task_json(state: &AppState, task: TaskRecord) -> Result<Task, ApiError> {
    let last_run = state.store.task_runs(task.id, 1).await?.into_iter().next();
    Ok(Task { last_run, ..state.scheduler.task_json(task) })
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!("A task's name must be 1 to {MAX_NAME_CHARS} characters."),
        ));
    }
    Ok(name.to_owned())
}

fn valid_timeout(secs: u64) -> Result<u64, ApiError> {
    if !(1..=MAX_PERMISSION_TIMEOUT_SECS).contains(&secs) {
        return Err(ApiError::unprocessable(
            "invalid_permission_timeout",
            format!("permission_timeout_secs must be 1 to {MAX_PERMISSION_TIMEOUT_SECS}."),
        ));
    }
    Ok(secs)
}

fn allowed_mode(state: &AppState, mode: PermissionMode) -> Result<(), ApiError> {
    if mode == PermissionMode::BypassPermissions && !state.runner.bypass_allowed() {
        return Err(bypass_not_allowed());
    }
    Ok(())
}

/// The schedule checked, and its next due time after `now` (`None`: a `once` in the past).
fn checked_schedule(
    schedule: &Schedule,
    zone: &str,
    now: DateTime<Utc>,
) -> Result<(Calendar, Option<DateTime<Utc>>), ApiError> {
    let calendar = Calendar::new(schedule, zone)?;
    let next = calendar.next_after(now);
    if let Schedule::Once { at } = schedule
        && next.is_none()
    {
        return Err(ApiError::unprocessable(
            "schedule_in_past",
            format!("The time {at} has passed; a task that runs once needs a time to come."),
        ));
    }
    Ok((calendar, next))
}

/// The chat a target names, when it is the user's.
async fn valid_target(
    state: &AppState,
    user: &CurrentUser,
    target: &TaskTarget,
) -> Result<Option<Uuid>, ApiError> {
    match target {
        TaskTarget::NewChat => Ok(None),
        TaskTarget::Chat { chat_id } => Ok(Some(owned_chat(state, user, *chat_id).await?.id)),
    }
}

/// The user's tasks, oldest first, each with its next due times.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    responses((status = 200, body = Vec<Task>)), security(("bearer" = [])))]
async fn list_tasks(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<Task>>, ApiError> {
    let mut tasks = Vec::new();
    for task in state.store.list_tasks(user.0.id).await? {
        tasks.push(task_json(&state, task).await?);
    }
    Ok(Json(tasks))
}

/// Schedule a prompt. It runs at each due time of its schedule in its time zone, in a new
/// chat each time or in one chat of the user's.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = CreateTaskRequest,
    responses((status = 201, body = Task),
              (status = 403, description = "bypass_not_allowed"),
              (status = 404, description = "chat_not_found: the target chat is not the user's"),
              (status = 413, description = "prompt_too_long"),
              (status = 422, description = "invalid_schedule (a bad cron expression, an unknown time zone, ...), schedule_in_past, invalid_name, empty_prompt, invalid_model, invalid_permission_timeout")),
    security(("bearer" = [])))]
async fn create_task(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(request): ApiJson<CreateTaskRequest>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let name = valid_name(&request.name)?;
    valid_prompt(&state, &request.prompt)?;
    let model = request.model.as_deref().map(valid_model).transpose()?;
    let permission_mode = request.permission_mode.unwrap_or_default();
    allowed_mode(&state, permission_mode)?;
    let permission_timeout_secs = request.permission_timeout_secs.map(valid_timeout).transpose()?;
    let time_zone = request.time_zone.unwrap_or_else(|| "UTC".into());
    let now = state.scheduler.now();
    let (_, next) = checked_schedule(&request.schedule, &time_zone, now)?;
    let target_chat_id = valid_target(&state, &user, &request.target.unwrap_or_default()).await?;
    let enabled = request.enabled.unwrap_or(true);
    let task = state
        .store
        .create_task(&TaskRecord {
            id: Uuid::now_v7(),
            user_id: user.0.id,
            name,
            prompt: request.prompt,
            schedule: request.schedule,
            time_zone,
            model: model.unwrap_or_else(|| state.info.default_model.clone()),
            permission_mode,
            permission_timeout_secs,
            target_chat_id,
            enabled,
            missed_runs: request.missed_runs.unwrap_or_default(),
            next_run_at: next.filter(|_| enabled),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(task_json(&state, task).await?)))
}

/// The next five due times of a schedule, as the scheduler computes them: what a schedule
/// editor shows before saving.
#[utoipa::path(post, path = "/api/v1/tasks/preview", tag = "tasks",
    request_body = TaskPreviewRequest,
    responses((status = 200, body = TaskPreview),
              (status = 422, description = "invalid_schedule, schedule_in_past")),
    security(("bearer" = [])))]
async fn preview(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiJson(request): ApiJson<TaskPreviewRequest>,
) -> Result<Json<TaskPreview>, ApiError> {
    let zone = request.time_zone.unwrap_or_else(|| "UTC".into());
    let now = state.scheduler.now();
    let (calendar, _) = checked_schedule(&request.schedule, &zone, now)?;
    Ok(Json(TaskPreview { next_runs: calendar.next_n(now, NEXT_RUNS_SHOWN) }))
}

#[utoipa::path(get, path = "/api/v1/tasks/{task_id}", tag = "tasks",
    params(("task_id" = Uuid, Path)),
    responses((status = 200, body = Task), (status = 404, description = "task_not_found")),
    security(("bearer" = [])))]
async fn get_task(
    State(state): State<AppState>,
    user: CurrentUser,
    TaskId(task_id): TaskId,
) -> Result<Json<Task>, ApiError> {
    let task = owned_task(&state, &user, task_id).await?;
    Ok(Json(task_json(&state, task).await?))
}

/// Change a task. A new schedule, time zone or enabling counts from now: due times that
/// passed meanwhile are not missed runs.
#[utoipa::path(patch, path = "/api/v1/tasks/{task_id}", tag = "tasks",
    params(("task_id" = Uuid, Path)), request_body = UpdateTaskRequest,
    responses((status = 200, body = Task),
              (status = 403, description = "bypass_not_allowed"),
              (status = 404, description = "task_not_found, chat_not_found"),
              (status = 413, description = "prompt_too_long"),
              (status = 422, description = "invalid_schedule, schedule_in_past, invalid_name, empty_prompt, invalid_model, invalid_permission_timeout")),
    security(("bearer" = [])))]
async fn update_task(
    State(state): State<AppState>,
    user: CurrentUser,
    TaskId(task_id): TaskId,
    ApiJson(request): ApiJson<UpdateTaskRequest>,
) -> Result<Json<Task>, ApiError> {
    let mut task = owned_task(&state, &user, task_id).await?;
    if let Some(name) = &request.name {
        task.name = valid_name(name)?;
    }
    if let Some(prompt) = request.prompt {
        valid_prompt(&state, &prompt)?;
        task.prompt = prompt;
    }
    if let Some(model) = &request.model {
        task.model = valid_model(model)?;
    }
    if let Some(mode) = request.permission_mode {
        allowed_mode(&state, mode)?;
        task.permission_mode = mode;
    }
    if let Some(timeout) = request.permission_timeout_secs {
        task.permission_timeout_secs = timeout.map(valid_timeout).transpose()?;
    }
    if let Some(target) = &request.target {
        task.target_chat_id = valid_target(&state, &user, target).await?;
    }
    if let Some(policy) = request.missed_runs {
        task.missed_runs = policy;
    }
    let new_schedule = request.schedule.is_some() || request.time_zone.is_some();
    let reschedule = new_schedule || request.enabled.is_some_and(|enabled| enabled != task.enabled);
    if let Some(schedule) = request.schedule {
        task.schedule = schedule;
    }
    if let Some(zone) = request.time_zone {
        task.time_zone = zone;
    }
    if let Some(enabled) = request.enabled {
        task.enabled = enabled;
    }
    if reschedule {
        let now = state.scheduler.now();
        let (_, next) = if new_schedule {
            checked_schedule(&task.schedule, &task.time_zone, now)?
        } else {
            // Only enabling changed: a `once` whose time passed simply has no next run.
            let calendar = Calendar::new(&task.schedule, &task.time_zone)?;
            let next = calendar.next_after(now);
            (calendar, next)
        };
        task.next_run_at = next.filter(|_| task.enabled);
    }
    task.updated_at = Utc::now();
    let task = state.store.update_task(&task).await?.ok_or_else(ApiError::task_not_found)?;
    Ok(Json(task_json(&state, task).await?))
}

/// Delete a task and its history (its chats stay).
#[utoipa::path(delete, path = "/api/v1/tasks/{task_id}", tag = "tasks",
    params(("task_id" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "task_not_found")),
    security(("bearer" = [])))]
async fn delete_task(
    State(state): State<AppState>,
    user: CurrentUser,
    TaskId(task_id): TaskId,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_task(user.0.id, task_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::task_not_found())
    }
}

/// Run the task now, outside its schedule (also when it is disabled). The run is in the
/// history like any other; its turn runs as the scheduler's do.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/run", tag = "tasks",
    params(("task_id" = Uuid, Path)),
    responses((status = 201, body = TaskRun, description = "the run; `failed` with its `error` when its turn could not start"),
              (status = 404, description = "task_not_found"),
              (status = 409, description = "run_exists")),
    security(("bearer" = [])))]
async fn run_task(
    State(state): State<AppState>,
    user: CurrentUser,
    TaskId(task_id): TaskId,
) -> Result<(StatusCode, Json<TaskRun>), ApiError> {
    let task = owned_task(&state, &user, task_id).await?;
    let run = state.scheduler.run_now(&task).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// The task's history, the latest due time first: each run's due time, start, end, status,
/// cost and chat.
#[utoipa::path(get, path = "/api/v1/tasks/{task_id}/runs", tag = "tasks",
    params(("task_id" = Uuid, Path)),
    responses((status = 200, body = Vec<TaskRun>), (status = 404, description = "task_not_found")),
    security(("bearer" = [])))]
async fn list_runs(
    State(state): State<AppState>,
    user: CurrentUser,
    TaskId(task_id): TaskId,
) -> Result<Json<Vec<TaskRun>>, ApiError> {
    owned_task(&state, &user, task_id).await?;
    Ok(Json(state.store.task_runs(task_id, RUNS_SHOWN).await?))
}
