//! Rows as SQLite holds them: the first step of reading, which copies a
//! row's columns into [`chat4all_store::stored_rows`]' structs (rusqlite's types).
//! The second step, parsing them, is shared with every backend.

use rusqlite::Row;

use chat4all_store::StoreError;
use chat4all_store::stored_rows::{ChannelColumns, HistoryColumns, MessageColumns, StoredMessage};

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

/// The timeline columns, in [`chat4all_domain::DeliveryStatus::ALL`] order.
pub(super) const TIMELINE_COLUMNS: [&str; 6] = [
    "accepted_at",
    "routed_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
];

/// A `messages` row: its number, and its columns.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawMessage {
    pub(super) seq: i64,
    pub(super) columns: MessageColumns,
}

impl RawMessage {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let mut timeline = [None; 6];
        for (slot, column) in timeline.iter_mut().zip(TIMELINE_COLUMNS) {
            *slot = row.get(column)?;
        }
        Ok(Self {
            seq: row.get("seq")?,
            columns: MessageColumns {
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
            },
        })
    }
}

/// A message as the store reasons about it, with the number the other
/// tables point at it by.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MessageRow {
    pub(super) seq: i64,
    pub(super) message: StoredMessage,
}

impl TryFrom<RawMessage> for MessageRow {
    type Error = StoreError;

    fn try_from(raw: RawMessage) -> Result<Self, StoreError> {
        Ok(Self {
            seq: raw.seq,
            message: raw.columns.parse(Some(raw.seq))?,
        })
    }
}

pub(super) fn history_from_row(row: &Row<'_>) -> rusqlite::Result<HistoryColumns> {
    Ok(HistoryColumns {
        status: row.get("status")?,
        at: row.get("at")?,
        hop: row.get("hop")?,
        outcome: row.get("outcome")?,
        detail: row.get("detail")?,
        recorded_at: row.get("recorded_at")?,
    })
}

/// The columns of `channels` that [`channel_from_row`] reads.
macro_rules! channel_columns {
    () => {
        "id, vendor_name, vendor_channel_id, name, context, type, metadata, created_at"
    };
}
pub(super) use channel_columns;

pub(super) fn channel_from_row(row: &Row<'_>) -> rusqlite::Result<ChannelColumns> {
    Ok(ChannelColumns {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_domain::DeliveryStatus;
    use rusqlite::Connection;

    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn
    }

    fn read_message(conn: &Connection) -> RawMessage {
        const SQL: &str = concat!("SELECT ", message_columns!(), " FROM messages");
        conn.query_row(SQL, [], RawMessage::from_row).unwrap()
    }

    #[test]
    fn a_message_row_is_read_column_for_column() {
        let conn = db();
        conn.execute(
            "INSERT INTO messages (id, conversation_id, recipient_platform, recipient_id, text, source, \
             trace_id, status, created_at, accepted_at, sent_at, platform_message_id, failure_reason) \
             VALUES ('0190b3c4-1a2b-7c3d-8e4f-0123456789ab', 'c-1', 'whatsapp', '15551234567', 'hi', \
             'api', 't', 'SENT', 1000, 1000, 3000, 'wamid.1', 'why')",
            [],
        )
        .unwrap();
        let raw = read_message(&conn);
        assert_eq!(
            raw.columns.timeline,
            [Some(1_000), None, Some(3_000), None, None, None]
        );
        assert_eq!(
            (
                raw.columns.failure_code.as_deref(),
                raw.columns.failure_reason.as_deref()
            ),
            (None, Some("why"))
        );
        assert_eq!(raw.columns.sender_id, "", "the column's default");
        let row = MessageRow::try_from(raw.clone()).unwrap();
        assert_eq!(row.seq, raw.seq);
        assert_eq!(row.message.delivery.status, DeliveryStatus::Sent);
        assert_eq!(row.message.delivery.timeline_micros(), raw.columns.timeline);
        assert_eq!(row.message.text, "hi");
    }

    #[test]
    fn a_corrupt_message_is_named_by_its_number() {
        let conn = db();
        conn.execute(
            "INSERT INTO messages (id, conversation_id, recipient_platform, recipient_id, text, source, \
             trace_id, status, created_at) VALUES ('x', 'c-1', 'whatsapp', '1', '', 'api', '', 'LOST', 1)",
            [],
        )
        .unwrap();
        let raw = read_message(&conn);
        match MessageRow::try_from(raw.clone()) {
            Err(StoreError::Corrupt(reason)) => assert!(
                reason.starts_with(&format!("message #{}: bad id", raw.seq)),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn history_and_channel_rows_are_read_column_for_column() {
        let conn = db();
        let history = conn
            .query_row(
                "SELECT 'SENT' AS status, 1 AS at, 'sidecar' AS hop, 'APPLIED' AS outcome, \
                 'd' AS detail, 2 AS recorded_at",
                [],
                history_from_row,
            )
            .unwrap();
        assert_eq!(
            history,
            HistoryColumns {
                status: "SENT".into(),
                at: 1,
                hop: "sidecar".into(),
                outcome: "APPLIED".into(),
                detail: "d".into(),
                recorded_at: 2,
            }
        );
        conn.execute(
            "INSERT INTO channels (id, vendor_name, vendor_channel_id, name, context, type, metadata, \
             created_at) VALUES ('ch', 'chotot', '42', 'n', 'item:1', 'buyer', '{}', 5)",
            [],
        )
        .unwrap();
        const SQL: &str = concat!("SELECT ", channel_columns!(), " FROM channels");
        let channel = conn.query_row(SQL, [], channel_from_row).unwrap();
        assert_eq!((channel.kind.as_str(), channel.created_at), ("buyer", 5));
        let channel = chat4all_proto::v1::Channel::try_from(channel).unwrap();
        assert_eq!(channel.r#type, "buyer");
    }
}
