//! Limits per user on turns (defaults `--max-running-turns-per-user`, `--max-turns-per-day`,
//! `--max-spend-per-day-usd`; an administrator may set a user's own values, see
//! `user_limits.rs`), checked when a prompt is posted or queued. Over one: `429
//! limit_reached`, the message naming the limit and when it resets (days are UTC days), with
//! `Retry-After` for the daily ones.
//!
//! Workspace disk limits are checked here too, before a turn (`disk.rs`), and a queued
//! prompt meets the same checks when the runner starts it after a turn (`admission.rs`).
//!
//! Sandboxes kept running (`--max-running-sandboxes-per-user`) are made room for before a
//! turn, a terminal or a resume, in `sandbox_limit.rs`.

use std::time::Duration;

use agentbox_protocol::api::{LimitSetting, LimitValues, UserLimitsRequest};
use agentbox_store::Store;
use chrono::{DateTime, Days, Utc};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The server's defaults, from its flags; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TurnLimits {
    pub running_turns: Option<u32>,
    pub turns_per_day: Option<u32>,
    pub spend_per_day_usd: Option<f64>,
    /// Workspace disk, checked by `disk.rs`.
    pub workspace_bytes_per_chat: Option<u64>,
    pub workspace_bytes_total: Option<u64>,
    /// Sandboxes of one user running at once, enforced by `sandbox_limit.rs`.
    pub running_sandboxes: Option<u32>,
}

impl TurnLimits {
    pub fn values(&self) -> LimitValues {
        LimitValues {
            running_turns: self.running_turns,
            turns_per_day: self.turns_per_day,
            spend_per_day_usd: self.spend_per_day_usd,
            running_sandboxes: self.running_sandboxes,
            workspace_bytes_per_chat: self.workspace_bytes_per_chat,
            workspace_bytes_total: self.workspace_bytes_total,
        }
    }
}

/// What an administrator set for `user_id` (all `"default"` when nothing was).
pub async fn overrides(store: &Store, user_id: Uuid) -> Result<UserLimitsRequest, ApiError> {
    let stored = store.user_limits(user_id).await?;
    serde_json::from_value(serde_json::Value::Object(stored))
        .map_err(|err| ApiError::internal(format!("stored limits of {user_id}: {err}")))
}

fn count(setting: LimitSetting, default: Option<u32>) -> Option<u32> {
    match setting {
        LimitSetting::Default => default,
        LimitSetting::Unlimited => None,
        // Validated as whole and in range when set.
        LimitSetting::Value(value) => Some(value as u32),
    }
}

fn bytes(setting: LimitSetting, default: Option<u64>) -> Option<u64> {
    match setting {
        LimitSetting::Default => default,
        LimitSetting::Unlimited => None,
        LimitSetting::Value(value) => Some(value as u64),
    }
}

/// The limits in force: each one the administrator's value for the user, else the default.
pub fn effective(defaults: &LimitValues, set: &UserLimitsRequest) -> LimitValues {
    LimitValues {
        running_turns: count(set.running_turns, defaults.running_turns),
        turns_per_day: count(set.turns_per_day, defaults.turns_per_day),
        spend_per_day_usd: match set.spend_per_day_usd {
            LimitSetting::Default => defaults.spend_per_day_usd,
            LimitSetting::Unlimited => None,
            LimitSetting::Value(usd) => Some(usd),
        },
        running_sandboxes: count(set.running_sandboxes, defaults.running_sandboxes),
        workspace_bytes_per_chat: bytes(
            set.workspace_bytes_per_chat,
            defaults.workspace_bytes_per_chat,
        ),
        workspace_bytes_total: bytes(set.workspace_bytes_total, defaults.workspace_bytes_total),
    }
}

/// The limits in force for `user_id`.
pub async fn of_user(state: &AppState, user_id: Uuid) -> Result<LimitValues, ApiError> {
    of_user_in(&state.store, &state.accounts.limits, user_id).await
}

/// [`of_user`] from the store and the defaults.
pub async fn of_user_in(
    store: &Store,
    defaults: &TurnLimits,
    user_id: Uuid,
) -> Result<LimitValues, ApiError> {
    Ok(effective(&defaults.values(), &overrides(store, user_id).await?))
}

