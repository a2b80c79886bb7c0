//! Rows as SQLite holds them, and the typed records the store works with.
//!
//! Reading is two steps: [`RawMessage::from_row`] only copies columns out
//! (rusqlite's types), then `TryFrom` parses them into domain types. The
//! second step is pure, so what counts as corrupt is unit-tested without a
//! database. Statuses and outcomes are stored as their names, not numbers:
//! an operator with the `sqlite3` shell can read the file.

use chat4all_domain::json_struct::{struct_from_json, struct_to_json};
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Recipient, Timeline, Timestamp};
use chat4all_proto::v1 as pb;
use rusqlite::Row;

use crate::{StoreError, TransitionOutcome};

/// The columns of `messages` that [`RawMessage::from_row`] reads, for
/// `concat!` into static SQL.
macro_rules! message_columns {
    () => {
        "seq, id, conversation_id, recipient_platform, recipient_id, text, source, trace_id, status, \
         created_at, accepted_at, routed_at, sent_at, delivered_at, read_at, failed_at, \
         platform_message_id, failure_code, failure_reason, sender_id, sender_name"
    };
}
pub(super) use message_columns;

/// The timeline columns, in [`DeliveryStatus::ALL`] order.
pub(super) const TIMELINE_COLUMNS: [&str; 6] = [
    "accepted_at",
    "routed_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
];

/// A `messages` row, column for column.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawMessage {
    pub(super) seq: i64,
    pub(super) id: String,
    pub(super) conversation_id: String,
    pub(super) recipient_platform: String,
    pub(super) recipient_id: String,
    pub(super) text: String,
    pub(super) source: String,
    pub(super) trace_id: String,
    pub(super) status: String,
    pub(super) created_at: i64,
    pub(super) timeline: [Option<i64>; 6],
    pub(super) platform_message_id: Option<String>,
    pub(super) failure_code: Option<String>,
    pub(super) failure_reason: Option<String>,
    pub(super) sender_id: String,
    pub(super) sender_name: String,
}

impl RawMessage {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let mut timeline = [None; 6];
        for (slot, column) in timeline.iter_mut().zip(TIMELINE_COLUMNS) {
            *slot = row.get(column)?;
        }
        Ok(Self {
            seq: row.get("seq")?,
            id: row.get("id")?,
            conversation_id: row.get("conversation_id")?,
            recipient_platform: row.get("recipient_platform")?,
            recipient_id: row.get("recipient_id")?,
            text: row.get("text")?,
            source: row.get("source")?,
            trace_id: row.get("trace_id")?,
            status: row.get("status")?,
            created_at: row.get("created_at")?,
            timeline,
            platform_message_id: row.get("platform_message_id")?,
            failure_code: row.get("failure_code")?,
            failure_reason: row.get("failure_reason")?,
            sender_id: row.get("sender_id")?,
            sender_name: row.get("sender_name")?,
        })
    }
}

/// A message as the store reasons about it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MessageRow {
    pub(super) seq: i64,
    pub(super) id: MessageId,
    pub(super) conversation_id: ConversationId,
    pub(super) recipient: Recipient,
    pub(super) text: String,
    pub(super) source: String,
    pub(super) trace_id: String,
    pub(super) status: DeliveryStatus,
    pub(super) created_at: Timestamp,
    pub(super) timeline: Timeline,
    pub(super) platform_message_id: Option<String>,
    pub(super) failure: Option<pb::Failure>,
    /// Who wrote it, on an inbound message; empty otherwise.
    pub(super) sender_id: String,
    pub(super) sender_name: String,
}

impl TryFrom<RawMessage> for MessageRow {
    type Error = StoreError;

