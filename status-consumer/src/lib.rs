//! The status-consumer: applies every status update through the delivery
//! state machine (in the store) and announces what changed.
//!
//! A batch of `status-updates` becomes one `apply_transitions` call, so the
//! store commits once per batch; each applied or backfilled change is then
//! produced to `message-events` for the watchers. Updates of one message
//! come in partition order, since they share the conversation key.

pub mod cli;

use anyhow::Context as _;
use chat4all_domain::{DeliveryStatus, MessageId, Platform, Timestamp};
use chat4all_kafka::{
    Announcements, BatchHandler, ConsumerSettings, DeadLetter, HandlerError, KafkaArgs, Producer, ReadyFlag,
    Record, decode, hops, topics,
};
use chat4all_proto::v1 as pb;
use chat4all_store::{MessageRef, SharedStore, StatusChange, TransitionOutcome, TransitionResult};
use chat4all_telemetry::HopTracer;
use chat4all_telemetry::spans::attributes;
use tokio_util::sync::CancellationToken;

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
}

impl Default for StatusConsumerConfig {
    fn default() -> Self {
        Self {
            group: "status-consumer".to_owned(),
        }
    }
}

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
    let settings = ConsumerSettings::new(&config.group, &[topics::STATUS_UPDATES]).with_ready(ready);
    let tracer = chat4all_telemetry::spans::tracer("chat4all-status-consumer");
    let make = |producer| Applier {
        store,
        producer,
        tracer,
    };
    chat4all_kafka::consume(kafka, settings, make, shutdown)
        .await
        .context("consuming status-updates")
}

struct Applier {
    store: SharedStore,
    producer: Producer,
    tracer: HopTracer,
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

/// A status update as the store takes it, or why it cannot be one.
fn to_change(update: pb::StatusUpdate) -> Result<StatusChange, String> {
    let status = DeliveryStatus::from_proto(update.status)
        .ok_or_else(|| format!("status {} is not a delivery status", update.status))?;
    let message = if !update.message_id.is_empty() {
        MessageRef::Id(
            update
                .message_id
                .parse::<MessageId>()
                .map_err(|e| e.to_string())?,
        )
    } else if !update.platform_message_id.is_empty() {
        let platform = update.platform.parse::<Platform>().map_err(|e| e.to_string())?;
        MessageRef::External {
            platform,
            external_id: update.platform_message_id.clone(),
        }
    } else {
        return Err("status update names neither message_id nor platform_message_id".to_owned());
    };
    Ok(StatusChange {
        message,
        status,
        at: update.at.map_or_else(Timestamp::now, Timestamp::from),
        hop: if update.hop.is_empty() {
            "unknown".to_owned()
        } else {
            update.hop
        },
        platform_message_id: (!update.platform_message_id.is_empty()).then_some(update.platform_message_id),
        failure: update.failure,
    })
}

fn outcome_label(outcome: TransitionOutcome) -> &'static str {
    match outcome {
        TransitionOutcome::Applied => "applied",
        TransitionOutcome::Repeat => "repeat",
        TransitionOutcome::Backfilled => "backfilled",
        TransitionOutcome::Rejected => "rejected",
        TransitionOutcome::NotFound => "not_found",
    }
}

impl BatchHandler for Applier {
    async fn handle(&self, batch: &[Record]) -> Result<Vec<DeadLetter>, HandlerError> {
        let mut dead = Vec::new();
        let mut changes = Vec::with_capacity(batch.len());
        let mut sources = Vec::with_capacity(batch.len());
        for (index, record) in batch.iter().enumerate() {
            let mut hop = hops::process(&self.tracer, record);
            match decode::<pb::StatusUpdate>(&record.payload).and_then(to_change) {
                Ok(change) => {
                    hop.record(|| vec![attributes::status(change.status.as_str())]);
                    changes.push(change);
                    sources.push((record, hop));
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
        for ((result, (record, span)), hop) in results.iter().zip(&mut sources).zip(hops) {
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
                tracing::warn!(message_id = ?record.headers.message_id, trace_id = %span.trace_id(),
                    "status update for an unknown message");
            }
            if !matches!(
                result.outcome,
                TransitionOutcome::Applied | TransitionOutcome::Backfilled
            ) {
                continue;
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
        Ok(dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_updates_are_refused_with_a_reason() {
        let ok = pb::StatusUpdate {
            message_id: MessageId::generate().to_string(),
            status: pb::DeliveryStatus::Sent.into(),
            ..Default::default()
        };
        assert!(to_change(ok.clone()).is_ok());
        let bad_status = pb::StatusUpdate {
            status: 0,
            ..ok.clone()
        };
        assert!(
            to_change(bad_status)
                .unwrap_err()
                .contains("not a delivery status")
        );
        let no_id = pb::StatusUpdate {
            message_id: String::new(),
            ..ok.clone()
        };
        assert!(to_change(no_id).unwrap_err().contains("neither"));
        let external = pb::StatusUpdate {
            message_id: String::new(),
            platform: "whatsapp".into(),
            platform_message_id: "wamid.1".into(),
            ..ok
        };
        assert!(matches!(
            to_change(external).map(|c| c.message),
            Ok(MessageRef::External { .. })
        ));
    }
}
