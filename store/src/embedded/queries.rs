//! Reads, shared by the read pool and the writer (which must see its own
//! uncommitted batch, so it reads through its own connection).
//!
//! Statements are `prepare_cached`: each connection compiles each one once.

use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Timestamp};
use chat4all_proto::v1 as pb;
use rusqlite::{Connection, OptionalExtension, params};

use super::cursor;
use super::rows::{MessageRow, RawHistory, RawMessage, message_columns};
use crate::{Page, StoreError};

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
    let mut stmt = conn.prepare_cached("SELECT 1 FROM messages WHERE id = ?1")?;
    Ok(stmt.exists(params![id.to_string()])?)
}

/// A message's status history, oldest first.
pub(super) fn history(conn: &Connection, seq: i64) -> Result<Vec<pb::StatusHistoryEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, at, hop, outcome, detail, recorded_at FROM status_history \
         WHERE message_seq = ?1 ORDER BY n",
    )?;
    let raws = stmt
        .query_map(params![seq], RawHistory::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(pb::StatusHistoryEntry::try_from).collect()
}

/// A message with its history, as `get_message` answers.
pub(super) fn full_message(conn: &Connection, row: MessageRow) -> Result<pb::Message, StoreError> {
    let history = history(conn, row.seq)?;
    Ok(row.into_proto(history))
}

/// One page of a conversation, newest first. One row more than asked is
/// read, so the last page is known to be the last.
pub(super) fn page(
    conn: &Connection,
    conversation: &ConversationId,
    before: Option<i64>,
    limit: u32,
) -> Result<Page, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE conversation_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(SQL)?;
    let raws = stmt
        .query_map(
            params![
                conversation.as_str(),
                before.unwrap_or(i64::MAX),
                i64::from(limit) + 1
            ],
            RawMessage::from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = raws
        .into_iter()
        .map(MessageRow::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| cursor::encode(r.seq))
    } else {
        None
    };
    Ok(Page {
        messages: rows.into_iter().map(|r| r.into_proto(Vec::new())).collect(),
        next_cursor,
    })
}

/// Messages still in `status`, created before `before`, oldest first.
pub(super) fn stuck(
    conn: &Connection,
    status: DeliveryStatus,
    before: Timestamp,
    limit: u32,
) -> Result<Vec<pb::Message>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE status = ?1 AND created_at < ?2 ORDER BY created_at LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(SQL)?;
    let raws = stmt
        .query_map(
            params![status.as_str(), before.as_micros(), i64::from(limit)],
            RawMessage::from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(|raw| MessageRow::try_from(raw).map(|r| r.into_proto(Vec::new())))
        .collect()
}

fn one(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<MessageRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let raw = stmt.query_row(params, RawMessage::from_row).optional()?;
    raw.map(MessageRow::try_from).transpose()
}
