//! WhatsApp's webhook envelope into platform events.
//!
//! `statuses` become receipts (SENT, DELIVERED, READ, FAILED with the error),
//! naming our message through the callback data we sent; `messages` become
//! inbound messages, the sender's `wa_id` being the conversation. Changes of
//! other fields (template updates, account alerts) and message types we do
//! not carry (media, reactions) are skipped and counted, not refused: Meta
//! would retry a refused webhook for days.
//!
//! A body that is not the envelope at all, or a timestamp that is not unix
//! seconds, is refused whole: that is not WhatsApp talking.

use chat4all_adapter::WebhookParseError;
use chat4all_proto::v1 as pb;
use pb::platform_event::Event;
use serde::Deserialize;

use crate::PLATFORM;
use crate::callback::CallbackData;

#[derive(Debug, Deserialize)]
struct Envelope {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    // Other fields carry other shapes: read only once the field is known.
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Debug, Default, Deserialize)]
struct MessagesValue {
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Debug, Deserialize)]
struct Contact {
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    wa_id: String,
}

#[derive(Debug, Deserialize)]
struct Profile {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct Message {
    from: String,
    id: String,
    timestamp: UnixSeconds,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    interactive: Option<Interactive>,
}

#[derive(Debug, Deserialize)]
struct Text {
    body: String,
}

#[derive(Debug, Deserialize)]
struct Button {
    #[serde(default)]
    text: String,
}

#[derive(Debug, Deserialize)]
struct Interactive {
    #[serde(default)]
    button_reply: Option<Reply>,
    #[serde(default)]
    list_reply: Option<Reply>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    title: String,
}

#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    status: String,
    timestamp: UnixSeconds,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Debug, Deserialize)]
struct StatusError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: String,
}

/// WhatsApp writes unix seconds as a string; a number is taken too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UnixSeconds {
    Text(String),
    Number(i64),
}

impl UnixSeconds {
    /// The stamped second, refined by the webhook's arrival time (see
    /// [`chat4all_adapter::time`]).
    fn to_timestamp(&self) -> Result<chat4all_proto::Timestamp, WebhookParseError> {
        let seconds = match self {
            Self::Number(n) => *n,
            Self::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| WebhookParseError::Unexpected(format!("timestamp {s:?} is not unix seconds")))?,
        };
        Ok(chat4all_adapter::time::refine_whole_seconds(
            seconds,
            std::time::SystemTime::now(),
        ))
    }
}

fn skipped(reason: &'static str) {
    metrics::counter!("chat4all_whatsapp_webhook_skipped_total", "reason" => reason).increment(1);
}

/// Parses one webhook body (already authenticated) into events, in the
/// order WhatsApp listed them.
pub fn parse(body: &[u8]) -> Result<Vec<pb::PlatformEvent>, WebhookParseError> {
    let envelope: Envelope = serde_json::from_slice(body)?;
    if envelope.object != "whatsapp_business_account" {
        return Err(WebhookParseError::Unexpected(format!(
            "object {:?} is not whatsapp_business_account",
            envelope.object.chars().take(64).collect::<String>()
        )));
    }
    let mut events = Vec::new();
    for change in envelope.entry.into_iter().flat_map(|e| e.changes) {
        if change.field != "messages" {
            skipped("other_field");
            continue;
        }
        let value: MessagesValue = serde_json::from_value(change.value)?;
        for status in &value.statuses {
            if let Some(event) = receipt(status)? {
                events.push(event);
            }
        }
        for message in &value.messages {
            if let Some(event) = inbound(message, &value.contacts)? {
                events.push(event);
            }
        }
    }
    Ok(events)
}

