//! Channels: by id (`channels`), by vendor key (`channels_by_vendor`), and
//! listed in id order (`channel_listing`, sharded).
//!
//! A channel is created by two claims, its id then its vendor key, each an
//! `INSERT … IF NOT EXISTS`: the id first, so a vendor key never points at
//! a channel that does not exist, and a channel that loses the race for its
//! vendor key is deleted again and the winner used. Listing rows go last:
//! a channel is listed once it can be found.

use chat4all_domain::Timestamp;
use chat4all_proto::v1 as pb;
use futures::{StreamExt, TryStreamExt, stream};

use super::Db;
use super::buckets::{ALL_CHANNELS, CHANNEL_SHARDS, channel_shard, vendor_scope};
use super::errors::{first_row, rows};
use super::messages::READ_CONCURRENCY;
use super::rows::{ChannelRecord, channel_insert_values};
use chat4all_store::backend_rules::channel_vendor_key;
use chat4all_store::paging::{decode_key, encode_key, page_size};
use chat4all_store::stored_rows::{ChannelColumns, metadata_to_json};
use chat4all_store::{ChannelPage, PutChannelOutcome, StoreError};

impl Db {
    async fn channel(&self, id: &str, fresh: bool) -> Result<Option<ChannelColumns>, StoreError> {
        let statement = if fresh {
            &self.statements.channel_serial
        } else {
            &self.statements.channel
        };
        let result = self.execute(statement, (id,), "reading a channel").await?;
        Ok(first_row::<ChannelRecord>(result, "channels")?.map(ChannelColumns::from))
    }

    /// The channel with this vendor key.
    pub(super) async fn channel_by_vendor(
        &self,
        vendor_name: &str,
        vendor_channel_id: &str,
        fresh: bool,
    ) -> Result<Option<ChannelColumns>, StoreError> {
        let statement = if fresh {
            &self.statements.channel_vendor_serial
        } else {
            &self.statements.channel_vendor
        };
        let result = self
            .execute(statement, (vendor_name, vendor_channel_id), "finding a channel")
            .await?;
        let Some((id,)) = first_row::<(String,)>(result, "channels_by_vendor")? else {
            return Ok(None);
        };
        // The id was claimed before the vendor key: it exists.
        self.channel(&id, fresh).await?.map(Some).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "vendor key ({vendor_name}, {vendor_channel_id}) names missing channel {id:?}"
            ))
        })
    }

    /// The rows that list a channel, idempotent.
    async fn list_channel(&self, record: &ChannelColumns) -> Result<(), StoreError> {
        let shard = channel_shard(&record.id);
        let vendor = vendor_scope(&record.vendor_name);
        futures::try_join!(
            self.execute(
                &self.statements.insert_channel_listing,
                (ALL_CHANNELS, shard, record.id.as_str()),
                "listing a channel",
            ),
            self.execute(
                &self.statements.insert_channel_listing,
                (vendor.as_str(), shard, record.id.as_str()),
                "listing a channel",
            ),
        )?;
        Ok(())
    }

    /// Creates the channel `template` under a vendor key that was free when
    /// looked up. `Err(existing)` inside: someone else got the key first.
    pub(super) async fn create_channel(
        &self,
        template: &pb::Channel,
        vendor: (&str, &str),
        now: Timestamp,
    ) -> Result<Result<ChannelColumns, ChannelColumns>, StoreError> {
        let st = &self.statements;
        let mut record = ChannelColumns::create(template, vendor, now);
        let claimed_id = self
            .transact(
                &st.insert_channel,
                channel_insert_values(&record),
                "creating a channel",
            )
            .await?;
        if !claimed_id {
            let holder = self.channel(&record.id, true).await?.ok_or_else(|| {
                StoreError::Unavailable(format!("channel {:?} is being written; retry", record.id))
            })?;
            if (holder.vendor_name.as_str(), holder.vendor_channel_id.as_str()) != vendor {
                // The vendor key is new, so a channel with this id belongs to
                // another conversation.
                return Err(holder.id_taken(&record.id));
            }
            // The same put, racing or retried: carry on with what it stored.
            record = holder;
        }
        let claimed_key = self
            .transact(
                &st.insert_channel_vendor,
                (vendor.0, vendor.1, record.id.as_str()),
                "claiming a vendor key",
            )
            .await?;
        if !claimed_key {
            let winner = self
                .channel_by_vendor(vendor.0, vendor.1, true)
                .await?
                .ok_or_else(|| {
                    StoreError::Unavailable("a vendor key changed hands while read; retry".to_owned())
                })?;
            if winner.id != record.id {
                // Not applied means the row was already gone or changed: not ours.
                self.transact(
                    &st.delete_channel,
                    (record.id.as_str(), vendor.0, vendor.1),
                    "undoing a channel",
                )
                .await?;
                return Ok(Err(winner));
            }
        }
        self.list_channel(&record).await?;
        Ok(Ok(record))
    }
}

