//! The status-consumer: applies every status update through the delivery
//! state machine (in the store) and announces what changed.
//!
//! A batch of `status-updates` becomes one `apply_transitions` call, so the
//! store commits once per batch; each applied or backfilled change is then
//! produced to `message-events` for the watchers. Updates of one message
//! come in partition order, since they share the conversation key.
//!
//! An update for a message the store does not know yet is never dropped:
//! it is put back on the topic with backoff and dead-lettered only after
//! the last attempt ([`retry`]).

pub mod cli;
pub mod retry;

use std::time::Duration;

use anyhow::Context as _;
use chat4all_domain::{DeliveryStatus, Platform};
use chat4all_kafka::{
    Announcements, BatchHandler, ConsumerSettings, DeadLetter, Delivery, HandlerError, KafkaArgs, Producer,
    ReadyFlag, Record, decode, hops, topics,
};
use chat4all_proto::v1 as pb;
use chat4all_store::{SharedStore, StatusChange, TransitionOutcome, TransitionResult};
use chat4all_telemetry::HopTracer;
use chat4all_telemetry::spans::attributes;
use futures::StreamExt as _;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::retry::{Next, RetryPolicy};

/// The status-consumer's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusConsumerConfig {
    /// Kafka consumer group of the status consumers.
    #[arg(
        long = "status-group",
        env = "CHAT4ALL_STATUS_GROUP",
        default_value = "status-consumer"
    )]
    pub group: String,
    /// How many more times an update for a message the store does not know
    /// yet is tried (put back on the topic) before it is dead-lettered.
    #[arg(
        long = "status-not-found-retries",
        env = "CHAT4ALL_STATUS_NOT_FOUND_RETRIES",
        default_value_t = RetryPolicy::default().attempts
    )]
    pub not_found_retries: u32,
    /// The delay before the first of those tries; each further one doubles
    /// it (1 s and 7 tries: about two minutes in all).
    #[arg(long = "status-not-found-delay", env = "CHAT4ALL_STATUS_NOT_FOUND_DELAY",
        value_parser = humantime::parse_duration, default_value = "1s")]
    pub not_found_delay: Duration,
}

impl Default for StatusConsumerConfig {
    fn default() -> Self {
        Self {
            group: "status-consumer".to_owned(),
            not_found_retries: RetryPolicy::default().attempts,
            not_found_delay: RetryPolicy::default().first_delay,
        }
    }
}

impl StatusConsumerConfig {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.not_found_retries,
            first_delay: self.not_found_delay,
        }
    }
}

/// The last instant a watermark covers. Meta's watermarks are whole
/// milliseconds and our SENT times are microseconds: a message sent in the
/// watermark's own millisecond (the platform acted on it at once) is
/// covered, not missed by the fraction of a millisecond its SENT is later.
fn watermark_end(watermark: chat4all_domain::Timestamp) -> chat4all_domain::Timestamp {
    let micros = watermark.as_micros();
    chat4all_domain::Timestamp::from_micros(micros - micros.rem_euclid(1000) + 999)
}

/// Watermark receipts of one batch resolved at once.
const WATERMARK_CONCURRENCY: usize = 16;

/// How long a stopping member finishes its batch in hand.
const DRAIN: Duration = Duration::from_secs(3);

/// Consumes until `shutdown`, then commits and flushes. `ready` is set once
/// the consumer has its partitions.
pub async fn run(
    config: &StatusConsumerConfig,
    kafka: &KafkaArgs,
    store: SharedStore,
    ready: ReadyFlag,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    register_series();
    // Applying a status update again is a repeat, so a batch cut short
    // by a stop is safe to redo.
    let main = ConsumerSettings::new(&config.group, &[topics::STATUS_UPDATES])
        .with_ready(ready)
        .with_drain(DRAIN);
    // The retry lane is a group of its own: its members wait for each
    // update's due time, which on `status-updates` would hold up every
    // update behind it (the chaos test saw echoes wait past their window
    // behind receipts put back 16 s).
    let retry_lane =
        ConsumerSettings::new(format!("{}-retry", config.group), &[topics::STATUS_RETRY]).with_drain(DRAIN);
    let tracer = chat4all_telemetry::spans::tracer("chat4all-status-consumer");
    let applier = |store: SharedStore, tracer: HopTracer| {
        let (retry, stopping) = (config.retry_policy(), shutdown.clone());
        move |producer| Applier {
            store,
            producer,
            tracer,
            retry,
            stopping,
        }
    };
    let (main, retried) = tokio::join!(
        chat4all_kafka::consume(
            kafka,
            main,
            applier(store.clone(), tracer.clone()),
            shutdown.clone()
        ),
        chat4all_kafka::consume(kafka, retry_lane, applier(store, tracer), shutdown.clone()),
    );
    main.context("consuming status-updates")?;
    retried.context("consuming status-updates.retry")
}

