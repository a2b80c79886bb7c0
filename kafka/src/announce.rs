//! Announcing to `message-events`, what the gateway's watchers see.
//!
//! An announcement follows an effect that is durable already (a stored
//! message, an applied transition): a lost one costs a watcher one update,
//! which ListMessages still shows, so it is logged and never fails the
//! batch that made it.

use chat4all_proto::v1::MessageEvent;
use chat4all_telemetry::{HopTracer, TraceContext};
use prost::Message as _;

use crate::{Delivery, KafkaError, Producer, hops, topics};

/// The announcements of one batch, enqueued in order, settled together.
pub struct Announcements<'a> {
    producer: &'a Producer,
    tracer: &'a HopTracer,
    pending: Vec<Delivery>,
}

impl<'a> Announcements<'a> {
    pub fn new(producer: &'a Producer, tracer: &'a HopTracer) -> Self {
        Self {
            producer,
            tracer,
            pending: Vec::new(),
        }
    }

    /// Enqueues the event, keyed by its conversation, as a hop of the
    /// message's trace (`parent`: the hop that made the event).
    pub async fn announce(
        &mut self,
        event: &MessageEvent,
        parent: Option<&TraceContext>,
    ) -> Result<(), KafkaError> {
        let hop = hops::send(self.tracer, topics::MESSAGE_EVENTS, parent, &event.message_id);
        let delivery = self
            .producer
            .enqueue(
                topics::MESSAGE_EVENTS,
                &event.conversation_id,
                &event.encode_to_vec(),
                &hops::headers(&hop, &event.message_id),
            )
            .await?;
        self.pending.push(delivery);
        Ok(())
    }

    /// Waits for every ack; failures are logged, not returned.
    pub async fn settle(self) {
        for delivery in self.pending {
            if let Err(error) = delivery.acked().await {
                metrics::counter!("chat4all_produce_failures_total", "topic" => topics::MESSAGE_EVENTS)
                    .increment(1);
                tracing::warn!(%error, "message-events produce failed");
            }
        }
    }
}