fn receipt(status: &Status) -> Result<Option<pb::PlatformEvent>, WebhookParseError> {
    let delivery = match status.status.as_str() {
        "sent" => pb::DeliveryStatus::Sent,
        "delivered" => pb::DeliveryStatus::Delivered,
        "read" => pb::DeliveryStatus::Read,
        "failed" => pb::DeliveryStatus::Failed,
        other => {
            tracing::debug!(status = other, "whatsapp status not tracked");
            skipped("other_status");
            return Ok(None);
        }
    };
    let at = status.timestamp.to_timestamp()?;
    let ours = status
        .biz_opaque_callback_data
        .as_deref()
        .and_then(CallbackData::decode)
        .unwrap_or_default();
    let failure = (delivery == pb::DeliveryStatus::Failed).then(|| failure(&status.errors));
    Ok(Some(pb::PlatformEvent {
        event: Some(Event::Receipt(pb::Receipt {
            platform_message_id: status.id.clone(),
            message_id: ours.message_id,
            conversation_id: ours.conversation_id,
            status: delivery as i32,
            at: Some(at),
            failure,
            ..Default::default()
        })),
        traceparent: ours.traceparent,
        ..Default::default()
    }))
}

fn failure(errors: &[StatusError]) -> pb::Failure {
    let Some(error) = errors.first() else {
        return pb::Failure {
            code: "unknown".to_owned(),
            reason: "whatsapp reported a failure without details".into(),
        };
    };
    let mut reason = if error.message.is_empty() {
        error.title.clone()
    } else {
        error.message.clone()
    };
    if let Some(details) = error
        .error_data
        .as_ref()
        .map(|d| d.details.as_str())
        .filter(|d| !d.is_empty())
        && !reason.contains(details)
    {
        reason = format!("{reason}: {details}");
    }
    pb::Failure {
        code: error.code.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
        reason,
    }
}