struct Applier {
    store: SharedStore,
    producer: Producer,
    tracer: HopTracer,
    retry: RetryPolicy,
    /// Ends the wait for a put-back update: a stopping member must not
    /// outlive its grace period waiting out a backoff (up to 16 s).
    stopping: CancellationToken,
}

/// What [`count_reached`] records, at 0 for every platform and status
/// from start-up: `increase()` over a series that appears at 1 misses its
/// first event (the first FAILED of a platform, say).
fn register_series() {
    for platform in Platform::ALL.map(Platform::as_str) {
        for status in DeliveryStatus::ALL {
            metrics::counter!("chat4all_messages_total", "platform" => platform, "status" => status.as_str())
                .increment(0);
        }
        // A histogram registered without a sample shows its zero buckets.
        let _ = metrics::histogram!("chat4all_accept_to_sent_seconds", "platform" => platform);
        let _ = metrics::histogram!("chat4all_accept_to_delivered_seconds", "platform" => platform);
    }
    for action in ["retried", "dead_lettered"] {
        metrics::counter!("chat4all_status_not_found_total", "action" => action).increment(0);
    }
}

/// Counts a message reaching a state, and for SENT and DELIVERED how long
/// after it was accepted (its id holds the accept time).
fn count_reached(result: &TransitionResult) {
    let (Some(status), Some(recipient)) = (result.current, &result.recipient) else {
        return;
    };
    let platform = recipient.platform.as_str();
    metrics::counter!("chat4all_messages_total", "platform" => platform, "status" => status.as_str())
        .increment(1);
    let histogram = match status {
        DeliveryStatus::Sent => "chat4all_accept_to_sent_seconds",
        DeliveryStatus::Delivered => "chat4all_accept_to_delivered_seconds",
        _ => return,
    };
    if let (Some(accepted), Some(at)) = (result.message_id.and_then(|id| id.generated_at()), result.at) {
        let seconds = at.micros_since(accepted) as f64 / 1e6;
        metrics::histogram!(histogram, "platform" => platform).record(seconds.max(0.0));
    }
}

/// A watermark receipt names no message, only a recipient and a time.
fn is_watermark(update: &pb::StatusUpdate) -> bool {
    update.watermark.is_some() && update.message_id.is_empty() && update.platform_message_id.is_empty()
}

/// Most messages one watermark moves on; a recipient with more awaiting
/// has the rest moved by the next watermark.
const WATERMARK_LIMIT: u32 = 500;

