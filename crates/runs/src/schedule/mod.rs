//! Scheduled tasks: a prompt that runs on a schedule, exactly once per due time.
//!
//! [`calendar`] turns a schedule and its IANA zone into due times (and says why one is not
//! valid); [`clock`] is where the scheduler reads "now"; [`Scheduler`] claims due times in
//! the store and starts their turns through the [`crate::TurnRunner`].

pub mod calendar;
pub mod clock;
mod scheduler;

pub use calendar::{Calendar, ScheduleError};
pub use clock::{ManualWallClock, SystemWallClock, WallClock};
pub use scheduler::{NEXT_RUNS_SHOWN, ScheduleRunError, Scheduler, TaskSettings, Tick};
