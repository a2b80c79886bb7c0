//! Consumer lag per topic, from librdkafka's own statistics: each partition
//! this member holds reports how far its position is behind the high
//! watermark, and the gauge is their sum per topic.

use rdkafka::ClientContext;
use rdkafka::Statistics;
use rdkafka::consumer::ConsumerContext;

/// How often librdkafka reports, in milliseconds.
pub(crate) const STATISTICS_INTERVAL_MS: &str = "5000";

pub(crate) struct LagContext {
    group: String,
}

impl LagContext {
    pub(crate) fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
        }
    }
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
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

impl ConsumerContext for LagContext {}