fn inbound(message: &Message, contacts: &[Contact]) -> Result<Option<pb::PlatformEvent>, WebhookParseError> {
    let text = match message.kind.as_str() {
        "text" => message.text.as_ref().map(|t| t.body.clone()),
        "button" => message.button.as_ref().map(|b| b.text.clone()),
        "interactive" => message
            .interactive
            .as_ref()
            .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()))
            .map(|r| r.title.clone()),
        _ => None,
    };
    let Some(text) = text else {
        tracing::debug!(kind = %message.kind, "whatsapp message type not carried");
        skipped("other_message_type");
        return Ok(None);
    };
    let sender_name = contacts
        .iter()
        .find(|c| c.wa_id == message.from)
        .or(contacts.first())
        .and_then(|c| c.profile.as_ref())
        .map(|p| p.name.clone())
        .unwrap_or_default();
    Ok(Some(pb::PlatformEvent {
        event: Some(Event::Inbound(pb::InboundMessage {
            platform: PLATFORM.to_owned(),
            vendor_channel_id: message.from.clone(),
            sender_id: message.from.clone(),
            external_message_id: message.id.clone(),
            text,
            at: Some(message.timestamp.to_timestamp()?),
            sender_name,
            from_us: false,
        })),
        traceparent: String::new(),
        ..Default::default()
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]
        }))
        .unwrap()
    }

    fn metadata() -> serde_json::Value {
        json!({"display_phone_number": "15550783881", "phone_number_id": "106540352242922"})
    }

    fn receipt_of(event: &pb::PlatformEvent) -> &pb::Receipt {
        match &event.event {
            Some(Event::Receipt(r)) => r,
            other => panic!("not a receipt: {other:?}"),
        }
    }

    #[test]
    fn statuses_become_receipts_naming_our_message() {
        let ours =
            r#"{"m":"msg-1","c":"conv-1","t":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
        let body = envelope(json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(),
            "statuses": [
                {"id": "wamid.A", "status": "sent", "timestamp": "1700000001", "recipient_id": "15551234567",
                 "biz_opaque_callback_data": ours,
                 "conversation": {"id": "c0", "origin": {"type": "service"}},
                 "pricing": {"billable": true, "pricing_model": "CBP", "category": "service"}},
                {"id": "wamid.A", "status": "read", "timestamp": 1700000003, "recipient_id": "15551234567",
                 "biz_opaque_callback_data": ours},
                {"id": "wamid.B", "status": "delivered", "timestamp": "1700000002", "recipient_id": "1"},
                {"id": "wamid.C", "status": "deleted", "timestamp": "1700000002", "recipient_id": "1"}
            ]
        }));
        let events = parse(&body).unwrap();
        assert_eq!(events.len(), 3, "the unknown status is skipped");

        let sent = receipt_of(&events[0]);
        assert_eq!(sent.platform_message_id, "wamid.A");
        assert_eq!(
            (sent.message_id.as_str(), sent.conversation_id.as_str()),
            ("msg-1", "conv-1")
        );
        assert_eq!(sent.status(), pb::DeliveryStatus::Sent);
        assert_eq!(
            sent.at,
            Some(chat4all_proto::Timestamp {
                seconds: 1_700_000_001,
                nanos: 0
            })
        );
        assert_eq!(
            events[0].traceparent,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(receipt_of(&events[1]).status(), pb::DeliveryStatus::Read);
        let foreign = receipt_of(&events[2]);
        assert_eq!(
            (foreign.message_id.as_str(), foreign.status()),
            ("", pb::DeliveryStatus::Delivered)
        );
    }

    #[test]
    fn a_failed_status_carries_the_error() {
        let body = envelope(json!({
            "messaging_product": "whatsapp", "metadata": metadata(),
            "statuses": [{"id": "wamid.F", "status": "failed", "timestamp": "1700000009",
                "recipient_id": "999",
                "errors": [{"code": 131026, "title": "Message undeliverable",
                            "message": "Message undeliverable",
                            "error_data": {"details": "Message could not be delivered"}}]}]
        }));
        let events = parse(&body).unwrap();
        let failed = receipt_of(&events[0]);
        assert_eq!(failed.status(), pb::DeliveryStatus::Failed);
        let failure = failed.failure.clone().unwrap();
        assert_eq!(failure.code, "131026");
        assert_eq!(
            failure.reason,
            "Message undeliverable: Message could not be delivered"
        );
    }

    #[test]
    fn text_messages_become_inbound_with_the_sender_name() {
        let body = envelope(json!({
            "messaging_product": "whatsapp", "metadata": metadata(),
            "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}],
            "messages": [
                {"from": "16315551234", "id": "wamid.IN1", "timestamp": "1700000100", "type": "text",
                 "text": {"body": "Hello there"}},
                {"from": "16315551234", "id": "wamid.IN2", "timestamp": "1700000101", "type": "image",
                 "image": {"id": "media-1", "mime_type": "image/jpeg"}}
            ]
        }));
        let events = parse(&body).unwrap();
        assert_eq!(events.len(), 1, "the image is skipped");
        let Some(Event::Inbound(m)) = &events[0].event else {
            panic!("not inbound: {:?}", events[0])
        };
        assert_eq!(m.platform, "whatsapp");
        assert_eq!(m.vendor_channel_id, "16315551234");
        assert_eq!(m.sender_id, "16315551234");
        assert_eq!(m.sender_name, "Kerry Fisher");
        assert_eq!(m.external_message_id, "wamid.IN1");
        assert_eq!(m.text, "Hello there");
        assert_eq!(
            m.at,
            Some(chat4all_proto::Timestamp {
                seconds: 1_700_000_100,
                nanos: 0
            })
        );
    }

    #[test]
    fn refuses_what_is_not_a_whatsapp_envelope_and_skips_other_fields() {
        assert!(matches!(parse(b"{not json"), Err(WebhookParseError::Json(_))));
        assert!(matches!(
            parse(br#"{"object":"page","entry":[]}"#),
            Err(WebhookParseError::Unexpected(_))
        ));
        let bad_time =
            envelope(json!({"statuses": [{"id": "w", "status": "sent", "timestamp": "yesterday"}]}));
        assert!(matches!(parse(&bad_time), Err(WebhookParseError::Unexpected(_))));

        let other = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "message_template_status_update",
                "value": {"event": "APPROVED", "message_template_id": 1}}]}]
        }))
        .unwrap();
        assert_eq!(parse(&other).unwrap(), vec![]);
    }
}
