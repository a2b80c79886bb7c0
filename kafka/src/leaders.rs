//! Whether a consumer's librdkafka still knows where its partitions live.
//!
//! librdkafka keeps the highest leader epoch it has seen per partition and
//! ignores metadata carrying a lower one. A broker that comes back empty
//! recreates every topic at leader epoch 0, so a consumer that lived
//! through the incident (and cached epoch 1 or more) ignores the new
//! topics' leaders for good: its partitions stay leaderless, nothing is
//! fetched, and no error reaches the application, though the broker is up
//! and answers its metadata requests. Only a new librdkafka consumer gets
//! out of that, so an assigned partition that has had no leader for the
//! stall limit while a broker is up marks the consumer as wedged, and the
//! consumer loop replaces it.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::Statistics;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub(crate) struct LeaderWatch {
    limit: Duration,
    /// Since when some assigned partition has been leaderless with a broker
    /// up, and which one.
    since: Mutex<Option<(Instant, String)>>,
    /// Cancelled once the consumer is wedged.
    wedged: CancellationToken,
}

impl LeaderWatch {
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            limit,
            since: Mutex::new(None),
            wedged: CancellationToken::new(),
        }
    }

    /// Cancelled once the consumer is wedged.
    pub(crate) fn wedged(&self) -> CancellationToken {
        self.wedged.clone()
    }

    pub(crate) fn observe(&self, statistics: &Statistics) {
        self.observe_at(leaderless(statistics), Instant::now());
    }

    fn observe_at(&self, leaderless: Option<String>, now: Instant) {
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(partition) = leaderless else {
            *since = None;
            return;
        };
        let (first, _) = since.get_or_insert((now, partition.clone()));
        if now.duration_since(*first) >= self.limit && !self.wedged.is_cancelled() {
            tracing::error!(
                %partition,
                limit = ?self.limit,
                "an assigned partition has had no leader though a broker is up (the topic was \
                 recreated at a lower leader epoch, which librdkafka ignores): replacing the consumer"
            );
            self.wedged.cancel();
        }
    }
}

/// The first assigned partition without a leader, if a broker is up (with
/// every broker down, no leader is expected and librdkafka recovers alone).
fn leaderless(statistics: &Statistics) -> Option<String> {
    let broker_up = statistics
        .brokers
        .values()
        .any(|b| b.nodeid >= 0 && b.state == "UP");
    if !broker_up {
        return None;
    }
    statistics.topics.iter().find_map(|(topic, stats)| {
        stats
            .partitions
            .values()
            // -1 is librdkafka's internal "unassigned" partition.
            .find(|p| p.partition >= 0 && p.desired && p.leader < 0)
            .map(|p| format!("{topic}[{}]", p.partition))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stats(broker_state: &str, leader: i32) -> Statistics {
        use rdkafka::statistics::{Broker, Partition, Topic};
        let partition = |partition, leader, desired| {
            (
                partition,
                Partition {
                    partition,
                    leader,
                    desired,
                    ..Partition::default()
                },
            )
        };
        let broker = Broker {
            nodeid: 1,
            state: broker_state.to_owned(),
            ..Broker::default()
        };
        let topic = Topic {
            topic: "messages".to_owned(),
            partitions: [
                partition(0, 1, true),
                partition(1, leader, true),
                partition(-1, -1, false),
            ]
            .into(),
            ..Topic::default()
        };
        Statistics {
            brokers: [("b".to_owned(), broker)].into(),
            topics: [("messages".to_owned(), topic)].into(),
            ..Statistics::default()
        }
    }

    #[test]
    fn a_partition_without_a_leader_counts_only_while_a_broker_is_up() {
        assert_eq!(leaderless(&stats("UP", -1)).as_deref(), Some("messages[1]"));
        assert_eq!(leaderless(&stats("UP", 1)), None);
        assert_eq!(leaderless(&stats("DOWN", -1)), None);
    }

    #[test]
    fn the_consumer_is_wedged_once_the_partition_stayed_leaderless_for_the_limit() {
        let watch = LeaderWatch::new(Duration::from_secs(10));
        let start = Instant::now();
        let leaderless = || Some("messages[1]".to_owned());
        watch.observe_at(leaderless(), start);
        watch.observe_at(leaderless(), start + Duration::from_secs(9));
        assert!(!watch.wedged().is_cancelled());
        // A leader found meanwhile starts the clock again.
        watch.observe_at(None, start + Duration::from_secs(9));
        watch.observe_at(leaderless(), start + Duration::from_secs(12));
        assert!(!watch.wedged().is_cancelled());
        watch.observe_at(leaderless(), start + Duration::from_secs(22));
        assert!(watch.wedged().is_cancelled());
    }
}
