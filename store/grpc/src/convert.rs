//! Between the model and the wire, both ways, in one place.
//!
//! What a server receives is the caller's to get right: a bad value is
//! `StoreError::Invalid` naming the field. What a client receives is the
//! server's to get right: a bad value there means the two disagree about the
//! contract, `StoreError::Corrupt`.

use chat4all_domain::convert::timestamp_or_now;
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Recipient};
use chat4all_proto::v1 as pb;

use chat4all_store::{
    BadStatusUpdate, ChannelPage, ClaimOutcome, InboundOutcome, InboundResult, NewInbound, NewMessage, Page,
    PlatformAnswer, PutChannelOutcome, PutOutcome, PutResult, StatusChange, StoreError, TransitionOutcome,
    TransitionResult,
};

/// The names of request fields a `StoreError::Invalid` may blame, as the
/// proto spells them (nested fields with a dot).
pub(super) mod field {
    pub(crate) const MESSAGE: &str = "message";
    pub(crate) const MESSAGE_ID: &str = "message.id";
    pub(crate) const MESSAGE_CONVERSATION_ID: &str = "message.conversation_id";
    pub(crate) const MESSAGE_RECIPIENT: &str = "message.recipient";
    pub(crate) const GET_MESSAGE_ID: &str = "message_id";
    pub(crate) const CONVERSATION_ID: &str = "conversation_id";
    /// The cursor, under the name the public API gives it.
    pub(crate) const PAGE_TOKEN: &str = chat4all_store::backend_rules::CURSOR_FIELD;
    pub(crate) const UPDATE_MESSAGE_ID: &str = "updates.message_id";
    pub(crate) const UPDATE_PLATFORM: &str = "updates.platform";
    pub(crate) const UPDATE_STATUS: &str = "updates.status";
    pub(crate) const CLAIM_MESSAGE_IDS: &str = "message_ids";
    pub(crate) const STUCK_STATUS: &str = "status";
    pub(crate) const CHANNEL: &str = "channel";
    /// The channel fields the store itself refuses (see `chat4all_store::model`).
    pub(crate) const CHANNEL_ID: &str = chat4all_store::backend_rules::CHANNEL_ID_FIELD;
    pub(crate) const CHANNEL_VENDOR_NAME: &str = chat4all_store::backend_rules::CHANNEL_VENDOR_NAME_FIELD;
    pub(crate) const CHANNEL_VENDOR_CHANNEL_ID: &str =
        chat4all_store::backend_rules::CHANNEL_VENDOR_CHANNEL_ID_FIELD;
    pub(crate) const INBOUND: &str = "inbound";
    pub(crate) const INBOUND_PLATFORM: &str = "inbound.platform";
    /// The inbound fields the store itself refuses (see `chat4all_store::model`).
    pub(crate) const INBOUND_VENDOR_CHANNEL_ID: &str =
        chat4all_store::backend_rules::INBOUND_VENDOR_CHANNEL_ID_FIELD;
    pub(crate) const INBOUND_EXTERNAL_MESSAGE_ID: &str =
        chat4all_store::backend_rules::INBOUND_EXTERNAL_MESSAGE_ID_FIELD;
    pub(crate) const INBOUND_MESSAGE_ID: &str = chat4all_store::backend_rules::INBOUND_MESSAGE_ID_FIELD;
    pub(crate) const DEDUP_WINDOW: &str = "dedup_window";
    pub(crate) const LEASE: &str = "lease";
    pub(crate) const TTL: &str = "ttl";
    pub(crate) const DEADLINE: &str = "deadline";
    pub(crate) const LEASE_NAME: &str = "name";
    pub(crate) const ANSWERED_AT: &str = "answered_at";
    pub(crate) const RECIPIENT: &str = "recipient";
    pub(crate) const SENT_UP_TO: &str = "sent_up_to";
    pub(crate) const SHORT_OF: &str = "short_of";

