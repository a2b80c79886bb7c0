//! The platform's send rate: a token bucket (governor's GCRA), so the
//! connector pods together never exceed what the platform allows and a
//! burst of Kafka records is spread over time instead of earning 429s.
//!
//! The documented rate is the whole Deployment's, not each pod's: a pod
//! takes the share of `<platform>-outbound`'s partitions it owns, told by
//! its consumer after every rebalance ([`follow`]), so N pods together
//! stay at the documented rate, whatever N. Traffic is spread over
//! partitions by conversation, so a pod's share of the partitions is its
//! share of the sends as far as anything cheap can tell.
//!
//! governor cannot change a bucket's quota in place, so a new share swaps
//! in a new bucket; the hot path only clones an `Arc` under a read lock. A
//! pod that owns no partitions keeps one partition's worth: it has no
//! records to send, save what was in hand when its partitions were taken,
//! and those must drain (an empty bucket would hold the consumer, and with
//! it the rebalance, for ever).

use std::num::NonZeroU32;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chat4all_kafka::{Assignment, Share};
use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

pub(crate) struct Limiter {
    platform: &'static str,
    /// The platform's documented rate, for all pods together.
    full_rate: f64,
    full_burst: u32,
    /// This pod's bucket and its rate.
    bucket: RwLock<(Arc<Bucket>, f64)>,
}

impl Limiter {
    /// `per_second` sends a second on average, `burst` at once, for the
    /// whole platform; this pod takes all of it until told its share.
    pub(crate) fn new(platform: &'static str, per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        let burst = burst.max(1);
        let limiter = Self {
            platform,
            full_rate: per_second,
            full_burst: burst,
            bucket: RwLock::new((Arc::new(bucket(per_second, burst)), per_second)),
        };
        limiter.report(per_second);
        limiter
    }

    /// Waits for a token; counts and times the waits.
    pub(crate) async fn ready(&self) {
        let bucket = self.current().0;
        if bucket.check().is_ok() {
            return;
        }
        let started = Instant::now();
        bucket.until_ready().await;
        metrics::counter!("chat4all_rate_limit_waits_total", "platform" => self.platform).increment(1);
        metrics::histogram!("chat4all_rate_limit_wait_seconds", "platform" => self.platform)
            .record(started.elapsed().as_secs_f64());
    }

    /// This pod's rate now, sends a second.
    pub(crate) fn rate(&self) -> f64 {
        self.current().1
    }

    /// Takes `share` of the platform's rate.
    pub(crate) fn set_share(&self, share: Share) {
        let rate = share_of(self.full_rate, share);
        if rate == self.rate() {
            return;
        }
        let fraction = rate / self.full_rate;
        let burst = (f64::from(self.full_burst) * fraction).round().max(1.0) as u32;
        *self.bucket.write().unwrap_or_else(PoisonError::into_inner) = (Arc::new(bucket(rate, burst)), rate);
        tracing::info!(
            platform = self.platform,
            owned = share.owned,
            total = share.total,
            rate,
            burst,
            "rate limit follows the partitions owned"
        );
        self.report(rate);
    }

    fn current(&self) -> (Arc<Bucket>, f64) {
        let current = self.bucket.read().unwrap_or_else(PoisonError::into_inner);
        (Arc::clone(&current.0), current.1)
    }

    fn report(&self, rate: f64) {
        metrics::gauge!("chat4all_sidecar_rate_limit_per_second", "platform" => self.platform).set(rate);
    }
}

/// This pod's part of `full_rate` for `share` of the partitions: all of it
/// while the partition count is unknown, one partition's worth with none.
fn share_of(full_rate: f64, share: Share) -> f64 {
    if share.total == 0 {
        return full_rate;
    }
    let owned = share.owned.clamp(1, share.total);
    full_rate * owned as f64 / share.total as f64
}

fn bucket(per_second: f64, burst: u32) -> Bucket {
    let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period).map_or_else(|| Quota::per_second(burst), |q| q.allow_burst(burst));
    RateLimiter::direct(quota)
}

/// Sets `limiter`'s share from each assignment of `topic`, until shutdown.
pub(crate) async fn follow(
    limiter: Arc<Limiter>,
    mut assignments: watch::Receiver<Assignment>,
    topic: String,
    shutdown: CancellationToken,
) {
    loop {
        let share = assignments.borrow_and_update().get(&topic).copied();
        if let Some(share) = share {
            limiter.set_share(share);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = assignments.changed() => if changed.is_err() { return },
        }
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

    #[test]
    fn the_rate_is_the_share_of_partitions_owned() {
        let share = |owned, total| Share { owned, total };
        assert_eq!(share_of(80.0, share(8, 8)), 80.0, "all partitions: the full rate");
        assert_eq!(share_of(80.0, share(4, 8)), 40.0);
        assert_eq!(
            share_of(80.0, share(3, 8)) + share_of(80.0, share(5, 8)),
            80.0,
            "pods sum to the rate"
        );
        assert_eq!(
            share_of(80.0, share(0, 8)),
            10.0,
            "none: one partition's worth, to drain"
        );
        assert_eq!(share_of(80.0, share(0, 0)), 80.0, "count unknown: as before");
    }

    #[tokio::test]
    async fn a_new_share_swaps_the_bucket_and_sends_at_it() {
        let limiter = Arc::new(Limiter::new("test", 400.0, 1));
        let (tell, assignments) = watch::channel(Assignment::new());
        let shutdown = CancellationToken::new();
        let following = tokio::spawn(follow(limiter.clone(), assignments, "t".into(), shutdown.clone()));
        tell.send_modify(|a| {
            a.insert("t".into(), Share { owned: 1, total: 4 });
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(limiter.rate(), 100.0);
        let started = Instant::now();
        for _ in 0..11 {
            limiter.ready().await;
        }
        // 1 at once, then 10 at 100/s (not 400/s): about 100 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(90), "{elapsed:?}");
        tell.send_modify(|a| {
            a.insert("t".into(), Share { owned: 4, total: 4 });
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(limiter.rate(), 400.0);
        shutdown.cancel();
        following.await.unwrap();
    }
}
