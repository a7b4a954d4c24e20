//! Keyed token buckets for the sign-in routes, on a clock that tests can move.
//!
//! A bucket holds up to `burst` tokens and gains one every `refill`. What counts (a failed
//! password, a registration) takes a token; when none is left the caller is told how long
//! until the next one. So five quick wrong passwords lock an account for one `refill`, not
//! for an hour, and a real user who mistyped waits seconds. A hand-written bucket rather
//! than `governor`: the login limit counts only failures, which needs a look at the bucket
//! before the attempt without taking from it, and governor has no such look.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the limiters read the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to: tests pass a window without sleeping.
pub struct ManualClock {
    start: Instant,
    offset_ms: AtomicU64,
}

impl ManualClock {
    pub fn new() -> Self {
        Self { start: Instant::now(), offset_ms: AtomicU64::new(0) }
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// How many attempts a bucket allows at once, and how fast it refills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub refill: Duration,
}

impl Rate {
    pub const fn new(burst: u32, refill: Duration) -> Self {
        Self { burst, refill }
    }
}

/// More keys than this and full buckets are forgotten, so that a flood of made-up emails
/// or addresses cannot grow the map without end.
const MAX_KEYS: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One limit over many keys (an email, an IP address).
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: Mutex::new(HashMap::new()) }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let per_token = self.rate.refill.as_secs_f64().max(f64::MIN_POSITIVE);
        let gained = now.saturating_duration_since(bucket.at).as_secs_f64() / per_token;
        (bucket.tokens + gained).min(f64::from(self.rate.burst))
    }

    fn wait(&self, tokens: f64) -> Duration {
        self.rate.refill.mul_f64((1.0 - tokens).clamp(0.0, 1.0))
    }

    /// `Some(wait)` while `key` has no token left; takes nothing.
    pub fn blocked(&self, key: &str, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tokens = buckets.get(key).map(|bucket| self.refilled(bucket, now))?;
        (tokens < 1.0).then(|| self.wait(tokens))
    }

    /// Take a token for `key`: `Err(wait)` if there was none (and nothing is taken).
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let burst = f64::from(self.rate.burst);
            buckets.retain(|_, bucket| self.refilled(bucket, now) < burst);
        }
        let burst = f64::from(self.rate.burst);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        let tokens = self.refilled(bucket, now);
        if tokens < 1.0 {
            return Err(self.wait(tokens));
        }
        *bucket = Bucket { tokens: tokens - 1.0, at: now };
        Ok(())
    }

    /// Forget `key` (a successful sign-in forgives the account's earlier mistakes).
    pub fn forget(&self, key: &str) {
        self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_after_its_burst_and_refills_with_time() {
        let clock = ManualClock::new();
        let limiter = Limiter::new(Rate::new(5, Duration::from_secs(30)));
        for _ in 0..5 {
            assert_eq!(limiter.blocked("a", clock.now()), None);
            limiter.take("a", clock.now()).unwrap();
        }
        assert_eq!(limiter.blocked("a", clock.now()), Some(Duration::from_secs(30)));
        assert_eq!(limiter.take("a", clock.now()), Err(Duration::from_secs(30)));
        // Another key is not affected.
        assert_eq!(limiter.blocked("b", clock.now()), None);
        clock.advance(Duration::from_secs(10));
        assert_eq!(limiter.blocked("a", clock.now()), Some(Duration::from_secs(20)));
        clock.advance(Duration::from_secs(20));
        assert_eq!(limiter.blocked("a", clock.now()), None);
        limiter.take("a", clock.now()).unwrap();
        assert!(limiter.blocked("a", clock.now()).is_some(), "one token came back, not five");
        limiter.forget("a");
        assert_eq!(limiter.blocked("a", clock.now()), None);
    }

    #[test]
    fn full_buckets_are_forgotten_when_there_are_too_many_keys() {
        let clock = ManualClock::new();
        let limiter = Limiter::new(Rate::new(2, Duration::from_secs(1)));
        limiter.take("kept", clock.now()).unwrap();
        limiter.take("kept", clock.now()).unwrap();
        for i in 0..MAX_KEYS {
            limiter.take(&format!("k{i}"), clock.now()).unwrap();
        }
        clock.advance(Duration::from_secs(5));
        limiter.take("kept", clock.now()).unwrap();
        limiter.take("kept", clock.now()).unwrap();
        limiter.take("one more", clock.now()).unwrap();
        let buckets = limiter.buckets.lock().unwrap();
        assert!(buckets.len() < 10, "{}", buckets.len());
    }
}
