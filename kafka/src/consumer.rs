//! The batch consumer loop every service runs.
//!
//! Records are taken in batches (up to `max_batch`, or what arrives within
//! `linger` of the first), so a handler can write the store once and produce
//! many records before one ack wait. Offsets are stored only after the
//! handler returned, i.e. after its effect is durable, and committed by
//! librdkafka in the background and once more at shutdown: at-least-once,
//! with handlers idempotent. A handler error (store down) retries the same
//! batch with backoff; nothing is skipped. A record the handler cannot use
//! goes to `<topic>.dlq` with the reason, and the loop moves on. A member
//! whose librdkafka is wedged ([`crate::leaders`]) is replaced by a new one,
//! which consumes again what the old one had not committed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};

use crate::lag::LagContext;
use crate::leaders::LeaderWatch;
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

use crate::{KafkaArgs, KafkaError, Producer, ReadyFlag, RecordHeaders, topics};

/// A record as handlers see it, owned.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: RecordHeaders,
}

impl Record {
    pub(crate) fn from_message(m: &BorrowedMessage<'_>) -> Self {
        Self {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m
                .key()
                .and_then(|k| std::str::from_utf8(k).ok())
                .map(str::to_owned),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers: RecordHeaders::from_kafka(m.headers()),
        }
    }
}

/// A record to set aside, and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Index of the record in the batch.
    pub index: usize,
    pub reason: String,
}

/// The handler could not do its work now (a dependency is down); the batch
/// is retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// What a service does with a batch of records. Records of one partition
/// come in offset order; a handler keeps that order per key.
pub trait BatchHandler: Send + Sync {
    fn handle(&self, batch: &[Record]) -> impl Future<Output = Result<Vec<DeadLetter>, HandlerError>> + Send;
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub group_id: String,
    pub topics: Vec<String>,
    pub max_batch: usize,
    pub linger: Duration,
    /// Set on the member's first assignment.
    pub ready: ReadyFlag,
    /// Told the member's share of each topic after every rebalance.
    pub assignment: Option<crate::AssignmentWatch>,
    /// How long a stopping member lets the batch in hand finish before it
    /// drops it, uncommitted, for the partition's next owner; `None` waits
    /// for it. Only for handlers whose work is safe to redo from any
    /// point (store writes that are idempotent): a batch of a few hundred
    /// store round trips on a loaded store outlasts a pod's grace period.
    pub drain: Option<Duration>,
}

impl ConsumerSettings {
    pub fn new(group_id: impl Into<String>, topics: &[&str]) -> Self {
        Self {
            group_id: group_id.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            max_batch: 500,
            linger: Duration::from_millis(2),
            ready: ReadyFlag::unwatched(),
            assignment: None,
            drain: None,
        }
    }

    /// Drops the batch in hand `drain` after shutdown (see [`Self::drain`]).
    pub fn with_drain(self, drain: Duration) -> Self {
        Self {
            drain: Some(drain),
            ..self
        }
    }

    /// Reports the member's first assignment on `ready`.
    pub fn with_ready(self, ready: ReadyFlag) -> Self {
        Self { ready, ..self }
    }

    /// Reports the member's share of each topic on `assignment`, after
    /// every rebalance.
    pub fn with_assignment(self, assignment: crate::AssignmentWatch) -> Self {
        Self {
            assignment: Some(assignment),
            ..self
        }
    }
}

/// Runs one consumer-group service until `shutdown`: a producer for what
/// the service produces (and its dead letters), a member of
/// `settings.group_id` on `settings.topics`, and the handler `make` builds
/// on that producer. Flushes the producer once the consumer has committed.
pub async fn consume<H: BatchHandler>(
    args: &KafkaArgs,
    settings: ConsumerSettings,
    make: impl FnOnce(Producer) -> H,
    shutdown: CancellationToken,
) -> Result<(), KafkaError> {
    let producer = Producer::new(args, &settings.group_id)?;
    let handler = make(producer.clone());
    loop {
        let consumer = BatchConsumer::new(args, settings.clone(), producer.clone())?;
        match consumer.run(&handler, shutdown.clone()).await {
            Ended::Shutdown => break,
            Ended::Wedged(consumer) => {
                metrics::counter!("chat4all_kafka_consumer_renewals_total", "group" => settings.group_id.clone())
                    .increment(1);
                // Leaving the group and joining librdkafka's threads blocks.
                let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
            }
        }
    }
    producer.flush(Duration::from_secs(10)).await
}

