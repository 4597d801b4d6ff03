//! Rate limiting of `/auth` failures (the Supervisor has none, so an add-on holding `auth_api`
//! can try passwords as fast as Home Assistant answers).
//!
//! Token buckets that only failures drain: a busy add-on whose users log in correctly (an MQTT
//! broker checking every connection) is never slowed, while guessing is held to the refill
//! rate. When a bucket is empty the request is refused with 429 *before* the credential
//! backend is asked, so a locked-out guesser learns nothing.

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

    /// `Err(wait)` when `key` has no failure left, with the time until it has one.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bucket) = buckets.get(key) else {
            return Ok(());
        };
        let level = self.level(*bucket, Instant::now());
        if level >= 1.0 {
            Ok(())
        } else {
            Err(self.rate.refill.mul_f64(1.0 - level))
        }
    }

    /// Spend one failure of `key`.
    pub fn fail(&self, key: &K) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS {
            let burst = self.rate.burst as f64;
            buckets.retain(|_, b| self.level(*b, now) < burst);
        }
        let level = buckets
            .get(key)
            .map_or(self.rate.burst as f64, |b| self.level(*b, now));
        buckets.insert(
            key.clone(),
            Bucket {
                tokens: (level - 1.0).max(0.0),
                at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_drain_and_time_refills() {
        let limiter = Limiter::new(Rate {
            burst: 2,
            refill: Duration::from_millis(100),
        });
        assert!(limiter.check(&"a").is_ok());
        limiter.fail(&"a");
        assert!(limiter.check(&"a").is_ok());
        limiter.fail(&"a");
        let wait = limiter.check(&"a").unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(50));
        assert!(limiter.check(&"b").is_ok(), "keys are independent");
        std::thread::sleep(Duration::from_millis(110));
        assert!(limiter.check(&"a").is_ok());
    }
}
