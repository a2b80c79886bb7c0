//! The writes, as the writer thread runs them: each inside the batch's
//! transaction, each in a savepoint of its own.
//!
//! They read through the same connection they write with, so a change sees
//! the changes before it in its batch, including those of other callers: the
//! writer thread runs them one after another, which is what makes the
//! read-decide-write of a transition atomic without any lock of ours.

use std::time::Duration;

use chat4all_domain::{DeliveryStatus, MessageId, Timestamp};
use chat4all_proto::v1 as pb;
use rusqlite::{Connection, OptionalExtension, params};

use super::queries;
use super::rows::MessageRow;
use crate::db_error::db_error;
use chat4all_store::backend_rules::{
    INBOUND_MESSAGE_ID_FIELD, channel_vendor_key, check_inbound_key, count_transition as count,
    inbound_channel, inbound_source, receipt_overdue,
};
use chat4all_store::stored_rows::{ChannelColumns, DeliveryState, HistoryEntry, metadata_to_json};
use chat4all_store::{
    InboundOutcome, InboundResult, MessageRef, NewInbound, NewMessage, PutChannelOutcome, PutOutcome,
    PutResult, StatusChange, StoreError, TransitionResult,
};

pub(super) fn put_message(
    conn: &Connection,
    message: &NewMessage,
    now: Timestamp,
) -> Result<PutResult, StoreError> {
    let key = message.idempotency_key.as_deref().filter(|k| !k.is_empty());
    if let Some(key) = key
        && let Some(first) = queries::message_by_idempotency_key(conn, key)?
    {
        return seen_before(conn, first, message);
    }
    // A retried request may carry the same id and no key: the id is a key too.
    if let Some(first) = queries::message_by_id(conn, &message.id)? {
        return seen_before(conn, first, message);
    }

    conn.prepare_cached(
        "INSERT INTO messages (id, conversation_id, recipient_platform, recipient_id, text, source, \
         trace_id, status, created_at, accepted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .map_err(db_error)?
    .execute(params![
        message.id.to_string(),
        message.conversation_id.as_str(),
        message.recipient.platform.as_str(),
        message.recipient.id,
        message.text,
        message.source,
        message.trace_id,
        DeliveryStatus::Accepted.as_str(),
        message.created_at.as_micros(),
    ])
    .map_err(db_error)?;
    let seq = conn.last_insert_rowid();
    append_history(conn, seq, &HistoryEntry::accepted(message.created_at), now)?;
    if let Some(key) = key {
        conn.prepare_cached("INSERT INTO idempotency (key, message_seq) VALUES (?1, ?2)")
            .map_err(db_error)?
            .execute(params![key, seq])
            .map_err(db_error)?;
    }
    let stored = queries::message_by_seq(conn, seq)?
        .ok_or_else(|| StoreError::Corrupt(format!("message #{seq} vanished as it was written")))?;
    Ok(PutResult {
        outcome: PutOutcome::Created,
        message: queries::full_message(conn, stored)?,
    })
}

/// Nothing is written: the first message comes back, and whether this
/// request was the same one.
fn seen_before(conn: &Connection, first: MessageRow, message: &NewMessage) -> Result<PutResult, StoreError> {
    Ok(PutResult {
        outcome: first.message.repeat_outcome(message),
        message: queries::full_message(conn, first)?,
    })
}

pub(super) fn apply_transitions(
    conn: &Connection,
    changes: &[StatusChange],
    now: Timestamp,
) -> Result<Vec<TransitionResult>, StoreError> {
    changes
        .iter()
        .map(|change| {
            let result = apply_one(conn, change, now)?;
            count(result.outcome);
            Ok(result)
        })
        .collect()
}

fn apply_one(
    conn: &Connection,
    change: &StatusChange,
    now: Timestamp,
) -> Result<TransitionResult, StoreError> {
    let found = match &change.message {
        MessageRef::Id(id) => queries::message_by_id(conn, id)?,
        MessageRef::External {
            platform,
            external_id,
        } => queries::message_by_external_id(conn, *platform, external_id)?,
    };
    let Some(MessageRow { seq, mut message }) = found else {
        return Ok(TransitionResult::not_found());
    };

    let previous = message.delivery.status;
    let (outcome, at) = message.delivery.decide(change);
    if at.is_some() {
        write_state(conn, seq, &message.delivery)?;
    }
    if let Some(platform_id) = message.delivery.record_platform_id(change) {
        conn.prepare_cached("UPDATE messages SET platform_message_id = ?2 WHERE seq = ?1")
            .map_err(db_error)?
            .execute(params![seq, platform_id])
            .map_err(db_error)?;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO external_ids (platform, external_id, message_seq) VALUES (?1, ?2, ?3)",
        )
        .map_err(db_error)?
        .execute(params![message.recipient.platform.as_str(), platform_id, seq])
        .map_err(db_error)?;
    }

    append_history(conn, seq, &HistoryEntry::of_change(change, outcome), now)?;
    Ok(message.transition_result(outcome, previous, at))
}

