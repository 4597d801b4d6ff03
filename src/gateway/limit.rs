//! Rate limiting of `/auth` failures (the Supervisor has none, so an add-on holding `auth_api`
//! can try passwords as fast as Home Assistant answers).
//!
//! Token buckets that only failures drain: a busy add-on whose users log in correctly (an MQTT
//! broker checking every connection) is never slowed, while guessing is held to the refill
//! rate. Every attempt reserves a failure before the credential backend is asked and keeps it
//! unless the answer is a match (or no answer): so at most a bucket's worth of attempts are
//! ever in flight or failed, however many arrive at once. When a bucket is empty the request
//! is refused with 429 *before* the backend is asked, so a locked-out guesser learns nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bucket of `burst` failures that refills one failure every `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub refill: Duration,
}

/// The numbers `/auth` uses unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimits {
    /// Per add-on and username: 5 failures at once, then one every 12 s (5 a minute).
    pub per_user: Rate,
    /// Per add-on over all usernames: 30 failures at once, then one every 2 s (30 a minute).
    pub per_addon: Rate,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            per_user: Rate {
                burst: 5,
                refill: Duration::from_secs(12),
            },
            per_addon: Rate {
                burst: 30,
                refill: Duration::from_secs(2),
            },
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Above this many keys, full buckets (which mean "no recent failures") are forgotten.
const MAX_KEYS: usize = 50_000;

pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, bucket: Bucket, now: Instant) -> f64 {
        let refilled = now.duration_since(bucket.at).as_secs_f64() / self.rate.refill.as_secs_f64();
        (bucket.tokens + refilled).min(self.rate.burst as f64)
    }

    /// Reserve one failure of `key`, in one step under the lock: `Err(wait)` when none is
    /// left, with the time until one is. An attempt holds its reservation while the backend
    /// decides, so concurrent guesses cannot all pass a check made before any of them failed;
    /// [`Limiter::give_back`] returns it when the attempt turns out not to be a failure.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let burst = self.rate.burst as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let level = buckets.get(key).map_or(burst, |b| self.level(*b, now));
        if level < 1.0 {
            return Err(self.rate.refill.mul_f64(1.0 - level));
        }
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| self.level(*b, now) < burst);
        }
        buckets.insert(
            key.clone(),
            Bucket {
                tokens: level - 1.0,
                at: now,
            },
        );
        Ok(())
    }

    /// Return a reservation of `key` (a success, or a backend that could not decide).
    pub fn give_back(&self, key: &K) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = buckets.get_mut(key) {
            *bucket = Bucket {
                tokens: (self.level(*bucket, now) + 1.0).min(self.rate.burst as f64),
                at: now,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_drain_give_backs_refund_and_time_refills() {
        let limiter = Limiter::new(Rate {
            burst: 2,
            refill: Duration::from_millis(100),
        });
        assert!(limiter.take(&"a").is_ok());
        assert!(limiter.take(&"a").is_ok());
        let wait = limiter.take(&"a").unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(50));
        assert!(limiter.take(&"b").is_ok(), "keys are independent");
        limiter.give_back(&"a");
        assert!(limiter.take(&"a").is_ok(), "a success costs nothing");
        assert!(limiter.take(&"a").is_err());
        std::thread::sleep(Duration::from_millis(110));
        assert!(limiter.take(&"a").is_ok());
    }
}
