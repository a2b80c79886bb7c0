//! What a group member's librdkafka context reports: consumer lag per
//! topic, from librdkafka's own statistics (each partition this member
//! holds reports how far its position is behind the high watermark, and
//! the gauge is their sum per topic), and its first assignment, which
//! makes the member ready ([`crate::ready`]), and each assignment's share
//! of every topic ([`crate::assignment`]); and, from the same statistics,
//! whether it is wedged ([`crate::leaders`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::Statistics;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};

use crate::assignment::{Assignment, Share};
use crate::leaders::LeaderWatch;
use crate::{AssignmentWatch, ReadyFlag};

/// How often librdkafka reports, in milliseconds.
pub(crate) const STATISTICS_INTERVAL_MS: &str = "5000";

pub(crate) struct LagContext {
    group: String,
    assigned: ReadyFlag,
    leaders: Arc<LeaderWatch>,
    /// Where to report each assignment, and the topics subscribed.
    shares: Option<(AssignmentWatch, Vec<String>)>,
}

impl LagContext {
    pub(crate) fn new(
        group: &str,
        assigned: ReadyFlag,
        leaders: Arc<LeaderWatch>,
        shares: Option<(AssignmentWatch, Vec<String>)>,
    ) -> Self {
        Self {
            group: group.to_owned(),
            assigned,
            leaders,
            shares,
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
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(group = %self.group, partitions = partitions.count(), "partitions assigned");
            self.assigned.set();
            // A revocation is not reported: with the eager range assignor an
            // assignment follows at once, and a batch in hand still drains.
            if let Some((watch, topics)) = &self.shares {
                let assignment: Assignment = topics
                    .iter()
                    .map(|topic| {
                        let share = Share {
                            owned: partitions.elements_for_topic(topic).len(),
                            total: partition_count(consumer, topic),
                        };
                        (topic.clone(), share)
                    })
                    .collect();
                tracing::info!(group = %self.group, ?assignment, "share of each topic");
                watch.report(assignment);
            }
        }
    }
}

/// How many partitions `topic` has, from the cluster's metadata; 0 when
/// it cannot be had. Blocks the polling thread briefly, once a rebalance.
fn partition_count(consumer: &BaseConsumer<LagContext>, topic: &str) -> usize {
    match consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
        Ok(metadata) => metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len()),
        Err(error) => {
            tracing::warn!(topic, %error, "partition count unknown");
            0
        }
    }
}
