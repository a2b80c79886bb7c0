//! The values that cross the MessageStore boundary.

use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Recipient, Timestamp};
use chat4all_proto::v1 as pb;

/// A message about to be accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub recipient: Recipient,
    pub text: String,
    /// `api`, or `vendor:<name>` for inbound.
    pub source: String,
    /// The W3C trace id (32 hex digits) of the message's trace.
    pub trace_id: String,
    pub created_at: Timestamp,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Duplicate,
    KeyConflict,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PutResult {
    pub outcome: PutOutcome,
    /// The message stored (the first one, on Duplicate and KeyConflict).
    pub message: pb::Message,
}

/// Which message a status change is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageRef {
    Id(MessageId),
    /// A receipt that names only the platform's id for the message.
    External {
        platform: Platform,
        external_id: String,
    },
}

/// A status update offered to the state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub message: MessageRef,
    pub status: DeliveryStatus,
    pub at: Timestamp,
    /// Which hop reported it (`router`, `sidecar`, `webhook`, ...).
    pub hop: String,
    pub platform_message_id: Option<String>,
    /// On FAILED: the platform's (or our) code and reason.
    pub failure: Option<pb::Failure>,
}

impl StatusChange {
    /// The platform id the change names; an empty one is no id.
    pub fn platform_id(&self) -> Option<&str> {
        self.platform_message_id.as_deref().filter(|p| !p.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionOutcome {
    Applied,
    Repeat,
    Backfilled,
    Rejected,
    NotFound,
    /// Not a transition's: a hop noted something in the history (a receipt
    /// overdue), and the status stayed.
    Noted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransitionResult {
    pub outcome: TransitionOutcome,
    /// Known unless NotFound.
    pub message_id: Option<MessageId>,
    pub conversation_id: Option<ConversationId>,
    /// Who the message is with; known unless NotFound.
    pub recipient: Option<Recipient>,
    pub previous: Option<DeliveryStatus>,
    pub current: Option<DeliveryStatus>,
    /// The time recorded for the state (after clamping), on Applied and
    /// Backfilled.
    pub at: Option<Timestamp>,
}

impl TransitionResult {
    /// A change to no known message.
    pub fn not_found() -> Self {
        Self {
            outcome: TransitionOutcome::NotFound,
            message_id: None,
            conversation_id: None,
            recipient: None,
            previous: None,
            current: None,
            at: None,
        }
    }
}

/// What a claim found. A claim is a lease: its holder calls the platform
/// while it holds it, and lets go by dying as well as by finishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Ours: unclaimed, or its holder's lease ran out while no platform call
    /// was in flight. Call the platform.
    Claimed,
    /// Someone holds it (a live lease), or held it before leases existed.
    AlreadyClaimed,
    NotFound,
    /// The platform's answer is recorded: announce SENT, do not call again.
    Answered(PlatformAnswer),
    /// Ours now, taken from a holder whose lease ran out during a platform
    /// call that left no answer: the platform may have acted.
    Uncertain,
}

/// What a platform said when it took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformAnswer {
    pub platform_message_id: String,
    pub at: Timestamp,
}

/// One page of a conversation, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub messages: Vec<pb::Message>,
    /// None on the last page.
    pub next_cursor: Option<String>,
}

impl TransitionOutcome {
    pub const ALL: [TransitionOutcome; 6] = [
        TransitionOutcome::Applied,
        TransitionOutcome::Repeat,
        TransitionOutcome::Backfilled,
        TransitionOutcome::Rejected,
        TransitionOutcome::NotFound,
        TransitionOutcome::Noted,
    ];

    /// The name a backend stores (and a metric labels) the outcome by.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionOutcome::Applied => "APPLIED",
            TransitionOutcome::Repeat => "REPEAT",
            TransitionOutcome::Backfilled => "BACKFILLED",
            TransitionOutcome::Rejected => "REJECTED",
            TransitionOutcome::NotFound => "NOT_FOUND",
            TransitionOutcome::Noted => "NOTED",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

// The outcome enums map one-to-one onto their proto twins; they live here,
// beside their definitions, because both the embedded history and the gRPC
// edge speak them (as `DeliveryStatus::to_proto` does in the domain).

impl PutOutcome {
    pub fn to_proto(self) -> pb::PutOutcome {
        match self {
            PutOutcome::Created => pb::PutOutcome::Created,
            PutOutcome::Duplicate => pb::PutOutcome::Duplicate,
            PutOutcome::KeyConflict => pb::PutOutcome::KeyConflict,
        }
    }

