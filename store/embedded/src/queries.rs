//! Reads, shared by the read pool and the writer (which must see its own
//! uncommitted batch, so it reads through its own connection).
//!
//! Statements are `prepare_cached`: each connection compiles each one once.

use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Recipient, Timestamp};
use chat4all_proto::v1 as pb;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{
    MessageRow, RawMessage, channel_columns, channel_from_row, history_from_row, message_columns,
};
use crate::db_error::db_error;
use chat4all_store::paging;
use chat4all_store::stored_rows::ChannelColumns;
use chat4all_store::{ChannelPage, MessageCursor, Page, StoreError};

pub(super) fn message_by_id(conn: &Connection, id: &MessageId) -> Result<Option<MessageRow>, StoreError> {
    const SQL: &str = concat!("SELECT ", message_columns!(), " FROM messages WHERE id = ?1");
    one(conn, SQL, params![id.to_string()])
}

pub(super) fn message_by_seq(conn: &Connection, seq: i64) -> Result<Option<MessageRow>, StoreError> {
    const SQL: &str = concat!("SELECT ", message_columns!(), " FROM messages WHERE seq = ?1");
    one(conn, SQL, params![seq])
}

/// The message a platform knows by `external_id`.
pub(super) fn message_by_external_id(
    conn: &Connection,
    platform: Platform,
    external_id: &str,
) -> Result<Option<MessageRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE seq = \
         (SELECT message_seq FROM external_ids WHERE platform = ?1 AND external_id = ?2)"
    );
    one(conn, SQL, params![platform.as_str(), external_id])
}

/// The message first stored under an idempotency key.
pub(super) fn message_by_idempotency_key(
    conn: &Connection,
    key: &str,
) -> Result<Option<MessageRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE seq = (SELECT message_seq FROM idempotency WHERE key = ?1)"
    );
    one(conn, SQL, params![key])
}

/// Whether a message exists, without reading it.
pub(super) fn message_exists(conn: &Connection, id: &MessageId) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM messages WHERE id = ?1")
        .map_err(db_error)?;
    stmt.exists(params![id.to_string()]).map_err(db_error)
}

/// A message's status history, oldest first.
pub(super) fn history(conn: &Connection, seq: i64) -> Result<Vec<pb::StatusHistoryEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT status, at, hop, outcome, detail, recorded_at FROM status_history \
         WHERE message_seq = ?1 ORDER BY n",
        )
        .map_err(db_error)?;
    let raws = stmt
        .query_map(params![seq], history_from_row)
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    raws.into_iter().map(pb::StatusHistoryEntry::try_from).collect()
}

/// A message with its history, as `get_message` answers.
pub(super) fn full_message(conn: &Connection, row: MessageRow) -> Result<pb::Message, StoreError> {
    let history = history(conn, row.seq)?;
    Ok(row.message.into_proto(history))
}

/// One page of a conversation, newest first. One row more than asked is
/// read, so the last page is known to be the last.
pub(super) fn page(
    conn: &Connection,
    conversation: &ConversationId,
    before: Option<MessageCursor>,
    limit: u32,
) -> Result<Page, StoreError> {
    // An empty id sorts before every id: "older than this time".
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE conversation_id = ?1 AND (created_at, id) < (?2, ?3) \
         ORDER BY created_at DESC, id DESC LIMIT ?4"
    );
    let (at, id) = match before {
        Some(cursor) => (
            cursor.created_at.as_micros(),
            cursor.id.map(|id| id.to_string()).unwrap_or_default(),
        ),
        None => (i64::MAX, String::new()),
    };
    let mut stmt = conn.prepare_cached(SQL).map_err(db_error)?;
    let raws = stmt
        .query_map(
            params![conversation.as_str(), at, id, i64::from(limit) + 1],
            RawMessage::from_row,
        )
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    let mut rows = raws
        .into_iter()
        .map(MessageRow::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last()
            .map(|r| MessageCursor::after(r.message.created_at, r.message.id).encode())
    } else {
        None
    };
    Ok(Page {
        messages: rows
            .into_iter()
            .map(|r| r.message.into_proto(Vec::new()))
            .collect(),
        next_cursor,
    })
}