    /// Every name above, so a client can hand back the `&'static str` a
    /// server named.
    pub(crate) const ALL: &[&str] = &[
        MESSAGE,
        MESSAGE_ID,
        MESSAGE_CONVERSATION_ID,
        MESSAGE_RECIPIENT,
        GET_MESSAGE_ID,
        CONVERSATION_ID,
        PAGE_TOKEN,
        UPDATE_MESSAGE_ID,
        UPDATE_PLATFORM,
        UPDATE_STATUS,
        CLAIM_MESSAGE_IDS,
        STUCK_STATUS,
        CHANNEL,
        CHANNEL_ID,
        CHANNEL_VENDOR_NAME,
        CHANNEL_VENDOR_CHANNEL_ID,
        INBOUND,
        INBOUND_PLATFORM,
        INBOUND_VENDOR_CHANNEL_ID,
        INBOUND_EXTERNAL_MESSAGE_ID,
        INBOUND_MESSAGE_ID,
        DEDUP_WINDOW,
        LEASE,
        TTL,
        DEADLINE,
        LEASE_NAME,
        ANSWERED_AT,
        RECIPIENT,
        SENT_UP_TO,
        SHORT_OF,
    ];
}

// ---- requests: model → wire (client) ----

pub(super) fn new_message_to_proto(m: NewMessage) -> pb::NewMessage {
    pb::NewMessage {
        id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        recipient: Some((&m.recipient).into()),
        text: m.text,
        source: m.source,
        trace_id: m.trace_id,
        created_at: Some(m.created_at.into()),
        idempotency_key: m.idempotency_key.unwrap_or_default(),
    }
}

pub(super) fn list_channels_request(
    vendor_name: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> pb::StoreListChannelsRequest {
    pb::StoreListChannelsRequest {
        vendor_name: vendor_name.unwrap_or_default().to_owned(),
        limit,
        after: after.unwrap_or_default().to_owned(),
    }
}

pub(super) fn new_inbound_to_proto(i: NewInbound) -> Result<pb::PutInboundRequest, StoreError> {
    let dedup_window = prost_types::Duration::try_from(i.dedup_window)
        .map_err(|e| invalid(field::DEDUP_WINDOW, e.to_string()))?;
    Ok(pb::PutInboundRequest {
        inbound: Some(pb::InboundMessage {
            platform: i.platform.as_str().to_owned(),
            vendor_channel_id: i.vendor_channel_id,
            sender_id: i.sender_id,
            external_message_id: i.external_message_id,
            text: i.text,
            at: Some(i.at.into()),
            sender_name: i.sender_name,
            from_us: false,
        }),
        message_id: i.id.to_string(),
        trace_id: i.trace_id,
        dedup_window: Some(dedup_window),
    })
}

// ---- requests: wire → model (server) ----

/// The inbound message of a put. The vendor ids are the store's to judge,
/// as with channels; what cannot even be parsed is refused here.
pub(super) fn new_inbound_from_proto(r: pb::PutInboundRequest) -> Result<NewInbound, StoreError> {
    let i = r
        .inbound
        .ok_or_else(|| invalid(field::INBOUND, "is required".to_owned()))?;
    let platform: Platform = i
        .platform
        .parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| invalid(field::INBOUND_PLATFORM, e.to_string()))?;
    // No default window: remembering a key for no time at all would store
    // every redelivery, so a missing one is the caller's mistake.
    let dedup_window = r
        .dedup_window
        .ok_or_else(|| invalid(field::DEDUP_WINDOW, "is required".to_owned()))?;
    let dedup_window = std::time::Duration::try_from(dedup_window)
        .map_err(|e| invalid(field::DEDUP_WINDOW, e.to_string()))?;
    Ok(NewInbound {
        id: message_id_from_proto(&r.message_id, field::INBOUND_MESSAGE_ID)?,
        platform,
        vendor_channel_id: i.vendor_channel_id,
        external_message_id: i.external_message_id,
        sender_id: i.sender_id,
        sender_name: i.sender_name,
        text: i.text,
        at: timestamp_or_now(i.at),
        trace_id: r.trace_id,
        dedup_window,
    })
}

