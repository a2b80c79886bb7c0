//! What every backend stores, as plain column values, and the one mapping
//! between those and the messages, history entries and channels the API
//! shows.
//!
//! Reading is two steps in every backend: its driver copies a row into one
//! of the `*Columns` structs here (strings and i64 micros, as SQLite and CQL
//! both hold them), then the conversions here parse them into domain types.
//! The second step is pure and shared, so what counts as corrupt is the
//! same whichever backend read the row, and is unit-tested without a
//! database. Statuses and outcomes are stored by name, not number, so an
//! operator with `sqlite3` or `cqlsh` reads them as they are.

use chat4all_domain::json_struct::{struct_from_json, struct_to_json};
use chat4all_domain::{
    ConversationId, Decision, DeliveryStatus, MessageId, Platform, Recipient, Timeline, Timestamp, decide,
};
use chat4all_proto::v1 as pb;

use crate::backend_rules::{ACCEPTING_HOP, CHANNEL_ID_FIELD, INBOUND_HOP, history_detail};
use crate::{
    NewInbound, NewMessage, PutOutcome, StatusChange, StoreError, TransitionOutcome, TransitionResult,
};

/// A `messages` row, column for column, as every backend reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageColumns {
    pub id: String,
    pub conversation_id: String,
    pub recipient_platform: String,
    pub recipient_id: String,
    pub text: String,
    pub source: String,
    pub trace_id: String,
    pub status: String,
    pub created_at: i64,
    /// The time of each state, in [`DeliveryStatus::ALL`] order.
    pub timeline: [Option<i64>; 6],
    pub platform_message_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub sender_id: String,
    pub sender_name: String,
}

/// A message as the store reasons about it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub recipient: Recipient,
    pub text: String,
    /// `api`, or `vendor:<name>` for inbound.
    pub source: String,
    pub trace_id: String,
    /// Who wrote it, on an inbound message; empty otherwise.
    pub sender_id: String,
    pub sender_name: String,
    pub created_at: Timestamp,
    /// What transitions change.
    pub delivery: DeliveryState,
}

/// Where a message is on its way: what a transition reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryState {
    pub status: DeliveryStatus,
    pub timeline: Timeline,
    /// Describes the current status: set on FAILED, cleared when a receipt
    /// supersedes it.
    pub failure: Option<pb::Failure>,
    /// The platform's id for the message; the first one recorded stays.
    pub platform_message_id: Option<String>,
}

impl MessageColumns {
    /// Parses the row. `seq` is its number where the backend numbers rows:
    /// a corrupt row is named by it, since its id may be what is corrupt.
    pub fn parse(self, seq: Option<i64>) -> Result<StoredMessage, StoreError> {
        let corrupt = |what: &str, value: &str| {
            let row = match seq {
                Some(seq) => format!("#{seq}"),
                None => truncated(&self.id),
            };
            StoreError::Corrupt(format!("message {row}: bad {what} {:?}", truncated(value)))
        };
        let id = self.id.parse().map_err(|_| corrupt("id", &self.id))?;
        let conversation_id = self
            .conversation_id
            .parse()
            .map_err(|_| corrupt("conversation id", &self.conversation_id))?;
        let platform: Platform = self
            .recipient_platform
            .parse()
            .map_err(|_| corrupt("recipient platform", &self.recipient_platform))?;
        let status = status_from_name(&self.status).ok_or_else(|| corrupt("status", &self.status))?;
        let mut timeline = Timeline::default();
        for (status, at) in DeliveryStatus::ALL.into_iter().zip(self.timeline) {
            if let Some(at) = at {
                timeline.set(status, Timestamp::from_micros(at));
            }
        }
        let failure = match (self.failure_code, self.failure_reason) {
            (None, None) => None,
            (code, reason) => Some(pb::Failure {
                code: code.unwrap_or_default(),
                reason: reason.unwrap_or_default(),
            }),
        };
        Ok(StoredMessage {
            id,
            conversation_id,
            // Not `Recipient::new`: the id was checked when it came in, and a
            // rule tightened since must not make stored messages unreadable.
            recipient: Recipient {
                platform,
                id: self.recipient_id,
            },
            text: self.text,
            source: self.source,
            trace_id: self.trace_id,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
            created_at: Timestamp::from_micros(self.created_at),
            delivery: DeliveryState {
                status,
                timeline,
                failure,
                platform_message_id: self.platform_message_id,
            },
        })
    }
}

