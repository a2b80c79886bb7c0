use std::fmt;

use chat4all_proto::v1 as pb;

/// Where a message is on its way. See [`crate::state_machine`] for the moves
/// between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Accepted,
    Routed,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Accepted,
        DeliveryStatus::Routed,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
        DeliveryStatus::Failed,
    ];

    /// The position on the way to READ; FAILED stands beside the way.
    pub(crate) fn rank(self) -> Option<u8> {
        match self {
            DeliveryStatus::Accepted => Some(0),
            DeliveryStatus::Routed => Some(1),
            DeliveryStatus::Sent => Some(2),
            DeliveryStatus::Delivered => Some(3),
            DeliveryStatus::Read => Some(4),
            DeliveryStatus::Failed => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            DeliveryStatus::Accepted => 0,
            DeliveryStatus::Routed => 1,
            DeliveryStatus::Sent => 2,
            DeliveryStatus::Delivered => 3,
            DeliveryStatus::Read => 4,
            DeliveryStatus::Failed => 5,
        }
    }

    /// READ, and FAILED until a receipt supersedes it: nothing more is
    /// expected from our side.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryStatus::Read | DeliveryStatus::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Accepted => "ACCEPTED",
            DeliveryStatus::Routed => "ROUTED",
            DeliveryStatus::Sent => "SENT",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Read => "READ",
            DeliveryStatus::Failed => "FAILED",
        }
    }

    pub fn to_proto(self) -> pb::DeliveryStatus {
        match self {
            DeliveryStatus::Accepted => pb::DeliveryStatus::Accepted,
            DeliveryStatus::Routed => pb::DeliveryStatus::Routed,
            DeliveryStatus::Sent => pb::DeliveryStatus::Sent,
            DeliveryStatus::Delivered => pb::DeliveryStatus::Delivered,
            DeliveryStatus::Read => pb::DeliveryStatus::Read,
            DeliveryStatus::Failed => pb::DeliveryStatus::Failed,
        }
    }

    /// From the wire; None for UNSPECIFIED or an unknown number.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::DeliveryStatus::try_from(value).ok()? {
            pb::DeliveryStatus::Unspecified => None,
            pb::DeliveryStatus::Accepted => Some(DeliveryStatus::Accepted),
            pb::DeliveryStatus::Routed => Some(DeliveryStatus::Routed),
            pb::DeliveryStatus::Sent => Some(DeliveryStatus::Sent),
            pb::DeliveryStatus::Delivered => Some(DeliveryStatus::Delivered),
            pb::DeliveryStatus::Read => Some(DeliveryStatus::Read),
            pb::DeliveryStatus::Failed => Some(DeliveryStatus::Failed),
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