/// The channel of a put; its fields are the store's to judge, so that the
/// embedded store and the server refuse the same things the same way.
pub(super) fn put_channel_from_proto(r: pb::StorePutChannelRequest) -> Result<pb::Channel, StoreError> {
    r.channel
        .ok_or_else(|| invalid(field::CHANNEL, "is required".to_owned()))
}

/// `(vendor_name, after)` of a list request; empty means not given.
pub(super) fn list_channels_from_proto(r: &pb::StoreListChannelsRequest) -> (Option<&str>, Option<&str>) {
    (
        Some(r.vendor_name.as_str()).filter(|v| !v.is_empty()),
        Some(r.after.as_str()).filter(|a| !a.is_empty()),
    )
}

pub(super) fn new_message_from_proto(m: Option<pb::NewMessage>) -> Result<NewMessage, StoreError> {
    let m = m.ok_or_else(|| invalid(field::MESSAGE, "is required".to_owned()))?;
    let recipient = m
        .recipient
        .ok_or_else(|| invalid(field::MESSAGE_RECIPIENT, "is required".to_owned()))?;
    let platform: Platform = recipient
        .platform
        .parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| invalid(field::MESSAGE_RECIPIENT, e.to_string()))?;
    let recipient = Recipient::new(platform, &recipient.id)
        .map_err(|e| invalid(field::MESSAGE_RECIPIENT, e.to_string()))?;
    Ok(NewMessage {
        id: message_id_from_proto(&m.id, field::MESSAGE_ID)?,
        conversation_id: conversation_id_from_proto(&m.conversation_id, field::MESSAGE_CONVERSATION_ID)?,
        recipient,
        text: m.text,
        source: m.source,
        trace_id: m.trace_id,
        created_at: timestamp_or_now(m.created_at),
        idempotency_key: non_empty(m.idempotency_key),
    })
}

pub(super) fn message_id_from_proto(id: &str, field: &'static str) -> Result<MessageId, StoreError> {
    id.parse()
        .map_err(|e: chat4all_domain::IdError| invalid(field, e.to_string()))
}

pub(super) fn conversation_id_from_proto(
    id: &str,
    field: &'static str,
) -> Result<ConversationId, StoreError> {
    id.parse()
        .map_err(|e: chat4all_domain::IdError| invalid(field, e.to_string()))
}

pub(super) fn status_changes_from_proto(
    updates: Vec<pb::StatusUpdate>,
) -> Result<Vec<StatusChange>, StoreError> {
    updates
        .into_iter()
        .enumerate()
        .map(|(i, u)| status_change_from_proto(i, u))
        .collect()
}

/// One conversion for every way an update reaches the store
/// ([`StatusChange`]'s `TryFrom`); here only the field is named as this
/// request nests it, and the update by its place in the batch.
fn status_change_from_proto(i: usize, u: pb::StatusUpdate) -> Result<StatusChange, StoreError> {
    StatusChange::try_from(u).map_err(|e| {
        let field = match e {
            BadStatusUpdate::NoMessage | BadStatusUpdate::MessageId(_) => field::UPDATE_MESSAGE_ID,
            BadStatusUpdate::Platform(_) => field::UPDATE_PLATFORM,
            BadStatusUpdate::Status(_) => field::UPDATE_STATUS,
        };
        invalid(field, format!("update {i}: {e}"))
    })
}

/// A lease's length on the wire; required, and more than nothing.
pub(super) fn lease_to_proto(
    lease: std::time::Duration,
    name: &'static str,
) -> Result<prost_types::Duration, StoreError> {
    prost_types::Duration::try_from(lease).map_err(|e| invalid(name, e.to_string()))
}

/// A lease's length from the wire: a claim or lease for no time at all is
/// the caller's mistake, not a default.
pub(super) fn lease_from_proto(
    lease: Option<prost_types::Duration>,
    name: &'static str,
) -> Result<std::time::Duration, StoreError> {
    let lease = lease.ok_or_else(|| invalid(name, "is required".to_owned()))?;
    let lease = std::time::Duration::try_from(lease).map_err(|e| invalid(name, e.to_string()))?;
    if lease.is_zero() {
        return Err(invalid(name, "must be more than zero".to_owned()));
    }
    Ok(lease)
}