    fn try_from(raw: RawMessage) -> Result<Self, StoreError> {
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!("message #{}: bad {what} {:?}", raw.seq, truncated(value)))
        };
        let id = raw.id.parse().map_err(|_| corrupt("id", &raw.id))?;
        let conversation_id = raw
            .conversation_id
            .parse()
            .map_err(|_| corrupt("conversation id", &raw.conversation_id))?;
        let platform: Platform = raw
            .recipient_platform
            .parse()
            .map_err(|_| corrupt("recipient platform", &raw.recipient_platform))?;
        let status = status_from_db(&raw.status).ok_or_else(|| corrupt("status", &raw.status))?;
        let mut timeline = Timeline::default();
        for (status, at) in DeliveryStatus::ALL.into_iter().zip(raw.timeline) {
            if let Some(at) = at {
                timeline.set(status, Timestamp::from_micros(at));
            }
        }
        let failure = match (raw.failure_code, raw.failure_reason) {
            (None, None) => None,
            (code, reason) => Some(pb::Failure {
                code: code.unwrap_or_default(),
                reason: reason.unwrap_or_default(),
            }),
        };
        Ok(Self {
            seq: raw.seq,
            id,
            conversation_id,
            // Not `Recipient::new`: the id was checked when it came in, and a
            // rule tightened since must not make stored messages unreadable.
            recipient: Recipient {
                platform,
                id: raw.recipient_id,
            },
            text: raw.text,
            source: raw.source,
            trace_id: raw.trace_id,
            status,
            created_at: Timestamp::from_micros(raw.created_at),
            timeline,
            platform_message_id: raw.platform_message_id,
            failure,
            sender_id: raw.sender_id,
            sender_name: raw.sender_name,
        })
    }
}

impl MessageRow {
    /// The timeline as its six columns, in [`TIMELINE_COLUMNS`] order.
    pub(super) fn timeline_columns(&self) -> [Option<i64>; 6] {
        DeliveryStatus::ALL.map(|s| self.timeline.get(s).map(Timestamp::as_micros))
    }

    pub(super) fn into_proto(self, history: Vec<pb::StatusHistoryEntry>) -> pb::Message {
        pb::Message {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.to_string(),
            recipient: Some((&self.recipient).into()),
            text: self.text,
            source: self.source,
            status: self.status.to_proto().into(),
            timeline: chat4all_domain::convert::timeline_to_proto(&self.timeline),
            history,
            trace_id: self.trace_id,
            platform_message_id: self.platform_message_id.unwrap_or_default(),
            created_at: Some(self.created_at.into()),
            failure: self.failure,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
        }
    }
}

/// A `status_history` row, column for column.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawHistory {
    pub(super) status: String,
    pub(super) at: i64,
    pub(super) hop: String,
    pub(super) outcome: String,
    pub(super) detail: String,
    pub(super) recorded_at: i64,
}

impl RawHistory {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            status: row.get("status")?,
            at: row.get("at")?,
            hop: row.get("hop")?,
            outcome: row.get("outcome")?,
            detail: row.get("detail")?,
            recorded_at: row.get("recorded_at")?,
        })
    }
}

impl TryFrom<RawHistory> for pb::StatusHistoryEntry {
    type Error = StoreError;

    fn try_from(raw: RawHistory) -> Result<Self, StoreError> {
        let status = status_from_db(&raw.status).ok_or_else(|| {
            StoreError::Corrupt(format!("history: bad status {:?}", truncated(&raw.status)))
        })?;
        let outcome = outcome_from_db(&raw.outcome).ok_or_else(|| {
            StoreError::Corrupt(format!("history: bad outcome {:?}", truncated(&raw.outcome)))
        })?;
        Ok(pb::StatusHistoryEntry {
            status: status.to_proto().into(),
            at: Some(Timestamp::from_micros(raw.at).into()),
            hop: raw.hop,
            outcome: outcome.to_proto().into(),
            detail: raw.detail,
            recorded_at: Some(Timestamp::from_micros(raw.recorded_at).into()),
        })
    }
}

pub(super) fn status_from_db(name: &str) -> Option<DeliveryStatus> {
    DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == name)
}

pub(super) fn outcome_to_db(outcome: TransitionOutcome) -> &'static str {
    outcome.as_str()
}

pub(super) fn outcome_from_db(name: &str) -> Option<TransitionOutcome> {
    TransitionOutcome::from_name(name)
}

/// Enough of a bad value to recognise it in a log, not a whole text.
fn truncated(value: &str) -> String {
    value.chars().take(64).collect()
}

/// The columns of `channels` that [`RawChannel::from_row`] reads.
macro_rules! channel_columns {
    () => {
        "id, vendor_name, vendor_channel_id, name, context, type, metadata, created_at"
    };
}
pub(super) use channel_columns;

/// A `channels` row, column for column.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawChannel {
    pub(super) id: String,
    pub(super) vendor_name: String,
    pub(super) vendor_channel_id: String,
    pub(super) name: String,
    pub(super) context: String,
    pub(super) kind: String,
    pub(super) metadata: String,
    pub(super) created_at: i64,
}

