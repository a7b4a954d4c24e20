//! Where the scheduler reads the time: the system's wall clock, or one that tests set.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// The current instant, as the scheduler sees it.
pub trait WallClock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    /// Whether someone else moves this clock: then the scheduler does not tick by itself,
    /// its owner calls [`super::Scheduler::tick`].
    fn is_manual(&self) -> bool {
        false
    }
}

/// The system's clock.
#[derive(Debug, Default)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, so that tests pass days without waiting.
#[derive(Debug)]
pub struct ManualWallClock(Mutex<DateTime<Utc>>);

impl ManualWallClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *crate::lock(&self.0) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = crate::lock(&self.0);
        *now += by;
    }
}

impl WallClock for ManualWallClock {
    fn now(&self) -> DateTime<Utc> {
        *crate::lock(&self.0)
    }

    fn is_manual(&self) -> bool {
        true
    }
}