impl Applier {
    /// The changes a watermark receipt makes: one per message to its
    /// recipient SENT at or before it and short of its status, found in the
    /// store (any replica may have sent them). Err(reason) for an update no
    /// watermark can be; the outer error when the store did not answer.
    async fn covered_by(
        &self,
        update: &pb::StatusUpdate,
    ) -> Result<Result<Vec<StatusChange>, String>, HandlerError> {
        let status = match DeliveryStatus::from_proto(update.status) {
            Some(s @ (DeliveryStatus::Delivered | DeliveryStatus::Read)) => s,
            _ => return Ok(Err(format!("watermark receipt with status {}", update.status))),
        };
        let recipient = match update
            .platform
            .parse::<chat4all_domain::Platform>()
            .map_err(|e| e.to_string())
            .and_then(|p| chat4all_domain::Recipient::new(p, &update.recipient_id).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("watermark receipt: {e}"))),
        };
        let Some(watermark) = update.watermark else {
            return Ok(Err("watermark receipt without a watermark".to_owned()));
        };
        // Remembered first: a message whose SENT is stored after the look-up
        // below finds it when its SENT is applied (see `caught_up`).
        self.store
            .record_watermark(&recipient, status, watermark.into())
            .await
            .map_err(HandlerError::new)?;
        let ids = self
            .store
            .awaiting_receipt(
                &recipient,
                watermark_end(watermark.into()),
                status,
                WATERMARK_LIMIT,
            )
            .await
            .map_err(HandlerError::new)?;
        let at = chat4all_domain::convert::timestamp_or_now(update.at);
        let hop = if update.hop.is_empty() {
            chat4all_store::UNKNOWN_HOP.to_owned()
        } else {
            update.hop.clone()
        };
        Ok(Ok(ids
            .into_iter()
            .map(|id| StatusChange {
                message: chat4all_store::MessageRef::Id(id),
                status,
                at,
                hop: hop.clone(),
                platform_message_id: None,
                failure: None,
            })
            .collect()))
    }
}

impl Applier {
    /// What each watermark covers, in their order, several at once.
    async fn cover_all(
        &self,
        watermarks: Vec<pb::StatusUpdate>,
    ) -> Vec<Result<Result<Vec<StatusChange>, String>, HandlerError>> {
        futures::stream::iter(watermarks)
            .map(|update| async move { self.covered_by(&update).await })
            .buffered(WATERMARK_CONCURRENCY)
            .collect()
            .await
    }

    /// The receipts a message just SENT already has: the watermarks of its
    /// recipient recorded before its SENT was stored (the watermark's own
    /// look-up missed it), as status updates to apply next.
    async fn caught_up(&self, result: &TransitionResult) -> Result<Vec<pb::StatusUpdate>, HandlerError> {
        let (Some(recipient), Some(message_id), Some(sent_at)) =
            (&result.recipient, result.message_id, result.at)
        else {
            return Ok(Vec::new());
        };
        if result.current != Some(DeliveryStatus::Sent) || !recipient.platform.has_watermark_receipts() {
            return Ok(Vec::new());
        }
        let mut updates = Vec::new();
        for status in [DeliveryStatus::Delivered, DeliveryStatus::Read] {
            let up_to = self
                .store
                .watermark(recipient, status)
                .await
                .map_err(HandlerError::new)?;
            if up_to.is_some_and(|up_to| watermark_end(up_to) >= sent_at) {
                updates.push(pb::StatusUpdate {
                    message_id: message_id.to_string(),
                    conversation_id: result
                        .conversation_id
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    status: status.to_proto().into(),
                    at: Some(chat4all_domain::Timestamp::now().into()),
                    hop: WATERMARK_HOP.to_owned(),
                    platform: recipient.platform.as_str().to_owned(),
                    ..Default::default()
                });
            }
        }
        Ok(updates)
    }
}

/// The hop of a receipt a remembered watermark gave.
const WATERMARK_HOP: &str = "watermark";

/// A status update as the store takes it, or why it cannot be one: the
/// store's own conversion, the one its gRPC server applies too.
fn to_change(update: pb::StatusUpdate) -> Result<StatusChange, String> {
    StatusChange::try_from(update).map_err(|e| format!("bad status update: {e}"))
}

fn outcome_label(outcome: TransitionOutcome) -> &'static str {
    match outcome {
        TransitionOutcome::Applied => "applied",
        TransitionOutcome::Repeat => "repeat",
        TransitionOutcome::Backfilled => "backfilled",
        TransitionOutcome::Rejected => "rejected",
        TransitionOutcome::NotFound => "not_found",
        // Never a transition's outcome; named all the same.
        TransitionOutcome::Noted => "noted",
    }
}

