//! Inbound messages: stored once per `(platform, vendor channel, external
//! id)` within its window, in the channel of their vendor key.
//!
//! The key is an `INSERT … IF NOT EXISTS USING TTL`: the TTL (whole
//! seconds, rounded up) makes the table forget keys on its own, and the
//! `expires_at` beside it keeps the window exact to the microsecond, so a
//! key past its window but not yet expired is taken over like an absent
//! one. The key is claimed before the message is written; a key whose
//! message never appeared is taken over once it is clearly abandoned.

use chat4all_domain::{DeliveryStatus, MessageId, Recipient, Timeline, Timestamp};
use chat4all_proto::v1 as pb;

use super::Db;
use super::messages::{abandoned, ttl_secs};
use super::rows::MessageRow;
use chat4all_store::backend_rules::{
    INBOUND_MESSAGE_ID_FIELD, check_inbound_key, inbound_channel, inbound_source,
};
use chat4all_store::stored_rows::{DeliveryState, HistoryEntry, StoredMessage};
use chat4all_store::{InboundOutcome, InboundResult, NewInbound, StoreError};

pub(super) async fn put(db: &Db, inbound: NewInbound) -> Result<InboundResult, StoreError> {
    check_inbound_key(&inbound)?;
    let now = Timestamp::now();
    if let Some(first) = claim_key(db, &inbound, now).await? {
        return duplicate(db, first).await;
    }
    let platform = inbound.platform.as_str();
    let (channel, channel_created) = match db
        .channel_by_vendor(platform, &inbound.vendor_channel_id, false)
        .await?
    {
        Some(existing) => (existing, false),
        None => {
            let template = inbound_channel(&inbound);
            match db
                .create_channel(&template, (platform, &inbound.vendor_channel_id), now)
                .await?
            {
                Ok(created) => (created, true),
                // A first message of the same user, stored at the same time.
                Err(winner) => (winner, false),
            }
        }
    };
    let channel = pb::Channel::try_from(channel)?;
    let row = inbound_row(&inbound, &channel)?;

    db.index_in_conversation(&row).await?;
    if !db.insert_message(&row).await? {
        // Our own key names this id, so only a retry of this very put can
        // have stored it: what it stored is the message.
        let id = row.message.id;
        let first = db
            .message(id, true)
            .await?
            .ok_or_else(|| StoreError::Unavailable(format!("message {id} is being written; retry")))?;
        return duplicate(db, first).await;
    }
    let entry = db
        .append_history(row.message.id, &HistoryEntry::inbound(&inbound))
        .await?;
    // The first message keeps the external id: a receipt naming it (should
    // a platform send one) finds the message stored first.
    db.record_external_id(platform, &inbound.external_message_id, row.message.id)
        .await?;
    Ok(InboundResult {
        outcome: InboundOutcome::Stored,
        message: row.message.into_proto(vec![entry]),
        channel,
        channel_created,
    })
}

/// DELIVERED (to us) from the moment it was written, and nothing before:
/// an inbound message never passes ACCEPTED, so the reconciler never takes
/// it for an unsent one (nor has a pending row to find it by).
fn inbound_row(inbound: &NewInbound, channel: &pb::Channel) -> Result<MessageRow, StoreError> {
    let conversation_id = channel
        .id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("channel id {:?} is not a conversation id", channel.id)))?;
    let mut timeline = Timeline::default();
    timeline.set(DeliveryStatus::Delivered, inbound.at);
    Ok(MessageRow {
        message: StoredMessage {
            id: inbound.id,
            conversation_id,
            recipient: Recipient {
                platform: inbound.platform,
                id: inbound.vendor_channel_id.clone(),
            },
            text: inbound.text.clone(),
            source: inbound_source(inbound.platform),
            trace_id: inbound.trace_id.clone(),
            sender_id: inbound.sender_id.clone(),
            sender_name: inbound.sender_name.clone(),
            created_at: inbound.at,
            delivery: DeliveryState {
                status: DeliveryStatus::Delivered,
                timeline,
                failure: None,
                platform_message_id: Some(inbound.external_message_id.clone()),
            },
        },
        version: 0,
    })
}

/// Looks the key up, and claims it for `inbound` when it is free, past its
/// window, or abandoned: None when claimed, the first message when the key
/// is live (a duplicate).
async fn claim_key(db: &Db, inbound: &NewInbound, now: Timestamp) -> Result<Option<MessageRow>, StoreError> {
    let st = &db.statements;
    let key = (
        inbound.platform.as_str(),
        inbound.vendor_channel_id.as_str(),
        inbound.external_message_id.as_str(),
    );
    let ours = inbound.id.to_string();
    let window = i64::try_from(inbound.dedup_window.as_micros()).unwrap_or(i64::MAX);
    let expires_at = now.as_micros().saturating_add(window);
    let ttl = ttl_secs(inbound.dedup_window, now);
    let mut checked_id = false;
    // Each round either settles or saw the key change hands: a few suffice.
    for _ in 0..4 {
        let result = db
            .execute(&st.inbound_key_serial, key, "reading an inbound key")
            .await?;
        let holder = super::errors::first_row::<(String, i64, i64)>(result, "inbound_keys")?;
        if let Some((holder, held_until, written_at)) = &holder {
            if *holder == ours {
                // A retry of this very put: what it stored, if it got that far.
                return db.message(inbound.id, true).await;
            }
            if *held_until > now.as_micros() {
                let holder_id: MessageId = holder
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("inbound key names {holder:?}")))?;
                if let Some(first) = db.message(holder_id, true).await? {
                    return Ok(Some(first));
                }
                if !abandoned(*written_at, now) {
                    return Err(StoreError::Unavailable(
                        "the same inbound message is being stored by another request; retry".to_owned(),
                    ));
                }
            }
        }
        // A retry after the key expired may reuse the id of what it stored
        // the first time; the id names one message only.
        if !checked_id {
            checked_id = true;
            if db.message(inbound.id, false).await?.is_some() {
                return Err(StoreError::Invalid {
                    field: INBOUND_MESSAGE_ID_FIELD,
                    reason: format!("{} is already the id of another message", inbound.id),
                });
            }
        }
        let claimed = match &holder {
            None => {
                db.transact(
                    &st.insert_inbound_key,
                    (
                        key.0,
                        key.1,
                        key.2,
                        ours.as_str(),
                        expires_at,
                        now.as_micros(),
                        ttl,
                    ),
                    "claiming an inbound key",
                )
                .await?
            }
            Some((holder, ..)) => {
                db.transact(
                    &st.take_over_inbound_key,
                    (
                        ttl,
                        ours.as_str(),
                        expires_at,
                        now.as_micros(),
                        key.0,
                        key.1,
                        key.2,
                        holder.as_str(),
                    ),
                    "renewing an inbound key",
                )
                .await?
            }
        };
        if claimed {
            return Ok(None);
        }
    }
    Err(StoreError::Unavailable(
        "an inbound key keeps changing hands; retry".to_owned(),
    ))
}

/// The first message under a live key, with its channel: nothing written.
async fn duplicate(db: &Db, first: MessageRow) -> Result<InboundResult, StoreError> {
    let channel = super::channels::get(db, first.message.conversation_id.as_str())
        .await?
        .ok_or_else(|| first.message.channel_missing())?;
    Ok(InboundResult {
        outcome: InboundOutcome::Duplicate,
        message: db.full_message(first).await?,
        channel,
        channel_created: false,
    })
}
