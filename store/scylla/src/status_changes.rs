//! A status change against the tables: the state write for
//! [`transitions::apply`](super::transitions::apply), then what follows it
//! (the pending rows, the platform id's mapping, the history entry).

use std::collections::HashMap;

use chat4all_domain::{DeliveryStatus, MessageId, Timestamp};
use futures::{StreamExt as _, TryStreamExt as _, stream};
use scylla::value::MaybeUnset;

use super::Db;
use super::errors::{CasOutcome, cas_outcome, first_row};
use super::pending::is_tracked;
use super::rows::unset_if_none;
use super::transitions::{self, State, StateStore};
use chat4all_store::stored_rows::HistoryEntry;
use chat4all_store::{MessageRef, StatusChange, StoreError, TransitionResult};

/// The reads and writes a transition needs, for [`transitions::apply`].
struct Messages<'a>(&'a Db);

impl StateStore for Messages<'_> {
    async fn read(&self, id: MessageId, fresh: bool) -> Result<Option<State>, StoreError> {
        Ok(self.0.message(id, fresh).await?.map(|row| row.state()))
    }

    async fn write(&self, id: MessageId, current: &State, next: &State) -> Result<CasOutcome, StoreError> {
        let db = self.0;
        let result = db
            .session
            .execute_unpaged(&db.statements.update_state, state_values(id, current, next))
            .await;
        cas_outcome(result, "writing a transition")
    }
}

/// The values of `update_state`: only what changed is written. A timeline
/// time once set never changes, the failure is nulled only when a receipt
/// supersedes FAILED, and nothing else is ever nulled (no tombstones).
#[allow(clippy::type_complexity)]
fn state_values(
    id: MessageId,
    current: &State,
    next: &State,
) -> (
    &'static str,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
    MaybeUnset<Option<String>>,
    MaybeUnset<Option<String>>,
    MaybeUnset<String>,
    i64,
    String,
    i64,
) {
    let (before, after) = (&current.delivery, &next.delivery);
    let time = |status| {
        let at = after.timeline.get(status);
        unset_if_none(
            at.filter(|_| at != before.timeline.get(status))
                .map(Timestamp::as_micros),
        )
    };
    let (code, reason) = match (&before.failure, &after.failure) {
        (_, Some(f)) => (
            MaybeUnset::Set(Some(f.code.clone())),
            MaybeUnset::Set(Some(f.reason.clone())),
        ),
        (Some(_), None) => (MaybeUnset::Set(None), MaybeUnset::Set(None)),
        (None, None) => (MaybeUnset::Unset, MaybeUnset::Unset),
    };
    let platform_message_id = unset_if_none(
        after
            .platform_message_id
            .clone()
            .filter(|_| after.platform_message_id != before.platform_message_id),
    );
    (
        after.status.as_str(),
        time(DeliveryStatus::Accepted),
        time(DeliveryStatus::Routed),
        time(DeliveryStatus::Sent),
        time(DeliveryStatus::Delivered),
        time(DeliveryStatus::Read),
        time(DeliveryStatus::Failed),
        code,
        reason,
        platform_message_id,
        next.version,
        id.to_string(),
        current.version,
    )
}

/// How many messages' changes are applied at once.
const APPLY_CONCURRENCY: usize = 32;

/// Applies a batch: the changes to one message in order, each seeing the
/// ones before it; different messages at once. Each change is a read and a
/// lightweight transaction (four round trips), so a batch of receipts
/// applied one by one takes seconds under load, and the status-consumer
/// falls behind the receipts of a few hundred messages a second. The
/// answers come in the batch's order.
pub(super) async fn apply_all(
    db: &Db,
    changes: &[StatusChange],
) -> Result<Vec<TransitionResult>, StoreError> {
    let mut by_message: HashMap<&MessageRef, Vec<usize>> = HashMap::new();
    for (index, change) in changes.iter().enumerate() {
        by_message.entry(&change.message).or_default().push(index);
    }
    let applied: Vec<Vec<(usize, TransitionResult)>> = stream::iter(by_message.into_values())
        .map(|indices| async move {
            let mut results = Vec::with_capacity(indices.len());
            for index in indices {
                let result = apply(db, &changes[index]).await?;
                chat4all_store::backend_rules::count_transition(result.outcome);
                results.push((index, result));
            }
            Ok::<_, StoreError>(results)
        })
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_collect()
        .await?;
    let mut ordered: Vec<Option<TransitionResult>> = (0..changes.len()).map(|_| None).collect();
    for (index, result) in applied.into_iter().flatten() {
        ordered[index] = Some(result);
    }
    Ok(ordered.into_iter().flatten().collect())
}

