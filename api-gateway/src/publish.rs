//! Handing an accepted message to Kafka: `messages` for the router and a
//! CREATED event on `message-events` for the watchers.
//!
//! The store already holds the message, so the caller is answered once the
//! records are in librdkafka's queue (which keeps their order) without
//! waiting for the broker's ack; a record that never reaches the broker is
//! counted here and re-published by the [reconciler](crate::reconcile).

use chat4all_kafka::{Delivery, KafkaError, Producer, hops, topics};
use chat4all_proto::v1::{self as pb, MessageEvent};
use chat4all_telemetry::{HopTracer, TraceContext};
use prost::Message as _;

const HOP: &str = "api-gateway";

/// How a message is queued.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Queue {
    /// Its CREATED event goes out too.
    pub(crate) announce: bool,
    /// The caller's SendMessageRequest.at_least_once. It travels on the
    /// record only: a message the reconciler re-publishes falls back to
    /// the default, never sending again after an ambiguous call.
    pub(crate) at_least_once: bool,
}

/// The `messages` key: the recipient, `platform:id`, as the sidecars key
/// `inbound`, so both directions of a platform conversation reach the same
/// router replica (its loop guard sees the whole loop; see the router's
/// `loop_guard`). A recipient is one platform conversation, so the order
/// that matters, a recipient's messages in the order accepted, is kept;
/// messages of one conversation id to several recipients are ordered per
/// recipient, which is all a platform can show anyway. Without a recipient
/// (the router refuses such a message) the conversation id.
pub(crate) fn messages_key(message: &pb::Message) -> String {
    match &message.recipient {
        Some(r) => format!("{}:{}", r.platform, r.id),
        None => message.conversation_id.clone(),
    }
}

/// Enqueues the message for the router, and its CREATED event when
/// `queue.announce`, each a hop under `parent`; returns the router record's
/// delivery.
pub(crate) async fn enqueue(
    producer: &Producer,
    tracer: &HopTracer,
    message: &pb::Message,
    parent: &TraceContext,
    queue: Queue,
) -> Result<Delivery, KafkaError> {
    let outbound = pb::OutboundMessage {
        message_id: message.id.clone(),
        conversation_id: message.conversation_id.clone(),
        recipient: message.recipient.clone(),
        text: message.text.clone(),
        accepted_at: message.created_at,
        at_least_once: queue.at_least_once,
    };
    let key = messages_key(message);
    let hop = hops::send(tracer, topics::MESSAGES, Some(parent), &message.id);
    let queued = producer
        .enqueue(
            topics::MESSAGES,
            &key,
            &outbound.encode_to_vec(),
            &hops::headers(&hop, &message.id),
        )
        .await?;
    drop(hop);
    if queue.announce {
        let event = MessageEvent {
            kind: pb::MessageEventKind::Created.into(),
            message_id: message.id.clone(),
            conversation_id: message.conversation_id.clone(),
            status: pb::DeliveryStatus::Accepted.into(),
            at: message.created_at,
            hop: HOP.to_owned(),
            message: Some(message.clone()),
            recipient: message.recipient.clone(),
        };
        let hop = hops::send(tracer, topics::MESSAGE_EVENTS, Some(parent), &message.id);
        let announced = producer
            .enqueue(
                topics::MESSAGE_EVENTS,
                &message.conversation_id,
                &event.encode_to_vec(),
                &hops::headers(&hop, &message.id),
            )
            .await?;
        // Watchers would miss one CREATED event; delivery is unaffected.
        watch_ack(announced, topics::MESSAGE_EVENTS, message.id.clone());
    }
    Ok(queued)
}

/// Counts and logs a record the broker never acked.
pub(crate) fn watch_ack(delivery: Delivery, topic: &'static str, message_id: String) {
    tokio::spawn(async move {
        if let Err(error) = delivery.acked().await {
            metrics::counter!("chat4all_produce_failures_total", "topic" => topic).increment(1);
            tracing::warn!(%error, %message_id, topic, "record not acked; the reconciler will re-publish it");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_keyed_by_recipient_as_inbound_is() {
        let message = pb::Message {
            conversation_id: "0190c4a6-channel".into(),
            recipient: Some(pb::Recipient {
                platform: "telegram".into(),
                id: "42".into(),
            }),
            ..Default::default()
        };
        // The sidecar keys an inbound record `{platform}:{vendor_channel_id}`.
        assert_eq!(messages_key(&message), "telegram:42");
        let nowhere = pb::Message {
            recipient: None,
            ..message
        };
        assert_eq!(messages_key(&nowhere), "0190c4a6-channel");
    }
}
