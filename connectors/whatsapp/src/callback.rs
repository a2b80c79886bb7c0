//! What rides in `biz_opaque_callback_data`: our message id, conversation id
//! and the message's `traceparent`, so WhatsApp's status webhooks name our
//! message (no look-up by wamid needed) and continue its trace.
//!
//! The encoding is the kit's [`OurIds`], the one Messenger and Instagram put
//! in `message.metadata`: compact JSON with one-letter keys, shortened to
//! fit (trace context first, then the conversation id; a message id that
//! alone does not fit is not sent, and receipts are then resolved by the
//! wamid downstream). Only WhatsApp's limit is its own.

pub use chat4all_adapter::meta::OurIds as CallbackData;

/// WhatsApp's limit on `biz_opaque_callback_data`.
pub const MAX_LEN: usize = 512;

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
        let encoded = data.encode(MAX_LEN).unwrap();
        assert_eq!(CallbackData::decode(&encoded), Some(data.clone()));

        let long = CallbackData {
            conversation_id: "c".repeat(400),
            ..data.clone()
        };
        let shrunk = CallbackData::decode(&long.encode(MAX_LEN).unwrap()).unwrap();
        assert_eq!(shrunk.traceparent, "");
        assert_eq!(shrunk.conversation_id, "c".repeat(400));

        let longer = CallbackData {
            conversation_id: "c".repeat(600),
            ..data
        };
        let shrunk = CallbackData::decode(&longer.encode(MAX_LEN).unwrap()).unwrap();
        assert_eq!(
            (shrunk.conversation_id.as_str(), shrunk.traceparent.as_str()),
            ("", "")
        );

        assert_eq!(
            CallbackData {
                message_id: "m".repeat(600),
                ..Default::default()
            }
            .encode(MAX_LEN),
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