pub(super) async fn apply(db: &Db, change: &StatusChange) -> Result<TransitionResult, StoreError> {
    let id = match &change.message {
        MessageRef::Id(id) => *id,
        MessageRef::External {
            platform,
            external_id,
        } => {
            let result = db
                .execute(
                    &db.statements.external_id,
                    (platform.as_str(), external_id.as_str()),
                    "finding a platform id",
                )
                .await?;
            match first_row::<(String,)>(result, "external_ids")? {
                Some((id,)) => id
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("external id {external_id:?} names {id:?}")))?,
                None => return Ok(TransitionResult::not_found()),
            }
        }
    };
    let Some(row) = db.message(id, false).await? else {
        return Ok(TransitionResult::not_found());
    };
    let Some(decided) = transitions::apply(&Messages(db), id, Some(row.state()), change).await? else {
        return Ok(TransitionResult::not_found());
    };

    let (previous, current) = (decided.before.delivery.status, decided.after.delivery.status);
    if previous != current {
        let platform = row.message.recipient.platform;
        futures::try_join!(
            async {
                if is_tracked(previous, platform) {
                    db.set_pending(previous, &row, false).await?;
                }
                Ok::<_, StoreError>(())
            },
            async {
                if is_tracked(current, platform) {
                    db.set_pending(current, &row, true).await?;
                }
                Ok(())
            },
        )?;
    }
    if previous != current {
        db.track_awaiting(&row, &decided.after.delivery).await?;
    }
    // Whenever the change names the id the message now carries, not only
    // when this change stored it: a redelivered SENT repairs a mapping that
    // a crash after the state write left out.
    if let Some(platform_id) = change.platform_id()
        && decided.after.delivery.platform_message_id.as_deref() == Some(platform_id)
    {
        db.record_external_id(row.message.recipient.platform.as_str(), platform_id, id)
            .await?;
    }
    db.append_history(id, &HistoryEntry::of_change(change, decided.outcome))
        .await?;
    let mut message = row.message;
    message.delivery = decided.after.delivery;
    Ok(message.transition_result(decided.outcome, previous, decided.at))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_domain::Timeline;
    use chat4all_proto::v1 as pb;

    use super::*;
    use chat4all_store::stored_rows::DeliveryState;

    fn state(status: DeliveryStatus) -> State {
        let mut timeline = Timeline::default();
        timeline.set(DeliveryStatus::Accepted, Timestamp::from_micros(10));
        State {
            delivery: DeliveryState {
                status,
                timeline,
                failure: None,
                platform_message_id: None,
            },
            version: 3,
        }
    }

    #[test]
    fn a_state_write_touches_only_what_changed() {
        let current = state(DeliveryStatus::Accepted);
        let mut next = current.clone();
        next.delivery.status = DeliveryStatus::Sent;
        next.delivery
            .timeline
            .set(DeliveryStatus::Sent, Timestamp::from_micros(20));
        next.delivery.platform_message_id = Some("wamid.1".into());
        next.version = 4;
        let id = MessageId::generate();
        let v = state_values(id, &current, &next);
        assert_eq!(v.0, "SENT");
        assert!(
            matches!(v.1, MaybeUnset::Unset),
            "ACCEPTED's time is not written again"
        );
        assert!(matches!(v.3, MaybeUnset::Set(20)));
        assert!(matches!((&v.7, &v.8), (MaybeUnset::Unset, MaybeUnset::Unset)));
        assert!(matches!(&v.9, MaybeUnset::Set(p) if p == "wamid.1"));
        assert_eq!((v.10, v.11.as_str(), v.12), (4, id.to_string().as_str(), 3));

        // FAILED, then a receipt: the failure is set, then nulled.
        let mut failed = next.clone();
        failed.delivery.status = DeliveryStatus::Failed;
        failed.delivery.failure = Some(pb::Failure {
            code: "c".into(),
            reason: "r".into(),
        });
        failed.version = 5;
        let v = state_values(id, &next, &failed);
        assert!(matches!(&v.7, MaybeUnset::Set(Some(c)) if c == "c"));
        assert!(
            matches!(v.9, MaybeUnset::Unset),
            "the platform id is not written again"
        );
        let mut delivered = failed.clone();
        delivered.delivery.status = DeliveryStatus::Delivered;
        delivered.delivery.failure = None;
        let v = state_values(id, &failed, &delivered);
        assert!(matches!(
            (v.7, v.8),
            (MaybeUnset::Set(None), MaybeUnset::Set(None))
        ));
    }
}
