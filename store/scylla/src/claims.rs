//! Claims on a message's one platform call, and named leases.
//!
//! A claim is a row of `send_claims`: who holds it, until when, whether a
//! platform call is in flight, and the platform's answer once there is one.
//! Every change is a lightweight transaction conditioned on what was read,
//! so two sidecars racing for an expired claim cannot both win; a loser
//! reads again at SERIAL consistency and answers from what it sees.

use std::time::Duration;

use chat4all_domain::{MessageId, Timestamp};
use futures::{StreamExt, TryStreamExt, stream};

use super::Db;
use super::errors::first_row;
use super::messages::READ_CONCURRENCY;
use chat4all_store::{ClaimOutcome, PlatformAnswer, StoreError};

/// Losing this many races in a row for one claim means something is wrong.
const MAX_RACES: usize = 8;

/// `now + lease`, in micros.
fn until(now: Timestamp, lease: Duration) -> i64 {
    now.as_micros()
        .saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX))
}

type ClaimRow = (
    Option<String>,
    Option<i64>,
    Option<bool>,
    Option<String>,
    Option<i64>,
);

pub(super) async fn claim(
    db: &Db,
    ids: &[MessageId],
    claimant: &str,
    lease: Duration,
) -> Result<Vec<ClaimOutcome>, StoreError> {
    stream::iter(ids.iter().copied())
        .map(|id| claim_one(db, id, claimant, lease))
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
}

async fn claim_one(
    db: &Db,
    id: MessageId,
    claimant: &str,
    lease: Duration,
) -> Result<ClaimOutcome, StoreError> {
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
    for _ in 0..MAX_RACES {
        let now = Timestamp::now();
        let claimed = db
            .transact(
                &db.statements.insert_send_claim,
                (id.to_string(), claimant, now.as_micros(), until(now, lease)),
                "claiming a message",
            )
            .await?;
        if claimed {
            return Ok(ClaimOutcome::Claimed);
        }
        let row = db
            .execute(
                &db.statements.send_claim_serial,
                (id.to_string(),),
                "reading a claim",
            )
            .await?;
        // Released in between: try again.
        let Some((holder, lease_until, calling, answer_id, answer_at)) =
            first_row::<ClaimRow>(row, "send_claims")?
        else {
            continue;
        };
        let (Some(holder), Some(lease_until)) = (holder, lease_until) else {
            return Err(StoreError::Corrupt(format!(
                "the claim on {id} has no holder or lease"
            )));
        };
        if lease_until > now.as_micros() {
            return Ok(ClaimOutcome::AlreadyClaimed);
        }
        let outcome = match (answer_id, answer_at) {
            (Some(platform_message_id), Some(at)) => ClaimOutcome::Answered(PlatformAnswer {
                platform_message_id,
                at: Timestamp::from_micros(at),
            }),
            _ if calling.unwrap_or(false) => ClaimOutcome::Uncertain,
            _ => ClaimOutcome::Claimed,
        };
        let taken = db
            .transact(
                &db.statements.take_over_send_claim,
                (
                    claimant,
                    now.as_micros(),
                    until(now, lease),
                    id.to_string(),
                    holder,
                    lease_until,
                ),
                "taking over a claim",
            )
            .await?;
        if taken {
            return Ok(outcome);
        }
    }
    Err(StoreError::Unavailable(format!(
        "the claim on {id} changed hands {MAX_RACES} times while being taken"
    )))
}

pub(super) async fn renew(
    db: &Db,
    id: MessageId,
    claimant: &str,
    lease: Duration,
    calling: bool,
) -> Result<bool, StoreError> {
    db.transact(
        &db.statements.renew_send_claim,
        (until(Timestamp::now(), lease), calling, id.to_string(), claimant),
        "renewing a claim",
    )
    .await
}

pub(super) async fn record_answer(db: &Db, id: MessageId, answer: &PlatformAnswer) -> Result<(), StoreError> {
    // Not applied: there is no claim to keep it with (a message nobody
    // claimed was not sent by us); nothing to do.
    db.transact(
        &db.statements.answer_send_claim,
        (
            answer.platform_message_id.as_str(),
            answer.at.as_micros(),
            id.to_string(),
        ),
        "recording a platform answer",
    )
    .await?;
    Ok(())
}

/// Whether a sidecar holds a live claim on `id` (one past its lease is a
/// send whose holder died).
pub(super) async fn is_claimed(db: &Db, id: MessageId) -> Result<bool, StoreError> {
    let result = db
        .execute(&db.statements.send_claim, (id.to_string(),), "reading a claim")
        .await?;
    Ok(first_row::<ClaimRow>(result, "send_claims")?
        .and_then(|(_, lease_until, ..)| lease_until)
        .is_some_and(|until| until > Timestamp::now().as_micros()))
}

pub(super) async fn release(db: &Db, ids: &[MessageId], claimant: &str) -> Result<(), StoreError> {
    stream::iter(ids.iter().copied())
        .map(|id| async move {
            // Not applied: the claim is someone else's, or gone. Either way
            // it is not ours to give back.
            db.transact(
                &db.statements.delete_send_claim,
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

pub(super) async fn acquire_lease(
    db: &Db,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    for _ in 0..MAX_RACES {
        let now = Timestamp::now();
        if db
            .transact(
                &db.statements.insert_lease,
                (name, holder, until(now, ttl)),
                "taking a lease",
            )
            .await?
        {
            return Ok(true);
        }
        let row = db
            .execute(&db.statements.lease_serial, (name,), "reading a lease")
            .await?;
        let Some((current, current_until)) = first_row::<(Option<String>, Option<i64>)>(row, "leases")?
        else {
            continue;
        };
        let (Some(current), Some(current_until)) = (current, current_until) else {
            return Err(StoreError::Corrupt(format!("lease {name} has no holder or end")));
        };
        if current != holder && current_until > now.as_micros() {
            return Ok(false);
        }
        if db
            .transact(
                &db.statements.take_lease,
                (holder, until(now, ttl), name, current, current_until),
                "taking over a lease",
            )
            .await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}
