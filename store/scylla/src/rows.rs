//! Rows as the tables hold them: the first step of reading, and the
//! values that write a message.
//!
//! The driver copies a row into a `*Record` (CQL's types, checked by name
//! and type against the answer's metadata), which becomes the shared
//! columns of [`chat4all_store::stored_rows`]; parsing those is the second step,
//! shared with every backend.

use scylla::value::MaybeUnset;
use scylla::{DeserializeRow, SerializeRow};

use super::transitions::State;
use chat4all_store::StoreError;
use chat4all_store::stored_rows::{ChannelColumns, HistoryColumns, MessageColumns, StoredMessage};

/// A `messages` row, column for column (see `message_columns!`).
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
pub(super) struct MessageRecord {
    pub(super) id: String,
    pub(super) conversation_id: String,
    pub(super) recipient_platform: String,
    pub(super) recipient_id: String,
    pub(super) body: String,
    pub(super) source: String,
    pub(super) trace_id: String,
    pub(super) sender_id: Option<String>,
    pub(super) sender_name: Option<String>,
    pub(super) status: String,
    pub(super) created_at: i64,
    pub(super) accepted_at: Option<i64>,
    pub(super) routed_at: Option<i64>,
    pub(super) sent_at: Option<i64>,
    pub(super) delivered_at: Option<i64>,
    pub(super) read_at: Option<i64>,
    pub(super) failed_at: Option<i64>,
    pub(super) platform_message_id: Option<String>,
    pub(super) failure_code: Option<String>,
    pub(super) failure_reason: Option<String>,
    pub(super) version: i64,
}

/// The values of `insert_message`, in its column order. Absent values are
/// left unset rather than written as null: a null is a tombstone, and a new
/// row has nothing to delete.
#[derive(Debug, Clone, SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub(super) struct MessageInsert<'a> {
    id: String,
    conversation_id: &'a str,
    recipient_platform: &'static str,
    recipient_id: &'a str,
    body: &'a str,
    source: &'a str,
    trace_id: &'a str,
    sender_id: &'a str,
    sender_name: &'a str,
    status: &'static str,
    created_at: i64,
    accepted_at: MaybeUnset<i64>,
    routed_at: MaybeUnset<i64>,
    sent_at: MaybeUnset<i64>,
    delivered_at: MaybeUnset<i64>,
    read_at: MaybeUnset<i64>,
    failed_at: MaybeUnset<i64>,
    platform_message_id: MaybeUnset<&'a str>,
    failure_code: MaybeUnset<&'a str>,
    failure_reason: MaybeUnset<&'a str>,
    version: i64,
}

/// A message as the backend reasons about it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MessageRow {
    pub(super) message: StoredMessage,
    /// Bumped by every write of the state; the condition of the next.
    pub(super) version: i64,
}

impl TryFrom<MessageRecord> for MessageRow {
    type Error = StoreError;

    fn try_from(record: MessageRecord) -> Result<Self, StoreError> {
        let columns = MessageColumns {
            id: record.id,
            conversation_id: record.conversation_id,
            recipient_platform: record.recipient_platform,
            recipient_id: record.recipient_id,
            text: record.body,
            source: record.source,
            trace_id: record.trace_id,
            status: record.status,
            created_at: record.created_at,
            timeline: [
                record.accepted_at,
                record.routed_at,
                record.sent_at,
                record.delivered_at,
                record.read_at,
                record.failed_at,
            ],
            // CQL has no NOT NULL or DEFAULT: a column never written reads
            // as null, and null and empty both mean none.
            platform_message_id: record.platform_message_id.filter(|p| !p.is_empty()),
            failure_code: record.failure_code,
            failure_reason: record.failure_reason,
            sender_id: record.sender_id.unwrap_or_default(),
            sender_name: record.sender_name.unwrap_or_default(),
        };
        Ok(Self {
            message: columns.parse(None)?,
            version: record.version,
        })
    }
}

impl MessageRow {
    /// What a transition reads and writes of it.
    pub(super) fn state(&self) -> State {
        State {
            delivery: self.message.delivery.clone(),
            version: self.version,
        }
    }

    /// The values that insert this message as a new row.
    pub(super) fn insert_values(&self) -> MessageInsert<'_> {
        let message = &self.message;
        let delivery = &message.delivery;
        // A state not reached is left unset, never nulled: a state once
        // timed stays timed, so there is never anything to delete.
        let [accepted_at, routed_at, sent_at, delivered_at, read_at, failed_at] =
            delivery.timeline_micros().map(unset_if_none);
        let (failure_code, failure_reason) = delivery.failure_columns();
        MessageInsert {
            id: message.id.to_string(),
            conversation_id: message.conversation_id.as_str(),
            recipient_platform: message.recipient.platform.as_str(),
            recipient_id: &message.recipient.id,
            body: &message.text,
            source: &message.source,
            trace_id: &message.trace_id,
            sender_id: &message.sender_id,
            sender_name: &message.sender_name,
            status: delivery.status.as_str(),
            created_at: message.created_at.as_micros(),
            accepted_at,
            routed_at,
            sent_at,
            delivered_at,
            read_at,
            failed_at,
            platform_message_id: unset_if_none(delivery.platform_message_id.as_deref()),
            failure_code: unset_if_none(failure_code),
            failure_reason: unset_if_none(failure_reason),
            version: self.version,
        }
    }
}