impl StoredMessage {
    pub fn into_proto(self, history: Vec<pb::StatusHistoryEntry>) -> pb::Message {
        pb::Message {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.to_string(),
            recipient: Some((&self.recipient).into()),
            text: self.text,
            source: self.source,
            status: self.delivery.status.to_proto().into(),
            timeline: chat4all_domain::convert::timeline_to_proto(&self.delivery.timeline),
            history,
            trace_id: self.trace_id,
            platform_message_id: self.delivery.platform_message_id.unwrap_or_default(),
            created_at: Some(self.created_at.into()),
            failure: self.delivery.failure,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
        }
    }

    /// What a put that found this message under its key or id was: the same
    /// request again, or another one reusing the key.
    pub fn repeat_outcome(&self, message: &NewMessage) -> PutOutcome {
        let same = self.recipient == message.recipient
            && self.conversation_id == message.conversation_id
            && self.text == message.text;
        if same {
            PutOutcome::Duplicate
        } else {
            PutOutcome::KeyConflict
        }
    }

    /// Why a duplicate inbound message cannot be answered: the channel it
    /// was stored in (its conversation) is gone.
    pub fn channel_missing(&self) -> StoreError {
        StoreError::Corrupt(format!(
            "inbound message {} has no channel {:?}",
            self.id,
            self.conversation_id.as_str()
        ))
    }

    /// The result of a change offered to this message: `previous` is the
    /// status it was decided on.
    pub fn transition_result(
        self,
        outcome: TransitionOutcome,
        previous: DeliveryStatus,
        at: Option<Timestamp>,
    ) -> TransitionResult {
        TransitionResult {
            outcome,
            message_id: Some(self.id),
            conversation_id: Some(self.conversation_id),
            recipient: Some(self.recipient),
            previous: Some(previous),
            current: Some(self.delivery.status),
            at,
        }
    }
}

impl DeliveryState {
    /// Offers `change` to the state machine ([`decide`]) and applies what it
    /// decides: the outcome, and the time recorded on Applied and
    /// Backfilled. The platform id is [`Self::record_platform_id`]'s.
    pub fn decide(&mut self, change: &StatusChange) -> (TransitionOutcome, Option<Timestamp>) {
        match decide(self.status, &self.timeline, change.status, change.at) {
            Decision::Advance(at) => {
                self.status = change.status;
                self.timeline.set(change.status, at);
                // The failure describes the current status: a receipt that
                // supersedes FAILED clears it (the history keeps it).
                self.failure = if change.status == DeliveryStatus::Failed {
                    change.failure.clone()
                } else {
                    None
                };
                (TransitionOutcome::Applied, Some(at))
            }
            Decision::Backfill(at) => {
                self.timeline.set(change.status, at);
                (TransitionOutcome::Backfilled, Some(at))
            }
            Decision::Repeat => (TransitionOutcome::Repeat, None),
            Decision::Reject => (TransitionOutcome::Rejected, None),
        }
    }

    /// Records the platform id `change` names, whatever the decision: even a
    /// late SENT tells the id later receipts will name. The first id
    /// recorded stays. Returns the id when this change recorded it.
    pub fn record_platform_id<'c>(&mut self, change: &'c StatusChange) -> Option<&'c str> {
        if self.platform_message_id.is_some() {
            return None;
        }
        let id = change.platform_id()?;
        self.platform_message_id = Some(id.to_owned());
        Some(id)
    }

    /// The timeline as its six columns, in [`DeliveryStatus::ALL`] order.
    pub fn timeline_micros(&self) -> [Option<i64>; 6] {
        DeliveryStatus::ALL.map(|s| self.timeline.get(s).map(Timestamp::as_micros))
    }

    /// The failure as its two columns, both null when there is none.
    pub fn failure_columns(&self) -> (Option<&str>, Option<&str>) {
        match &self.failure {
            Some(f) => (Some(f.code.as_str()), Some(f.reason.as_str())),
            None => (None, None),
        }
    }
}

/// A `status_history` row, column for column.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryColumns {
    pub status: String,
    pub at: i64,
    pub hop: String,
    pub outcome: String,
    pub detail: String,
    pub recorded_at: i64,
}

impl TryFrom<HistoryColumns> for pb::StatusHistoryEntry {
    type Error = StoreError;

