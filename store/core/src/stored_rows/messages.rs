//! The `messages` table: a row, the message it holds, and the delivery
//! state a transition reads and writes.

use chat4all_domain::{
    ConversationId, Decision, DeliveryStatus, MessageId, Platform, Recipient, Timeline, Timestamp, decide,
};
use chat4all_proto::v1 as pb;

use super::{status_from_name, truncated};
use crate::{NewMessage, PutOutcome, StatusChange, StoreError, TransitionOutcome, TransitionResult};

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
}
