//! Messages: the reads and writes every operation shares, put (with
//! idempotency keys) and get. A conversation's pages are in
//! `conversations`, status changes in `status_changes`, the reconciler's
//! look-up in `pending`, claims in `claims`.
//!
//! Writes that index a message (its conversation row, its pending row) go
//! before the message itself, and are keyed so that writing them twice is
//! writing them once: a put cut short leaves entries that readers skip
//! because the message is missing, never a message that no page lists and
//! no reconciliation finds.

use chat4all_domain::{DeliveryStatus, MessageId, Timeline, Timestamp};
use chat4all_proto::v1 as pb;
use futures::TryStreamExt;

use super::Db;
use super::buckets::conversation_bucket;
use super::errors::{self, first_row};
use super::rows::{HistoryRecord, MessageRecord, MessageRow};
use chat4all_store::stored_rows::{DeliveryState, HistoryColumns, HistoryEntry, StoredMessage};
use chat4all_store::{NewMessage, PutOutcome, PutResult, StoreError};

/// Reads issued at once when a page or a look-up needs many messages.
pub(super) const READ_CONCURRENCY: usize = 16;

/// How long a key may point at a message that does not exist before it is
/// taken for the trace of a writer that died between its two writes (and
/// not one still writing): far longer than any request may take.
pub(super) const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a key written at `written_at` whose message is still missing
/// at `now` was abandoned.
pub(super) fn abandoned(written_at: i64, now: Timestamp) -> bool {
    let after = i64::try_from(ABANDONED_AFTER.as_micros()).unwrap_or(i64::MAX);
    now.as_micros().saturating_sub(written_at) > after
}

/// The last second at which Cassandra can expire a cell,
/// 2038-01-19T03:14:06Z: it keeps expiry times as 32-bit seconds and refuses
/// a write whose TTL would end later ("exceeds maximum supported expiration
/// date", CASSANDRA-14092), even in 5.0 unless its storage format is moved
/// past 4.x compatibility.
const LAST_EXPIRY_SECS: i64 = i32::MAX as i64 - 1;

/// Room for the server's clock running ahead of ours.
const EXPIRY_MARGIN_SECS: i64 = 24 * 3600;

/// A TTL in seconds, as CQL takes it, for a key written at `now`: at least
/// one second (a shorter window is still checked to the microsecond by the
/// caller), at most the twenty years CQL allows, and ending before the last
/// expiry Cassandra can store. That cap only shortens windows of a decade
/// or more, which are forever in practice; without it every write of such
/// a key would be refused.
pub(super) fn ttl_secs(window: std::time::Duration, now: Timestamp) -> i32 {
    const MAX_TTL: i64 = 20 * 365 * 24 * 3600;
    let secs = window
        .as_secs()
        .saturating_add(u64::from(window.subsec_nanos() > 0));
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let until_last = LAST_EXPIRY_SECS - EXPIRY_MARGIN_SECS - now.as_micros().div_euclid(1_000_000);
    let max = MAX_TTL.min(until_last).max(1);
    i32::try_from(secs.clamp(1, max)).unwrap_or(i32::MAX)
}

impl Db {
    /// A message row, read at SERIAL consistency when `fresh`.
    pub(super) async fn message(&self, id: MessageId, fresh: bool) -> Result<Option<MessageRow>, StoreError> {
        let statement = if fresh {
            &self.statements.message_serial
        } else {
            &self.statements.message
        };
        let result = self
            .execute(statement, (id.to_string(),), "reading a message")
            .await?;
        first_row::<MessageRecord>(result, "messages")?
            .map(MessageRow::try_from)
            .transpose()
    }

    /// A message's history, oldest first, page by page.
    async fn history(&self, id: MessageId) -> Result<Vec<pb::StatusHistoryEntry>, StoreError> {
        let pager = self
            .session
            .execute_iter(self.statements.history.clone(), (id.to_string(),))
            .await
            .map_err(|e| errors::unavailable("reading a history", e))?;
        let records: Vec<HistoryRecord> = pager
            .rows_stream::<HistoryRecord>()
            .map_err(|e| errors::corrupt("status_history", e))?
            .try_collect()
            .await
            .map_err(|e| errors::unavailable("reading a history", e))?;
        records
            .into_iter()
            .map(|record| pb::StatusHistoryEntry::try_from(HistoryColumns::from(record)))
            .collect()
    }