pub(super) fn message_id_field(id: &str, name: &'static str) -> Result<MessageId, StoreError> {
    id.parse()
        .map_err(|e: chat4all_domain::IdError| invalid(name, e.to_string()))
}

pub(super) fn answer_from_proto(r: &pb::RecordAnswerRequest) -> Result<PlatformAnswer, StoreError> {
    let at = r
        .answered_at
        .ok_or_else(|| invalid(field::ANSWERED_AT, "is required".to_owned()))?;
    Ok(PlatformAnswer {
        platform_message_id: r.platform_message_id.clone(),
        at: at.into(),
    })
}

/// A watermark's recipient from the wire.
pub(super) fn watermark_recipient(recipient: Option<&pb::Recipient>) -> Result<Recipient, StoreError> {
    let recipient = recipient.ok_or_else(|| invalid(field::RECIPIENT, "is required".to_owned()))?;
    let platform: Platform = recipient
        .platform
        .parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| invalid(field::RECIPIENT, e.to_string()))?;
    Recipient::new(platform, &recipient.id).map_err(|e| invalid(field::RECIPIENT, e.to_string()))
}

/// A watermark's status from the wire: DELIVERED or READ.
pub(super) fn watermark_status(status: i32, name: &'static str) -> Result<DeliveryStatus, StoreError> {
    match DeliveryStatus::from_proto(status) {
        Some(s @ (DeliveryStatus::Delivered | DeliveryStatus::Read)) => Ok(s),
        _ => Err(invalid(name, format!("{status} is not DELIVERED or READ"))),
    }
}

/// A required time from the wire.
pub(super) fn required_time(
    at: Option<prost_types::Timestamp>,
    name: &'static str,
) -> Result<chat4all_domain::Timestamp, StoreError> {
    at.map(Into::into)
        .ok_or_else(|| invalid(name, "is required".to_owned()))
}

pub(super) fn claim_ids_from_proto(ids: &[String]) -> Result<Vec<MessageId>, StoreError> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            id.parse().map_err(|e: chat4all_domain::IdError| {
                invalid(field::CLAIM_MESSAGE_IDS, format!("id {i}: {e}"))
            })
        })
        .collect()
}

// ---- responses: model → wire (server) ----

pub(super) fn put_result_to_proto(r: PutResult) -> pb::PutMessageResponse {
    pb::PutMessageResponse {
        outcome: r.outcome.to_proto().into(),
        message: Some(r.message),
    }
}

pub(super) fn page_to_proto(page: Page) -> pb::StoreListMessagesResponse {
    pb::StoreListMessagesResponse {
        messages: page.messages,
        next_cursor: page.next_cursor.unwrap_or_default(),
    }
}

pub(super) fn transition_result_to_proto(r: TransitionResult) -> pb::TransitionResult {
    let status =
        |s: Option<DeliveryStatus>| s.map_or(pb::DeliveryStatus::Unspecified, DeliveryStatus::to_proto);
    pb::TransitionResult {
        outcome: r.outcome.to_proto().into(),
        message_id: r.message_id.map(|id| id.to_string()).unwrap_or_default(),
        conversation_id: r.conversation_id.map(|c| c.to_string()).unwrap_or_default(),
        recipient: r.recipient.as_ref().map(pb::Recipient::from),
        previous: status(r.previous).into(),
        current: status(r.current).into(),
        at: r.at.map(Into::into),
    }
}

pub(super) fn claim_results_to_proto(
    ids: &[MessageId],
    outcomes: Vec<ClaimOutcome>,
) -> pb::ClaimForSendResponse {
    let results = ids
        .iter()
        .zip(outcomes)
        .map(|(id, outcome)| outcome.to_proto(&id.to_string()))
        .collect();
    pb::ClaimForSendResponse { results }
}

pub(super) fn put_channel_to_proto(
    (outcome, channel): (PutChannelOutcome, pb::Channel),
) -> pb::StorePutChannelResponse {
    pb::StorePutChannelResponse {
        outcome: outcome.to_proto().into(),
        channel: Some(channel),
    }
}

