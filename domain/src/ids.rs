use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A malformed id at an edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a message id (a UUID is expected): {0:?}")]
    NotAMessageId(String),
    #[error("conversation id must be 1 to {max} characters without control characters", max = ConversationId::MAX_LEN)]
    BadConversationId,
}

/// Our id of a message: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(Uuid);

impl MessageId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// When the id was made, to the millisecond: for a message sent through
    /// the API, when it was accepted. None for an id that is not a UUIDv7.
    pub fn generated_at(&self) -> Option<crate::Timestamp> {
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        let millis = i64::try_from(secs).ok()?.checked_mul(1000)? + i64::from(nanos / 1_000_000);
        Some(crate::Timestamp::from_millis(millis))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| IdError::NotAMessageId(s.chars().take(64).collect()))
    }
}

/// A conversation: messages of one conversation are delivered in order (it
/// is the Kafka key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(String);

impl ConversationId {
    /// The longest conversation id accepted.
    pub const MAX_LEN: usize = 256;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ConversationId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return Err(IdError::BadConversationId);
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_sort_by_creation() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<MessageId>(), Ok(a));
        assert!("nope".parse::<MessageId>().is_err());
        let now = crate::Timestamp::now().as_micros();
        let made = b.generated_at().unwrap().as_micros();
        assert!((now - made).abs() < 5_000_000, "{now} vs {made}");
        let v4: MessageId = "6f1c3b54-0f0b-4c3e-9a55-1a3f2e4d5c6b".parse().unwrap();
        assert_eq!(v4.generated_at(), None);
    }

    #[test]
    fn conversation_ids_are_bounded() {
        assert!("c-1".parse::<ConversationId>().is_ok());
        assert!("".parse::<ConversationId>().is_err());
        assert!("a\nb".parse::<ConversationId>().is_err());
        assert!("x".repeat(257).parse::<ConversationId>().is_err());
    }
}
