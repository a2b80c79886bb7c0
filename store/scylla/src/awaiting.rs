//! Messages awaiting a receipt, by recipient: what a platform's watermark
//! receipt ("everything before this time was read") covers, found here
//! whichever replica sent them.
//!
//! A message has a row while it is SENT or DELIVERED (written when it gets
//! there, removed when it is READ or FAILED), keyed by when it was sent. A
//! crash between the state write and this one leaves a stale row or none:
//! a stale row is checked against the message and removed on read; a
//! missing one means a watermark does not cover that message, which its
//! own receipt, or the next watermark after a redelivered SENT, still can.

use chat4all_domain::{DeliveryStatus, MessageId, Recipient, Timestamp};
use chat4all_store::StoreError;
use chat4all_store::stored_rows::DeliveryState;
use futures::{StreamExt, TryStreamExt, stream};

use super::Db;
use super::errors::rows;
use super::messages::READ_CONCURRENCY;
use super::rows::MessageRow;

impl Db {
    /// Keeps `row`'s message in (or out of) the awaiting rows as its state
    /// becomes `after`.
    pub(super) async fn track_awaiting(
        &self,
        row: &MessageRow,
        after: &DeliveryState,
    ) -> Result<(), StoreError> {
        let Some(sent_at) = after.timeline.get(DeliveryStatus::Sent) else {
            return Ok(());
        };
        let recipient = &row.message.recipient;
        let key = (
            recipient.platform.as_str(),
            recipient.id.as_str(),
            sent_at.as_micros(),
            row.message.id.to_string(),
        );
        match after.status {
            DeliveryStatus::Sent | DeliveryStatus::Delivered => {
                self.execute(
                    &self.statements.insert_awaiting,
                    key,
                    "marking a message awaiting a receipt",
                )
                .await?;
            }
            DeliveryStatus::Read | DeliveryStatus::Failed => {
                self.execute(
                    &self.statements.delete_awaiting,
                    key,
                    "clearing an awaited receipt",
                )
                .await?;
            }
            DeliveryStatus::Accepted | DeliveryStatus::Routed => {}
        }
        Ok(())
    }
}

pub(super) async fn awaiting(
    db: &Db,
    recipient: &Recipient,
    up_to: Timestamp,
    short_of: DeliveryStatus,
    limit: u32,
) -> Result<Vec<MessageId>, StoreError> {
    let result = db
        .execute(
            &db.statements.awaiting,
            (
                recipient.platform.as_str(),
                recipient.id.as_str(),
                up_to.as_micros(),
                i32::try_from(limit).unwrap_or(i32::MAX),
            ),
            "finding messages awaiting a receipt",
        )
        .await?;
    let ids: Vec<MessageId> = rows::<(String,)>(result, "awaiting_receipts")?
        .into_iter()
        .map(|(id,)| {
            id.parse()
                .map_err(|_| StoreError::Corrupt(format!("awaiting row names {id:?}")))
        })
        .collect::<Result<_, _>>()?;
    let checked: Vec<Option<MessageId>> = stream::iter(ids)
        .map(|id| async move {
            let Some(row) = db.message(id, false).await? else {
                return Ok(None);
            };
            let status = row.message.delivery.status;
            let awaits = match short_of {
                DeliveryStatus::Read => matches!(status, DeliveryStatus::Sent | DeliveryStatus::Delivered),
                _ => status == DeliveryStatus::Sent,
            };
            if !awaits && matches!(status, DeliveryStatus::Read | DeliveryStatus::Failed) {
                // Stale: the write that clears the row did not happen.
                db.track_awaiting(&row, &row.message.delivery).await?;
            }
            Ok::<_, StoreError>(awaits.then_some(id))
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(checked.into_iter().flatten().collect())
}

pub(super) async fn record_watermark(
    db: &Db,
    recipient: &Recipient,
    status: DeliveryStatus,
    up_to: Timestamp,
) -> Result<(), StoreError> {
    db.execute(
        &db.statements.insert_watermark,
        (
            recipient.platform.as_str(),
            recipient.id.as_str(),
            status.as_str(),
            up_to.as_micros(),
        ),
        "recording a watermark",
    )
    .await?;
    Ok(())
}

pub(super) async fn watermark(
    db: &Db,
    recipient: &Recipient,
    status: DeliveryStatus,
) -> Result<Option<Timestamp>, StoreError> {
    let result = db
        .execute(
            &db.statements.latest_watermark,
            (
                recipient.platform.as_str(),
                recipient.id.as_str(),
                status.as_str(),
            ),
            "reading a watermark",
        )
        .await?;
    Ok(super::errors::first_row::<(i64,)>(result, "watermarks")?
        .map(|(up_to,)| Timestamp::from_micros(up_to)))
}