pub(super) fn channel_page_to_proto(page: ChannelPage) -> pb::StoreListChannelsResponse {
    pb::StoreListChannelsResponse {
        channels: page.channels,
        next_cursor: page.next_cursor.unwrap_or_default(),
    }
}

pub(super) fn inbound_result_to_proto(r: InboundResult) -> pb::PutInboundResponse {
    pb::PutInboundResponse {
        outcome: r.outcome.to_proto().into(),
        message: Some(r.message),
        channel: Some(r.channel),
        channel_created: r.channel_created,
    }
}

// ---- responses: wire → model (client) ----

pub(super) fn inbound_result_from_proto(r: pb::PutInboundResponse) -> Result<InboundResult, StoreError> {
    let outcome = InboundOutcome::from_proto(r.outcome)
        .ok_or_else(|| unexpected(format!("put inbound outcome {}", r.outcome)))?;
    let message = r
        .message
        .ok_or_else(|| unexpected("an inbound put without its message".to_owned()))?;
    let channel = r
        .channel
        .ok_or_else(|| unexpected("an inbound put without its channel".to_owned()))?;
    Ok(InboundResult {
        outcome,
        message,
        channel,
        channel_created: r.channel_created,
    })
}

pub(super) fn put_channel_from_response(
    r: pb::StorePutChannelResponse,
) -> Result<(PutChannelOutcome, pb::Channel), StoreError> {
    let outcome = PutChannelOutcome::from_proto(r.outcome)
        .ok_or_else(|| unexpected(format!("put channel outcome {}", r.outcome)))?;
    let channel = r
        .channel
        .ok_or_else(|| unexpected("a put without its channel".to_owned()))?;
    Ok((outcome, channel))
}

pub(super) fn channel_page_from_proto(r: pb::StoreListChannelsResponse) -> ChannelPage {
    ChannelPage {
        channels: r.channels,
        next_cursor: non_empty(r.next_cursor),
    }
}

pub(super) fn put_result_from_proto(r: pb::PutMessageResponse) -> Result<PutResult, StoreError> {
    let outcome =
        PutOutcome::from_proto(r.outcome).ok_or_else(|| unexpected(format!("put outcome {}", r.outcome)))?;
    let message = r
        .message
        .ok_or_else(|| unexpected("a put without its message".to_owned()))?;
    Ok(PutResult { outcome, message })
}

pub(super) fn page_from_proto(r: pb::StoreListMessagesResponse) -> Page {
    Page {
        messages: r.messages,
        next_cursor: non_empty(r.next_cursor),
    }
}

pub(super) fn transition_results_from_proto(
    r: pb::ApplyTransitionsResponse,
    asked: usize,
) -> Result<Vec<TransitionResult>, StoreError> {
    if r.results.len() != asked {
        return Err(unexpected(format!(
            "{} results for {asked} updates",
            r.results.len()
        )));
    }
    r.results.into_iter().map(transition_result_from_proto).collect()
}

fn transition_result_from_proto(r: pb::TransitionResult) -> Result<TransitionResult, StoreError> {
    let outcome = TransitionOutcome::from_proto(r.outcome)
        .ok_or_else(|| unexpected(format!("transition outcome {}", r.outcome)))?;
    let message_id = match r.message_id.as_str() {
        "" => None,
        id => Some(id.parse().map_err(|_| unexpected(format!("message id {id:?}")))?),
    };
    let conversation_id = match r.conversation_id.as_str() {
        "" => None,
        id => Some(
            id.parse()
                .map_err(|_| unexpected(format!("conversation id {id:?}")))?,
        ),
    };
    let recipient = r
        .recipient
        .map(|p| {
            let platform: Platform = p
                .platform
                .parse()
                .map_err(|e: chat4all_domain::UnknownPlatform| unexpected(format!("recipient: {e}")))?;
            Recipient::new(platform, &p.id).map_err(|e| unexpected(format!("recipient: {e}")))
        })
        .transpose()?;
    Ok(TransitionResult {
        outcome,
        message_id,
        conversation_id,
        recipient,
        previous: DeliveryStatus::from_proto(r.previous),
        current: DeliveryStatus::from_proto(r.current),
        at: r.at.map(chat4all_domain::Timestamp::from),
    })
}