impl BatchHandler for Applier {
    async fn handle(&self, batch: &[Record]) -> Result<Vec<DeadLetter>, HandlerError> {
        // A put-back update is due at its `retry-not-before`; what stands
        // behind it on the partition came later, so waits less than its delay.
        let wait = retry::wait_before(
            batch.iter().map(|r| &r.headers),
            retry::now_ms(),
            self.retry.longest_delay(),
        );
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // Nothing of the batch is done or committed: the partition's
                // next owner takes it from there.
                () = self.stopping.cancelled() => {
                    return Err(HandlerError::new("stopping while a put-back update waits"));
                }
            }
        }
        let mut dead = Vec::new();
        let mut changes = Vec::with_capacity(batch.len());
        let mut sources = Vec::with_capacity(batch.len());
        let updates: Vec<Result<pb::StatusUpdate, String>> = batch
            .iter()
            .map(|r| decode::<pb::StatusUpdate>(&r.payload))
            .collect();
        // Each watermark is a few store round trips: resolved at once, not
        // one after another (a batch of Messenger receipts, most of them
        // watermarks, took tens of seconds and held its partition's echoes
        // past their window). What each covers is used in batch order.
        let watermarks: Vec<pb::StatusUpdate> = updates
            .iter()
            .filter_map(|u| u.as_ref().ok().filter(|u| is_watermark(u)).cloned())
            .collect();
        let mut covered = self.cover_all(watermarks).await.into_iter();
        for ((index, record), update) in batch.iter().enumerate().zip(updates) {
            let mut hop = hops::process(&self.tracer, record);
            if let Ok(update) = &update
                && is_watermark(update)
            {
                let resolved = covered
                    .next()
                    .ok_or_else(|| HandlerError::new("a watermark went unresolved"))?;
                match resolved? {
                    Ok(covered) => {
                        hop.record(|| vec![attributes::status(update.status().as_str_name())]);
                        metrics::counter!("chat4all_watermark_messages_total", "platform" => update.platform.clone())
                            .increment(covered.len() as u64);
                        for change in covered {
                            changes.push(change);
                            sources.push((index, record, hops::process(&self.tracer, record)));
                        }
                    }
                    Err(reason) => {
                        hop.fail(reason.clone());
                        dead.push(DeadLetter { index, reason });
                    }
                }
                continue;
            }
            match update.and_then(to_change) {
                Ok(change) => {
                    hop.record(|| vec![attributes::status(change.status.as_str())]);
                    changes.push(change);
                    sources.push((index, record, hop));
                }
                Err(reason) => {
                    hop.fail(reason.clone());
                    dead.push(DeadLetter { index, reason });
                }
            }
        }
        if changes.is_empty() {
            return Ok(dead);
        }
        let hops: Vec<String> = changes.iter().map(|c| c.hop.clone()).collect();
        let results = self
            .store
            .apply_transitions(changes)
            .await
            .map_err(HandlerError::new)?;
        let mut announcements = Announcements::new(&self.producer, &self.tracer);
        let mut put_back = Vec::new();
        for ((result, (index, record, span)), hop) in results.iter().zip(&mut sources).zip(hops) {
            let status = result.current.map_or("unknown", DeliveryStatus::as_str);
            metrics::counter!("chat4all_transitions_total", "outcome" => outcome_label(result.outcome), "status" => status)
                .increment(1);
            span.record(|| {
                vec![chat4all_telemetry::spans::Attribute::new(
                    "chat4all.transition",
                    outcome_label(result.outcome),
                )]
            });
            if result.outcome == TransitionOutcome::Applied {
                count_reached(result);
            }
            if result.outcome == TransitionOutcome::NotFound {
                let done = record.headers.retry_attempt.unwrap_or(0);
                match self.retry.after(done) {
                    Next::Retry { attempt, delay } => {
                        tracing::info!(message_id = ?record.headers.message_id, trace_id = %span.trace_id(),
                            attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "status update for an unknown message, put back to try again");
                        put_back.push(self.put_back(record, attempt, delay).await?);
                    }
                    Next::GiveUp { reason } => {
                        metrics::counter!("chat4all_status_not_found_total", "action" => "dead_lettered")
                            .increment(1);
                        span.fail(reason.clone());
                        dead.push(DeadLetter {
                            index: *index,
                            reason,
                        });
                    }
                }
                continue;
            }
            if !matches!(
                result.outcome,
                TransitionOutcome::Applied | TransitionOutcome::Backfilled
            ) {
                continue;
            }
            for update in self.caught_up(result).await? {
                metrics::counter!("chat4all_watermark_caught_up_total", "platform" => update.platform.clone())
                    .increment(1);
                let headers = chat4all_kafka::hops::headers(
                    &chat4all_kafka::hops::send(
                        &self.tracer,
                        topics::STATUS_UPDATES,
                        Some(span.context()),
                        &update.message_id,
                    ),
                    &update.message_id,
                );
                put_back.push(
                    self.producer
                        .enqueue(
                            topics::STATUS_UPDATES,
                            &update.conversation_id,
                            &update.encode_to_vec(),
                            &headers,
                        )
                        .await
                        .map_err(HandlerError::new)?,
                );
            }
            let (Some(message_id), Some(conversation_id)) = (&result.message_id, &result.conversation_id)
            else {
                continue;
            };
            let event = pb::MessageEvent {
                kind: pb::MessageEventKind::StatusChanged.into(),
                message_id: message_id.to_string(),
                conversation_id: conversation_id.to_string(),
                status: result.current.map_or(0, |s| s.to_proto().into()),
                at: result.at.map(Into::into),
                hop,
                message: None,
                recipient: result.recipient.as_ref().map(pb::Recipient::from),
            };
            announcements
                .announce(&event, Some(span.context()))
                .await
                .map_err(HandlerError::new)?;
        }
        announcements.settle().await;
        // Durable before the batch's offsets are committed, or the batch is
        // tried again: then the applied updates are repeats, which are no-ops.
        for delivery in put_back {
            delivery.acked().await.map_err(HandlerError::new)?;
        }
        Ok(dead)
    }
}

