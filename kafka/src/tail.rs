//! Reading a topic from its end, outside any consumer group: every
//! api-gateway replica sees every `message-events` record (the broadcast to
//! watchers), and nothing is committed because a watcher only wants what
//! happens from now on. Partitions are assigned directly, so there is no
//! group join to wait for.

use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::consumer::Record;
use crate::{KafkaArgs, KafkaError};

/// How long a starting gateway waits for the topic's partitions to settle.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// A consumer assigned to the end of every partition of one topic.
pub struct TailConsumer {
    consumer: StreamConsumer,
}

impl TailConsumer {
    pub async fn new(args: &KafkaArgs, topic: &str, client_id: &str) -> Result<Self, KafkaError> {
        let config = args
            .consumer_config(client_id)
            .set("group.id", client_id)
            .set("enable.auto.commit", "false")
            .clone();
        let topic = topic.to_owned();
        // A broker that has just created the topic may not have elected its
        // partitions' leader yet (NotLeaderForPartition): it settles within
        // seconds, so look again for a while before giving up.
        let deadline = tokio::time::Instant::now() + SETTLE_WITHIN;
        let mut backoff = Duration::from_millis(100);
        loop {
            match Self::assigned_at_end(config.clone(), topic.clone()).await {
                Ok(tail) => return Ok(tail),
                Err(error) if tokio::time::Instant::now() + backoff < deadline => {
                    tracing::info!(%topic, %error, "cannot read the topic's end yet; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn assigned_at_end(config: rdkafka::ClientConfig, topic: String) -> Result<Self, KafkaError> {
        // Metadata look-up blocks: off the runtime's workers.
        tokio::task::spawn_blocking(move || {
            let consumer: StreamConsumer = config.create()?;
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            // The end as of now, read here: `Offset::End` would be resolved
            // only when the partition's first fetch goes out, and a record
            // appended before that, such as a message's CREATED right after
            // a watcher subscribed, would be skipped.
            let mut assignment = TopicPartitionList::new();
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (_, high) = consumer.fetch_watermarks(&topic, p.id(), Duration::from_secs(10))?;
                    assignment.add_partition_offset(&topic, p.id(), Offset::Offset(high))?;
                }
            }
            consumer.assign(&assignment)?;
            Ok(Self { consumer })
        })
        .await
        .map_err(|_| KafkaError::Canceled)?
    }

    /// Hands every record to `on_record` until `shutdown`.
    pub async fn run(self, mut on_record: impl FnMut(Record) + Send, shutdown: CancellationToken) {
        let mut stream = self.consumer.stream();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = stream.next() => next,
            };
            match next {
                Some(Ok(m)) => on_record(Record::from_message(&m)),
                Some(Err(error)) => tracing::warn!(%error, "tail consume error"),
                None => break,
            }
        }
    }
}