/// Why [`BatchConsumer::run`] returned.
pub(crate) enum Ended {
    /// Shutdown was asked for; the consumer committed and is gone.
    Shutdown,
    /// The librdkafka consumer is wedged: drop it (off the runtime) and
    /// make a new one.
    Wedged(StreamConsumer<LagContext>),
}

/// The settings of every group member.
///
/// The range assignor, named rather than left to librdkafka's default
/// list: for topics of equal partition count it gives partition *i* of each
/// topic the group subscribes to to the same member, so records keyed alike
/// on two topics (the router's `messages` and `inbound`, both keyed by the
/// platform conversation) meet in one replica. Members that still offer
/// librdkafka's default (`range,roundrobin`) agree on range with these.
pub fn group_member_config(args: &KafkaArgs, group_id: &str) -> rdkafka::ClientConfig {
    let mut config = args.consumer_config(group_id);
    config
        .set("group.id", group_id)
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        // Offsets are stored by hand, after the effect is durable.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000");
    config
}

/// A consumer group member, created and subscribed.
pub(crate) struct BatchConsumer {
    consumer: StreamConsumer<LagContext>,
    settings: ConsumerSettings,
    dead_letters: Producer,
    wedged: CancellationToken,
}

impl BatchConsumer {
    pub(crate) fn new(
        args: &KafkaArgs,
        settings: ConsumerSettings,
        dead_letters: Producer,
    ) -> Result<Self, KafkaError> {
        let leaders = Arc::new(LeaderWatch::new(Duration::from_secs(args.stall_secs)));
        let wedged = leaders.wedged();
        let consumer: StreamConsumer<LagContext> = group_member_config(args, &settings.group_id)
            .set("statistics.interval.ms", crate::lag::STATISTICS_INTERVAL_MS)
            .create_with_context(LagContext::new(
                &settings.group_id,
                settings.ready.clone(),
                leaders,
                settings
                    .assignment
                    .clone()
                    .map(|watch| (watch, settings.topics.clone())),
            ))?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        // At 0 from the start: `increase()` over a series that appears at 1
        // misses its first event.
        for topic in &settings.topics {
            metrics::counter!("chat4all_dead_letters_total", "topic" => topic.clone()).increment(0);
            metrics::counter!("chat4all_consumed_records_total", "topic" => topic.clone()).increment(0);
        }
        metrics::counter!("chat4all_consumer_batch_retries_total", "group" => settings.group_id.clone())
            .increment(0);
        metrics::counter!("chat4all_kafka_consumer_renewals_total", "group" => settings.group_id.clone())
            .increment(0);
        Ok(Self {
            consumer,
            settings,
            dead_letters,
            wedged,
        })
    }

