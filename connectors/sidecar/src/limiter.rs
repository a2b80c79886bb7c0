//! The platform's send rate: a token bucket (governor's GCRA), so one
//! connector pod never exceeds what the platform allows and a burst of
//! Kafka records is spread over time instead of earning 429s.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

pub(crate) struct Limiter {
    platform: &'static str,
    bucket: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
}

impl Limiter {
    /// `per_second` sends a second on average, `burst` at once.
    pub(crate) fn new(platform: &'static str, per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota =
            Quota::with_period(period).map_or_else(|| Quota::per_second(burst), |q| q.allow_burst(burst));
        Self {
            platform,
            bucket: RateLimiter::direct(quota),
        }
    }

    /// Waits for a token; counts and times the waits.
    pub(crate) async fn ready(&self) {
        if self.bucket.check().is_ok() {
            return;
        }
        let started = Instant::now();
        self.bucket.until_ready().await;
        metrics::counter!("chat4all_rate_limit_waits_total", "platform" => self.platform).increment(1);
        metrics::histogram!("chat4all_rate_limit_wait_seconds", "platform" => self.platform)
            .record(started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_the_rate_after_the_burst() {
        let limiter = Limiter::new("test", 100.0, 5);
        let started = Instant::now();
        for _ in 0..25 {
            limiter.ready().await;
        }
        // 5 at once, then 20 at 100/s: about 200 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(180), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    }
}
