//! The one conversion between a `StatusUpdate` (the Kafka payload on
//! `status-updates`, and the item of the store's `ApplyTransitions` call)
//! and the store's [`StatusChange`], both ways. The status-consumer reads
//! Kafka records with it, the gRPC server reads requests with it and the
//! gRPC client writes them with it, so a change means the same thing
//! whichever way it reached the store.
//!
//! Two readings are decided here, once:
//! - An update that names no hop is recorded from [`UNKNOWN_HOP`]: every
//!   history entry says which hop reported it, and an empty hop would read
//!   as a gap in the history rather than as "nobody said".
//! - An update that finds its message by the platform's id carries no
//!   platform id as news: that id is already the message's (it is how the
//!   message was found), and the wire has one field for both, so this is
//!   the only reading that survives a trip through the gRPC client and
//!   server unchanged.

use chat4all_domain::convert::timestamp_or_now;
use chat4all_domain::{DeliveryStatus, IdError, UnknownPlatform};
use chat4all_proto::v1 as pb;

use crate::{MessageRef, StatusChange};

/// The hop recorded for an update that names none.
pub const UNKNOWN_HOP: &str = "unknown";

/// Why a `StatusUpdate` is no status change, by the field to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadStatusUpdate {
    /// Neither `message_id` nor `platform` + `platform_message_id`.
    #[error("names no message: give message_id, or platform and platform_message_id")]
    NoMessage,
    #[error("message_id: {0}")]
    MessageId(IdError),
    /// `platform_message_id` without a platform this build knows.
    #[error("platform: {0}")]
    Platform(UnknownPlatform),
    /// UNSPECIFIED, or a number this build does not know.
    #[error("status: {0} is not a delivery status")]
    Status(i32),
}

impl TryFrom<pb::StatusUpdate> for StatusChange {
    type Error = BadStatusUpdate;

    fn try_from(u: pb::StatusUpdate) -> Result<Self, BadStatusUpdate> {
        let (message, platform_message_id) = if !u.message_id.is_empty() {
            let id = u.message_id.parse().map_err(BadStatusUpdate::MessageId)?;
            let named = (!u.platform_message_id.is_empty()).then_some(u.platform_message_id);
            (MessageRef::Id(id), named)
        } else if !u.platform_message_id.is_empty() {
            let platform = u.platform.parse().map_err(BadStatusUpdate::Platform)?;
            let by_platform_id = MessageRef::External {
                platform,
                external_id: u.platform_message_id,
            };
            (by_platform_id, None)
        } else {
            return Err(BadStatusUpdate::NoMessage);
        };
        let status = DeliveryStatus::from_proto(u.status).ok_or(BadStatusUpdate::Status(u.status))?;
        Ok(StatusChange {
            message,
            status,
            at: timestamp_or_now(u.at),
            hop: if u.hop.is_empty() {
                UNKNOWN_HOP.to_owned()
            } else {
                u.hop
            },
            platform_message_id,
            failure: u.failure,
        })
    }
}