/// The platforms whose SENT messages wait on a receipt, as SQL spells
/// them: literal, so SQLite sees the query implies the partial index of
/// schema V8 (a bound list would not). A test ties it to the domain.
macro_rules! receipt_platforms {
    () => {
        "('whatsapp', 'instagram', 'messenger')"
    };
}

/// Messages still in `status`, created before `before`, oldest first.
pub(super) fn stuck(
    conn: &Connection,
    status: DeliveryStatus,
    before: Timestamp,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<pb::Message>, StoreError> {
    if status == DeliveryStatus::Sent {
        return awaiting_receipt_since(conn, before, limit);
    }
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE status = ?1 AND created_at < ?2 \
         AND (status != 'ROUTED' OR claimed_by IS NULL OR claim_lease_until <= ?4) \
         ORDER BY created_at LIMIT ?3"
    );
    let params = params![
        status.as_str(),
        before.as_micros(),
        i64::from(limit),
        now.as_micros()
    ];
    messages(conn, SQL, params)
}

/// SENT messages created before `before` that still wait on a receipt,
/// oldest first. SENT is final where no receipt follows: those are left
/// out, or they would crowd the others out of the limit.
fn awaiting_receipt_since(
    conn: &Connection,
    before: Timestamp,
    limit: u32,
) -> Result<Vec<pb::Message>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        // Named: on a table without statistics the planner prefers the
        // recipient index, which reads every message of those platforms.
        // Named, a query the index cannot serve fails to prepare.
        " FROM messages INDEXED BY messages_awaiting_receipt_by_age \
         WHERE status = 'SENT' AND recipient_platform IN ",
        receipt_platforms!(),
        " AND created_at < ?1 ORDER BY created_at LIMIT ?2"
    );
    messages(conn, SQL, params![before.as_micros(), i64::from(limit)])
}

/// The messages a query answers, without their history.
fn messages(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<pb::Message>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let raws = stmt
        .query_map(params, RawMessage::from_row)
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    raws.into_iter()
        .map(|raw| MessageRow::try_from(raw).map(|r| r.message.into_proto(Vec::new())))
        .collect()
}

pub(super) fn channel_by_id(conn: &Connection, id: &str) -> Result<Option<ChannelColumns>, StoreError> {
    const SQL: &str = concat!("SELECT ", channel_columns!(), " FROM channels WHERE id = ?1");
    let mut stmt = conn.prepare_cached(SQL).map_err(db_error)?;
    stmt.query_row(params![id], channel_from_row)
        .optional()
        .map_err(db_error)
}

/// The channel a platform knows as `vendor_channel_id`.
pub(super) fn channel_by_vendor(
    conn: &Connection,
    vendor_name: &str,
    vendor_channel_id: &str,
) -> Result<Option<ChannelColumns>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        channel_columns!(),
        " FROM channels WHERE vendor_name = ?1 AND vendor_channel_id = ?2"
    );
    let mut stmt = conn.prepare_cached(SQL).map_err(db_error)?;
    stmt.query_row(params![vendor_name, vendor_channel_id], channel_from_row)
        .optional()
        .map_err(db_error)
}

