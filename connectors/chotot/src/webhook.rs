//! Chotot's message events into platform events.
//!
//! The body is the event chat-api publishes on its `chat.event.messages`
//! topic, posted as is and signed (`X-Chotot-Signature`):
//! `{"pattern":…,"data":{"channel_id","sender_id","created_at":<ms>,"type":"text","message","metadata":{…},"receiver_ids":[…],"client_gen_id"}}`.
//!
//! chat-api publishes every message, ours included: an event whose sender is
//! our configured sender is the echo of a send and is dropped (counted in
//! `chat4all_echoes_total{platform="chotot",ours="true"}`), or every reply
//! would come back as a new inbound message and loop. Other patterns and
//! non-text types are skipped and counted, not refused, so chat-api does not
//! retry them forever.
//!
//! The message's id is `client_gen_id` when the event has one; otherwise a
//! stable digest of channel, sender, time and text, so a redelivered event
//! carries the same id and the store can drop it.

use chat4all_adapter::WebhookParseError;
use chat4all_proto::v1 as pb;
use pb::platform_event::Event;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::PLATFORM;

/// The pattern (topic) of message events.
pub const MESSAGES_PATTERN: &str = "chat.event.messages";

/// A Chotot id: a string, or a number in older documents.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Id {
    Text(String),
    Number(i64),
}

impl Id {
    /// The id as text.
    pub fn into_string(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Number(n) => n.to_string(),
        }
    }
}

/// Unix milliseconds as a protobuf timestamp.
pub fn ms_to_timestamp(ms: i64) -> chat4all_proto::Timestamp {
    chat4all_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    pattern: serde_json::Value,
    data: Data,
}

#[derive(Debug, Deserialize)]
struct Data {
    channel_id: Id,
    sender_id: Id,
    created_at: i64,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    client_gen_id: Option<String>,
}

fn skipped(reason: &'static str) {
    metrics::counter!("chat4all_chotot_webhook_skipped_total", "reason" => reason).increment(1);
}

/// A stable id for an event without `client_gen_id`.
pub fn derived_id(channel_id: &str, sender_id: &str, created_at: i64, text: &str) -> String {
    let mut hash = Sha256::new();
    for part in [channel_id, sender_id, &created_at.to_string(), text] {
        hash.update(part.as_bytes());
        // A separator that cannot appear in the parts keeps ("a","bc") and
        // ("ab","c") apart.
        hash.update([0u8]);
    }
    format!("derived-{}", hex::encode(&hash.finalize()[..16]))
}

/// Parses one event (already authenticated); `our_sender` is the user our
/// messages are sent as.
pub fn parse(body: &[u8], our_sender: &str) -> Result<Vec<pb::PlatformEvent>, WebhookParseError> {
    let envelope: Envelope = serde_json::from_slice(body)?;
    // NestJS writes the pattern as a string or as {"cmd": …}; only the
    // string form is ours.
    if envelope.pattern.as_str() != Some(MESSAGES_PATTERN) {
        skipped("other_pattern");
        return Ok(Vec::new());
    }
    let data = envelope.data;
    if data.kind != "text" {
        tracing::debug!(kind = %data.kind, "chotot message type not carried");
        skipped("other_message_type");
        return Ok(Vec::new());
    }
    let sender_id = data.sender_id.into_string();
    if sender_id == our_sender {
        metrics::counter!("chat4all_echoes_total", "platform" => PLATFORM, "ours" => "true").increment(1);
        tracing::debug!("chotot echo of our own message dropped");
        return Ok(Vec::new());
    }
    let channel_id = data.channel_id.into_string();
    let external_message_id = match data.client_gen_id.filter(|id| !id.trim().is_empty()) {
        Some(id) => id,
        None => derived_id(&channel_id, &sender_id, data.created_at, &data.message),
    };
    let sender_name = data
        .metadata
        .as_ref()
        .and_then(|m| m.get("sender_name"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(vec![pb::PlatformEvent {
        event: Some(Event::Inbound(pb::InboundMessage {
            platform: PLATFORM.to_owned(),
            vendor_channel_id: channel_id,
            sender_id,
            external_message_id,
            text: data.message,
            at: Some(ms_to_timestamp(data.created_at)),
            sender_name,
            from_us: false,
        })),
        traceparent: String::new(),
        ..Default::default()
    }])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"pattern": MESSAGES_PATTERN, "data": data})).unwrap()
    }

    fn inbound(events: &[pb::PlatformEvent]) -> &pb::InboundMessage {
        match events {
            [
                pb::PlatformEvent {
                    event: Some(Event::Inbound(m)),
                    ..
                },
            ] => m,
            other => panic!("expected one inbound message: {other:?}"),
        }
    }

    #[test]
    fn a_text_event_becomes_inbound() {
        let body = event(
            json!({"channel_id": "ch-1", "sender_id": 5002, "created_at": 1_700_000_000_123_i64,
            "type": "text", "message": "Còn hàng không?", "metadata": {"sender_name": "Minh"},
            "receiver_ids": ["9000001"], "client_gen_id": "cg-1"}),
        );
        let events = parse(&body, "9000001").unwrap();
        let m = inbound(&events);
        assert_eq!(m.platform, "chotot");
        assert_eq!(m.vendor_channel_id, "ch-1");
        assert_eq!(m.sender_id, "5002");
        assert_eq!(m.sender_name, "Minh");
        assert_eq!(m.external_message_id, "cg-1");
        assert_eq!(m.text, "Còn hàng không?");
        assert_eq!(
            m.at,
            Some(chat4all_proto::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000
            })
        );
    }

    #[test]
    fn without_client_gen_id_the_id_is_stable() {
        let data = json!({"channel_id": "ch-1", "sender_id": "5002", "created_at": 5, "type": "text",
            "message": "hi"});
        let first = inbound(&parse(&event(data.clone()), "9000001").unwrap())
            .external_message_id
            .clone();
        let again = inbound(&parse(&event(data), "9000001").unwrap())
            .external_message_id
            .clone();
        assert_eq!(first, again);
        assert!(first.starts_with("derived-"), "{first}");
        assert_ne!(first, derived_id("ch-1", "5002", 5, "hi!"));
        assert_ne!(derived_id("a", "bc", 1, ""), derived_id("ab", "c", 1, ""));
    }

    #[test]
    fn echoes_other_patterns_and_types_are_dropped_garbage_refused() {
        let echo = event(
            json!({"channel_id": "ch-1", "sender_id": "9000001", "created_at": 5,
            "type": "text", "message": "our reply"}),
        );
        assert_eq!(parse(&echo, "9000001").unwrap(), vec![]);
        let image = event(json!({"channel_id": "ch-1", "sender_id": "5002", "created_at": 5,
            "type": "image", "message": ""}));
        assert_eq!(parse(&image, "9000001").unwrap(), vec![]);
        let other =
            br#"{"pattern":"chat.event.channels","data":{"channel_id":"c","sender_id":"s","created_at":1}}"#;
        assert_eq!(parse(other, "9000001").unwrap(), vec![]);
        assert!(matches!(parse(b"[1,2", "x"), Err(WebhookParseError::Json(_))));
        assert!(matches!(
            parse(br#"{"pattern":"chat.event.messages"}"#, "x"),
            Err(WebhookParseError::Json(_))
        ));
        assert_eq!(
            ms_to_timestamp(-1),
            chat4all_proto::Timestamp {
                seconds: -1,
                nanos: 999_000_000
            }
        );
    }
}
