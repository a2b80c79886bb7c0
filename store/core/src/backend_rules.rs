//! What every backend does alike before and beside storing: the requests
//! it refuses (and the request field each refusal blames), the hop names of
//! the history entries it writes itself, the history's detail text, the
//! transition counter. Shared so the embedded and Scylla backends cannot
//! drift apart, and so the gRPC edge names the same fields. Services never
//! need it.

use chat4all_domain::Platform;
use chat4all_proto::v1 as pb;

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
