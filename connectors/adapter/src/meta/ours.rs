//! What rides in the Send API's `message.metadata`: our message id,
//! conversation id and the message's `traceparent`. Meta hands it back only
//! on the echo of the message, which is how an echo is recognised as ours
//! (and how the echo's mid and platform timestamp find our send when the
//! echo outruns the send's HTTP answer).
//!
//! Compact JSON with one-letter keys, the same shape WhatsApp's callback
//! data uses; when it does not fit the platform's limit, the trace context
//! goes first, then the conversation id, and a message id that alone does
//! not fit is not sent.

use serde::{Deserialize, Serialize};

/// Our ids, carried through the platform and back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurIds {
    #[serde(rename = "m")]
    pub message_id: String,
    #[serde(rename = "c", default, skip_serializing_if = "String::is_empty")]
    pub conversation_id: String,
    #[serde(rename = "t", default, skip_serializing_if = "String::is_empty")]
    pub traceparent: String,
}

impl OurIds {
    /// The string to send, shortened to at most `max_len` bytes; `None`
    /// when even the message id alone is too long.
    pub fn encode(&self, max_len: usize) -> Option<String> {
        let mut ids = self.clone();
        loop {
            if let Ok(s) = serde_json::to_string(&ids)
                && s.len() <= max_len
            {
                return Some(s);
            }
            if !ids.traceparent.is_empty() {
                ids.traceparent.clear();
            } else if !ids.conversation_id.is_empty() {
                ids.conversation_id.clear();
            } else {
                return None;
            }
        }
    }

    /// Our ids back from an echo; `None` for anything we did not write
    /// (another app on the same page, a person typing in the page inbox).
    pub fn decode(s: &str) -> Option<Self> {
        serde_json::from_str::<Self>(s)
            .ok()
            .filter(|ids| !ids.message_id.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_shrinks_to_fit_and_ignores_foreign_metadata() {
        let ids = OurIds {
            message_id: "0190b3c4-0000-7000-8000-000000000001".into(),
            conversation_id: "conv-1".into(),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        };
        let encoded = ids.encode(1000).unwrap();
        assert_eq!(OurIds::decode(&encoded), Some(ids.clone()));

        let without_trace = OurIds::decode(&ids.encode(80).unwrap()).unwrap();
        assert_eq!(
            (
                without_trace.conversation_id.as_str(),
                without_trace.traceparent.as_str()
            ),
            ("conv-1", "")
        );
        let bare = OurIds::decode(&ids.encode(50).unwrap()).unwrap();
        assert_eq!(
            (bare.message_id.as_str(), bare.conversation_id.as_str()),
            (ids.message_id.as_str(), "")
        );
        assert_eq!(ids.encode(10), None);

        assert_eq!(OurIds::decode("DEVELOPER_DEFINED_METADATA"), None);
        assert_eq!(OurIds::decode(r#"{"m":""}"#), None);
    }
}