impl RawChannel {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get("id")?,
            vendor_name: row.get("vendor_name")?,
            vendor_channel_id: row.get("vendor_channel_id")?,
            name: row.get("name")?,
            context: row.get("context")?,
            kind: row.get("type")?,
            metadata: row.get("metadata")?,
            created_at: row.get("created_at")?,
        })
    }
}

impl TryFrom<RawChannel> for pb::Channel {
    type Error = StoreError;

    fn try_from(raw: RawChannel) -> Result<Self, StoreError> {
        let metadata = metadata_from_db(&raw.metadata)
            .map_err(|e| StoreError::Corrupt(format!("channel {}: bad metadata: {e}", truncated(&raw.id))))?;
        Ok(pb::Channel {
            id: raw.id,
            vendor: Some(pb::ChannelVendor {
                channel_id: raw.vendor_channel_id,
                name: raw.vendor_name,
            }),
            name: raw.name,
            context: raw.context,
            r#type: raw.kind,
            metadata: Some(struct_from_json(metadata)),
            created_at: Some(Timestamp::from_micros(raw.created_at).into()),
        })
    }
}

/// Metadata as the column holds it: a JSON object; absent is empty.
pub(super) fn metadata_to_db(metadata: Option<&prost_types::Struct>) -> String {
    let object = metadata.map(struct_to_json).unwrap_or_default();
    serde_json::Value::Object(object).to_string()
}

pub(super) fn metadata_from_db(
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw() -> RawMessage {
        RawMessage {
            seq: 7,
            id: "0190b3c4-1a2b-7c3d-8e4f-0123456789ab".into(),
            conversation_id: "c-1".into(),
            recipient_platform: "whatsapp".into(),
            recipient_id: "15551234567".into(),
            text: "hi".into(),
            source: "api".into(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            status: "SENT".into(),
            created_at: 1_000,
            timeline: [Some(1_000), None, Some(3_000), None, None, None],
            platform_message_id: Some("wamid.1".into()),
            failure_code: None,
            failure_reason: None,
            sender_id: String::new(),
            sender_name: String::new(),
        }
    }

    #[test]
    fn a_row_maps_to_the_message_the_api_shows() {
        let row = MessageRow::try_from(raw()).unwrap();
        assert_eq!(row.status, DeliveryStatus::Sent);
        assert_eq!(row.timeline_columns(), raw().timeline);
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
        assert_eq!(m.recipient.unwrap().platform, "whatsapp");
        assert_eq!(m.platform_message_id, "wamid.1");
        assert_eq!(m.failure, None);
        assert_eq!(
            Timestamp::from(m.created_at.unwrap()),
            Timestamp::from_micros(1_000)
        );
    }

    #[test]
    fn a_failure_survives_with_either_half_missing() {
        let mut r = raw();
        r.failure_code = Some("131026".into());
        let row = MessageRow::try_from(r).unwrap();
        assert_eq!(
            row.failure,
            Some(pb::Failure {
                code: "131026".into(),
                reason: String::new()
            })
        );
    }

    #[test]
    fn values_this_build_never_writes_are_corrupt() {
        for break_it in [
            (|r: &mut RawMessage| r.status = "LOST".into()) as fn(&mut RawMessage),
            |r| r.id = "not-a-uuid".into(),
            |r| r.recipient_platform = "fax".into(),
            |r| r.conversation_id = String::new(),
        ] {
            let mut r = raw();
            break_it(&mut r);
            assert!(matches!(MessageRow::try_from(r), Err(StoreError::Corrupt(_))));
        }
        let history = RawHistory {
            status: "SENT".into(),
            at: 1,
            hop: "sidecar".into(),
            outcome: "MAYBE".into(),
            detail: String::new(),
            recorded_at: 2,
        };
        assert!(matches!(
            pb::StatusHistoryEntry::try_from(history),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn names_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(status_from_db(s.as_str()), Some(s));
        }
        for o in [
            TransitionOutcome::Applied,
            TransitionOutcome::Backfilled,
            TransitionOutcome::NotFound,
        ] {
            assert_eq!(outcome_from_db(outcome_to_db(o)), Some(o));
        }
    }
}