pub(super) fn unset_if_none<T>(value: Option<T>) -> MaybeUnset<T> {
    value.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// A `status_history` row, as `history` reads it.
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
pub(super) struct HistoryRecord {
    recorded_at: i64,
    status: String,
    at: i64,
    hop: String,
    outcome: String,
    detail: String,
}

impl From<HistoryRecord> for HistoryColumns {
    fn from(record: HistoryRecord) -> Self {
        Self {
            status: record.status,
            at: record.at,
            hop: record.hop,
            outcome: record.outcome,
            detail: record.detail,
            recorded_at: record.recorded_at,
        }
    }
}

/// A `channels` row, column for column (see `channel_columns!`).
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
pub(super) struct ChannelRecord {
    id: String,
    vendor_name: String,
    vendor_channel_id: String,
    name: String,
    context: String,
    kind: String,
    metadata: String,
    created_at: i64,
}

impl From<ChannelRecord> for ChannelColumns {
    fn from(record: ChannelRecord) -> Self {
        Self {
            id: record.id,
            vendor_name: record.vendor_name,
            vendor_channel_id: record.vendor_channel_id,
            name: record.name,
            context: record.context,
            kind: record.kind,
            metadata: record.metadata,
            created_at: record.created_at,
        }
    }
}

/// The values of `insert_channel`, in `channel_columns!` order.
pub(super) fn channel_insert_values(row: &ChannelColumns) -> (&str, &str, &str, &str, &str, &str, &str, i64) {
    (
        &row.id,
        &row.vendor_name,
        &row.vendor_channel_id,
        &row.name,
        &row.context,
        &row.kind,
        &row.metadata,
        row.created_at,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_domain::DeliveryStatus;

    use super::*;

    fn record() -> MessageRecord {
        MessageRecord {
            id: "0190b3c4-1a2b-7c3d-8e4f-0123456789ab".into(),
            conversation_id: "c-1".into(),
            recipient_platform: "whatsapp".into(),
            recipient_id: "15551234567".into(),
            body: "hi".into(),
            source: "api".into(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            sender_id: None,
            sender_name: Some(String::new()),
            status: "SENT".into(),
            created_at: 1_000,
            accepted_at: Some(1_000),
            routed_at: None,
            sent_at: Some(3_000),
            delivered_at: None,
            read_at: None,
            failed_at: None,
            platform_message_id: Some("wamid.1".into()),
            failure_code: None,
            failure_reason: None,
            version: 4,
        }
    }

    #[test]
    fn a_record_maps_to_the_message_the_api_shows() {
        let row = MessageRow::try_from(record()).unwrap();
        assert_eq!(row.message.delivery.status, DeliveryStatus::Sent);
        assert_eq!(row.version, 4);
        assert_eq!(row.state().version, 4);
        assert_eq!(row.message.sender_id, "");
        let m = row.message.into_proto(vec![]);
        assert_eq!(m.text, "hi");
        assert_eq!(m.platform_message_id, "wamid.1");
        let states: Vec<_> = m.timeline.iter().map(|t| t.status).collect();
        assert_eq!(
            states,
            [
                i32::from(chat4all_proto::v1::DeliveryStatus::Accepted),
                i32::from(chat4all_proto::v1::DeliveryStatus::Sent)
            ]
        );
    }

    #[test]
    fn an_empty_platform_id_is_none() {
        let r = MessageRecord {
            platform_message_id: Some(String::new()),
            ..record()
        };
        let row = MessageRow::try_from(r).unwrap();
        assert_eq!(row.message.delivery.platform_message_id, None);
    }

    #[test]
    fn a_corrupt_record_is_named_by_its_id() {
        let r = MessageRecord {
            status: "LOST".into(),
            ..record()
        };
        match MessageRow::try_from(r) {
            Err(StoreError::Corrupt(reason)) => {
                assert!(
                    reason.starts_with(&format!("message {}:", record().id)),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_is_inserted_reads_back_the_same() {
        let row = MessageRow::try_from(record()).unwrap();
        let values = row.insert_values();
        assert_eq!(values.id, record().id);
        assert_eq!(values.status, "SENT");
        assert!(matches!(values.accepted_at, MaybeUnset::Set(1_000)));
        assert!(
            matches!(values.routed_at, MaybeUnset::Unset),
            "never a null, so never a tombstone"
        );
        assert!(matches!(values.sent_at, MaybeUnset::Set(3_000)));
        assert!(matches!(values.platform_message_id, MaybeUnset::Set("wamid.1")));
        assert!(matches!(values.failure_code, MaybeUnset::Unset));
        assert_eq!(values.version, 4);
    }
}