    fn try_from(row: HistoryColumns) -> Result<Self, StoreError> {
        let status = status_from_name(&row.status).ok_or_else(|| {
            StoreError::Corrupt(format!("history: bad status {:?}", truncated(&row.status)))
        })?;
        let outcome = TransitionOutcome::from_name(&row.outcome).ok_or_else(|| {
            StoreError::Corrupt(format!("history: bad outcome {:?}", truncated(&row.outcome)))
        })?;
        Ok(pb::StatusHistoryEntry {
            status: status.to_proto().into(),
            at: Some(Timestamp::from_micros(row.at).into()),
            hop: row.hop,
            outcome: outcome.to_proto().into(),
            detail: row.detail,
            recorded_at: Some(Timestamp::from_micros(row.recorded_at).into()),
        })
    }
}

/// A history entry about to be written; the backend times it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry<'a> {
    pub status: DeliveryStatus,
    pub at: Timestamp,
    pub hop: &'a str,
    pub outcome: TransitionOutcome,
    pub detail: String,
}

impl<'a> HistoryEntry<'a> {
    /// The first entry of a message `put_message` stores.
    pub fn accepted(created_at: Timestamp) -> Self {
        Self {
            status: DeliveryStatus::Accepted,
            at: created_at,
            hop: ACCEPTING_HOP,
            outcome: TransitionOutcome::Applied,
            detail: String::new(),
        }
    }

    /// The one entry of an inbound message.
    pub fn inbound(inbound: &NewInbound) -> Self {
        Self {
            status: DeliveryStatus::Delivered,
            at: inbound.at,
            hop: INBOUND_HOP,
            outcome: TransitionOutcome::Applied,
            detail: history_detail(None, Some(&inbound.external_message_id)),
        }
    }

    /// What `change` became, recorded whatever the decision, at the time the
    /// hop reported (not the clamped one).
    pub fn of_change(change: &'a StatusChange, outcome: TransitionOutcome) -> Self {
        Self {
            status: change.status,
            at: change.at,
            hop: &change.hop,
            outcome,
            detail: history_detail(change.failure.as_ref(), change.platform_id()),
        }
    }

    pub fn to_proto(&self, recorded_at: Timestamp) -> pb::StatusHistoryEntry {
        pb::StatusHistoryEntry {
            status: self.status.to_proto().into(),
            at: Some(self.at.into()),
            hop: self.hop.to_owned(),
            outcome: self.outcome.to_proto().into(),
            detail: self.detail.clone(),
            recorded_at: Some(recorded_at.into()),
        }
    }
}

pub fn status_from_name(name: &str) -> Option<DeliveryStatus> {
    DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == name)
}

/// A `channels` row, column for column.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelColumns {
    pub id: String,
    pub vendor_name: String,
    pub vendor_channel_id: String,
    pub name: String,
    pub context: String,
    /// The channel's `type`.
    pub kind: String,
    /// A JSON object, the API's `Struct`; absent is empty.
    pub metadata: String,
    pub created_at: i64,
}

impl ChannelColumns {
    /// The row `channel` is stored as under `vendor`. Its id is kept if
    /// given (a migrated channel keeps its legacy id), else a new one.
    pub fn create(channel: &pb::Channel, vendor: (&str, &str), now: Timestamp) -> Self {
        let id = if channel.id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            channel.id.clone()
        };
        Self::new(
            id,
            vendor,
            channel,
            channel.created_at.map_or(now, Timestamp::from),
        )
    }

    pub fn new(id: String, vendor: (&str, &str), channel: &pb::Channel, created_at: Timestamp) -> Self {
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
    /// values, and the stored side goes through a `Struct` first, so key
    /// order or an integer in the column cannot make an identical put look
    /// like an update.
    pub fn same_fields(&self, channel: &pb::Channel) -> Result<bool, StoreError> {
        if self.name != channel.name || self.context != channel.context || self.kind != channel.r#type {
            return Ok(false);
        }
        let stored = self.metadata_object()?;
        let given = channel.metadata.as_ref().map(struct_to_json).unwrap_or_default();
        Ok(struct_to_json(&struct_from_json(stored)) == given)
    }

    /// Why a new vendor key may not take `id`, which this channel holds:
    /// taking it over would merge two conversations.
    pub fn id_taken(&self, id: &str) -> StoreError {
        StoreError::Invalid {
            field: CHANNEL_ID_FIELD,
            reason: format!(
                "{id:?} is already the id of the {} channel {:?}",
                self.vendor_name, self.vendor_channel_id
            ),
        }
    }

    fn metadata_object(&self) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        serde_json::from_str(&self.metadata)
            .map_err(|e| StoreError::Corrupt(format!("channel {}: bad metadata: {e}", truncated(&self.id))))
    }
}

