//! The `status_history` table: a row as read, and an entry about to be
//! written.

use chat4all_domain::{DeliveryStatus, Timestamp};
use chat4all_proto::v1 as pb;

use super::{status_from_name, truncated};
use crate::backend_rules::{
    ACCEPTING_HOP, INBOUND_HOP, RECONCILER_HOP, history_detail, receipt_overdue_detail,
};
use crate::{NewInbound, StatusChange, StoreError, TransitionOutcome};

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

    /// The note that a SENT message's receipt is overdue, at `now`.
    pub fn receipt_overdue(deadline: std::time::Duration, now: Timestamp) -> Self {
        Self {
            status: DeliveryStatus::Sent,
            at: now,
            hop: RECONCILER_HOP,
            outcome: TransitionOutcome::Noted,
            detail: receipt_overdue_detail(deadline),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn values_this_build_never_writes_are_corrupt() {
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
}
