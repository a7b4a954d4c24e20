//! A task's schedule as instants: validation and the next due times, in the task's IANA
//! time zone.
//!
//! Every repeating kind is a cron pattern (`daily 09:00` is `0 9 * * *`), evaluated by
//! `croner` on the wall clock of the zone (`chrono-tz`), so daylight-saving changes follow
//! one set of rules, the ones Vixie cron and croner document:
//! - a wall-clock time that does not exist that day (spring forward: 02:30 in
//!   `Europe/Berlin` on the last Sunday of March) runs once, at the first instant after the
//!   gap (03:00 local), for a pattern with a fixed hour and minute; a pattern that repeats
//!   through the hour (`*/15 * * * *`, `hourly`) just has no runs inside the gap;
//! - a wall-clock time that happens twice (fall back: 02:30 on the last Sunday of October)
//!   runs once, at the first of the two instants, for a fixed hour and minute; a pattern
//!   that repeats through the hour runs at both.

use std::str::FromStr;

use agentbox_protocol::task::Schedule;
use chrono::{DateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// Why a schedule cannot be used; the text is for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

/// A checked schedule in its zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    rule: Rule,
    zone: Tz,
}

#[derive(Debug, Clone)]
enum Rule {
    Once(DateTime<Utc>),
    Cron(Box<Cron>),
}

/// An IANA zone name, or why not.
pub fn time_zone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| {
        ScheduleError(format!(
            "unknown time zone {name:?}: use an IANA name such as \"Europe/Berlin\" or \"UTC\""
        ))
    })
}

/// `HH:MM` (24 hours) as (hour, minute).
fn time_of_day(text: &str) -> Result<(u32, u32), ScheduleError> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map(|time| (time.hour(), time.minute()))
        .map_err(|_| ScheduleError(format!("time {text:?} is not HH:MM (24 hours, as \"09:30\")")))
}

impl Calendar {
    /// Check a schedule and its zone.
    pub fn new(schedule: &Schedule, zone: &str) -> Result<Self, ScheduleError> {
        let zone = time_zone(zone)?;
        let pattern = match schedule {
            Schedule::Once { at } => return Ok(Self { rule: Rule::Once(*at), zone }),
            Schedule::Hourly { minute } => {
                if *minute > 59 {
                    return Err(ScheduleError(format!("minute {minute} is not 0 to 59")));
                }
                format!("{minute} * * * *")
            }
            Schedule::Daily { time } => {
                let (h, m) = time_of_day(time)?;
                format!("{m} {h} * * *")
            }
            Schedule::Weekdays { time } => {
                let (h, m) = time_of_day(time)?;
                format!("{m} {h} * * 1-5")
            }
            Schedule::Weekly { weekday, time } => {
                if *weekday > 6 {
                    return Err(ScheduleError(format!(
                        "weekday {weekday} is not 0 (Sunday) to 6 (Saturday)"
                    )));
                }
                let (h, m) = time_of_day(time)?;
                format!("{m} {h} * * {weekday}")
            }
            Schedule::Monthly { day, time } => {
                if !(1..=31).contains(day) {
                    return Err(ScheduleError(format!("day {day} is not 1 to 31")));
                }
                let (h, m) = time_of_day(time)?;
                format!("{m} {h} {day} * *")
            }
            Schedule::Cron { expression } => {
                let fields = expression.split_whitespace().count();
                if !(5..=6).contains(&fields) {
                    return Err(ScheduleError(format!(
                        "cron expression {expression:?} has {fields} fields: use five (minute hour \
                         day-of-month month day-of-week) or six (seconds first)"
                    )));
                }
                expression.clone()
            }
        };
        let cron = Cron::from_str(&pattern).map_err(|err| match schedule {
            Schedule::Cron { expression } => {
                ScheduleError(format!("cron expression {expression:?} is not valid: {err}"))
            }
            _ => ScheduleError(format!("the schedule is not valid: {err}")),
        })?;
        let calendar = Self { rule: Rule::Cron(Box::new(cron)), zone };
        // A pattern that can never match (`0 0 30 2 *`) is refused now, not found at run time.
        if calendar.next_after(Utc::now()).is_none() {
            return Err(ScheduleError(format!("the schedule {pattern:?} never runs")));
        }
        Ok(calendar)
    }