impl TryFrom<ChannelColumns> for pb::Channel {
    type Error = StoreError;

    fn try_from(row: ChannelColumns) -> Result<Self, StoreError> {
        let metadata = row.metadata_object()?;
        Ok(pb::Channel {
            id: row.id,
            vendor: Some(pb::ChannelVendor {
                channel_id: row.vendor_channel_id,
                name: row.vendor_name,
            }),
            name: row.name,
            context: row.context,
            r#type: row.kind,
            metadata: Some(struct_from_json(metadata)),
            created_at: Some(Timestamp::from_micros(row.created_at).into()),
        })
    }
}

/// Metadata as the column holds it.
pub fn metadata_to_json(metadata: Option<&prost_types::Struct>) -> String {
    serde_json::Value::Object(metadata.map(struct_to_json).unwrap_or_default()).to_string()
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
    use crate::MessageRef;

    fn columns() -> MessageColumns {
        MessageColumns {
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

    fn change(status: DeliveryStatus, micros: i64) -> StatusChange {
        StatusChange {
            message: MessageRef::Id(MessageId::generate()),
            status,
            at: Timestamp::from_micros(micros),
            hop: "sidecar".into(),
            platform_message_id: None,
            failure: None,
        }
    }

    #[test]
    fn a_row_maps_to_the_message_the_api_shows() {
        let message = columns().parse(None).unwrap();
        assert_eq!(message.delivery.status, DeliveryStatus::Sent);
        assert_eq!(message.delivery.timeline_micros(), columns().timeline);
        let m = message.into_proto(vec![]);
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
    fn a_failure_survives_with_either_half_missing() {
        for (code, reason) in [(Some("131026"), None), (None, Some("receiver incapable"))] {
            let c = MessageColumns {
                failure_code: code.map(str::to_owned),
                failure_reason: reason.map(str::to_owned),
                ..columns()
            };
            let delivery = c.parse(None).unwrap().delivery;
            assert_eq!(
                delivery.failure,
                Some(pb::Failure {
                    code: code.unwrap_or_default().into(),
                    reason: reason.unwrap_or_default().into()
                })
            );
            assert_eq!(
                delivery.failure_columns(),
                (Some(code.unwrap_or_default()), Some(reason.unwrap_or_default()))
            );
        }
        assert_eq!(
            columns().parse(None).unwrap().delivery.failure_columns(),
            (None, None)
        );
    }

    #[test]
    fn values_this_build_never_writes_are_corrupt() {
        for break_it in [
            (|c: &mut MessageColumns| c.status = "LOST".into()) as fn(&mut MessageColumns),
            |c| c.id = "not-a-uuid".into(),
            |c| c.recipient_platform = "fax".into(),
            |c| c.conversation_id = String::new(),
        ] {
            let mut c = columns();
            break_it(&mut c);
            assert!(matches!(c.parse(None), Err(StoreError::Corrupt(_))));
        }
        let history = HistoryColumns {
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
        let channel = ChannelColumns {
            metadata: "[1]".into(),
            ..ChannelColumns::new(
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
    fn a_corrupt_row_is_named_by_its_number_where_it_has_one() {
        let bad = MessageColumns {
            status: "LOST".into(),
            ..columns()
        };
        let named = |seq| match bad.clone().parse(seq) {
            Err(StoreError::Corrupt(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(named(Some(7)), r#"message #7: bad status "LOST""#);
        assert_eq!(
            named(None),
            r#"message 0190b3c4-1a2b-7c3d-8e4f-0123456789ab: bad status "LOST""#
        );
    }

    #[test]
    fn history_entries_map_with_their_times() {
        let entry = pb::StatusHistoryEntry::try_from(HistoryColumns {
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
    fn names_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(status_from_name(s.as_str()), Some(s));
        }
        for o in TransitionOutcome::ALL {
            assert_eq!(TransitionOutcome::from_name(o.as_str()), Some(o));
        }
    }

    #[test]
    fn a_decision_moves_the_state_and_a_receipt_clears_a_failure() {
        // SENT, with ACCEPTED and SENT timed.
        let mut state = columns().parse(None).unwrap().delivery;
        // A backfill times the state jumped over and keeps the status.
        assert_eq!(
            state.decide(&change(DeliveryStatus::Routed, 2_000)),
            (TransitionOutcome::Backfilled, Some(Timestamp::from_micros(2_000)))
        );
        assert_eq!(state.status, DeliveryStatus::Sent);
        assert_eq!(state.timeline_micros()[1], Some(2_000));
        let failure = pb::Failure {
            code: "131026".into(),
            reason: "receiver incapable".into(),
        };
        let failed = StatusChange {
            failure: Some(failure.clone()),
            ..change(DeliveryStatus::Failed, 4_000)
        };
        assert_eq!(
            state.decide(&failed),
            (TransitionOutcome::Applied, Some(Timestamp::from_micros(4_000)))
        );
        assert_eq!(
            (state.status, state.failure.clone()),
            (DeliveryStatus::Failed, Some(failure))
        );
        assert_eq!(
            state.decide(&change(DeliveryStatus::Failed, 5_000)),
            (TransitionOutcome::Repeat, None)
        );
        assert_eq!(
            state.decide(&change(DeliveryStatus::Accepted, 5_000)),
            (TransitionOutcome::Rejected, None)
        );
        assert!(state.failure.is_some(), "only a receipt supersedes FAILED");
        assert_eq!(
            state.decide(&change(DeliveryStatus::Delivered, 6_000)).0,
            TransitionOutcome::Applied
        );
        assert_eq!(
            (state.status, state.failure.clone()),
            (DeliveryStatus::Delivered, None)
        );
    }

    #[test]
    fn the_first_platform_id_stays_and_an_empty_one_is_none() {
        let mut state = MessageColumns {
            platform_message_id: None,
            ..columns()
        }
        .parse(None)
        .unwrap()
        .delivery;
        let naming = |id: &str| StatusChange {
            platform_message_id: Some(id.into()),
            ..change(DeliveryStatus::Sent, 3_000)
        };
        assert_eq!(state.record_platform_id(&naming("")), None);
        assert_eq!(state.platform_message_id, None);
        assert_eq!(state.record_platform_id(&naming("wamid.1")), Some("wamid.1"));
        assert_eq!(state.record_platform_id(&naming("wamid.2")), None);
        assert_eq!(state.platform_message_id.as_deref(), Some("wamid.1"));
    }

    #[test]
    fn a_repeated_put_is_a_duplicate_only_when_it_asks_the_same() {
        let first = columns().parse(None).unwrap();
        let again = NewMessage {
            id: MessageId::generate(),
            conversation_id: first.conversation_id.clone(),
            recipient: first.recipient.clone(),
            text: first.text.clone(),
            source: "api".into(),
            trace_id: String::new(),
            created_at: Timestamp::from_micros(0),
            idempotency_key: Some("k".into()),
        };
        assert_eq!(first.repeat_outcome(&again), PutOutcome::Duplicate);
        let other = NewMessage {
            text: "bye".into(),
            ..again
        };
        assert_eq!(first.repeat_outcome(&other), PutOutcome::KeyConflict);
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
        let row = ChannelColumns::new(
            "id-1".into(),
            ("chotot", "42"),
            &channel,
            Timestamp::from_micros(5),
        );
        assert!(row.same_fields(&channel).unwrap());
        let reordered = ChannelColumns {
            metadata: r#"{"tags":["a",null],"price":12500000}"#.into(),
            ..row.clone()
        };
        assert!(reordered.same_fields(&channel).unwrap());
        let renamed = pb::Channel {
            name: "other".into(),
            ..channel.clone()
        };
        assert!(!row.same_fields(&renamed).unwrap());

        let back = pb::Channel::try_from(row).unwrap();
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
        let empty = ChannelColumns::new(
            "e".into(),
            ("x", "y"),
            &pb::Channel::default(),
            Timestamp::from_micros(0),
        );
        assert_eq!(empty.metadata, "{}");
    }

    #[test]
    fn a_new_channel_keeps_a_given_id_and_time() {
        let given = pb::Channel {
            id: "legacy:42".into(),
            created_at: Some(Timestamp::from_micros(3).into()),
            ..Default::default()
        };
        let row = ChannelColumns::create(&given, ("chotot", "42"), Timestamp::from_micros(9));
        assert_eq!((row.id.as_str(), row.created_at), ("legacy:42", 3));
        let fresh = ChannelColumns::create(
            &pb::Channel::default(),
            ("chotot", "42"),
            Timestamp::from_micros(9),
        );
        assert!(fresh.id.parse::<uuid::Uuid>().is_ok(), "{}", fresh.id);
        assert_eq!(fresh.created_at, 9);
    }
}
