//! Inbound sync: what platform users wrote, from the connectors' `inbound`
//! records into the store, once, and out to the watchers.
//!
//! The store does the de-duplication and the channel find-or-create in one
//! transaction per message, so a webhook the platform delivers twice, even
//! minutes apart and to two router replicas, is stored once. Records of one
//! channel share a key, hence a partition, hence their order.

use std::collections::HashMap;
use std::time::Duration;

use chat4all_domain::{MessageId, Platform, Timestamp};
use chat4all_kafka::{Announcements, DeadLetter, HandlerError, Producer, Record, decode, hops};
use chat4all_proto::v1 as pb;
use chat4all_store::{InboundOutcome, NewInbound, SharedStore, StoreError};
use chat4all_telemetry::spans::attributes;
use chat4all_telemetry::{Hop, HopTracer, TraceContext};

use crate::loop_guard::{Direction, LoopGuard, vendor_key};

const HOP: &str = "router";

/// An inbound record as the store takes it, or why it cannot be one.
pub(crate) fn to_new_inbound(
    message: pb::InboundMessage,
    traceparent: Option<&str>,
    dedup_window: Duration,
) -> Result<NewInbound, String> {
    let platform: Platform = message
        .platform
        .parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| e.to_string())?;
    if message.vendor_channel_id.is_empty() || message.external_message_id.is_empty() {
        return Err("inbound message lacks vendor_channel_id or external_message_id".to_owned());
    }
    if message.from_us {
        // An adapter's bug, not a user's message: storing it would be the
        // loop the whole inbound path is built to prevent.
        return Err("inbound message is marked from_us: our own line is never stored as inbound".to_owned());
    }
    let trace = traceparent
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::new_root, |t| t.child());
    Ok(NewInbound {
        id: MessageId::generate(),
        platform,
        vendor_channel_id: message.vendor_channel_id,
        external_message_id: message.external_message_id,
        sender_id: message.sender_id,
        sender_name: message.sender_name,
        text: message.text,
        at: message.at.map_or_else(Timestamp::now, Timestamp::from),
        trace_id: trace.trace_id(),
        dedup_window,
    })
}

/// The loop guard's key of an inbound message: its platform conversation,
/// the key its outbound replies count under too.
pub(crate) fn guard_key(inbound: &NewInbound) -> String {
    vendor_key(inbound.platform, &inbound.vendor_channel_id)
}

/// Stores the `inbound` records of a batch and announces the new ones.
///
/// Records of one key (one platform conversation) are stored one after the
/// other, in offset order; different keys at once, so their writes share
/// the store's group commits instead of costing one commit each.
pub(crate) async fn receive_all(
    store: &SharedStore,
    producer: &Producer,
    tracer: &HopTracer,
    guard: &LoopGuard,
    dedup_window: Duration,
    batch: &[(usize, &Record)],
) -> Result<Vec<DeadLetter>, HandlerError> {
    let mut dead = Vec::new();
    let mut by_key: HashMap<Option<&str>, Vec<(usize, NewInbound, Hop)>> = HashMap::new();
    for &(index, record) in batch {
        let mut hop = hops::process(tracer, record);
        let trace = hop.context().to_string();
        let parsed = decode::<pb::InboundMessage>(&record.payload)
            .and_then(|m| to_new_inbound(m, Some(&trace), dedup_window));
        match parsed {
            Ok(inbound) => by_key
                .entry(record.key.as_deref())
                .or_default()
                .push((index, inbound, hop)),
            Err(reason) => {
                hop.fail(reason.clone());
                dead.push(DeadLetter { index, reason });
            }
        }
    }
    let stored = futures::future::join_all(by_key.into_values().map(|items| async move {
        let mut results = Vec::with_capacity(items.len());
        for (index, inbound, hop) in items {
            let platform = inbound.platform.as_str();
            let key = guard_key(&inbound);
            results.push((index, platform, key, store.put_inbound(inbound).await, hop));
        }
        results
    }))
    .await;

    let mut announcements = Announcements::new(producer, tracer);
    for (index, platform, guard_key, result, mut hop) in stored.into_iter().flatten() {
        let stored = match result {
            Ok(stored) => stored,
            Err(StoreError::Invalid { field, reason }) => {
                hop.fail("refused by the store");
                dead.push(DeadLetter {
                    index,
                    reason: format!("{field}: {reason}"),
                });
                continue;
            }
            // Retried whole: what was stored comes back as duplicates.
            Err(e) => return Err(HandlerError::new(e)),
        };
        if stored.outcome == InboundOutcome::Duplicate {
            metrics::counter!("chat4all_inbound_duplicates_total", "platform" => platform).increment(1);
            tracing::info!(message_id = %stored.message.id, platform, "inbound duplicate dropped");
            continue;
        }
        metrics::counter!("chat4all_inbound_stored_total", "platform" => platform).increment(1);
        // Counted, never held: what a person wrote is always kept.
        let _ = guard.observe(&guard_key, Direction::Inbound);
        if stored.channel_created {
            metrics::counter!("chat4all_channels_created_total", "platform" => platform).increment(1);
        }
        let message = stored.message;
        hop.record(|| {
            vec![
                attributes::message_id(&message.id),
                attributes::platform(platform),
            ]
        });
        let event = pb::MessageEvent {
            kind: pb::MessageEventKind::Created.into(),
            message_id: message.id.clone(),
            conversation_id: message.conversation_id.clone(),
            status: message.status,
            at: message.created_at,
            hop: HOP.to_owned(),
            recipient: message.recipient.clone(),
            message: Some(message),
        };
        announcements
            .announce(&event, Some(hop.context()))
            .await
            .map_err(HandlerError::new)?;
    }
    announcements.settle().await;
    Ok(dead)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound() -> pb::InboundMessage {
        pb::InboundMessage {
            platform: "telegram".into(),
            vendor_channel_id: "42".into(),
            sender_id: "7".into(),
            external_message_id: "42:1".into(),
            text: "hi".into(),
            at: None,
            sender_name: "Ann".into(),
            from_us: false,
        }
    }

    #[test]
    fn records_become_store_inbounds_or_say_why_not() {
        let window = Duration::from_secs(60);
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ok = to_new_inbound(inbound(), Some(parent), window).unwrap();
        assert_eq!(
            (ok.platform, ok.vendor_channel_id.as_str()),
            (Platform::Telegram, "42")
        );
        assert_eq!(
            ok.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736",
            "the webhook's trace goes on"
        );
        assert_eq!(ok.dedup_window, window);
        assert!(
            to_new_inbound(
                pb::InboundMessage {
                    platform: "fax".into(),
                    ..inbound()
                },
                None,
                window
            )
            .is_err()
        );
        let no_id = pb::InboundMessage {
            external_message_id: String::new(),
            ..inbound()
        };
        assert!(to_new_inbound(no_id, None, window).is_err());
        let ours = pb::InboundMessage {
            from_us: true,
            ..inbound()
        };
        assert!(
            to_new_inbound(ours, None, window)
                .unwrap_err()
                .contains("from_us")
        );
    }
}
