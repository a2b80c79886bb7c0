//! What every backend does alike before and beside storing: the requests
//! it refuses (and the request field each refusal blames), the hop names of
//! the history entries it writes itself, the history's detail text, the
//! transition counter. Shared so the embedded and Scylla backends cannot
//! drift apart, and so the gRPC edge names the same fields. Services never
//! need it.

use std::time::Duration;

use chat4all_domain::{DeliveryStatus, Platform, Timestamp};
use chat4all_proto::v1 as pb;

use crate::stored_rows::StoredMessage;
use crate::{NewInbound, StoreError, TransitionOutcome};

/// The field a malformed cursor is blamed on, as the public API names it;
/// shared by every backend and the gRPC edge so the name survives the trip.
pub const CURSOR_FIELD: &str = "page_token";

/// The channel fields a `put_channel` may be refused for, named as the proto
/// nests them; shared for the same reason as [`CURSOR_FIELD`].
pub const CHANNEL_ID_FIELD: &str = "channel.id";
pub const CHANNEL_VENDOR_NAME_FIELD: &str = "channel.vendor.name";
pub const CHANNEL_VENDOR_CHANNEL_ID_FIELD: &str = "channel.vendor.channel_id";

/// The `put_inbound` fields a backend refuses, named as `PutInboundRequest`
/// nests them; shared for the same reason as [`CURSOR_FIELD`].
pub const INBOUND_VENDOR_CHANNEL_ID_FIELD: &str = "inbound.vendor_channel_id";
pub const INBOUND_EXTERNAL_MESSAGE_ID_FIELD: &str = "inbound.external_message_id";
pub const INBOUND_MESSAGE_ID_FIELD: &str = "message_id";

/// What every backend refuses before looking anything up: an inbound message
/// without its de-duplication key could be neither found again nor told
/// apart from a redelivery.
pub fn check_inbound_key(inbound: &NewInbound) -> Result<(), StoreError> {
    let required = |field| StoreError::Invalid {
        field,
        reason: "is required".to_owned(),
    };
    if inbound.vendor_channel_id.is_empty() {
        return Err(required(INBOUND_VENDOR_CHANNEL_ID_FIELD));
    }
    if inbound.external_message_id.is_empty() {
        return Err(required(INBOUND_EXTERNAL_MESSAGE_ID_FIELD));
    }
    Ok(())
}

/// The source of a message a user of `platform` wrote.
pub fn inbound_source(platform: Platform) -> String {
    format!("vendor:{}", platform.as_str())
}

/// The channel a user's first inbound message creates: named after the
/// sender, or after the vendor's channel id when the sender has no name.
pub fn inbound_channel(inbound: &NewInbound) -> pb::Channel {
    let name = if inbound.sender_name.is_empty() {
        inbound.vendor_channel_id.clone()
    } else {
        inbound.sender_name.clone()
    };
    pb::Channel {
        name,
        ..pb::Channel::default()
    }
}

/// What every backend refuses before looking anything up: a channel with no
/// vendor key cannot be found again. Returns the key.
pub fn channel_vendor_key(channel: &pb::Channel) -> Result<(&str, &str), StoreError> {
    let vendor = channel.vendor.as_ref();
    let name = vendor.map_or("", |v| v.name.as_str());
    let channel_id = vendor.map_or("", |v| v.channel_id.as_str());
    let required = |field| StoreError::Invalid {
        field,
        reason: "is required".to_owned(),
    };
    if name.is_empty() {
        return Err(required(CHANNEL_VENDOR_NAME_FIELD));
    }
    if channel_id.is_empty() {
        return Err(required(CHANNEL_VENDOR_CHANNEL_ID_FIELD));
    }
    Ok((name, channel_id))
}

/// The hop that accepted a message, in its first history entry.
pub const ACCEPTING_HOP: &str = "api-gateway";

/// The hop that stores an inbound message, in its one history entry.
pub const INBOUND_HOP: &str = "router";

/// The hop that notes, in a message's history, what it found while
/// reconciling (a receipt overdue).
pub const RECONCILER_HOP: &str = "reconciler";