impl From<StatusChange> for pb::StatusUpdate {
    /// A change found by the platform's id sends that id as the look-up key
    /// and nothing else (see the module's second reading).
    fn from(c: StatusChange) -> Self {
        let (message_id, platform, platform_message_id) = match c.message {
            MessageRef::Id(id) => (
                id.to_string(),
                String::new(),
                c.platform_message_id.unwrap_or_default(),
            ),
            MessageRef::External {
                platform,
                external_id,
            } => (String::new(), platform.as_str().to_owned(), external_id),
        };
        pb::StatusUpdate {
            message_id,
            conversation_id: String::new(),
            status: c.status.to_proto().into(),
            at: Some(c.at.into()),
            hop: c.hop,
            platform,
            platform_message_id,
            failure: c.failure,
            ..Default::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_domain::{MessageId, Platform, Timestamp};

    use super::*;

    fn by_id() -> pb::StatusUpdate {
        pb::StatusUpdate {
            message_id: MessageId::generate().to_string(),
            status: pb::DeliveryStatus::Sent.into(),
            at: Some(Timestamp::from_micros(1_700_000_000_000_001).into()),
            hop: "sidecar".into(),
            ..Default::default()
        }
    }

    fn by_platform_id() -> pb::StatusUpdate {
        pb::StatusUpdate {
            message_id: String::new(),
            platform: "whatsapp".into(),
            platform_message_id: "wamid.1".into(),
            status: pb::DeliveryStatus::Read.into(),
            hop: "webhook".into(),
            ..by_id()
        }
    }

    #[test]
    fn an_update_by_id_keeps_the_platform_id_it_names() {
        let update = pb::StatusUpdate {
            platform_message_id: "wamid.1".into(),
            ..by_id()
        };
        let change = StatusChange::try_from(update.clone()).unwrap();
        assert_eq!(change.message, MessageRef::Id(update.message_id.parse().unwrap()));
        assert_eq!(change.platform_message_id.as_deref(), Some("wamid.1"));
        assert_eq!(change.status, DeliveryStatus::Sent);
        assert_eq!(change.at, Timestamp::from_micros(1_700_000_000_000_001));
        assert_eq!(change.hop, "sidecar");
        let without = StatusChange::try_from(by_id()).unwrap();
        assert_eq!(without.platform_message_id, None);
    }

    #[test]
    fn an_update_by_platform_id_carries_no_platform_id_as_news() {
        let change = StatusChange::try_from(by_platform_id()).unwrap();
        assert_eq!(
            change.message,
            MessageRef::External {
                platform: Platform::WhatsApp,
                external_id: "wamid.1".into()
            }
        );
        assert_eq!(change.platform_message_id, None);
    }

    #[test]
    fn an_id_wins_over_a_platform_id() {
        let both = pb::StatusUpdate {
            message_id: MessageId::generate().to_string(),
            ..by_platform_id()
        };
        let change = StatusChange::try_from(both.clone()).unwrap();
        assert_eq!(change.message, MessageRef::Id(both.message_id.parse().unwrap()));
        assert_eq!(change.platform_message_id.as_deref(), Some("wamid.1"));
    }

    #[test]
    fn an_empty_hop_is_the_unknown_hop() {
        let nameless = pb::StatusUpdate {
            hop: String::new(),
            ..by_id()
        };
        assert_eq!(StatusChange::try_from(nameless).unwrap().hop, UNKNOWN_HOP);
    }

    #[test]
    fn an_update_without_a_time_is_timed_on_arrival() {
        let before = Timestamp::now();
        let untimed = pb::StatusUpdate { at: None, ..by_id() };
        assert!(StatusChange::try_from(untimed).unwrap().at >= before);
    }

    #[test]
    fn an_update_naming_neither_is_refused() {
        for neither in [
            pb::StatusUpdate {
                message_id: String::new(),
                ..by_id()
            },
            // A platform alone finds nothing.
            pb::StatusUpdate {
                platform_message_id: String::new(),
                ..by_platform_id()
            },
        ] {
            assert_eq!(StatusChange::try_from(neither), Err(BadStatusUpdate::NoMessage));
        }
    }

    #[test]
    fn bad_values_are_refused_by_their_field() {
        let bad_id = pb::StatusUpdate {
            message_id: "nope".into(),
            ..by_id()
        };
        assert!(matches!(
            StatusChange::try_from(bad_id),
            Err(BadStatusUpdate::MessageId(_))
        ));
        for platform in ["fax", ""] {
            let bad_platform = pb::StatusUpdate {
                platform: platform.into(),
                ..by_platform_id()
            };
            assert!(matches!(
                StatusChange::try_from(bad_platform),
                Err(BadStatusUpdate::Platform(_))
            ));
        }
        for status in [0, 99] {
            let bad_status = pb::StatusUpdate { status, ..by_id() };
            let err = StatusChange::try_from(bad_status).unwrap_err();
            assert_eq!(err, BadStatusUpdate::Status(status));
            assert_eq!(
                err.to_string(),
                format!("status: {status} is not a delivery status")
            );
        }
    }

    #[test]
    fn changes_round_trip_by_id_and_by_platform_id() {
        let failure = pb::Failure {
            code: "429".into(),
            reason: "slow down".into(),
        };
        let by_id = StatusChange {
            message: MessageRef::Id(MessageId::generate()),
            status: DeliveryStatus::Failed,
            at: Timestamp::from_micros(1_700_000_001_000_001),
            hop: "sidecar".into(),
            platform_message_id: Some("wamid.1".into()),
            failure: Some(failure),
        };
        let by_platform = StatusChange {
            message: MessageRef::External {
                platform: Platform::Telegram,
                external_id: "42".into(),
            },
            platform_message_id: None,
            ..by_id.clone()
        };
        for change in [by_id, by_platform] {
            let wire = pb::StatusUpdate::from(change.clone());
            assert_eq!(StatusChange::try_from(wire).unwrap(), change);
        }
    }
}
