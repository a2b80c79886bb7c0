//! Claims on a message's one platform call, and named leases.
//!
//! A claim lives on the message's row: who holds it, until when, whether a
//! platform call is in flight, and the platform's answer once there is one.
//! Every read-decide-write here runs on the one writer connection, so it is
//! atomic without locks. A claim from before leases (no `claim_lease_until`)
//! never expires: its holder made no promise to renew it.

use std::time::Duration;

use chat4all_domain::{MessageId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::db_error::db_error;
use chat4all_store::{ClaimOutcome, PlatformAnswer, StoreError};

/// `now + lease`, in micros.
pub(super) fn until(now: Timestamp, lease: Duration) -> i64 {
    now.as_micros()
        .saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX))
}

struct Held {
    holder: Option<String>,
    lease_until: Option<i64>,
    calling: bool,
    answer: Option<(String, i64)>,
}

pub(super) fn claim_for_send(
    conn: &Connection,
    ids: &[MessageId],
    claimant: &str,
    lease: Duration,
    now: Timestamp,
) -> Result<Vec<ClaimOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(ids.len());
    for id in ids {
        let held = conn
            .prepare_cached(
                "SELECT claimed_by, claim_lease_until, claim_calling, answer_id, answered_at \
                 FROM messages WHERE id = ?1",
            )
            .map_err(db_error)?
            .query_row(params![id.to_string()], |row| {
                let answer: Option<String> = row.get(3)?;
                let answered_at: Option<i64> = row.get(4)?;
                Ok(Held {
                    holder: row.get(0)?,
                    lease_until: row.get(1)?,
                    calling: row.get::<_, i64>(2)? != 0,
                    answer: answer.zip(answered_at),
                })
            })
            .optional()
            .map_err(db_error)?;
        let Some(held) = held else {
            outcomes.push(ClaimOutcome::NotFound);
            continue;
        };
        let outcome = match (&held.holder, held.lease_until) {
            (None, _) => ClaimOutcome::Claimed,
            (Some(_), None) => ClaimOutcome::AlreadyClaimed,
            (Some(_), Some(until)) if until > now.as_micros() => ClaimOutcome::AlreadyClaimed,
            (Some(_), Some(_)) => match held.answer {
                Some((platform_message_id, at)) => ClaimOutcome::Answered(PlatformAnswer {
                    platform_message_id,
                    at: Timestamp::from_micros(at),
                }),
                None if held.calling => ClaimOutcome::Uncertain,
                None => ClaimOutcome::Claimed,
            },
        };
        if outcome != ClaimOutcome::AlreadyClaimed {
            conn.prepare_cached(
                "UPDATE messages SET claimed_by = ?2, claimed_at = ?3, claim_lease_until = ?4, \
                 claim_calling = 1 WHERE id = ?1",
            )
            .map_err(db_error)?
            .execute(params![
                id.to_string(),
                claimant,
                now.as_micros(),
                until(now, lease)
            ])
            .map_err(db_error)?;
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

pub(super) fn renew_claim(
    conn: &Connection,
    id: &MessageId,
    claimant: &str,
    lease: Duration,
    calling: bool,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE messages SET claim_lease_until = ?3, claim_calling = ?4 \
             WHERE id = ?1 AND claimed_by = ?2",
        )
        .map_err(db_error)?
        .execute(params![
            id.to_string(),
            claimant,
            until(now, lease),
            i64::from(calling)
        ])
        .map_err(db_error)?;
    Ok(changed == 1)
}

pub(super) fn record_answer(
    conn: &Connection,
    id: &MessageId,
    answer: &PlatformAnswer,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE messages SET answer_id = ?2, answered_at = ?3, claim_calling = 0 WHERE id = ?1",
    )
    .map_err(db_error)?
    .execute(params![
        id.to_string(),
        answer.platform_message_id,
        answer.at.as_micros()
    ])
    .map_err(db_error)?;
    Ok(())
}

pub(super) fn release_claims(conn: &Connection, ids: &[MessageId], claimant: &str) -> Result<(), StoreError> {
    for id in ids {
        conn.prepare_cached(
            "UPDATE messages SET claimed_by = NULL, claimed_at = NULL, claim_lease_until = NULL, \
             claim_calling = 0 WHERE id = ?1 AND claimed_by = ?2 AND answer_id IS NULL",
        )
        .map_err(db_error)?
        .execute(params![id.to_string(), claimant])
        .map_err(db_error)?;
    }
    Ok(())
}

pub(super) fn acquire_lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    ttl: Duration,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until <= ?4",
        )
        .map_err(db_error)?
        .execute(params![name, holder, until(now, ttl), now.as_micros()])
        .map_err(db_error)?;
    Ok(changed == 1)
}

/// Keeps the later of the recorded watermark and `up_to`.
pub(super) fn record_watermark(
    conn: &Connection,
    recipient: &chat4all_domain::Recipient,
    status: chat4all_domain::DeliveryStatus,
    up_to: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO watermarks (platform, recipient_id, status, up_to) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (platform, recipient_id, status) DO UPDATE SET up_to = excluded.up_to \
         WHERE excluded.up_to > watermarks.up_to",
    )
    .map_err(db_error)?
    .execute(params![
        recipient.platform.as_str(),
        recipient.id,
        status.as_str(),
        up_to.as_micros()
    ])
    .map_err(db_error)?;
    Ok(())
}
