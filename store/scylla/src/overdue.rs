//! Receipts overdue: a SENT message still waiting on its platform's
//! receipt past a deadline is marked once (`receipts_overdue`), with one
//! NOTED entry in its history.

use std::time::Duration;

use chat4all_domain::{MessageId, Timestamp};
use futures::{StreamExt, TryStreamExt, stream};

use super::Db;
use super::messages::READ_CONCURRENCY;
use chat4all_store::StoreError;
use chat4all_store::backend_rules::receipt_overdue;
use chat4all_store::stored_rows::HistoryEntry;

pub(super) async fn mark(
    db: &Db,
    ids: &[MessageId],
    deadline: Duration,
) -> Result<Vec<MessageId>, StoreError> {
    let now = Timestamp::now();
    let marked: Vec<Option<MessageId>> = stream::iter(ids.iter().copied())
        .map(|id| mark_one(db, id, deadline, now))
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(marked.into_iter().flatten().collect())
}

/// The mark goes first: it is what makes the note once-only. A crash
/// between the two loses the note (the mark stays), never doubles it.
async fn mark_one(
    db: &Db,
    id: MessageId,
    deadline: Duration,
    now: Timestamp,
) -> Result<Option<MessageId>, StoreError> {
    let Some(row) = db.message(id, false).await? else {
        return Ok(None);
    };
    if !receipt_overdue(&row.message, deadline, now) {
        return Ok(None);
    }
    let first = db
        .transact(
            &db.statements.insert_receipt_overdue,
            (id.to_string(), now.as_micros()),
            "marking a receipt overdue",
        )
        .await?;
    if !first {
        return Ok(None);
    }
    db.append_history(id, &HistoryEntry::receipt_overdue(deadline, now))
        .await?;
    Ok(Some(id))
}