pub(super) fn claim_results_from_proto(
    r: pb::ClaimForSendResponse,
    asked: &[MessageId],
) -> Result<Vec<ClaimOutcome>, StoreError> {
    if r.results.len() != asked.len() {
        return Err(unexpected(format!(
            "{} claim results for {} ids",
            r.results.len(),
            asked.len()
        )));
    }
    asked
        .iter()
        .zip(r.results)
        .map(|(id, result)| {
            if result.message_id != id.to_string() {
                return Err(unexpected(format!(
                    "a claim result for {} where {id} was asked",
                    result.message_id
                )));
            }
            ClaimOutcome::from_proto(&result)
                .ok_or_else(|| unexpected(format!("claim outcome {}", result.outcome)))
        })
        .collect()
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn invalid(field: &'static str, reason: String) -> StoreError {
    StoreError::Invalid { field, reason }
}

fn unexpected(what: String) -> StoreError {
    StoreError::Corrupt(format!("the store server answered {what}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_domain::Timestamp;
    use chat4all_store::MessageRef;

    use super::*;

    fn new_message() -> NewMessage {
        NewMessage {
            id: MessageId::generate(),
            conversation_id: "c-1".parse().unwrap(),
            recipient: "whatsapp:15551234567".parse().unwrap(),
            text: "hello".into(),
            source: "api".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            created_at: Timestamp::from_micros(1_700_000_000_123_456),
            idempotency_key: Some("k".into()),
        }
    }

    fn change(message: MessageRef) -> StatusChange {
        StatusChange {
            message,
            status: DeliveryStatus::Failed,
            at: Timestamp::from_micros(1_700_000_001_000_001),
            hop: "sidecar".into(),
            platform_message_id: None,
            failure: Some(pb::Failure {
                code: "429".into(),
                reason: "slow down".into(),
            }),
        }
    }

    #[test]
    fn a_new_message_round_trips() {
        let m = new_message();
        assert_eq!(
            new_message_from_proto(Some(new_message_to_proto(m.clone()))).unwrap(),
            m
        );
        let no_key = NewMessage {
            idempotency_key: None,
            ..m
        };
        assert_eq!(
            new_message_from_proto(Some(new_message_to_proto(no_key.clone()))).unwrap(),
            no_key
        );
    }

    #[test]
    fn status_changes_round_trip_by_id_and_by_platform_id() {
        let by_id = StatusChange {
            platform_message_id: Some("wamid.1".into()),
            ..change(MessageRef::Id(MessageId::generate()))
        };
        let by_platform = change(MessageRef::External {
            platform: Platform::WhatsApp,
            external_id: "wamid.2".into(),
        });
        let wire = vec![
            pb::StatusUpdate::from(by_id.clone()),
            pb::StatusUpdate::from(by_platform.clone()),
        ];
        assert_eq!(status_changes_from_proto(wire).unwrap(), [by_id, by_platform]);
    }

    #[test]
    fn bad_requests_name_their_field() {
        let field_of = |e: StoreError| match e {
            StoreError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field_of(new_message_from_proto(None).unwrap_err()),
            field::MESSAGE
        );
        let mut m = new_message_to_proto(new_message());
        m.id = "nope".into();
        assert_eq!(
            field_of(new_message_from_proto(Some(m.clone())).unwrap_err()),
            field::MESSAGE_ID
        );
        m = new_message_to_proto(new_message());
        m.recipient = Some(pb::Recipient {
            platform: "fax".into(),
            id: "1".into(),
        });
        assert_eq!(
            field_of(new_message_from_proto(Some(m)).unwrap_err()),
            field::MESSAGE_RECIPIENT
        );

        let nameless = pb::StatusUpdate {
            status: pb::DeliveryStatus::Sent.into(),
            ..Default::default()
        };
        assert_eq!(
            field_of(status_changes_from_proto(vec![nameless]).unwrap_err()),
            field::UPDATE_MESSAGE_ID
        );
        let no_status = pb::StatusUpdate {
            message_id: MessageId::generate().to_string(),
            ..Default::default()
        };
        let err = status_changes_from_proto(vec![no_status]).unwrap_err();
        assert!(err.to_string().contains("update 0"), "{err}");
        assert_eq!(field_of(err), field::UPDATE_STATUS);
        let unknown_platform = pb::StatusUpdate {
            status: pb::DeliveryStatus::Read.into(),
            platform: "fax".into(),
            platform_message_id: "f.1".into(),
            ..Default::default()
        };
        assert_eq!(
            field_of(status_changes_from_proto(vec![unknown_platform]).unwrap_err()),
            field::UPDATE_PLATFORM
        );
        assert_eq!(
            field_of(claim_ids_from_proto(&["x".into()]).unwrap_err()),
            field::CLAIM_MESSAGE_IDS
        );
    }

    #[test]
    fn channel_requests_and_answers_round_trip() {
        let request = list_channels_request(Some("chotot"), Some("6162"), 7);
        assert_eq!(list_channels_from_proto(&request), (Some("chotot"), Some("6162")));
        let request = list_channels_request(None, None, 0);
        assert_eq!(list_channels_from_proto(&request), (None, None));

        let channel = pb::Channel {
            id: "ch-1".into(),
            ..Default::default()
        };
        let put = (PutChannelOutcome::Updated, channel.clone());
        assert_eq!(
            put_channel_from_response(put_channel_to_proto(put.clone())).unwrap(),
            put
        );
        assert!(matches!(
            put_channel_from_response(pb::StorePutChannelResponse {
                outcome: 0,
                channel: Some(channel.clone())
            }),
            Err(StoreError::Corrupt(_))
        ));
        let page = ChannelPage {
            channels: vec![channel],
            next_cursor: None,
        };
        assert_eq!(channel_page_from_proto(channel_page_to_proto(page.clone())), page);
        assert!(matches!(
            put_channel_from_proto(pb::StorePutChannelRequest { channel: None }),
            Err(StoreError::Invalid {
                field: field::CHANNEL,
                ..
            })
        ));
    }

    #[test]
    fn results_round_trip() {
        let r = TransitionResult {
            outcome: TransitionOutcome::Backfilled,
            message_id: Some(MessageId::generate()),
            conversation_id: Some("c-1".parse().unwrap()),
            recipient: Some("chotot:ch-1001".parse().unwrap()),
            previous: Some(DeliveryStatus::Read),
            current: Some(DeliveryStatus::Read),
            at: Some(Timestamp::from_micros(5)),
        };
        let not_found = TransitionResult::not_found();
        let wire = pb::ApplyTransitionsResponse {
            results: vec![
                transition_result_to_proto(r.clone()),
                transition_result_to_proto(not_found.clone()),
            ],
        };
        assert_eq!(
            transition_results_from_proto(wire.clone(), 2).unwrap(),
            [r, not_found]
        );
        assert!(matches!(
            transition_results_from_proto(wire, 3),
            Err(StoreError::Corrupt(_))
        ));

        let ids = [MessageId::generate(), MessageId::generate()];
        let answered = ClaimOutcome::Answered(PlatformAnswer {
            platform_message_id: "wamid.9".into(),
            at: chat4all_domain::Timestamp::from_micros(1_700_000_000_123_456),
        });
        let ids = [ids[0], ids[1], MessageId::generate(), MessageId::generate()];
        let outcomes = vec![
            ClaimOutcome::Claimed,
            ClaimOutcome::NotFound,
            answered,
            ClaimOutcome::Uncertain,
        ];
        let wire = claim_results_to_proto(&ids, outcomes.clone());
        assert_eq!(claim_results_from_proto(wire.clone(), &ids).unwrap(), outcomes);
        assert!(matches!(
            claim_results_from_proto(wire, &[ids[1], ids[0], ids[2], ids[3]]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