pub(crate) fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

pub(crate) fn limit_reached(
    what: String,
    resets: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ApiError {
    match resets {
        Some(at) => {
            let wait = (at - now).to_std().unwrap_or(Duration::ZERO).as_secs().max(1);
            ApiError {
                retry_after: Some(wait),
                ..ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "limit_reached",
                    format!("{what}. It resets at {} UTC.", at.format("%Y-%m-%d %H:%M")),
                )
            }
        }
        None => ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "limit_reached", what),
    }
}

/// `limit_reached` if the user may not start another turn now in `chat_id` (the turn limits
/// here, the disk limits in `disk.rs`, the running sandboxes in `sandbox_limit.rs`, which
/// may stop an idle one to make room).
pub async fn check(state: &AppState, user_id: Uuid, chat_id: Uuid) -> Result<(), ApiError> {
    let limits = of_user(state, user_id).await?;
    check_turns(&state.store, user_id, &limits).await?;
    let sandboxes = state.runner.sandbox_provider();
    crate::disk::check(&state.store, sandboxes, &limits, user_id, chat_id, 0, 0).await?;
    crate::sandbox_limit::make_room(
        &state.store,
        &state.runner,
        &state.terminals,
        &limits,
        user_id,
        chat_id,
    )
    .await
}

pub(crate) async fn check_turns(
    store: &Store,
    user_id: Uuid,
    limits: &LimitValues,
) -> Result<(), ApiError> {
    if (limits.running_turns, limits.turns_per_day, limits.spend_per_day_usd) == (None, None, None)
    {
        return Ok(());
    }
    let now = Utc::now();
    let today = start_of_day(now);
    let tomorrow = today.checked_add_days(Days::new(1));
    let activity = store.user_activity(user_id, today).await?;
    if let Some(max) = limits.running_turns
        && activity.running_turns >= i64::from(max)
    {
        return Err(limit_reached(
            format!(
                "Limit reached: running turns ({max} at once). It frees up when one of your turns ends"
            ),
            None,
            now,
        ));
    }
    if let Some(max) = limits.turns_per_day
        && activity.turns >= i64::from(max)
    {
        return Err(limit_reached(format!("Limit reached: turns per day ({max})"), tomorrow, now));
    }
    if let Some(max) = limits.spend_per_day_usd
        && activity.cost_usd >= max
    {
        return Err(limit_reached(
            format!(
                "Limit reached: spend per day (${max:.2}; ${:.2} spent today)",
                activity.cost_usd
            ),
            tomorrow,
            now,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_set_for_the_user_wins_over_the_default_and_null_is_none() {
        let defaults =
            TurnLimits { turns_per_day: Some(10), running_turns: Some(2), ..TurnLimits::default() }
                .values();
        let set = UserLimitsRequest {
            turns_per_day: LimitSetting::Value(3.0),
            running_turns: LimitSetting::Unlimited,
            workspace_bytes_total: LimitSetting::Value(1e9),
            ..UserLimitsRequest::default()
        };
        let limits = effective(&defaults, &set);
        assert_eq!(limits.turns_per_day, Some(3));
        assert_eq!(limits.running_turns, None);
        assert_eq!(limits.workspace_bytes_total, Some(1_000_000_000));
        assert_eq!(limits.spend_per_day_usd, None);
        assert_eq!(effective(&defaults, &UserLimitsRequest::default()), defaults);
    }

    #[test]
    fn days_are_utc_days_and_the_answer_says_when_it_resets() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T22:30:00Z").unwrap().to_utc();
        assert_eq!(start_of_day(now).to_rfc3339(), "2026-12-02T00:00:00+00:00");
        let tomorrow = start_of_day(now).checked_add_days(Days::new(1));
        let err = limit_reached("Limit reached: turns per day (3)".into(), tomorrow, now);
        assert_eq!((err.code, err.retry_after), ("limit_reached", Some(90 * 60)));
        assert_eq!(
            err.message,
            "Limit reached: turns per day (3). It resets at 2026-12-03 00:00 UTC."
        );
        let running = limit_reached("Limit reached: running turns".into(), None, now);
        assert_eq!((running.status.as_u16(), running.retry_after), (429, None));
    }
}
