//! What a group member's librdkafka context reports: consumer lag per
//! topic, from librdkafka's own statistics (each partition this member
//! holds reports how far its position is behind the high watermark, and
//! the gauge is their sum per topic), and its first assignment, which
//! makes the member ready ([`crate::ready`]); and, from the same
//! statistics, whether it is wedged ([`crate::leaders`]).

use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::Statistics;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};

use crate::ReadyFlag;
use crate::leaders::LeaderWatch;

/// How often librdkafka reports, in milliseconds.
pub(crate) const STATISTICS_INTERVAL_MS: &str = "5000";

pub(crate) struct LagContext {
    group: String,
    assigned: ReadyFlag,
    leaders: Arc<LeaderWatch>,
}

impl LagContext {
    pub(crate) fn new(group: &str, assigned: ReadyFlag, leaders: Arc<LeaderWatch>) -> Self {
        Self {
            group: group.to_owned(),
            assigned,
            leaders,
        }
    }
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        self.leaders.observe(&statistics);
        for (topic, stats) in &statistics.topics {
            let lag: i64 = stats
                .partitions
                .values()
                // -1: not fetched yet, or the internal "unassigned" partition.
                .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                .map(|p| p.consumer_lag)
                .sum();
            metrics::gauge!("chat4all_consumer_lag_records", "group" => self.group.clone(), "topic" => topic.clone())
                .set(lag as f64);
        }
    }
}

impl ConsumerContext for LagContext {
    // Runs on the thread polling the consumer, after librdkafka applied the
    // assignment: the member fetches from here on.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(group = %self.group, partitions = partitions.count(), "partitions assigned");
            self.assigned.set();
        }
    }
}
