//! Which partitions a producer has failed every record on, and since when.
//!
//! librdkafka declares a producer fatal only when it cannot go on without
//! risking duplicates. Some states it retries forever instead: an idempotent
//! producer whose id a broker that came back empty no longer knows bumps its
//! epoch, is refused UNKNOWN_PRODUCER_ID again, and times its records out
//! one after another. Such a producer is as good as failed; a partition that
//! has acked nothing for the stall limit, and is still failing, says so,
//! and the producer is replaced as on a fatal error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Stalls {
    limit: Duration,
    /// How many partitions are failing, read without the lock so that the
    /// common case (every record acked) costs one atomic load.
    count: AtomicUsize,
    failing: Mutex<HashMap<(String, i32), Failing>>,
}

#[derive(Debug)]
struct Failing {
    since: Instant,
    last: Instant,
    last_error: String,
}

impl Stalls {
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            limit,
            count: AtomicUsize::new(0),
            failing: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn acked(&self, topic: &str, partition: i32) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing.remove(&(topic.to_owned(), partition));
        self.count.store(failing.len(), Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, topic: &str, partition: i32, error: &dyn std::fmt::Display) {
        self.failed_at(topic, partition, error, Instant::now());
    }

    fn failed_at(&self, topic: &str, partition: i32, error: &dyn std::fmt::Display, now: Instant) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing
            .entry((topic.to_owned(), partition))
            .and_modify(|f| {
                f.last = now;
                f.last_error = error.to_string();
            })
            .or_insert_with(|| Failing {
                since: now,
                last: now,
                last_error: error.to_string(),
            });
        self.count.store(failing.len(), Ordering::Relaxed);
    }

    /// Forgets every failure: the producer they were about is gone.
    pub(crate) fn clear(&self) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing.clear();
        self.count.store(0, Ordering::Relaxed);
    }

    /// The partition that has failed for longer than the limit, if any,
    /// and is still failing: one that failed a while ago and has been sent
    /// nothing since (its keys are quiet) proves nothing.
    pub(crate) fn stalled(&self) -> Option<String> {
        self.stalled_at(Instant::now())
    }

    fn stalled_at(&self, now: Instant) -> Option<String> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing
            .iter()
            .filter(|(_, f)| {
                now.saturating_duration_since(f.since) >= self.limit
                    && now.saturating_duration_since(f.last) < self.limit
            })
            .max_by_key(|(_, f)| now.saturating_duration_since(f.since))
            .map(|((topic, partition), f)| {
                format!(
                    "{topic}/{partition} acked no record for {}s (last error: {})",
                    now.saturating_duration_since(f.since).as_secs(),
                    f.last_error
                )
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(60);

    #[test]
    fn a_partition_failing_past_the_limit_is_a_stall() {
        let stalls = Stalls::new(LIMIT);
        let start = Instant::now();
        stalls.failed_at("message-events", 3, &"UNKNOWN_PRODUCER_ID", start);
        stalls.failed_at("message-events", 3, &"timed out", start + Duration::from_secs(30));
        assert_eq!(stalls.stalled_at(start + Duration::from_secs(59)), None);
        assert_eq!(
            stalls.stalled_at(start + Duration::from_secs(61)).as_deref(),
            Some("message-events/3 acked no record for 61s (last error: timed out)")
        );
    }

    #[test]
    fn one_ack_clears_its_partition_only() {
        let stalls = Stalls::new(LIMIT);
        let start = Instant::now();
        stalls.failed_at("messages", 0, &"down", start);
        stalls.failed_at("messages", 1, &"down", start + Duration::from_secs(10));
        // Other partitions of the topic being fine does not hide a stuck one.
        stalls.acked("messages", 0);
        stalls.acked("messages", 2);
        stalls.failed_at("messages", 1, &"down", start + Duration::from_secs(50));
        let later = start + Duration::from_secs(65);
        assert_eq!(stalls.stalled_at(later), None, "messages/1 fails for 55s only");
        let stalled = stalls.stalled_at(later + Duration::from_secs(5)).unwrap();
        assert!(stalled.starts_with("messages/1 "), "{stalled}");
        stalls.acked("messages", 1);
        assert_eq!(stalls.stalled_at(later + Duration::from_secs(600)), None);
    }

    #[test]
    fn a_failure_long_ago_on_a_partition_sent_nothing_since_is_no_stall() {
        let stalls = Stalls::new(LIMIT);
        let start = Instant::now();
        stalls.failed_at("message-events", 5, &"timed out", start);
        assert_eq!(stalls.stalled_at(start + Duration::from_secs(90)), None);
        // It fails again: it has failed all along.
        stalls.failed_at("message-events", 5, &"timed out", start + Duration::from_secs(95));
        assert!(stalls.stalled_at(start + Duration::from_secs(96)).is_some());
    }
}
