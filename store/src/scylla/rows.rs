//! Rows as the tables hold them, and the typed records the backend works
//! with.
//!
//! Reading is two steps, as in the embedded backend: the driver copies the
//! columns into a `*Record` (CQL's types, checked by name and type against
//! the answer's metadata), then `TryFrom` parses them into domain types.
//! The second step is pure, so what counts as corrupt is unit-tested
//! without a cluster. Statuses and outcomes are stored by name, so `cqlsh`
//! shows them as they are.

use chat4all_domain::json_struct::{struct_from_json, struct_to_json};
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Recipient, Timeline, Timestamp};
use chat4all_proto::v1 as pb;
use scylla::value::MaybeUnset;
use scylla::{DeserializeRow, SerializeRow};

use super::transitions::State;
use crate::{StoreError, TransitionOutcome};

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
    pub(super) id: MessageId,
    pub(super) conversation_id: ConversationId,
    pub(super) recipient: Recipient,
    pub(super) body: String,
    pub(super) source: String,
    pub(super) trace_id: String,
    pub(super) sender_id: String,
    pub(super) sender_name: String,
    pub(super) created_at: Timestamp,
    /// What transitions change.
    pub(super) state: State,
}

impl TryFrom<MessageRecord> for MessageRow {
    type Error = StoreError;

    fn try_from(record: MessageRecord) -> Result<Self, StoreError> {
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!(
                "message {}: bad {what} {:?}",
                truncated(&record.id),
                truncated(value)
            ))
        };
        let id = record.id.parse().map_err(|_| corrupt("id", &record.id))?;
        let conversation_id = record
            .conversation_id
            .parse()
            .map_err(|_| corrupt("conversation id", &record.conversation_id))?;
        let platform: Platform = record
            .recipient_platform
            .parse()
            .map_err(|_| corrupt("recipient platform", &record.recipient_platform))?;
        let status = status_from_name(&record.status).ok_or_else(|| corrupt("status", &record.status))?;
        let mut timeline = Timeline::default();
        let times = [
            record.accepted_at,
            record.routed_at,
            record.sent_at,
            record.delivered_at,
            record.read_at,
            record.failed_at,
        ];
        for (status, at) in DeliveryStatus::ALL.into_iter().zip(times) {
            if let Some(at) = at {
                timeline.set(status, Timestamp::from_micros(at));
            }
        }
        let failure = match (record.failure_code, record.failure_reason) {
            (None, None) => None,
            (code, reason) => Some(pb::Failure {
                code: code.unwrap_or_default(),
                reason: reason.unwrap_or_default(),
            }),
        };
        Ok(Self {
            id,
            conversation_id,
            // Not `Recipient::new`: the id was checked when it came in, and
            // a rule tightened since must not make stored messages unreadable.
            recipient: Recipient {
                platform,
                id: record.recipient_id,
            },
            body: record.body,
            source: record.source,
            trace_id: record.trace_id,
            sender_id: record.sender_id.unwrap_or_default(),
            sender_name: record.sender_name.unwrap_or_default(),
            created_at: Timestamp::from_micros(record.created_at),
            state: State {
                status,
                timeline,
                failure,
                platform_message_id: record.platform_message_id.filter(|p| !p.is_empty()),
                version: record.version,
            },
        })
    }
}

impl MessageRow {
    /// The values that insert this message as a new row.
    pub(super) fn insert_values(&self) -> MessageInsert<'_> {
        let [accepted_at, routed_at, sent_at, delivered_at, read_at, failed_at] =
            timeline_values(&self.state.timeline);
        let failure = self.state.failure.as_ref();
        MessageInsert {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.as_str(),
            recipient_platform: self.recipient.platform.as_str(),
            recipient_id: &self.recipient.id,
            body: &self.body,
            source: &self.source,
            trace_id: &self.trace_id,
            sender_id: &self.sender_id,
            sender_name: &self.sender_name,
            status: self.state.status.as_str(),
            created_at: self.created_at.as_micros(),
            accepted_at,
            routed_at,
            sent_at,
            delivered_at,
            read_at,
            failed_at,
            platform_message_id: unset_if_none(self.state.platform_message_id.as_deref()),
            failure_code: unset_if_none(failure.map(|f| f.code.as_str())),
            failure_reason: unset_if_none(failure.map(|f| f.reason.as_str())),
            version: self.state.version,
        }
    }

    pub(super) fn into_proto(self, history: Vec<pb::StatusHistoryEntry>) -> pb::Message {
        pb::Message {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.to_string(),
            recipient: Some((&self.recipient).into()),
            text: self.body,
            source: self.source,
            status: self.state.status.to_proto().into(),
            timeline: chat4all_domain::convert::timeline_to_proto(&self.state.timeline),
            history,
            trace_id: self.trace_id,
            platform_message_id: self.state.platform_message_id.unwrap_or_default(),
            created_at: Some(self.created_at.into()),
            failure: self.state.failure,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
        }
    }
}

