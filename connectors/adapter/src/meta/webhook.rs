//! The `messaging` webhook envelope Messenger and Instagram post,
//! `{"object":…,"entry":[{"id":…,"time":…,"messaging":[event]}]}`, read into
//! typed [`MessagingEvent`]s. What they mean (receipts, inbound messages)
//! needs the index of our sends, so it is decided in [`super::adapter`];
//! this module only reads.
//!
//! Events we do not carry (postbacks, reactions, attachments without text)
//! become [`MessagingEvent::Other`] and are skipped, not refused: Meta would
//! retry a refused webhook for days. A body that is not the envelope, or the
//! envelope of another `object`, is refused whole.

use serde::Deserialize;

use crate::WebhookParseError;

#[derive(Debug, Deserialize)]
struct Envelope {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    messaging: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
struct Party {
    id: String,
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    #[serde(default)]
    sender: Option<Party>,
    #[serde(default)]
    recipient: Option<Party>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    message: Option<RawMessage>,
    #[serde(default)]
    delivery: Option<RawDelivery>,
    #[serde(default)]
    read: Option<RawRead>,
}

#[derive(Debug, Deserialize)]
struct RawMessage {
    #[serde(default)]
    mid: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawDelivery {
    #[serde(default)]
    mids: Option<Vec<String>>,
    #[serde(default)]
    watermark: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct RawRead {
    #[serde(default)]
    watermark: Option<i64>,
    #[serde(default)]
    mid: Option<String>,
}

/// One event of a `messaging` array, as far as we care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagingEvent {
    /// A person wrote to the page or account.
    Inbound {
        sender: String,
        mid: String,
        text: String,
        timestamp_ms: Option<i64>,
    },
    /// The copy of a message the page or account sent (by us, or typed in
    /// its inbox); `recipient` is the person it went to.
    Echo {
        recipient: Option<String>,
        mid: String,
        metadata: Option<String>,
        timestamp_ms: Option<i64>,
    },
    /// Messages to `sender` were delivered: those in `mids` and, by the
    /// watermark, every one sent at or before it.
    Delivery {
        sender: Option<String>,
        mids: Vec<String>,
        watermark_ms: Option<i64>,
        timestamp_ms: Option<i64>,
    },
    /// `sender` read messages: up to the watermark (Messenger) or the one
    /// `mid` (Instagram).
    Read {
        sender: Option<String>,
        watermark_ms: Option<i64>,
        mid: Option<String>,
        timestamp_ms: Option<i64>,
    },
    /// Anything else; `kind` says what, for the skip counter.
    Other { kind: &'static str },
}

/// Reads one webhook body whose envelope must be `object`.
pub fn parse(body: &[u8], object: &str) -> Result<Vec<MessagingEvent>, WebhookParseError> {
    let envelope: Envelope = serde_json::from_slice(body)?;
    if envelope.object != object {
        return Err(WebhookParseError::Unexpected(format!(
            "object {:?} is not {object}",
            envelope.object.chars().take(64).collect::<String>()
        )));
    }
    Ok(envelope
        .entry
        .into_iter()
        .flat_map(|e| e.messaging)
        .map(classify)
        .collect())
}

fn classify(event: RawEvent) -> MessagingEvent {
    let sender = event.sender.map(|p| p.id);
    let timestamp_ms = event.timestamp;
    if let Some(message) = event.message {
        if message.is_echo {
            return MessagingEvent::Echo {
                recipient: event.recipient.map(|p| p.id),
                mid: message.mid,
                metadata: message.metadata,
                timestamp_ms,
            };
        }
        return match (sender, message.text) {
            (Some(sender), Some(text)) if !message.mid.is_empty() => MessagingEvent::Inbound {
                sender,
                mid: message.mid,
                text,
                timestamp_ms,
            },
            (_, None) => MessagingEvent::Other {
                kind: "message_without_text",
            },
            _ => MessagingEvent::Other {
                kind: "message_without_sender",
            },
        };
    }
    if let Some(delivery) = event.delivery {
        return MessagingEvent::Delivery {
            sender,
            mids: delivery.mids.unwrap_or_default(),
            watermark_ms: delivery.watermark,
            timestamp_ms,
        };
    }
    if let Some(read) = event.read {
        return MessagingEvent::Read {
            sender,
            watermark_ms: read.watermark,
            mid: read.mid,
            timestamp_ms,
        };
    }
    MessagingEvent::Other { kind: "other_event" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn page(events: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"object": "page", "entry": [{"id": "PAGE", "time": 1, "messaging": events}]}),
        )
        .unwrap()
    }

    #[test]
    fn reads_every_kind_of_event_in_order() {
        let body = page(json!([
            {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 10,
             "message": {"mid": "m_in", "text": "hello"}},
            {"sender": {"id": "PAGE"}, "recipient": {"id": "PSID"}, "timestamp": 11,
             "message": {"is_echo": true, "app_id": 1517776481860111_u64, "metadata": "{\"m\":\"x\"}",
                         "mid": "m_echo", "text": "hi"}},
            {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 12,
             "delivery": {"mids": ["m_echo"], "watermark": 11}},
            {"delivery": {"watermark": 13}},
            {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 14, "read": {"watermark": 13}},
            {"sender": {"id": "IGSID"}, "read": {"mid": "m_ig"}},
            {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 15,
             "message": {"mid": "m_img", "attachments": [{"type": "image"}]}},
            {"sender": {"id": "PSID"}, "postback": {"payload": "GET_STARTED"}}
        ]));
        let events = parse(&body, "page").unwrap();
        assert_eq!(
            events,
            vec![
                MessagingEvent::Inbound {
                    sender: "PSID".into(),
                    mid: "m_in".into(),
                    text: "hello".into(),
                    timestamp_ms: Some(10)
                },
                MessagingEvent::Echo {
                    recipient: Some("PSID".into()),
                    mid: "m_echo".into(),
                    metadata: Some("{\"m\":\"x\"}".into()),
                    timestamp_ms: Some(11)
                },
                MessagingEvent::Delivery {
                    sender: Some("PSID".into()),
                    mids: vec!["m_echo".into()],
                    watermark_ms: Some(11),
                    timestamp_ms: Some(12)
                },
                MessagingEvent::Delivery {
                    sender: None,
                    mids: vec![],
                    watermark_ms: Some(13),
                    timestamp_ms: None
                },
                MessagingEvent::Read {
                    sender: Some("PSID".into()),
                    watermark_ms: Some(13),
                    mid: None,
                    timestamp_ms: Some(14)
                },
                MessagingEvent::Read {
                    sender: Some("IGSID".into()),
                    watermark_ms: None,
                    mid: Some("m_ig".into()),
                    timestamp_ms: None
                },
                MessagingEvent::Other {
                    kind: "message_without_text"
                },
                MessagingEvent::Other { kind: "other_event" },
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_the_envelope_of_this_platform() {
        assert!(matches!(
            parse(b"{not json", "page"),
            Err(WebhookParseError::Json(_))
        ));
        assert!(matches!(
            parse(br#"{"object":"instagram","entry":[]}"#, "page"),
            Err(WebhookParseError::Unexpected(_))
        ));
        assert_eq!(
            parse(br#"{"object":"page","entry":[{"id":"1","changes":[]}]}"#, "page").unwrap(),
            vec![]
        );
    }
}