    /// A message with its history, as `get_message` answers.
    pub(super) async fn full_message(&self, row: MessageRow) -> Result<pb::Message, StoreError> {
        let history = self.history(row.message.id).await?;
        Ok(row.message.into_proto(history))
    }

    /// Inserts `row` as a new message: false when its id is taken.
    pub(super) async fn insert_message(&self, row: &MessageRow) -> Result<bool, StoreError> {
        self.transact(
            &self.statements.insert_message,
            row.insert_values(),
            "storing a message",
        )
        .await
    }

    pub(super) async fn append_history(
        &self,
        id: MessageId,
        entry: &HistoryEntry<'_>,
    ) -> Result<pb::StatusHistoryEntry, StoreError> {
        let recorded_at = self.clock.tick();
        self.execute(
            &self.statements.insert_history,
            (
                id.to_string(),
                recorded_at.as_micros(),
                uuid::Uuid::new_v4(),
                entry.status.as_str(),
                entry.at.as_micros(),
                entry.hop,
                entry.outcome.as_str(),
                entry.detail.as_str(),
            ),
            "appending to a history",
        )
        .await?;
        Ok(entry.to_proto(recorded_at))
    }

    /// The rows that list `row` in its conversation, written before the
    /// message itself (see the module's doc).
    pub(super) async fn index_in_conversation(&self, row: &MessageRow) -> Result<(), StoreError> {
        let message = &row.message;
        let conversation = message.conversation_id.as_str();
        let bucket = conversation_bucket(message.created_at);
        futures::try_join!(
            self.execute(
                &self.statements.insert_conversation_bucket,
                (conversation, bucket),
                "indexing a conversation",
            ),
            self.execute(
                &self.statements.insert_conversation_message,
                (
                    conversation,
                    bucket,
                    message.created_at.as_micros(),
                    message.id.to_string()
                ),
                "indexing a conversation",
            ),
        )?;
        Ok(())
    }

    /// Records that the platform knows message `id` as `external_id`; the
    /// first message to claim an id keeps it.
    pub(super) async fn record_external_id(
        &self,
        platform: &str,
        external_id: &str,
        id: MessageId,
    ) -> Result<(), StoreError> {
        // Not applied means an earlier message holds the id: it stays.
        self.transact(
            &self.statements.insert_external_id,
            (platform, external_id, id.to_string()),
            "recording a platform id",
        )
        .await?;
        Ok(())
    }
}

/// A message as `put_message` stores it: ACCEPTED at its creation.
fn accepted_row(message: &NewMessage) -> MessageRow {
    let mut timeline = Timeline::default();
    timeline.set(DeliveryStatus::Accepted, message.created_at);
    MessageRow {
        message: StoredMessage {
            id: message.id,
            conversation_id: message.conversation_id.clone(),
            recipient: message.recipient.clone(),
            text: message.text.clone(),
            source: message.source.clone(),
            trace_id: message.trace_id.clone(),
            sender_id: String::new(),
            sender_name: String::new(),
            created_at: message.created_at,
            delivery: DeliveryState {
                status: DeliveryStatus::Accepted,
                timeline,
                failure: None,
                platform_message_id: None,
            },
        },
        version: 0,
    }
}

pub(super) async fn put(db: &Db, message: NewMessage) -> Result<PutResult, StoreError> {
    let key = message.idempotency_key.as_deref().filter(|k| !k.is_empty());
    if let Some(key) = key
        && let Some(first) = claim_idempotency_key(db, key, &message).await?
    {
        return seen_before(db, first, &message).await;
    }
    // A retried request may carry the same id and no key: the id is a key too.
    if let Some(first) = db.message(message.id, false).await? {
        return seen_before(db, first, &message).await;
    }

    let row = accepted_row(&message);
    futures::try_join!(
        db.index_in_conversation(&row),
        db.set_pending(DeliveryStatus::Accepted, &row, true)
    )?;
    if !db.insert_message(&row).await? {
        // The same id won a race with us: whatever it was, it came first.
        let first = db.message(message.id, true).await?.ok_or_else(|| {
            StoreError::Unavailable(format!("message {} is being written; retry", message.id))
        })?;
        return seen_before(db, first, &message).await;
    }
    let entry = db
        .append_history(row.message.id, &HistoryEntry::accepted(message.created_at))
        .await?;
    Ok(PutResult {
        outcome: PutOutcome::Created,
        message: row.message.into_proto(vec![entry]),
    })
}

