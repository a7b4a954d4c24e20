//! Limits per user on turns (`--max-running-turns-per-user`, `--max-turns-per-day`,
//! `--max-spend-per-day-usd`), checked when a prompt is posted or queued. Over one: `429
//! limit_reached`, the message naming the limit and when it resets (days are UTC days), with
//! `Retry-After` for the daily ones.
//!
//! Not finished (issue 12, item 2): the limits are the same for every user (no per-user
//! values set by administrators yet), a queued prompt that the runner starts after a turn is
//! not checked again, and sandboxes kept running and workspace disk are not limited per user.

use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TurnLimits {
    pub running_turns: Option<u32>,
    pub turns_per_day: Option<u32>,
    pub spend_per_day_usd: Option<f64>,
}

fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

fn limit_reached(what: String, resets: Option<DateTime<Utc>>, now: DateTime<Utc>) -> ApiError {
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

/// `limit_reached` if the user may not start another turn now.
pub async fn check(state: &AppState, user_id: Uuid) -> Result<(), ApiError> {
    let limits = state.accounts.limits;
    if limits == TurnLimits::default() {
        return Ok(());
    }
    let now = Utc::now();
    let today = start_of_day(now);
    let tomorrow = today.checked_add_days(Days::new(1));
    let activity = state.store.user_activity(user_id, today).await?;
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