/// Whether `message`'s receipt is overdue at `now`: the one rule every
/// backend marks by. Only SENT waits on a receipt, and only on a platform
/// that sends them; the deadline runs from SENT, not from creation, since a
/// message may spend a while in retries before it is sent.
pub fn receipt_overdue(message: &StoredMessage, deadline: Duration, now: Timestamp) -> bool {
    let deadline = i64::try_from(deadline.as_micros()).unwrap_or(i64::MAX);
    message.delivery.status == DeliveryStatus::Sent
        && message.recipient.platform.reports_receipts()
        && message
            .delivery
            .timeline
            .get(DeliveryStatus::Sent)
            .is_some_and(|sent| sent.as_micros().saturating_add(deadline) <= now.as_micros())
}

/// The detail of a receipt-overdue entry: searchable by its prefix, and
/// saying the deadline it missed.
pub fn receipt_overdue_detail(deadline: Duration) -> String {
    format!(
        "receipt_overdue: no receipt within {} of SENT",
        short_duration(deadline)
    )
}

/// `24h`, `90m`, `45s`: the largest whole unit, for a person to read.
fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What an operator reading the history needs beyond the status: why it
/// failed, which platform id it carried. Every backend writes it alike.
pub fn history_detail(failure: Option<&pb::Failure>, platform_message_id: Option<&str>) -> String {
    let failure = failure.map(|f| match (f.code.is_empty(), f.reason.is_empty()) {
        (_, true) => f.code.clone(),
        (true, false) => f.reason.clone(),
        (false, false) => format!("{}: {}", f.code, f.reason),
    });
    let platform = platform_message_id.map(|id| format!("platform_message_id={id}"));
    [failure, platform]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Counts a transition by outcome, one counter whichever backend decided it.
pub fn count_transition(outcome: TransitionOutcome) {
    metrics::counter!("chat4all_store_transitions_total", "outcome" => outcome.as_str()).increment(1);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_domain::{MessageId, Recipient, Timeline};

    use super::*;
    use crate::stored_rows::DeliveryState;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn sent_at(recipient: &str, status: DeliveryStatus, sent: Option<i64>) -> StoredMessage {
        let mut timeline = Timeline::default();
        timeline.set(DeliveryStatus::Accepted, Timestamp::from_secs(0));
        if let Some(sent) = sent {
            timeline.set(DeliveryStatus::Sent, Timestamp::from_secs(sent));
        }
        StoredMessage {
            id: MessageId::generate(),
            conversation_id: "c".parse().unwrap(),
            recipient: recipient.parse::<Recipient>().unwrap(),
            text: String::new(),
            source: String::new(),
            trace_id: String::new(),
            sender_id: String::new(),
            sender_name: String::new(),
            created_at: Timestamp::from_secs(0),
            delivery: DeliveryState {
                status,
                timeline,
                failure: None,
                platform_message_id: None,
            },
        }
    }

    #[test]
    fn a_receipt_is_overdue_a_deadline_after_sent_on_receipt_platforms_only() {
        let day = 24 * 3600;
        let whatsapp = sent_at("whatsapp:15551234567", DeliveryStatus::Sent, Some(100));
        assert!(!receipt_overdue(
            &whatsapp,
            DAY,
            Timestamp::from_secs(100 + day - 1)
        ));
        assert!(receipt_overdue(&whatsapp, DAY, Timestamp::from_secs(100 + day)));
        let telegram = sent_at("telegram:42", DeliveryStatus::Sent, Some(100));
        assert!(!receipt_overdue(&telegram, DAY, Timestamp::from_secs(10 * day)));
        let delivered = sent_at("messenger:42", DeliveryStatus::Delivered, Some(100));
        assert!(!receipt_overdue(&delivered, DAY, Timestamp::from_secs(10 * day)));
        let no_time = sent_at("instagram:42", DeliveryStatus::Sent, None);
        assert!(!receipt_overdue(&no_time, DAY, Timestamp::from_secs(10 * day)));
    }

    #[test]
    fn overdue_details_name_the_deadline_in_its_largest_whole_unit() {
        assert_eq!(
            receipt_overdue_detail(DAY),
            "receipt_overdue: no receipt within 24h of SENT"
        );
        assert_eq!(short_duration(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(short_duration(Duration::from_secs(45)), "45s");
        assert_eq!(short_duration(Duration::from_millis(300)), "300ms");
    }
}