fn write_state(conn: &Connection, seq: i64, state: &DeliveryState) -> Result<(), StoreError> {
    let [accepted, routed, sent, delivered, read, failed] = state.timeline_micros();
    let (failure_code, failure_reason) = state.failure_columns();
    conn.prepare_cached(
        "UPDATE messages SET status = ?2, accepted_at = ?3, routed_at = ?4, sent_at = ?5, delivered_at = ?6, \
         read_at = ?7, failed_at = ?8, failure_code = ?9, failure_reason = ?10 WHERE seq = ?1",
    )
    .map_err(db_error)?
    .execute(params![
        seq,
        state.status.as_str(),
        accepted,
        routed,
        sent,
        delivered,
        read,
        failed,
        failure_code,
        failure_reason
    ])
    .map_err(db_error)?;
    Ok(())
}

fn append_history(
    conn: &Connection,
    seq: i64,
    entry: &HistoryEntry<'_>,
    recorded_at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO status_history (message_seq, n, status, at, hop, outcome, detail, recorded_at) \
         VALUES (?1, (SELECT COALESCE(MAX(n), 0) + 1 FROM status_history WHERE message_seq = ?1), \
         ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(db_error)?
    .execute(params![
        seq,
        entry.status.as_str(),
        entry.at.as_micros(),
        entry.hop,
        entry.outcome.as_str(),
        entry.detail,
        recorded_at.as_micros(),
    ])
    .map_err(db_error)?;
    Ok(())
}

/// Marks the messages whose receipt is overdue, as
/// [`chat4all_store::MessageStore::mark_receipt_overdue`] describes. The
/// read, the rule and the write run in one writer job, so two reconcilers
/// (or a receipt arriving) cannot both see a message unmarked.
pub(super) fn mark_receipt_overdue(
    conn: &Connection,
    ids: &[MessageId],
    deadline: Duration,
    now: Timestamp,
) -> Result<Vec<MessageId>, StoreError> {
    let mut marked = Vec::new();
    for id in ids {
        let Some(MessageRow { seq, message }) = queries::message_by_id(conn, id)? else {
            continue;
        };
        if !receipt_overdue(&message, deadline, now) {
            continue;
        }
        let first = conn
            .prepare_cached(
                "UPDATE messages SET receipt_overdue_at = ?2 WHERE seq = ?1 AND receipt_overdue_at IS NULL",
            )
            .map_err(db_error)?
            .execute(params![seq, now.as_micros()])
            .map_err(db_error)?;
        if first == 1 {
            append_history(conn, seq, &HistoryEntry::receipt_overdue(deadline, now), now)?;
            marked.push(*id);
        }
    }
    Ok(marked)
}

/// Creates or updates the channel with `channel`'s vendor key, as
/// [`chat4all_store::MessageStore::put_channel`] describes. The look-up and the write
/// run in one writer job, so two puts of one key cannot both create it.
pub(super) fn put_channel(
    conn: &Connection,
    channel: &pb::Channel,
    now: Timestamp,
) -> Result<(PutChannelOutcome, pb::Channel), StoreError> {
    let vendor = channel_vendor_key(channel)?;

    if let Some(existing) = queries::channel_by_vendor(conn, vendor.0, vendor.1)? {
        // The stored id and creation time win over any given: the channel
        // is already known, and its id is what other records point at.
        if existing.same_fields(channel)? {
            return Ok((PutChannelOutcome::Unchanged, pb::Channel::try_from(existing)?));
        }
        let metadata = metadata_to_json(channel.metadata.as_ref());
        conn.prepare_cached(
            "UPDATE channels SET name = ?2, context = ?3, type = ?4, metadata = ?5 WHERE id = ?1",
        )
        .map_err(db_error)?
        .execute(params![
            existing.id,
            channel.name,
            channel.context,
            channel.r#type,
            metadata
        ])
        .map_err(db_error)?;
        return Ok((PutChannelOutcome::Updated, stored_channel(conn, &existing.id)?));
    }

    let created = create_channel(conn, channel, vendor, now)?;
    Ok((PutChannelOutcome::Created, created))
}

/// Inserts `channel` under a vendor key nobody holds yet (the caller looked
/// it up in the same job): shared by `put_channel` and `put_inbound`, so a
/// channel is created one way whoever creates it.
fn create_channel(
    conn: &Connection,
    channel: &pb::Channel,
    vendor: (&str, &str),
    now: Timestamp,
) -> Result<pb::Channel, StoreError> {
    let row = ChannelColumns::create(channel, vendor, now);
    // The vendor key is new, so an existing row with a given id belongs to
    // another conversation.
    if !channel.id.is_empty()
        && let Some(other) = queries::channel_by_id(conn, &row.id)?
    {
        return Err(other.id_taken(&row.id));
    }
    conn.prepare_cached(
        "INSERT INTO channels (id, vendor_name, vendor_channel_id, name, context, type, metadata, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    ).map_err(db_error)?
    .execute(params![
        row.id,
        row.vendor_name,
        row.vendor_channel_id,
        row.name,
        row.context,
        row.kind,
        row.metadata,
        row.created_at,
    ]).map_err(db_error)?;
    stored_channel(conn, &row.id)
}

/// Expired inbound keys deleted by each `put_inbound`: a few per write keep
/// the table at about one window's worth of keys, and no write pays for a
/// backlog all at once.
const INBOUND_PURGE_BATCH: i64 = 64;

/// Stores what a platform user wrote, as [`chat4all_store::MessageStore::put_inbound`]
/// describes. The key look-up, the channel's find-or-create and the inserts
/// run in one writer job, so two deliveries of one message cannot both store
/// it, nor two first messages of one user both create the channel.
pub(super) fn put_inbound(
    conn: &Connection,
    inbound: &NewInbound,
    now: Timestamp,
) -> Result<InboundResult, StoreError> {
    check_inbound_key(inbound)?;
    let platform = inbound.platform.as_str();
    purge_expired_inbound_keys(conn, now)?;

    let seen: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT message_seq, expires_at FROM inbound_keys \
             WHERE platform = ?1 AND vendor_channel_id = ?2 AND external_id = ?3",
        )
        .map_err(db_error)?
        .query_row(
            params![platform, inbound.vendor_channel_id, inbound.external_message_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(db_error)?;
    if let Some((seq, expires_at)) = seen
        && expires_at > now.as_micros()
    {
        return inbound_duplicate(conn, seq);
    }
    // A retry after the key expired may reuse the id of what it stored the
    // first time; the id names one message only.
    if queries::message_exists(conn, &inbound.id)? {
        return Err(StoreError::Invalid {
            field: INBOUND_MESSAGE_ID_FIELD,
            reason: format!("{} is already the id of another message", inbound.id),
        });
    }

    let (channel, channel_created) =
        match queries::channel_by_vendor(conn, platform, &inbound.vendor_channel_id)? {
            Some(existing) => (pb::Channel::try_from(existing)?, false),
            None => {
                let template = inbound_channel(inbound);
                let created = create_channel(conn, &template, (platform, &inbound.vendor_channel_id), now)?;
                (created, true)
            }
        };

    // DELIVERED (to us) from the moment it was written, and nothing before:
    // an inbound message never passes ACCEPTED, so the reconciler, which
    // looks for ACCEPTED messages, never takes it for an unsent one.
    conn.prepare_cached(
        "INSERT INTO messages (id, conversation_id, recipient_platform, recipient_id, text, source, \
         trace_id, status, created_at, delivered_at, platform_message_id, sender_id, sender_name) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12)",
    )
    .map_err(db_error)?
    .execute(params![
        inbound.id.to_string(),
        channel.id,
        platform,
        inbound.vendor_channel_id,
        inbound.text,
        inbound_source(inbound.platform),
        inbound.trace_id,
        DeliveryStatus::Delivered.as_str(),
        inbound.at.as_micros(),
        inbound.external_message_id,
        inbound.sender_id,
        inbound.sender_name,
    ])
    .map_err(db_error)?;
    let seq = conn.last_insert_rowid();
    append_history(conn, seq, &HistoryEntry::inbound(inbound), now)?;
    // The first message keeps the external id: a receipt naming it (should
    // a platform send one) finds the message stored first.
    conn.prepare_cached(
        "INSERT OR IGNORE INTO external_ids (platform, external_id, message_seq) VALUES (?1, ?2, ?3)",
    )
    .map_err(db_error)?
    .execute(params![platform, inbound.external_message_id, seq])
    .map_err(db_error)?;
    let expires_at = now
        .as_micros()
        .saturating_add(window_micros(inbound.dedup_window));
    conn.prepare_cached(
        "INSERT INTO inbound_keys (platform, vendor_channel_id, external_id, message_seq, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (platform, vendor_channel_id, external_id) \
         DO UPDATE SET message_seq = excluded.message_seq, expires_at = excluded.expires_at",
    )
    .map_err(db_error)?
    .execute(params![
        platform,
        inbound.vendor_channel_id,
        inbound.external_message_id,
        seq,
        expires_at
    ])
    .map_err(db_error)?;

    let stored = queries::message_by_seq(conn, seq)?
        .ok_or_else(|| StoreError::Corrupt(format!("message #{seq} vanished as it was written")))?;
    Ok(InboundResult {
        outcome: InboundOutcome::Stored,
        message: queries::full_message(conn, stored)?,
        channel,
        channel_created,
    })
}

/// The first message under a live key, with its channel: nothing written.
fn inbound_duplicate(conn: &Connection, seq: i64) -> Result<InboundResult, StoreError> {
    let first = queries::message_by_seq(conn, seq)?
        .ok_or_else(|| StoreError::Corrupt(format!("inbound key points at missing message #{seq}")))?;
    let channel = queries::channel_by_id(conn, first.message.conversation_id.as_str())?
        .ok_or_else(|| first.message.channel_missing())?;
    Ok(InboundResult {
        outcome: InboundOutcome::Duplicate,
        message: queries::full_message(conn, first)?,
        channel: pb::Channel::try_from(channel)?,
        channel_created: false,
    })
}

/// Deletes a few keys whose window has passed. A WITHOUT ROWID table has no
/// rowid to pick rows by, so the batch is chosen by its primary key.
fn purge_expired_inbound_keys(conn: &Connection, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM inbound_keys WHERE (platform, vendor_channel_id, external_id) IN \
         (SELECT platform, vendor_channel_id, external_id FROM inbound_keys \
          WHERE expires_at <= ?1 LIMIT ?2)",
    )
    .map_err(db_error)?
    .execute(params![now.as_micros(), INBOUND_PURGE_BATCH])
    .map_err(db_error)?;
    Ok(())
}

/// A window in micros; one too long for an i64 is as good as forever.
fn window_micros(window: std::time::Duration) -> i64 {
    i64::try_from(window.as_micros()).unwrap_or(i64::MAX)
}

/// The channel as it now stands, read back through the writing connection.
fn stored_channel(conn: &Connection, id: &str) -> Result<pb::Channel, StoreError> {
    let raw = queries::channel_by_id(conn, id)?
        .ok_or_else(|| StoreError::Corrupt(format!("channel {id} vanished as it was written")))?;
    pb::Channel::try_from(raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chat4all_store::backend_rules::history_detail as detail;

    #[test]
    fn expired_inbound_keys_are_purged_as_writes_go() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let inbound = |external: &str| NewInbound {
            id: MessageId::generate(),
            platform: chat4all_domain::Platform::Chotot,
            vendor_channel_id: "purge".into(),
            external_message_id: external.into(),
            sender_id: "u".into(),
            sender_name: String::new(),
            text: "hi".into(),
            at: Timestamp::from_secs(1_700_000_000),
            trace_id: String::new(),
            dedup_window: std::time::Duration::from_secs(1),
        };
        let keys = |conn: &Connection| -> i64 {
            conn.query_row("SELECT COUNT(*) FROM inbound_keys", [], |r| r.get(0))
                .unwrap()
        };
        let t0 = Timestamp::from_secs(1_700_000_000);
        for external in ["a", "b", "c"] {
            put_inbound(&conn, &inbound(external), t0).unwrap();
        }
        assert_eq!(keys(&conn), 3);
        // Within the window: a duplicate, and nothing purged.
        let dup = put_inbound(&conn, &inbound("a"), t0).unwrap();
        assert_eq!(dup.outcome, InboundOutcome::Duplicate);
        assert_eq!(keys(&conn), 3);
        // Past it: the old keys go, the new one stays.
        let later = Timestamp::from_secs(1_700_000_002);
        put_inbound(&conn, &inbound("d"), later).unwrap();
        assert_eq!(keys(&conn), 1);
        let again = put_inbound(&conn, &inbound("a"), later).unwrap();
        assert_eq!(again.outcome, InboundOutcome::Stored);
        assert!(!again.channel_created);
    }

    #[test]
    fn details_name_the_failure_and_the_platform_id() {
        let failure = pb::Failure {
            code: "131026".into(),
            reason: "receiver incapable".into(),
        };
        assert_eq!(detail(Some(&failure), None), "131026: receiver incapable");
        assert_eq!(detail(None, Some("wamid.1")), "platform_message_id=wamid.1");
        assert_eq!(
            detail(
                Some(&pb::Failure {
                    code: "x".into(),
                    reason: String::new()
                }),
                Some("w")
            ),
            "x; platform_message_id=w"
        );
        assert_eq!(detail(None, None), "");
    }
}
