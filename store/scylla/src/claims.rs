//! Claims: one platform call per message, the first claimant wins.

use chat4all_domain::{MessageId, Timestamp};
use futures::{StreamExt, TryStreamExt, stream};

use super::Db;
use super::errors::first_row;
use super::messages::READ_CONCURRENCY;
use chat4all_store::{ClaimOutcome, StoreError};

pub(super) async fn claim(
    db: &Db,
    ids: &[MessageId],
    claimant: &str,
) -> Result<Vec<ClaimOutcome>, StoreError> {
    stream::iter(ids.iter().copied())
        .map(|id| async move {
            let result = db
                .execute(
                    &db.statements.message_exists,
                    (id.to_string(),),
                    "finding a message",
                )
                .await?;
            if first_row::<(String,)>(result, "messages")?.is_none() {
                return Ok(ClaimOutcome::NotFound);
            }
            let claimed = db
                .transact(
                    &db.statements.insert_claim,
                    (id.to_string(), claimant, Timestamp::now().as_micros()),
                    "claiming a message",
                )
                .await?;
            Ok(if claimed {
                ClaimOutcome::Claimed
            } else {
                ClaimOutcome::AlreadyClaimed
            })
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
}

/// Whether any sidecar holds a claim on `id`.
pub(super) async fn is_claimed(db: &Db, id: MessageId) -> Result<bool, StoreError> {
    let result = db
        .execute(&db.statements.claimant, (id.to_string(),), "reading a claim")
        .await?;
    Ok(first_row::<(String,)>(result, "claims")?.is_some())
}

pub(super) async fn release(db: &Db, ids: &[MessageId], claimant: &str) -> Result<(), StoreError> {
    stream::iter(ids.iter().copied())
        .map(|id| async move {
            // Not applied: the claim is someone else's, or gone. Either way
            // it is not ours to give back.
            db.transact(
                &db.statements.delete_claim,
                (id.to_string(), claimant),
                "releasing a claim",
            )
            .await
        })
        .buffered(READ_CONCURRENCY)
        .try_collect::<Vec<bool>>()
        .await?;
    Ok(())
}