    /// Runs until `shutdown` (finishes the batch in hand, commits, returns)
    /// or until librdkafka is wedged (between batches; returns the consumer
    /// uncommitted, for its records to be consumed again by the next).
    pub(crate) async fn run<H: BatchHandler>(self, handler: &H, shutdown: CancellationToken) -> Ended {
        let Self {
            consumer,
            settings,
            dead_letters,
            wedged,
        } = self;
        let group = settings.group_id.clone();
        let mut stream = consumer.stream();
        let mut batch: Vec<Record> = Vec::with_capacity(settings.max_batch);
        'outer: loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => break,
                () = wedged.cancelled() => {
                    drop(stream);
                    return Ended::Wedged(consumer);
                }
                next = stream.next() => next,
            };
            match first {
                Some(Ok(m)) => batch.push(Record::from_message(&m)),
                Some(Err(error)) => {
                    tracing::warn!(%group, %error, "kafka consume error");
                    continue;
                }
                None => break,
            }
            let deadline = tokio::time::Instant::now() + settings.linger;
            while batch.len() < settings.max_batch {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(Ok(m))) => batch.push(Record::from_message(&m)),
                    Ok(Some(Err(error))) => tracing::warn!(%group, %error, "kafka consume error"),
                    Ok(None) | Err(_) => break,
                }
            }
            metrics::histogram!("chat4all_consumer_batch_records", "group" => group.clone())
                .record(batch.len() as f64);

            let mut backoff = Duration::from_millis(50);
            let dead = loop {
                let handled = tokio::select! {
                    handled = handler.handle(&batch) => handled,
                    () = drained(&shutdown, settings.drain) => {
                        tracing::warn!(%group, records = batch.len(), "stopped mid-batch; left uncommitted for the next owner");
                        break 'outer;
                    }
                };
                match handled {
                    Ok(dead) => break dead,
                    Err(error) => {
                        // The handler produces on this producer too: a
                        // failed one is replaced, and the batch retried on
                        // the new one.
                        match dead_letters.renew_if_failed() {
                            Ok(Some(_)) => backoff = Duration::from_millis(50),
                            Ok(None) => {}
                            Err(renew) => {
                                tracing::error!(%group, %renew, "could not replace the Kafka producer")
                            }
                        }
                        metrics::counter!("chat4all_consumer_batch_retries_total", "group" => group.clone())
                            .increment(1);
                        tracing::warn!(%group, %error, records = batch.len(), "batch failed, retrying");
                        tokio::select! {
                            // Not committed: the batch is consumed again after restart.
                            () = shutdown.cancelled() => break 'outer,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            };
            if !dead.is_empty() && !send_dead_letters(&dead_letters, &batch, &dead, &group, &shutdown).await {
                break;
            }
            store_offsets(&consumer, &batch, &group);
            for r in &batch {
                metrics::counter!("chat4all_consumed_records_total", "topic" => r.topic.clone()).increment(1);
            }
            batch.clear();
        }
        if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing consumed yet, or partitions revoked: nothing to lose.
            tracing::debug!(%group, %error, "final commit");
        }
        tracing::info!(%group, "consumer stopped");
        Ended::Shutdown
    }
}

/// Resolves `drain` after shutdown; never without a drain bound.
async fn drained(shutdown: &CancellationToken, drain: Option<Duration>) {
    match drain {
        Some(drain) => {
            shutdown.cancelled().await;
            tokio::time::sleep(drain).await;
        }
        None => std::future::pending().await,
    }
}

/// The highest offset of each partition in the batch, stored for commit.
fn store_offsets(consumer: &StreamConsumer<LagContext>, batch: &[Record], group: &str) {
    let mut highest: HashMap<(&str, i32), i64> = HashMap::new();
    for r in batch {
        let e = highest.entry((r.topic.as_str(), r.partition)).or_insert(r.offset);
        *e = (*e).max(r.offset);
    }
    for ((topic, partition), offset) in highest {
        if let Err(error) = consumer.store_offset(topic, partition, offset) {
            // The partition was revoked meanwhile: its new owner redoes the
            // records, which handlers tolerate.
            tracing::debug!(%group, topic, partition, %error, "offset not stored");
        }
    }
}

/// Produces the dead letters; false if shutdown came first.
async fn send_dead_letters(
    producer: &Producer,
    batch: &[Record],
    dead: &[DeadLetter],
    group: &str,
    shutdown: &CancellationToken,
) -> bool {
    for letter in dead {
        let Some(record) = batch.get(letter.index) else {
            continue;
        };
        let dlq = topics::dead_letter(&record.topic);
        let headers = RecordHeaders {
            dlq_reason: Some(letter.reason.clone()),
            ..record.headers.clone()
        };
        let key = record.key.as_deref().unwrap_or("");
        tracing::warn!(%group, topic = %record.topic, partition = record.partition, offset = record.offset,
            reason = %letter.reason, "record sent to dead-letter topic");
        let mut backoff = Duration::from_millis(50);
        loop {
            match producer.send(&dlq, key, &record.payload, &headers).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%group, %error, %dlq, "dead letter not produced, retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return false,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        metrics::counter!("chat4all_dead_letters_total", "topic" => record.topic.clone()).increment(1);
    }
    true
}