/// Claims `key` for `message`; Some(first message) when another message
/// holds it.
async fn claim_idempotency_key(
    db: &Db,
    key: &str,
    message: &NewMessage,
) -> Result<Option<MessageRow>, StoreError> {
    let st = &db.statements;
    let ours = message.id.to_string();
    let ttl = ttl_secs(db.options.idempotency_ttl, Timestamp::now());
    let mut fresh = false;
    // Each round either settles or saw the key change hands: a few suffice.
    for _ in 0..4 {
        let statement = if fresh {
            &st.idempotency_key_serial
        } else {
            &st.idempotency_key
        };
        let result = db
            .execute(statement, (key,), "reading an idempotency key")
            .await?;
        fresh = true;
        let now = Timestamp::now();
        match first_row::<(String, i64)>(result, "idempotency_keys")? {
            None => {
                let claimed = db
                    .transact(
                        &st.insert_idempotency_key,
                        (key, ours.as_str(), now.as_micros(), ttl),
                        "claiming an idempotency key",
                    )
                    .await?;
                if claimed {
                    return Ok(None);
                }
            }
            // Ours already: a retry of this very put, cut short before.
            Some((holder, _)) if holder == ours => return Ok(None),
            Some((holder, written_at)) => {
                let holder_id: MessageId = holder
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("idempotency key {key:?} names {holder:?}")))?;
                if let Some(first) = db.message(holder_id, true).await? {
                    return Ok(Some(first));
                }
                if !abandoned(written_at, now) {
                    return Err(StoreError::Unavailable(format!(
                        "idempotency key {key:?} is held by a message still being written; retry"
                    )));
                }
                let taken = db
                    .transact(
                        &st.take_over_idempotency_key,
                        (ttl, ours.as_str(), now.as_micros(), key, holder.as_str()),
                        "taking over an idempotency key",
                    )
                    .await?;
                if taken {
                    tracing::warn!(key, abandoned = %holder, "idempotency key taken over from a put that never finished");
                    return Ok(None);
                }
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "idempotency key {key:?} keeps changing hands; retry"
    )))
}

/// Nothing is written: the first message comes back, and whether this
/// request was the same one.
async fn seen_before(db: &Db, first: MessageRow, message: &NewMessage) -> Result<PutResult, StoreError> {
    Ok(PutResult {
        outcome: first.message.repeat_outcome(message),
        message: db.full_message(first).await?,
    })
}

pub(super) async fn get(db: &Db, id: MessageId) -> Result<Option<pb::Message>, StoreError> {
    let (row, history) = futures::try_join!(db.message(id, false), db.history(id))?;
    Ok(row.map(|row| row.message.into_proto(history)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds_within_what_cql_takes() {
        // 2000-01-01: twenty years still end before 2038.
        let y2k = Timestamp::from_secs(946_684_800);
        assert_eq!(ttl_secs(Duration::from_millis(50), y2k), 1);
        assert_eq!(ttl_secs(Duration::from_secs(0), y2k), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1500), y2k), 2);
        assert_eq!(ttl_secs(Duration::from_secs(24 * 3600), y2k), 86_400);
        assert_eq!(ttl_secs(Duration::MAX, y2k), 630_720_000);
    }

    #[test]
    fn ttls_end_a_day_before_the_last_expiry_cassandra_stores() {
        let now = Timestamp::from_secs(1_796_300_000); // late 2026
        let ttl = ttl_secs(Duration::from_secs(20 * 365 * 24 * 3600), now);
        assert_eq!(i64::from(ttl), LAST_EXPIRY_SECS - 86_400 - 1_796_300_000);
        assert_eq!(
            ttl_secs(Duration::from_secs(7 * 24 * 3600), now),
            604_800,
            "short ones untouched"
        );
        let too_late = Timestamp::from_secs(LAST_EXPIRY_SECS);
        assert_eq!(ttl_secs(Duration::from_secs(3600), too_late), 1);
    }

    #[test]
    fn a_key_is_abandoned_only_long_after_it_was_written() {
        let now = Timestamp::from_secs(1_000);
        assert!(!abandoned(now.as_micros(), now));
        assert!(!abandoned(Timestamp::from_secs(950).as_micros(), now));
        assert!(abandoned(Timestamp::from_secs(900).as_micros(), now));
        assert!(
            !abandoned(Timestamp::from_secs(2_000).as_micros(), now),
            "a clock ahead"
        );
    }
}
