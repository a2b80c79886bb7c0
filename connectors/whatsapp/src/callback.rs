//! What rides in `biz_opaque_callback_data`: our message id, conversation id
//! and the message's `traceparent`, so WhatsApp's status webhooks name our
//! message (no look-up by wamid needed) and continue its trace.
//!
//! Compact JSON with one-letter keys, because WhatsApp caps the field at 512
//! characters; when the ids are too long the trace context goes first, then
//! the conversation id, and a message id that alone does not fit is not sent
//! (receipts are then resolved by the wamid downstream).

use serde::{Deserialize, Serialize};

/// WhatsApp's limit on `biz_opaque_callback_data`.
pub const MAX_LEN: usize = 512;

/// Our ids, carried through WhatsApp and back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackData {
    #[serde(rename = "m")]
    pub message_id: String,
    #[serde(rename = "c", default, skip_serializing_if = "String::is_empty")]
    pub conversation_id: String,
    #[serde(rename = "t", default, skip_serializing_if = "String::is_empty")]
    pub traceparent: String,
}

impl CallbackData {
    /// The string to send, shortened to fit; `None` when even the message id
    /// alone is too long.
    pub fn encode(&self) -> Option<String> {
        let mut data = self.clone();
        loop {
            if let Ok(s) = serde_json::to_string(&data)
                && s.len() <= MAX_LEN
            {
                return Some(s);
            }
            if !data.traceparent.is_empty() {
                data.traceparent.clear();
            } else if !data.conversation_id.is_empty() {
                data.conversation_id.clear();
            } else {
                return None;
            }
        }
    }

    /// Our data back from a status webhook; `None` for anything we did not
    /// write (another sender on the same number, or nothing).
    pub fn decode(s: &str) -> Option<Self> {
        serde_json::from_str::<Self>(s)
            .ok()
            .filter(|d| !d.message_id.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_shrinks_to_fit() {
        let data = CallbackData {
            message_id: "0190b3c4-0000-7000-8000-000000000001".into(),
            conversation_id: "conv-1".into(),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        };
        let encoded = data.encode().unwrap();
        assert_eq!(CallbackData::decode(&encoded), Some(data.clone()));

        let long = CallbackData {
            conversation_id: "c".repeat(400),
            ..data.clone()
        };
        let shrunk = CallbackData::decode(&long.encode().unwrap()).unwrap();
        assert_eq!(shrunk.traceparent, "");
        assert_eq!(shrunk.conversation_id, "c".repeat(400));

        let longer = CallbackData {
            conversation_id: "c".repeat(600),
            ..data
        };
        let shrunk = CallbackData::decode(&longer.encode().unwrap()).unwrap();
        assert_eq!(
            (shrunk.conversation_id.as_str(), shrunk.traceparent.as_str()),
            ("", "")
        );

        assert_eq!(
            CallbackData {
                message_id: "m".repeat(600),
                ..Default::default()
            }
            .encode(),
            None
        );
    }

    #[test]
    fn ignores_what_is_not_ours() {
        assert_eq!(CallbackData::decode("campaign-42"), None);
        assert_eq!(CallbackData::decode(r#"{"m":""}"#), None);
        assert_eq!(CallbackData::decode(r#"{"x":1}"#), None);
    }
}
