//! The cursor of a conversation page, one format for every backend.
//!
//! A conversation lists newest first by the time a message was written
//! (`created_at`), ties broken by id. A backfilled message from a platform's
//! history is old when we store it, so insertion order would put it on top.
//! The cursor is the position of the last message a page showed: the next
//! page is everything strictly older, which stays correct while new messages
//! arrive. It also expresses "older than a time" (the API's `before`), so the
//! gateway can page from a timestamp without knowing the backend.
//!
//! On the wire it is `<created_at µs>.<message id>` (the id empty for "older
//! than this time"). Callers treat it as opaque; it is validated anyway,
//! since it comes back from outside.

use chat4all_domain::{MessageId, Timestamp};

use crate::StoreError;
use crate::backend_rules::CURSOR_FIELD;

/// A position in a conversation, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCursor {
    pub created_at: Timestamp,
    /// None: before every message written at `created_at`.
    pub id: Option<MessageId>,
}

impl MessageCursor {
    /// The position just after the message shown last.
    pub fn after(created_at: Timestamp, id: MessageId) -> Self {
        Self {
            created_at,
            id: Some(id),
        }
    }

    /// Everything written strictly before `at`.
    pub fn older_than(at: Timestamp) -> Self {
        Self {
            created_at: at,
            id: None,
        }
    }

    pub fn encode(&self) -> String {
        match self.id {
            Some(id) => format!("{}.{id}", self.created_at.as_micros()),
            None => format!("{}.", self.created_at.as_micros()),
        }
    }

    pub fn decode(cursor: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::Invalid {
            field: CURSOR_FIELD,
            reason: "not a cursor from a previous page".to_owned(),
        };
        let (micros, id) = cursor.split_once('.').ok_or_else(invalid)?;
        // `parse` alone would take a sign; a cursor never has one.
        if micros.is_empty() || !micros.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        let id = match id {
            "" => None,
            id => Some(id.parse().map_err(|_| invalid())?),
        };
        Ok(Self {
            created_at: Timestamp::from_micros(micros),
            id,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_kinds() {
        let id = MessageId::generate();
        for cursor in [
            MessageCursor::after(Timestamp::from_micros(1_700_000_000_123_456), id),
            MessageCursor::older_than(Timestamp::from_micros(5)),
        ] {
            assert_eq!(MessageCursor::decode(&cursor.encode()).unwrap(), cursor);
        }
    }

    #[test]
    fn refuses_what_no_page_handed_out() {
        for bad in [
            "",
            "12",
            "-5.",
            "+5.",
            "x.",
            "5.not-an-id",
            ".",
            "99999999999999999999.",
        ] {
            assert!(
                matches!(
                    MessageCursor::decode(bad),
                    Err(StoreError::Invalid {
                        field: "page_token",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }
}