    /// The first due time strictly after `after`; `None` when there is none (a `once` in
    /// the past).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Once(at) => (*at > after).then_some(*at),
            Rule::Cron(cron) => cron
                .find_next_occurrence(&after.with_timezone(&self.zone), false)
                .ok()
                .map(|at| at.with_timezone(&Utc)),
        }
    }

    /// The latest due time at or before `at`.
    pub fn latest_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Once(once) => (*once <= at).then_some(*once),
            Rule::Cron(cron) => cron
                .find_previous_occurrence(&at.with_timezone(&self.zone), true)
                .ok()
                .map(|found| found.with_timezone(&Utc)),
        }
    }

    /// Up to `n` due times after `after`.
    pub fn next_n(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut found = Vec::with_capacity(n);
        let mut from = after;
        while found.len() < n {
            let Some(next) = self.next_after(from) else { break };
            found.push(next);
            from = next;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn daily(time: &str) -> Schedule {
        Schedule::Daily { time: time.into() }
    }

    #[test]
    fn kinds_become_due_times_in_their_zone() {
        let after = utc("2030-01-07T12:00:00Z"); // a Monday
        let berlin = Calendar::new(&daily("09:00"), "Europe/Berlin").unwrap();
        assert_eq!(berlin.next_after(after), Some(utc("2030-01-08T08:00:00Z")), "CET is +1");
        let hourly = Calendar::new(&Schedule::Hourly { minute: 15 }, "UTC").unwrap();
        assert_eq!(
            hourly.next_n(after, 2),
            [utc("2030-01-07T12:15:00Z"), utc("2030-01-07T13:15:00Z")]
        );
        let friday = utc("2030-01-11T12:00:00Z");
        let weekdays = Calendar::new(&Schedule::Weekdays { time: "09:00".into() }, "UTC").unwrap();
        assert_eq!(weekdays.next_after(friday), Some(utc("2030-01-14T09:00:00Z")), "Monday");
        let weekly = Schedule::Weekly { weekday: 0, time: "18:30".into() };
        let weekly = Calendar::new(&weekly, "America/New_York").unwrap();
        assert_eq!(weekly.next_after(after), Some(utc("2030-01-13T23:30:00Z")), "Sunday, EST");
        let monthly = Calendar::new(&Schedule::Monthly { day: 31, time: "00:00".into() }, "UTC");
        assert_eq!(
            monthly.unwrap().next_n(utc("2030-04-01T00:00:00Z"), 2),
            [utc("2030-05-31T00:00:00Z"), utc("2030-07-31T00:00:00Z")],
            "months without a 31st are skipped"
        );
        let once = Calendar::new(&Schedule::Once { at: friday }, "UTC").unwrap();
        assert_eq!(once.next_n(after, 5), [friday]);
        assert_eq!(once.next_after(friday), None);
        assert_eq!(once.latest_until(after), None);
        assert_eq!(once.latest_until(friday), Some(friday));
        assert_eq!(berlin.latest_until(after), Some(utc("2030-01-07T08:00:00Z")));
    }

    #[test]
    fn spring_forward_runs_a_missing_time_at_the_end_of_the_gap() {
        // Europe/Berlin, 2030-03-31: 02:00 CET becomes 03:00 CEST.
        let calendar = Calendar::new(&daily("02:30"), "Europe/Berlin").unwrap();
        let runs = calendar.next_n(utc("2030-03-29T12:00:00Z"), 3);
        assert_eq!(
            runs,
            [
                utc("2030-03-30T01:30:00Z"), // 02:30 CET
                utc("2030-03-31T01:00:00Z"), // 03:00 CEST, the first instant after the gap
                utc("2030-04-01T00:30:00Z"), // 02:30 CEST
            ]
        );
        // A pattern that repeats through the hour has no runs in the gap.
        let quarter = Schedule::Cron { expression: "*/30 * * * *".into() };
        let quarter = Calendar::new(&quarter, "Europe/Berlin").unwrap();
        let local: Vec<String> = quarter
            .next_n(utc("2030-03-31T00:15:00Z"), 3)
            .iter()
            .map(|at| at.with_timezone(&chrono_tz::Europe::Berlin).format("%H:%M %Z").to_string())
            .collect();
        assert_eq!(local, ["01:30 CET", "03:00 CEST", "03:30 CEST"]);
    }

    #[test]
    fn fall_back_runs_a_repeated_time_once_at_its_first_instant() {
        // Europe/Berlin, 2030-10-27: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let calendar = Calendar::new(&daily("02:30"), "Europe/Berlin").unwrap();
        let runs = calendar.next_n(utc("2030-10-26T12:00:00Z"), 2);
        assert_eq!(
            runs,
            [utc("2030-10-27T00:30:00Z"), utc("2030-10-28T01:30:00Z")],
            "02:30 CEST on the day, then 02:30 CET"
        );
        let hourly = Schedule::Cron { expression: "30 * * * *".into() };
        let hourly = Calendar::new(&hourly, "Europe/Berlin").unwrap();
        assert_eq!(
            hourly.next_n(utc("2030-10-27T00:00:00Z"), 2),
            [utc("2030-10-27T00:30:00Z"), utc("2030-10-27T01:30:00Z")],
            "both 02:30s: they are different instants"
        );
    }

    #[test]
    fn bad_schedules_say_why() {
        let error = |schedule: Schedule, zone: &str| Calendar::new(&schedule, zone).unwrap_err().0;
        assert!(error(daily("09:00"), "Mars/Olympus").contains("unknown time zone"));
        assert!(error(daily("9am"), "UTC").contains("not HH:MM"));
        assert!(error(daily("24:00"), "UTC").contains("not HH:MM"));
        assert!(error(Schedule::Hourly { minute: 60 }, "UTC").contains("0 to 59"));
        let weekly = Schedule::Weekly { weekday: 7, time: "09:00".into() };
        assert!(error(weekly, "UTC").contains("0 (Sunday) to 6"));
        assert!(
            error(Schedule::Monthly { day: 0, time: "09:00".into() }, "UTC").contains("1 to 31")
        );
        let cron = |text: &str| Schedule::Cron { expression: text.into() };
        assert!(error(cron("61 * * * *"), "UTC").contains("is not valid"));
        assert!(error(cron("* * *"), "UTC").contains("has 3 fields"));
        assert!(error(cron("0 0 30 2 *"), "UTC").contains("never runs"));
        assert!(Calendar::new(&cron("0 9 * * MON-FRI"), "UTC").is_ok());
    }
}
