//! A conversation's pages, newest first, week by week.

use chat4all_domain::{ConversationId, MessageId, Timestamp};
use futures::{StreamExt, TryStreamExt, stream};

use super::Db;
use super::buckets::conversation_bucket;
use super::errors::{self, rows};
use super::messages::READ_CONCURRENCY;
use super::rows::MessageRow;
use chat4all_store::paging::page_size;
use chat4all_store::{MessageCursor, Page, StoreError};

/// A position in a conversation, as `conversation_messages` keys it.
type Position = (i64, String);

pub(super) async fn page(
    db: &Db,
    conversation: &ConversationId,
    before: Option<&str>,
    limit: u32,
) -> Result<Page, StoreError> {
    let cursor = before.map(MessageCursor::decode).transpose()?;
    let limit = page_size(limit) as usize;
    let positions = positions(db, conversation, cursor, limit + 1).await?;
    let more = positions.len() > limit;
    let shown = &positions[..positions.len().min(limit)];
    let ids: Vec<String> = shown.iter().map(|(_, id)| id.clone()).collect();
    let messages: Vec<Option<MessageRow>> = stream::iter(ids)
        .map(|id| async move {
            let id: MessageId = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("conversation row names {id:?}")))?;
            db.message(id, false).await
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let next_cursor = match (more, shown.last()) {
        (true, Some((created_at, id))) => {
            let id = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("conversation row names {id:?}")))?;
            Some(MessageCursor::after(Timestamp::from_micros(*created_at), id).encode())
        }
        _ => None,
    };
    Ok(Page {
        // A row whose message is missing (a put cut short) or is another
        // conversation's (a reused id) is not shown.
        messages: messages
            .into_iter()
            .flatten()
            .map(|row| row.message)
            .filter(|m| &m.conversation_id == conversation)
            .map(|m| m.into_proto(Vec::new()))
            .collect(),
        next_cursor,
    })
}

/// Up to `want` positions of a conversation strictly older than the
/// cursor, newest first, walking its weeks from the cursor's.
async fn positions(
    db: &Db,
    conversation: &ConversationId,
    cursor: Option<MessageCursor>,
    want: usize,
) -> Result<Vec<Position>, StoreError> {
    let st = &db.statements;
    let start = cursor.map_or(i64::MAX, |c| conversation_bucket(c.created_at));
    let mut buckets = db
        .session
        .execute_iter(st.conversation_buckets.clone(), (conversation.as_str(), start))
        .await
        .map_err(|e| errors::unavailable("reading a conversation", e))?
        .rows_stream::<(i64,)>()
        .map_err(|e| errors::corrupt("conversation_buckets", e))?;
    let mut found: Vec<Position> = Vec::with_capacity(want);
    while found.len() < want {
        let Some((bucket,)) = buckets
            .try_next()
            .await
            .map_err(|e| errors::unavailable("reading a conversation", e))?
        else {
            break;
        };
        let remaining = i32::try_from(want - found.len()).unwrap_or(i32::MAX);
        let result = match cursor {
            // Only the cursor's own week holds messages on both sides of it.
            Some(c) if bucket == start => {
                // An empty id sorts before every id: "older than this time".
                let id = c.id.map(|id| id.to_string()).unwrap_or_default();
                db.execute(
                    &st.conversation_page_before,
                    (
                        conversation.as_str(),
                        bucket,
                        c.created_at.as_micros(),
                        id,
                        remaining,
                    ),
                    "reading a conversation",
                )
                .await?
            }
            _ => {
                db.execute(
                    &st.conversation_page,
                    (conversation.as_str(), bucket, remaining),
                    "reading a conversation",
                )
                .await?
            }
        };
        found.extend(rows::<Position>(result, "conversation_messages")?);
    }
    found.truncate(want);
    Ok(found)
}