impl Applier {
    /// Produces `record` again on the retry lane (same key), as try
    /// `attempt`, due after `delay`.
    async fn put_back(
        &self,
        record: &Record,
        attempt: u32,
        delay: Duration,
    ) -> Result<Delivery, HandlerError> {
        let headers = retry::put_back(&record.headers, attempt, delay, retry::now_ms());
        let key = record.key.as_deref().unwrap_or("");
        let delivery = self
            .producer
            .enqueue(topics::STATUS_RETRY, key, &record.payload, &headers)
            .await
            .map_err(HandlerError::new)?;
        metrics::counter!("chat4all_status_not_found_total", "action" => "retried").increment(1);
        Ok(delivery)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use chat4all_kafka::mock::MockKafka;
    use chat4all_kafka::{Producer, ReadyFlag, RecordHeaders};
    use chat4all_store_embedded::{EmbeddedOptions, EmbeddedStore};

    use super::*;

    /// A put-back update waits out its backoff in the handler; a member
    /// told to stop meanwhile stops at once and leaves the record to the
    /// partition's next owner, within any grace period.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopping_member_does_not_wait_out_a_put_back_updates_backoff() {
        let kafka = MockKafka::start(1).unwrap();
        kafka.create_topics(&chat4all_kafka::topics::all(), 1).unwrap();
        let args = kafka.args();
        let update = pb::StatusUpdate {
            message_id: chat4all_domain::MessageId::generate().to_string(),
            status: pb::DeliveryStatus::Delivered as i32,
            ..Default::default()
        };
        let due_late = retry::put_back(
            &RecordHeaders::default(),
            5,
            Duration::from_secs(16),
            retry::now_ms(),
        );
        Producer::new(&args, "test")
            .unwrap()
            .enqueue(topics::STATUS_UPDATES, "k", &update.encode_to_vec(), &due_late)
            .await
            .unwrap()
            .acked()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore =
            Arc::new(EmbeddedStore::open(&dir.path().join("s.db"), EmbeddedOptions::default()).unwrap());
        let shutdown = CancellationToken::new();
        let consumer = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                run(
                    &StatusConsumerConfig::default(),
                    &args,
                    store,
                    ReadyFlag::unwatched(),
                    shutdown,
                )
                .await
            }
        });
        // Time to be assigned the partition and take up the record.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let asked = std::time::Instant::now();
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the member waited out the backoff")
            .unwrap()
            .unwrap();
        assert!(asked.elapsed() < Duration::from_secs(5));
    }

    /// An update for a message not stored yet waits out its backoff on
    /// the retry lane, not on `status-updates`: the updates after it are
    /// applied at once, and it is applied when its message comes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_update_put_back_holds_up_none_behind_it() {
        use chat4all_store::NewMessage;
        let kafka = MockKafka::start(1).unwrap();
        kafka.create_topics(&chat4all_kafka::topics::all(), 1).unwrap();
        let args = kafka.args();
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore =
            Arc::new(EmbeddedStore::open(&dir.path().join("s.db"), EmbeddedOptions::default()).unwrap());
        let message = |text: &str| NewMessage {
            id: chat4all_domain::MessageId::generate(),
            conversation_id: "lane".parse().unwrap(),
            recipient: "whatsapp:15551234567".parse().unwrap(),
            text: text.to_owned(),
            source: chat4all_domain::SOURCE_API.to_owned(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
            created_at: chat4all_domain::Timestamp::now(),
            idempotency_key: None,
        };
        let (early, known) = (message("early"), message("known"));
        store.put_message(known.clone()).await.unwrap();
        let producer = Producer::new(&args, "test").unwrap();
        let routed = |id: chat4all_domain::MessageId| {
            pb::StatusUpdate {
                message_id: id.to_string(),
                status: pb::DeliveryStatus::Routed as i32,
                hop: "router".to_owned(),
                ..Default::default()
            }
            .encode_to_vec()
        };
        let shutdown = CancellationToken::new();
        let config = StatusConsumerConfig {
            not_found_delay: Duration::from_secs(4),
            ..StatusConsumerConfig::default()
        };
        let consumer = tokio::spawn({
            let (store, args, shutdown) = (store.clone(), args.clone(), shutdown.clone());
            async move { run(&config, &args, store, ReadyFlag::unwatched(), shutdown).await }
        });
        let status = |id: chat4all_domain::MessageId| {
            let store = store.clone();
            async move { store.get_message(id).await.unwrap().map(|m| m.status) }
        };
        let routed_within = |id, within: Duration| async move {
            let deadline = std::time::Instant::now() + within;
            while std::time::Instant::now() < deadline {
                if status(id).await == Some(pb::DeliveryStatus::Routed as i32) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        };
        let send = |payload: Vec<u8>| {
            let producer = producer.clone();
            async move {
                producer
                    .enqueue(
                        topics::STATUS_UPDATES,
                        "lane",
                        &payload,
                        &RecordHeaders::default(),
                    )
                    .await
                    .unwrap()
                    .acked()
                    .await
                    .unwrap();
            }
        };
        send(routed(early.id)).await;
        // Time for the consumer to join and put it back, due in 4 s.
        tokio::time::sleep(Duration::from_secs(3)).await;
        send(routed(known.id)).await;
        assert!(
            routed_within(known.id, Duration::from_secs(2)).await,
            "the update behind a put-back one waited"
        );
        store.put_message(early.clone()).await.unwrap();
        assert!(
            routed_within(early.id, Duration::from_secs(20)).await,
            "the put-back update was applied once its message came"
        );
        shutdown.cancel();
        consumer.await.unwrap().unwrap();
    }

    #[test]
    fn a_watermark_covers_the_whole_of_its_millisecond() {
        use chat4all_domain::Timestamp;
        let watermark = Timestamp::from_micros(1_700_000_000_123_000);
        assert_eq!(watermark_end(watermark).as_micros(), 1_700_000_000_123_999);
        // Sent 0.4 ms into the watermark's millisecond: covered.
        assert!(watermark_end(watermark) >= Timestamp::from_micros(1_700_000_000_123_400));
        assert!(watermark_end(watermark) < Timestamp::from_micros(1_700_000_000_124_000));
    }

    // Each case of the conversion is pinned in chat4all-store; here only
    // that a refusal reaches the dead letter with its reason.
    #[test]
    fn a_malformed_update_is_refused_with_its_reason() {
        let no_status = pb::StatusUpdate {
            message_id: chat4all_domain::MessageId::generate().to_string(),
            ..Default::default()
        };
        assert_eq!(
            to_change(no_status).unwrap_err(),
            "bad status update: status: 0 is not a delivery status"
        );
    }
}