    /// From the wire; None for UNSPECIFIED or an unknown number.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::PutOutcome::try_from(value).ok()? {
            pb::PutOutcome::Unspecified => None,
            pb::PutOutcome::Created => Some(PutOutcome::Created),
            pb::PutOutcome::Duplicate => Some(PutOutcome::Duplicate),
            pb::PutOutcome::KeyConflict => Some(PutOutcome::KeyConflict),
        }
    }
}

impl InboundOutcome {
    pub fn to_proto(self) -> pb::PutInboundOutcome {
        match self {
            InboundOutcome::Stored => pb::PutInboundOutcome::Stored,
            InboundOutcome::Duplicate => pb::PutInboundOutcome::Duplicate,
        }
    }

    /// From the wire; None for UNSPECIFIED or an unknown number.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::PutInboundOutcome::try_from(value).ok()? {
            pb::PutInboundOutcome::Unspecified => None,
            pb::PutInboundOutcome::Stored => Some(InboundOutcome::Stored),
            pb::PutInboundOutcome::Duplicate => Some(InboundOutcome::Duplicate),
        }
    }
}

impl TransitionOutcome {
    pub fn to_proto(self) -> pb::TransitionOutcome {
        match self {
            TransitionOutcome::Applied => pb::TransitionOutcome::Applied,
            TransitionOutcome::Repeat => pb::TransitionOutcome::Repeat,
            TransitionOutcome::Backfilled => pb::TransitionOutcome::Backfilled,
            TransitionOutcome::Rejected => pb::TransitionOutcome::Rejected,
            TransitionOutcome::NotFound => pb::TransitionOutcome::NotFound,
            TransitionOutcome::Noted => pb::TransitionOutcome::Noted,
        }
    }

    /// From the wire; None for UNSPECIFIED or an unknown number.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::TransitionOutcome::try_from(value).ok()? {
            pb::TransitionOutcome::Unspecified => None,
            pb::TransitionOutcome::Applied => Some(TransitionOutcome::Applied),
            pb::TransitionOutcome::Repeat => Some(TransitionOutcome::Repeat),
            pb::TransitionOutcome::Backfilled => Some(TransitionOutcome::Backfilled),
            pb::TransitionOutcome::Rejected => Some(TransitionOutcome::Rejected),
            pb::TransitionOutcome::NotFound => Some(TransitionOutcome::NotFound),
            pb::TransitionOutcome::Noted => Some(TransitionOutcome::Noted),
        }
    }
}

impl ClaimOutcome {
    /// The wire result for message `id`.
    pub fn to_proto(&self, id: &str) -> pb::ClaimResult {
        let (outcome, answer) = match self {
            ClaimOutcome::Claimed => (pb::ClaimOutcome::Claimed, None),
            ClaimOutcome::AlreadyClaimed => (pb::ClaimOutcome::AlreadyClaimed, None),
            ClaimOutcome::NotFound => (pb::ClaimOutcome::NotFound, None),
            ClaimOutcome::Answered(answer) => (pb::ClaimOutcome::Answered, Some(answer)),
            ClaimOutcome::Uncertain => (pb::ClaimOutcome::Uncertain, None),
        };
        pb::ClaimResult {
            message_id: id.to_owned(),
            outcome: outcome.into(),
            platform_message_id: answer.map(|a| a.platform_message_id.clone()).unwrap_or_default(),
            answered_at: answer.map(|a| a.at.into()),
        }
    }

    /// From the wire; None for UNSPECIFIED, an unknown number, or an answer
    /// without its time.
    pub fn from_proto(result: &pb::ClaimResult) -> Option<Self> {
        Some(match pb::ClaimOutcome::try_from(result.outcome).ok()? {
            pb::ClaimOutcome::Unspecified => return None,
            pb::ClaimOutcome::Claimed => ClaimOutcome::Claimed,
            pb::ClaimOutcome::AlreadyClaimed => ClaimOutcome::AlreadyClaimed,
            pb::ClaimOutcome::NotFound => ClaimOutcome::NotFound,
            pb::ClaimOutcome::Uncertain => ClaimOutcome::Uncertain,
            pb::ClaimOutcome::Answered => ClaimOutcome::Answered(PlatformAnswer {
                platform_message_id: result.platform_message_id.clone(),
                at: Timestamp::from(result.answered_at?),
            }),
        })
    }
}

