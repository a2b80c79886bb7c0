//! Outbound routing: `messages` → ROUTED on `status-updates` (acked) →
//! `<platform>-outbound`.

use chat4all_domain::{DeliveryStatus, Platform, Timestamp};
use chat4all_kafka::{DeadLetter, HandlerError, Producer, Record, decode, hops, topics};
use chat4all_proto::v1 as pb;
use chat4all_telemetry::HopTracer;
use chat4all_telemetry::spans::attributes;
use prost::Message as _;

use crate::loop_guard::{Direction, LoopGuard, Verdict, vendor_key};

const HOP: &str = "router";

/// Where one record goes.
enum Route {
    To {
        topic: String,
        platform: Platform,
        message: pb::OutboundMessage,
    },
    Unroutable {
        message: pb::OutboundMessage,
        reason: String,
    },
    /// The loop guard holds its conversation: not sent.
    Held { message: pb::OutboundMessage },
}

fn route(message: pb::OutboundMessage) -> Route {
    let platform = message.recipient.as_ref().map(|r| r.platform.parse::<Platform>());
    match platform {
        Some(Ok(p)) => Route::To {
            topic: p.outbound_topic(),
            platform: p,
            message,
        },
        Some(Err(e)) => Route::Unroutable {
            reason: e.to_string(),
            message,
        },
        None => Route::Unroutable {
            reason: "message has no recipient".to_owned(),
            message,
        },
    }
}

/// The loop guard's key of a routable message: its recipient, as the
/// platform's inbound messages of that conversation are keyed.
pub(crate) fn guard_key(platform: Platform, message: &pb::OutboundMessage) -> String {
    let id = message.recipient.as_ref().map_or("", |r| r.id.as_str());
    vendor_key(platform, id)
}

fn status_update(
    message: &pb::OutboundMessage,
    status: DeliveryStatus,
    failure: Option<pb::Failure>,
) -> pb::StatusUpdate {
    pb::StatusUpdate {
        message_id: message.message_id.clone(),
        conversation_id: message.conversation_id.clone(),
        status: status.to_proto().into(),
        at: Some(Timestamp::now().into()),
        hop: HOP.to_owned(),
        platform: message
            .recipient
            .as_ref()
            .map(|r| r.platform.clone())
            .unwrap_or_default(),
        platform_message_id: String::new(),
        failure,
        ..Default::default()
    }
}

/// Routes the `messages` records of a batch (`index` is the record's place
/// in the batch, for dead letters).
pub(crate) async fn route_all(
    producer: &Producer,
    tracer: &HopTracer,
    guard: &LoopGuard,
    batch: &[(usize, &Record)],
) -> Result<Vec<DeadLetter>, HandlerError> {
    let mut dead = Vec::new();
    let mut routes = Vec::with_capacity(batch.len());
    for &(index, record) in batch {
        match decode::<pb::OutboundMessage>(&record.payload) {
            Ok(m) if !m.message_id.is_empty() => {
                let route = match route(m) {
                    Route::To {
                        message, platform, ..
                    } if guard.observe(&guard_key(platform, &message), Direction::Outbound)
                        == Verdict::Hold =>
                    {
                        Route::Held { message }
                    }
                    other => other,
                };
                // The record's hop lasts until its outbound record is queued.
                let mut hop = hops::process(tracer, record);
                if let Route::To { message, .. } = &route {
                    let platform = message
                        .recipient
                        .as_ref()
                        .map(|r| r.platform.as_str())
                        .unwrap_or("");
                    hop.record(|| vec![attributes::platform(platform)]);
                } else {
                    hop.fail("not routed");
                }
                routes.push((record, route, hop));
            }
            Ok(_) => dead.push(DeadLetter {
                index,
                reason: "outbound message has no message_id".into(),
            }),
            Err(reason) => dead.push(DeadLetter { index, reason }),
        }
    }
    // First every status, acked; then every outbound record, acked.
    let mut acks = Vec::with_capacity(routes.len());
    for (_, route, hop) in &routes {
        let update = match route {
            Route::To { message, .. } => status_update(message, DeliveryStatus::Routed, None),
            Route::Unroutable { message, reason } => {
                tracing::warn!(message_id = %message.message_id, trace_id = %hop.trace_id(), %reason, "message unroutable");
                let failure = pb::Failure {
                    code: "unroutable".into(),
                    reason: reason.clone(),
                };
                status_update(message, DeliveryStatus::Failed, Some(failure))
            }
            Route::Held { message } => {
                metrics::counter!("chat4all_loop_guard_held_messages_total").increment(1);
                let failure = pb::Failure {
                    code: "loop_guard".into(),
                    reason: "the conversation bounces messages faster than its sync window allows; \
                             it is held for a while"
                        .into(),
                };
                status_update(message, DeliveryStatus::Failed, Some(failure))
            }
        };
        let key = update.conversation_id.clone();
        let send = hops::send(
            tracer,
            topics::STATUS_UPDATES,
            Some(hop.context()),
            &update.message_id,
        );
        acks.push(
            producer
                .enqueue(
                    topics::STATUS_UPDATES,
                    &key,
                    &update.encode_to_vec(),
                    &hops::headers(&send, &update.message_id),
                )
                .await
                .map_err(HandlerError::new)?,
        );
    }
    for ack in acks.drain(..) {
        ack.acked().await.map_err(HandlerError::new)?;
    }
    for (record, route, hop) in &routes {
        if let Route::To { topic, message, .. } = route {
            let send = hops::send(tracer, topic, Some(hop.context()), &message.message_id);
            // The record's own bytes: nothing to re-encode.
            acks.push(
                producer
                    .enqueue(
                        topic,
                        &message.conversation_id,
                        &record.payload,
                        &hops::headers(&send, &message.message_id),
                    )
                    .await
                    .map_err(HandlerError::new)?,
            );
            metrics::counter!("chat4all_messages_routed_total", "topic" => topic.clone()).increment(1);
        }
    }
    for ack in acks {
        ack.acked().await.map_err(HandlerError::new)?;
    }
    Ok(dead)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(platform: &str) -> pb::OutboundMessage {
        pb::OutboundMessage {
            message_id: "m".into(),
            recipient: Some(pb::Recipient {
                platform: platform.into(),
                id: "1".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn routes_by_the_recipient_platform() {
        assert!(
            matches!(route(message("telegram")), Route::To { topic, .. } if topic == "telegram-outbound")
        );
        assert!(matches!(route(message("fax")), Route::Unroutable { reason, .. } if reason.contains("fax")));
        let none = pb::OutboundMessage {
            recipient: None,
            ..message("x")
        };
        assert!(matches!(route(none), Route::Unroutable { .. }));
    }
}