/// One page of channels in id order, after the id `after`. As with
/// messages, one row more than asked is read so the last page has no cursor.
pub(super) fn channel_page(
    conn: &Connection,
    vendor_name: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<ChannelPage, StoreError> {
    // Two statements rather than `?1 IS NULL OR ...`, so each can use its
    // index (the primary key, or `channels_by_vendor`).
    const ALL: &str = concat!(
        "SELECT ",
        channel_columns!(),
        " FROM channels WHERE id > ?1 ORDER BY id LIMIT ?2"
    );
    const ONE_VENDOR: &str = concat!(
        "SELECT ",
        channel_columns!(),
        " FROM channels WHERE vendor_name = ?3 AND id > ?1 ORDER BY id LIMIT ?2"
    );
    // Every id is non-empty, so "" is before them all.
    let after = after.unwrap_or_default();
    let peek = i64::from(limit) + 1;
    let raws = match vendor_name {
        None => conn
            .prepare_cached(ALL)
            .map_err(db_error)?
            .query_map(params![after, peek], channel_from_row)
            .map_err(db_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?,
        Some(vendor) => conn
            .prepare_cached(ONE_VENDOR)
            .map_err(db_error)?
            .query_map(params![after, peek, vendor], channel_from_row)
            .map_err(db_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?,
    };
    let more = raws.len() > limit as usize;
    let channels = raws
        .into_iter()
        .take(limit as usize)
        .map(pb::Channel::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if more {
        channels.last().map(|c| paging::encode_key(&c.id))
    } else {
        None
    };
    Ok(ChannelPage {
        channels,
        next_cursor,
    })
}

fn one(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<MessageRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let raw = stmt
        .query_row(params, RawMessage::from_row)
        .optional()
        .map_err(db_error)?;
    raw.map(MessageRow::try_from).transpose()
}

/// Messages to the recipient SENT at or before `up_to` and still short of
/// `short_of`, oldest first.
pub(super) fn awaiting_receipt(
    conn: &Connection,
    recipient: &Recipient,
    up_to: Timestamp,
    short_of: DeliveryStatus,
    limit: u32,
) -> Result<Vec<MessageId>, StoreError> {
    let awaiting: &[DeliveryStatus] = match short_of {
        DeliveryStatus::Read => &[DeliveryStatus::Sent, DeliveryStatus::Delivered],
        _ => &[DeliveryStatus::Sent],
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM messages WHERE recipient_platform = ?1 AND recipient_id = ?2 \
             AND sent_at <= ?3 AND status IN (?4, ?5) ORDER BY sent_at LIMIT ?6",
        )
        .map_err(db_error)?;
    let ids = stmt
        .query_map(
            params![
                recipient.platform.as_str(),
                recipient.id,
                up_to.as_micros(),
                awaiting[0].as_str(),
                awaiting[awaiting.len() - 1].as_str(),
                i64::from(limit)
            ],
            |row| row.get::<_, String>(0),
        )
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    ids.iter()
        .map(|id| {
            id.parse()
                .map_err(|_| StoreError::Corrupt(format!("message id {id:?}")))
        })
        .collect()
}

/// The latest watermark of `status` for the recipient.
pub(super) fn watermark(
    conn: &Connection,
    recipient: &Recipient,
    status: DeliveryStatus,
) -> Result<Option<Timestamp>, StoreError> {
    conn.prepare_cached(
        "SELECT up_to FROM watermarks WHERE platform = ?1 AND recipient_id = ?2 AND status = ?3",
    )
    .map_err(db_error)?
    .query_row(
        params![recipient.platform.as_str(), recipient.id, status.as_str()],
        |row| row.get::<_, i64>(0),
    )
    .optional()
    .map_err(db_error)
    .map(|up_to| up_to.map(Timestamp::from_micros))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_platform_list_is_the_domains() {
        let sql: Vec<&str> = receipt_platforms!()
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|p| p.trim_matches('\''))
            .collect();
        let domain: Vec<&str> = Platform::ALL
            .into_iter()
            .filter(|p| p.reports_receipts())
            .map(Platform::as_str)
            .collect();
        assert_eq!(sql, domain);
    }

    #[test]
    fn the_sent_look_up_reads_its_partial_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let plan: String = conn
            .query_row(
                concat!(
                    "EXPLAIN QUERY PLAN SELECT id FROM messages INDEXED BY messages_awaiting_receipt_by_age \
                     WHERE status = 'SENT' AND recipient_platform IN ",
                    receipt_platforms!(),
                    " AND created_at < 1 ORDER BY created_at LIMIT 5"
                ),
                [],
                |row| row.get(3),
            )
            .unwrap();
        assert!(plan.contains("messages_awaiting_receipt_by_age"), "{plan}");
    }
}