/// The timeline as its six columns, in `DeliveryStatus::ALL` order; a
/// state not reached is left unset, never nulled (a state once timed stays
/// timed, so there is never anything to delete).
pub(super) fn timeline_values(timeline: &Timeline) -> [MaybeUnset<i64>; 6] {
    DeliveryStatus::ALL.map(|s| unset_if_none(timeline.get(s).map(Timestamp::as_micros)))
}

pub(super) fn unset_if_none<T>(value: Option<T>) -> MaybeUnset<T> {
    value.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// A `status_history` row, as `history` reads it.
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
pub(super) struct HistoryRecord {
    pub(super) recorded_at: i64,
    pub(super) status: String,
    pub(super) at: i64,
    pub(super) hop: String,
    pub(super) outcome: String,
    pub(super) detail: String,
}

impl TryFrom<HistoryRecord> for pb::StatusHistoryEntry {
    type Error = StoreError;

    fn try_from(record: HistoryRecord) -> Result<Self, StoreError> {
        let status = status_from_name(&record.status).ok_or_else(|| {
            StoreError::Corrupt(format!("history: bad status {:?}", truncated(&record.status)))
        })?;
        let outcome = TransitionOutcome::from_name(&record.outcome).ok_or_else(|| {
            StoreError::Corrupt(format!("history: bad outcome {:?}", truncated(&record.outcome)))
        })?;
        Ok(pb::StatusHistoryEntry {
            status: status.to_proto().into(),
            at: Some(Timestamp::from_micros(record.at).into()),
            hop: record.hop,
            outcome: outcome.to_proto().into(),
            detail: record.detail,
            recorded_at: Some(Timestamp::from_micros(record.recorded_at).into()),
        })
    }
}

pub(super) fn status_from_name(name: &str) -> Option<DeliveryStatus> {
    DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == name)
}

/// A `channels` row, column for column (see `channel_columns!`).
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
pub(super) struct ChannelRecord {
    pub(super) id: String,
    pub(super) vendor_name: String,
    pub(super) vendor_channel_id: String,
    pub(super) name: String,
    pub(super) context: String,
    pub(super) kind: String,
    pub(super) metadata: String,
    pub(super) created_at: i64,
}

impl ChannelRecord {
    /// The row a new channel is stored as. Metadata is a JSON object, as
    /// the embedded backend keeps it, so both read the same; absent is empty.
    pub(super) fn new(
        id: String,
        vendor: (&str, &str),
        channel: &pb::Channel,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id,
            vendor_name: vendor.0.to_owned(),
            vendor_channel_id: vendor.1.to_owned(),
            name: channel.name.clone(),
            context: channel.context.clone(),
            kind: channel.r#type.clone(),
            metadata: metadata_to_json(channel.metadata.as_ref()),
            created_at: created_at.as_micros(),
        }
    }

    /// Whether `channel` would change nothing. Metadata is compared as JSON
    /// values through a `Struct`, so key order or an integer in the column
    /// cannot make an identical put look like an update.
    pub(super) fn same_fields(&self, channel: &pb::Channel) -> Result<bool, StoreError> {
        if self.name != channel.name || self.context != channel.context || self.kind != channel.r#type {
            return Ok(false);
        }
        let stored = metadata_from_json(&self.id, &self.metadata)?;
        let given = channel.metadata.as_ref().map(struct_to_json).unwrap_or_default();
        Ok(struct_to_json(&struct_from_json(stored)) == given)
    }
}

impl TryFrom<ChannelRecord> for pb::Channel {
    type Error = StoreError;

    fn try_from(record: ChannelRecord) -> Result<Self, StoreError> {
        let metadata = metadata_from_json(&record.id, &record.metadata)?;
        Ok(pb::Channel {
            id: record.id,
            vendor: Some(pb::ChannelVendor {
                channel_id: record.vendor_channel_id,
                name: record.vendor_name,
            }),
            name: record.name,
            context: record.context,
            r#type: record.kind,
            metadata: Some(struct_from_json(metadata)),
            created_at: Some(Timestamp::from_micros(record.created_at).into()),
        })
    }
}

pub(super) fn metadata_to_json(metadata: Option<&prost_types::Struct>) -> String {
    serde_json::Value::Object(metadata.map(struct_to_json).unwrap_or_default()).to_string()
}

fn metadata_from_json(
    id: &str,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("channel {}: bad metadata: {e}", truncated(id))))
}