impl PutChannelOutcome {
    pub fn to_proto(self) -> pb::PutChannelOutcome {
        match self {
            PutChannelOutcome::Created => pb::PutChannelOutcome::Created,
            PutChannelOutcome::Unchanged => pb::PutChannelOutcome::Unchanged,
            PutChannelOutcome::Updated => pb::PutChannelOutcome::Updated,
        }
    }

    /// From the wire; None for UNSPECIFIED or an unknown number.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::PutChannelOutcome::try_from(value).ok()? {
            pb::PutChannelOutcome::Unspecified => None,
            pb::PutChannelOutcome::Created => Some(PutChannelOutcome::Created),
            pb::PutChannelOutcome::Unchanged => Some(PutChannelOutcome::Unchanged),
            pb::PutChannelOutcome::Updated => Some(PutChannelOutcome::Updated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_through_proto() {
        for o in [
            PutOutcome::Created,
            PutOutcome::Duplicate,
            PutOutcome::KeyConflict,
        ] {
            assert_eq!(PutOutcome::from_proto(o.to_proto().into()), Some(o));
        }
        for o in TransitionOutcome::ALL {
            assert_eq!(TransitionOutcome::from_proto(o.to_proto().into()), Some(o));
        }
        for o in [
            ClaimOutcome::Claimed,
            ClaimOutcome::AlreadyClaimed,
            ClaimOutcome::NotFound,
            ClaimOutcome::Uncertain,
            ClaimOutcome::Answered(PlatformAnswer {
                platform_message_id: "wamid.1".into(),
                at: Timestamp::from_micros(1_700_000_000_000_001),
            }),
        ] {
            assert_eq!(ClaimOutcome::from_proto(&o.to_proto("m")), Some(o));
        }
        let answered_without_time = pb::ClaimResult {
            outcome: pb::ClaimOutcome::Answered.into(),
            ..Default::default()
        };
        assert_eq!(ClaimOutcome::from_proto(&answered_without_time), None);
        for o in [
            PutChannelOutcome::Created,
            PutChannelOutcome::Unchanged,
            PutChannelOutcome::Updated,
        ] {
            assert_eq!(PutChannelOutcome::from_proto(o.to_proto().into()), Some(o));
        }
        for o in [InboundOutcome::Stored, InboundOutcome::Duplicate] {
            assert_eq!(InboundOutcome::from_proto(o.to_proto().into()), Some(o));
        }
        assert_eq!(InboundOutcome::from_proto(0), None);
        assert_eq!(PutChannelOutcome::from_proto(0), None);
        assert_eq!(PutOutcome::from_proto(0), None);
        assert_eq!(TransitionOutcome::from_proto(99), None);
        let unknown = pb::ClaimResult {
            outcome: -1,
            ..Default::default()
        };
        assert_eq!(ClaimOutcome::from_proto(&unknown), None);
    }
}

/// What became of a channel offered to [`crate::MessageStore::put_channel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutChannelOutcome {
    Created,
    /// A channel with the same vendor key and the same fields existed.
    Unchanged,
    /// A channel with the same vendor key existed; its fields were replaced
    /// (its id and creation time stay).
    Updated,
}

/// A page of channels, in id order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelPage {
    pub channels: Vec<pb::Channel>,
    /// None on the last page.
    pub next_cursor: Option<String>,
}

/// What a platform user wrote, as the router hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInbound {
    /// Our id for the message, used if it is new.
    pub id: MessageId,
    pub platform: Platform,
    pub vendor_channel_id: String,
    pub external_message_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub text: String,
    /// When the user wrote it, as the platform says.
    pub at: Timestamp,
    pub trace_id: String,
    /// How long `(platform, vendor_channel_id, external_message_id)` is
    /// remembered: a redelivery within it is a duplicate.
    pub dedup_window: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    Stored,
    /// Seen within the window: nothing written.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundResult {
    pub outcome: InboundOutcome,
    /// The message stored (the first one, on Duplicate).
    pub message: pb::Message,
    pub channel: pb::Channel,
    pub channel_created: bool,
}
