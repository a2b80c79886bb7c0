//! Messages waiting in ACCEPTED or ROUTED, or SENT on a platform that
//! reports receipts (`pending_messages`): kept as messages move, read by
//! the reconciler's look-up.
//!
//! A row is written with the status a message enters and deleted when it
//! leaves; a crash (or two transitions crossing) may leave a row behind,
//! which the look-up checks against the message and clears.

use chat4all_domain::{DeliveryStatus, MessageId, Platform, Timestamp};
use chat4all_proto::v1 as pb;
use futures::{StreamExt, TryStreamExt, stream};

use super::Db;
use super::buckets::{pending_bucket, pending_buckets};
use super::errors::rows;
use super::messages::READ_CONCURRENCY;
use super::rows::MessageRow;
use chat4all_store::StoreError;
use chat4all_store::paging::page_size;

/// A position in a bucket, as `pending_messages` keys it.
type Position = (i64, String);

/// Whether a message to `platform` in `status` has a row: our pipeline
/// still owes it a step (routing, sending), or it is SENT and waits on the
/// platform's receipt, which the reconciler watches for a deadline.
/// Elsewhere SENT is final, and DELIVERED waits only on a person reading:
/// keeping those would make the table grow with every message.
pub(super) fn is_tracked(status: DeliveryStatus, platform: Platform) -> bool {
    match status {
        DeliveryStatus::Accepted | DeliveryStatus::Routed => true,
        DeliveryStatus::Sent => platform.reports_receipts(),
        _ => false,
    }
}

/// The statuses the look-up answers for: those tracked on some platform.
fn is_looked_up(status: DeliveryStatus) -> bool {
    Platform::ALL.into_iter().any(|p| is_tracked(status, p))
}

impl Db {
    pub(super) async fn set_pending(
        &self,
        status: DeliveryStatus,
        row: &MessageRow,
        pending: bool,
    ) -> Result<(), StoreError> {
        let message = &row.message;
        let key = (
            status.as_str(),
            pending_bucket(message.created_at),
            message.created_at.as_micros(),
            message.id.to_string(),
        );
        if pending {
            self.execute(&self.statements.insert_pending, key, "marking a message pending")
                .await?;
        } else {
            self.execute(&self.statements.delete_pending, key, "clearing a pending message")
                .await?;
        }
        Ok(())
    }
}

pub(super) async fn stuck(
    db: &Db,
    status: DeliveryStatus,
    created_before: Timestamp,
    limit: u32,
) -> Result<Vec<pb::Message>, StoreError> {
    if !is_looked_up(status) {
        return Err(StoreError::Invalid {
            field: "status",
            reason: format!("{status} is not tracked for reconciliation (ACCEPTED, ROUTED and SENT are)"),
        });
    }
    let limit = page_size(limit) as usize;
    let fetch = i32::try_from(limit).unwrap_or(i32::MAX);
    let mut buckets = stream::iter(pending_buckets(created_before, db.options.stuck_lookback))
        .map(|bucket| async move {
            let result = db
                .execute(
                    &db.statements.pending,
                    (status.as_str(), bucket, created_before.as_micros(), fetch),
                    "reading pending messages",
                )
                .await?;
            rows::<Position>(result, "pending_messages")
        })
        // Most buckets are empty: look at a few at once, still in order.
        .buffered(8);
    let mut stuck = Vec::new();
    while stuck.len() < limit {
        let Some(positions) = buckets.try_next().await? else {
            break;
        };
        let found: Vec<(Position, Option<MessageRow>, bool)> = stream::iter(positions)
            .map(|position| async move {
                let id: MessageId = position
                    .1
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("pending row names {:?}", position.1)))?;
                let message = db.message(id, false).await?;
                // A claimed ROUTED message is past routing (see the trait).
                let claimed = status == DeliveryStatus::Routed
                    && message
                        .as_ref()
                        .is_some_and(|m| m.message.delivery.status == status)
                    && super::claims::is_claimed(db, id).await?;
                Ok::<_, StoreError>((position, message, claimed))
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        for ((created_at, id), message, claimed) in found {
            match message {
                Some(_) if claimed => {}
                Some(m) if m.message.delivery.status == status => {
                    if stuck.len() < limit {
                        stuck.push(m.message.into_proto(Vec::new()));
                    }
                }
                // Moved on, and the write that clears the row did not
                // happen (a crash, or a race with the one that set it):
                // cleared here. A missing message may still be being put.
                Some(m) => {
                    tracing::debug!(%id, status = %m.message.delivery.status, "clearing a stale pending row");
                    db.set_pending(status, &m, false).await?;
                }
                None => tracing::debug!(%id, created_at, "pending row of a message not (yet) stored"),
            }
        }
    }
    Ok(stuck)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_our_pipeline_owes_a_step_and_sent_awaiting_a_receipt_are_tracked() {
        let tracked = |platform| -> Vec<_> {
            DeliveryStatus::ALL
                .into_iter()
                .filter(|s| is_tracked(*s, platform))
                .collect()
        };
        use DeliveryStatus::{Accepted, Routed, Sent};
        assert_eq!(tracked(Platform::WhatsApp), [Accepted, Routed, Sent]);
        assert_eq!(tracked(Platform::Messenger), [Accepted, Routed, Sent]);
        assert_eq!(tracked(Platform::Telegram), [Accepted, Routed]);
        assert_eq!(tracked(Platform::Chotot), [Accepted, Routed]);
        let looked_up: Vec<_> = DeliveryStatus::ALL
            .into_iter()
            .filter(|s| is_looked_up(*s))
            .collect();
        assert_eq!(looked_up, [Accepted, Routed, Sent]);
    }
}