pub(super) async fn put(
    db: &Db,
    channel: pb::Channel,
) -> Result<(PutChannelOutcome, pb::Channel), StoreError> {
    let vendor = channel_vendor_key(&channel)?;
    let existing = match db.channel_by_vendor(vendor.0, vendor.1, false).await? {
        Some(existing) => existing,
        None => match db.create_channel(&channel, vendor, Timestamp::now()).await? {
            Ok(created) => return Ok((PutChannelOutcome::Created, pb::Channel::try_from(created)?)),
            Err(winner) => winner,
        },
    };
    // Cheap and idempotent: repairs a listing a crash left out.
    db.list_channel(&existing).await?;
    // The stored id and creation time win over any given: the channel is
    // already known, and its id is what other records point at.
    if existing.same_fields(&channel)? {
        return Ok((PutChannelOutcome::Unchanged, pb::Channel::try_from(existing)?));
    }
    let updated = ChannelColumns {
        name: channel.name.clone(),
        context: channel.context.clone(),
        kind: channel.r#type.clone(),
        metadata: metadata_to_json(channel.metadata.as_ref()),
        ..existing
    };
    db.transact(
        &db.statements.update_channel,
        (
            updated.name.as_str(),
            updated.context.as_str(),
            updated.kind.as_str(),
            updated.metadata.as_str(),
            updated.id.as_str(),
        ),
        "updating a channel",
    )
    .await?;
    Ok((PutChannelOutcome::Updated, pb::Channel::try_from(updated)?))
}

pub(super) async fn get(db: &Db, id: &str) -> Result<Option<pb::Channel>, StoreError> {
    if id.is_empty() {
        return Ok(None);
    }
    db.channel(id, false)
        .await?
        .map(pb::Channel::try_from)
        .transpose()
}

pub(super) async fn find(
    db: &Db,
    vendor_name: &str,
    vendor_channel_id: &str,
) -> Result<Option<pb::Channel>, StoreError> {
    if vendor_name.is_empty() || vendor_channel_id.is_empty() {
        return Ok(None);
    }
    db.channel_by_vendor(vendor_name, vendor_channel_id, false)
        .await?
        .map(pb::Channel::try_from)
        .transpose()
}

/// A page in id order: the next ids of every shard, merged. Each shard is
/// in id order, so the first `limit + 1` of the merge are the page and
/// whether there is more.
pub(super) async fn page(
    db: &Db,
    vendor_name: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<ChannelPage, StoreError> {
    let after = after.map(decode_key).transpose()?.unwrap_or_default();
    let limit = page_size(limit) as usize;
    let scope = vendor_name.map_or_else(|| ALL_CHANNELS.to_owned(), vendor_scope);
    let peek = i32::try_from(limit + 1).unwrap_or(i32::MAX);
    let shards: Vec<Vec<(String,)>> = stream::iter(0..CHANNEL_SHARDS)
        .map(|shard| {
            let (scope, after) = (scope.as_str(), after.as_str());
            async move {
                let result = db
                    .execute(
                        &db.statements.channel_listing,
                        (scope, shard, after, peek),
                        "listing channels",
                    )
                    .await?;
                rows::<(String,)>(result, "channel_listing")
            }
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let mut ids: Vec<String> = shards.into_iter().flatten().map(|(id,)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    let more = ids.len() > limit;
    ids.truncate(limit);
    let next_cursor = more.then(|| ids.last().map(|id| encode_key(id))).flatten();
    let channels: Vec<Option<ChannelColumns>> = stream::iter(ids.iter().cloned())
        .map(|id| async move { db.channel(&id, false).await })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(ChannelPage {
        channels: channels
            .into_iter()
            .flatten()
            .map(pb::Channel::try_from)
            .collect::<Result<_, _>>()?,
        next_cursor,
    })
}