/// Enough of a bad value to recognise it in a log, not a whole text.
fn truncated(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

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
    fn a_row_maps_to_the_message_the_api_shows() {
        let row = MessageRow::try_from(record()).unwrap();
        assert_eq!(row.state.status, DeliveryStatus::Sent);
        assert_eq!(row.state.version, 4);
        assert_eq!(row.sender_id, "");
        let m = row.into_proto(vec![]);
        assert_eq!(m.status, i32::from(pb::DeliveryStatus::Sent));
        let states: Vec<_> = m.timeline.iter().map(|t| t.status).collect();
        assert_eq!(
            states,
            [
                i32::from(pb::DeliveryStatus::Accepted),
                i32::from(pb::DeliveryStatus::Sent)
            ]
        );
        assert_eq!(m.text, "hi");
        assert_eq!(m.recipient.unwrap().platform, "whatsapp");
        assert_eq!(m.platform_message_id, "wamid.1");
        assert_eq!(m.failure, None);
        assert_eq!(
            Timestamp::from(m.created_at.unwrap()),
            Timestamp::from_micros(1_000)
        );
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

    #[test]
    fn a_failure_survives_with_either_half_missing() {
        let r = MessageRecord {
            failure_reason: Some("receiver incapable".into()),
            ..record()
        };
        assert_eq!(
            MessageRow::try_from(r).unwrap().state.failure,
            Some(pb::Failure {
                code: String::new(),
                reason: "receiver incapable".into()
            })
        );
    }

    #[test]
    fn values_this_build_never_writes_are_corrupt() {
        for break_it in [
            (|r: &mut MessageRecord| r.status = "LOST".into()) as fn(&mut MessageRecord),
            |r| r.id = "not-a-uuid".into(),
            |r| r.recipient_platform = "fax".into(),
            |r| r.conversation_id = String::new(),
        ] {
            let mut r = record();
            break_it(&mut r);
            assert!(matches!(MessageRow::try_from(r), Err(StoreError::Corrupt(_))));
        }
        let history = HistoryRecord {
            recorded_at: 2,
            status: "SENT".into(),
            at: 1,
            hop: "sidecar".into(),
            outcome: "MAYBE".into(),
            detail: String::new(),
        };
        assert!(matches!(
            pb::StatusHistoryEntry::try_from(history),
            Err(StoreError::Corrupt(_))
        ));
        let channel = ChannelRecord {
            metadata: "[1]".into(),
            ..ChannelRecord::new(
                "c".into(),
                ("chotot", "1"),
                &pb::Channel::default(),
                Timestamp::from_micros(0),
            )
        };
        assert!(matches!(
            pb::Channel::try_from(channel),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn history_entries_map_with_their_times() {
        let entry = pb::StatusHistoryEntry::try_from(HistoryRecord {
            recorded_at: 9,
            status: "DELIVERED".into(),
            at: 7,
            hop: "webhook".into(),
            outcome: "BACKFILLED".into(),
            detail: "d".into(),
        })
        .unwrap();
        assert_eq!(entry.status, i32::from(pb::DeliveryStatus::Delivered));
        assert_eq!(entry.outcome, i32::from(pb::TransitionOutcome::Backfilled));
        assert_eq!(entry.at, Some(Timestamp::from_micros(7).into()));
        assert_eq!(entry.recorded_at, Some(Timestamp::from_micros(9).into()));
    }

    #[test]
    fn channels_round_trip_and_compare_metadata_by_value() {
        let metadata = |v: serde_json::Value| match v {
            serde_json::Value::Object(o) => struct_from_json(o),
            _ => unreachable!(),
        };
        let channel = pb::Channel {
            name: "Nguyễn".into(),
            context: "item:1".into(),
            r#type: "buyer".into(),
            metadata: Some(metadata(json!({"price": 12_500_000.0, "tags": ["a", null]}))),
            ..Default::default()
        };
        let record = ChannelRecord::new(
            "id-1".into(),
            ("chotot", "42"),
            &channel,
            Timestamp::from_micros(5),
        );
        assert!(record.same_fields(&channel).unwrap());
        let reordered = ChannelRecord {
            metadata: r#"{"tags":["a",null],"price":12500000}"#.into(),
            ..record.clone()
        };
        assert!(reordered.same_fields(&channel).unwrap());
        let renamed = pb::Channel {
            name: "other".into(),
            ..channel.clone()
        };
        assert!(!record.same_fields(&renamed).unwrap());

        let back = pb::Channel::try_from(record).unwrap();
        assert_eq!(back.id, "id-1");
        assert_eq!(
            back.vendor,
            Some(pb::ChannelVendor {
                channel_id: "42".into(),
                name: "chotot".into()
            })
        );
        assert_eq!(back.metadata, channel.metadata);
        assert_eq!(back.r#type, "buyer");
        assert_eq!(back.created_at, Some(Timestamp::from_micros(5).into()));
        let empty = ChannelRecord::new(
            "e".into(),
            ("x", "y"),
            &pb::Channel::default(),
            Timestamp::from_micros(0),
        );
        assert_eq!(empty.metadata, "{}");
    }
}
