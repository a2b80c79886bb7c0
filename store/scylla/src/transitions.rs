//! A status change as read → decide → conditional write → (on a lost
//! race) read again and decide again.
//!
//! The state machine is [`chat4all_domain::decide`], applied as every
//! backend applies it ([`DeliveryState::decide`]); this module only feeds
//! it the message's current state and writes what it decided, if nobody
//! changed the message in between. It is written over
//! [`StateStore`], the two things it needs from a database, so the retry
//! and decision logic is tested here with an in-memory table that loses
//! races on cue.
//!
//! The write is conditional on `version`, a counter every state write
//! bumps, rather than on `status` alone: `decide` reads the whole timeline
//! (a backfill is clamped between its neighbours' times, a state is
//! backfilled once), so two writers that agree on the status can still
//! disagree on the timeline. With the version, whatever one writer wrote
//! makes every other writer's condition fail, and each loser decides again
//! from what the winner left.

use std::future::Future;

use chat4all_domain::{MessageId, Timestamp};

use super::errors::CasOutcome;
use chat4all_store::stored_rows::DeliveryState;
use chat4all_store::{StatusChange, StoreError, TransitionOutcome};

/// How many times a change is decided again after losing a race before the
/// store gives up and reports itself unavailable (the caller retries).
/// Eight writers racing on one message settle well within it.
pub(super) const MAX_ATTEMPTS: u32 = 16;

/// What a transition reads and writes of a message.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct State {
    pub(super) delivery: DeliveryState,
    /// Bumped by every write of the state; the condition of the next.
    pub(super) version: i64,
}

/// What a change does to a state.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub(super) outcome: TransitionOutcome,
    /// The time recorded for the state, on Applied and Backfilled.
    pub(super) at: Option<Timestamp>,
    /// The state to write, when anything changes.
    pub(super) next: Option<State>,
}

/// Offers `change` to the state machine against `state`. Pure.
pub(super) fn plan(state: &State, change: &StatusChange) -> Plan {
    let mut next = state.clone();
    let (outcome, at) = next.delivery.decide(change);
    next.delivery.record_platform_id(change);
    let changed = next != *state;
    if changed {
        next.version = state.version.saturating_add(1);
    }
    Plan {
        outcome,
        at,
        next: changed.then_some(next),
    }
}

/// What a transition needs from the database.
pub(super) trait StateStore: Sync {
    /// The message's state; `fresh` asks for every committed transaction
    /// to be seen (a SERIAL read), as after losing one.
    fn read(
        &self,
        id: MessageId,
        fresh: bool,
    ) -> impl Future<Output = Result<Option<State>, StoreError>> + Send;

    /// Writes `next` if the stored version is still `current.version`.
    fn write(
        &self,
        id: MessageId,
        current: &State,
        next: &State,
    ) -> impl Future<Output = Result<CasOutcome, StoreError>> + Send;
}

/// A change, decided and (when it changed anything) written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decided {
    pub(super) outcome: TransitionOutcome,
    pub(super) at: Option<Timestamp>,
    /// The state the decision was made on.
    pub(super) before: State,
    /// The state now stored.
    pub(super) after: State,
    /// Conditional writes lost before this one was decided.
    pub(super) conflicts: u32,
}

/// Reads, decides and writes `change` to message `id`, deciding again
/// after each lost race, [`MAX_ATTEMPTS`] writes at most. `first` is the
/// state already read (the caller needed the row to find the message), or
/// None to read it here. None when the message does not exist.
pub(super) async fn apply<S: StateStore>(
    store: &S,
    id: MessageId,
    first: Option<State>,
    change: &StatusChange,
) -> Result<Option<Decided>, StoreError> {
    let mut state = match first {
        Some(state) => state,
        None => match store.read(id, false).await? {
            Some(state) => state,
            None => return Ok(None),
        },
    };
    let mut conflicts = 0;
    for _ in 0..MAX_ATTEMPTS {
        let plan = plan(&state, change);
        let decided = |before, after| Decided {
            outcome: plan.outcome,
            at: plan.at,
            before,
            after,
            conflicts,
        };
        let Some(next) = plan.next else {
            return Ok(Some(decided(state.clone(), state)));
        };
        let outcome = store.write(id, &state, &next).await?;
        if outcome == CasOutcome::Applied {
            return Ok(Some(decided(state, next)));
        }
        let Some(now) = store.read(id, true).await? else {
            return Err(StoreError::Corrupt(format!(
                "message {id} vanished during a transition"
            )));
        };
        // A timed-out round that went through after all left exactly what
        // was proposed, version included: that write is this one.
        if outcome == CasOutcome::Unknown && now == next {
            return Ok(Some(decided(state, next)));
        }
        conflicts += 1;
        metrics::counter!("chat4all_store_transition_conflicts_total").increment(1);
        tracing::debug!(%id, conflicts, "transition lost a race; deciding again");
        state = now;
    }
    Err(StoreError::Unavailable(format!(
        "message {id}: {MAX_ATTEMPTS} conflicting writes in a row; retry"
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use chat4all_domain::DeliveryStatus::{Accepted, Delivered, Failed, Read, Routed, Sent};
    use chat4all_domain::{DeliveryStatus, Timeline};
    use chat4all_proto::v1 as pb;

    use super::*;
    use chat4all_store::MessageRef;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_700_000_000 + secs)
    }

    fn accepted() -> State {
        let mut timeline = Timeline::default();
        timeline.set(Accepted, t(0));
        State {
            delivery: DeliveryState {
                status: Accepted,
                timeline,
                failure: None,
                platform_message_id: None,
            },
            version: 0,
        }
    }

    fn change(status: DeliveryStatus, secs: i64) -> StatusChange {
        StatusChange {
            message: MessageRef::Id(MessageId::generate()),
            status,
            at: t(secs),
            hop: "test".into(),
            platform_message_id: None,
            failure: None,
        }
    }

    /// One message in memory. Before each write, the next queued
    /// interference (if any) is applied first, as if another writer got
    /// there between our read and our write; `unknown` makes writes time
    /// out, after applying or not.
    struct Table {
        state: Mutex<State>,
        interfere: Mutex<VecDeque<StatusChange>>,
        unknown: Mutex<VecDeque<bool>>,
        reads: Mutex<Vec<bool>>,
        writes: Mutex<u32>,
    }

    impl Table {
        fn new(state: State) -> Self {
            Self {
                state: Mutex::new(state),
                interfere: Mutex::new(VecDeque::new()),
                unknown: Mutex::new(VecDeque::new()),
                reads: Mutex::new(Vec::new()),
                writes: Mutex::new(0),
            }
        }

        fn racing(self, changes: impl IntoIterator<Item = StatusChange>) -> Self {
            self.interfere.lock().unwrap().extend(changes);
            self
        }

        fn state(&self) -> State {
            self.state.lock().unwrap().clone()
        }
    }

    impl StateStore for Table {
        async fn read(&self, _id: MessageId, fresh: bool) -> Result<Option<State>, StoreError> {
            self.reads.lock().unwrap().push(fresh);
            Ok(Some(self.state()))
        }

        async fn write(
            &self,
            _id: MessageId,
            current: &State,
            next: &State,
        ) -> Result<CasOutcome, StoreError> {
            *self.writes.lock().unwrap() += 1;
            let mut stored = self.state.lock().unwrap();
            if let Some(other) = self.interfere.lock().unwrap().pop_front() {
                // A writer whose change decides nothing still wrote
                // something (a platform id, say): the version moves.
                *stored = plan(&stored, &other).next.unwrap_or_else(|| State {
                    version: stored.version + 1,
                    ..stored.clone()
                });
            }
            let applies = stored.version == current.version;
            if applies {
                *stored = next.clone();
            }
            Ok(match self.unknown.lock().unwrap().pop_front() {
                Some(_) => CasOutcome::Unknown,
                None if applies => CasOutcome::Applied,
                None => CasOutcome::Lost,
            })
        }
    }

    #[test]
    fn the_plan_is_the_state_machine_s() {
        let state = accepted();
        let p = plan(&state, &change(Sent, 2));
        assert_eq!((p.outcome, p.at), (TransitionOutcome::Applied, Some(t(2))));
        let next = p.next.unwrap();
        assert_eq!((next.delivery.status, next.version), (Sent, 1));
        assert_eq!(next.delivery.timeline.get(Sent), Some(t(2)));

        let p = plan(&next, &change(Sent, 5));
        assert_eq!(
            p,
            Plan {
                outcome: TransitionOutcome::Repeat,
                at: None,
                next: None
            }
        );
        let p = plan(&next, &change(Accepted, 5));
        assert_eq!(p.outcome, TransitionOutcome::Rejected);
        assert_eq!(p.next, None, "a rejection writes nothing");
        let p = plan(&next, &change(Routed, 1));
        assert_eq!((p.outcome, p.at), (TransitionOutcome::Backfilled, Some(t(1))));
        let backfilled = p.next.unwrap();
        assert_eq!(backfilled.delivery.status, Sent, "a backfill keeps the status");
        assert_eq!(backfilled.version, 2);
    }

    #[test]
    fn a_platform_id_is_recorded_once_whatever_the_decision() {
        let mut sent = change(Sent, 2);
        sent.platform_message_id = Some("wamid.1".into());
        let first = plan(&accepted(), &sent).next.unwrap();
        assert_eq!(first.delivery.platform_message_id.as_deref(), Some("wamid.1"));

        let mut again = change(Sent, 2);
        again.platform_message_id = Some("wamid.2".into());
        assert_eq!(plan(&first, &again).next, None, "the first id stays");

        // A repeat that brings the first id still records it.
        let mut without_id = first.clone();
        without_id.delivery.platform_message_id = None;
        let p = plan(&without_id, &again);
        assert_eq!(p.outcome, TransitionOutcome::Repeat);
        let next = p.next.unwrap();
        assert_eq!(next.delivery.platform_message_id.as_deref(), Some("wamid.2"));
        assert_eq!(next.version, without_id.version + 1);
        // An empty id is no id.
        let mut empty = change(Sent, 2);
        empty.platform_message_id = Some(String::new());
        assert_eq!(plan(&without_id, &empty).next, None);
    }

    #[test]
    fn failed_records_why_and_a_receipt_clears_it() {
        let failure = pb::Failure {
            code: "131026".into(),
            reason: "receiver incapable".into(),
        };
        let mut failed = change(Failed, 2);
        failed.failure = Some(failure.clone());
        let state = plan(&accepted(), &failed).next.unwrap();
        assert_eq!(state.delivery.failure, Some(failure));
        let delivered = plan(&state, &change(Delivered, 3)).next.unwrap();
        assert_eq!(delivered.delivery.status, Delivered);
        assert_eq!(delivered.delivery.failure, None);
    }

    #[tokio::test]
    async fn an_unraced_change_writes_once() {
        let table = Table::new(accepted());
        let id = MessageId::generate();
        let d = apply(&table, id, None, &change(Routed, 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.outcome, d.at, d.conflicts),
            (TransitionOutcome::Applied, Some(t(1)), 0)
        );
        assert_eq!(d.before.delivery.status, Accepted);
        assert_eq!(d.after, table.state());
        assert_eq!(*table.writes.lock().unwrap(), 1);
        assert_eq!(*table.reads.lock().unwrap(), [false]);
    }

    #[tokio::test]
    async fn a_lost_race_is_decided_again_on_what_the_winner_left() {
        // READ lands between our read and our write of DELIVERED.
        let table = Table::new(accepted()).racing([change(Read, 5)]);
        let d = apply(&table, MessageId::generate(), None, &change(Delivered, 9))
            .await
            .unwrap()
            .unwrap();
        // Decided again: no longer an advance, a backfill clamped to READ's time.
        assert_eq!(d.outcome, TransitionOutcome::Backfilled);
        assert_eq!(d.at, Some(t(5)));
        assert_eq!(d.conflicts, 1);
        assert_eq!(d.before.delivery.status, Read);
        let stored = table.state();
        assert_eq!(stored.delivery.status, Read);
        assert_eq!(stored.delivery.timeline.get(Delivered), Some(t(5)));
        assert_eq!(stored.version, 2);
        assert_eq!(
            *table.reads.lock().unwrap(),
            [false, true],
            "the second read sees every committed transaction"
        );
    }

    #[tokio::test]
    async fn a_race_that_makes_the_change_a_repeat_writes_nothing_more() {
        let table = Table::new(accepted()).racing([change(Routed, 1)]);
        let d = apply(&table, MessageId::generate(), None, &change(Routed, 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.outcome, TransitionOutcome::Repeat);
        assert_eq!(d.before, d.after);
        assert_eq!(*table.writes.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn the_same_backfill_from_two_writers_is_timed_once() {
        let mut read = plan(&accepted(), &change(Routed, 1)).next.unwrap();
        read = plan(&read, &change(Read, 4)).next.unwrap();
        let table = Table::new(read).racing([change(Sent, 2)]);
        let d = apply(&table, MessageId::generate(), None, &change(Sent, 2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            d.outcome,
            TransitionOutcome::Rejected,
            "the other writer timed SENT"
        );
        assert_eq!(table.state().delivery.timeline.get(Sent), Some(t(2)));
    }

    #[tokio::test]
    async fn a_timed_out_write_that_went_through_counts_as_ours() {
        let table = Table::new(accepted());
        table.unknown.lock().unwrap().push_back(true);
        let d = apply(&table, MessageId::generate(), None, &change(Sent, 2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((d.outcome, d.conflicts), (TransitionOutcome::Applied, 0));
        assert_eq!(*table.writes.lock().unwrap(), 1, "not written twice");
    }

    #[tokio::test]
    async fn a_timed_out_write_that_did_not_is_decided_again() {
        let table = Table::new(accepted()).racing([change(Failed, 2)]);
        table.unknown.lock().unwrap().push_back(true);
        let d = apply(&table, MessageId::generate(), None, &change(Routed, 1))
            .await
            .unwrap()
            .unwrap();
        // FAILED got there first; ROUTED after FAILED is refused.
        assert_eq!(d.outcome, TransitionOutcome::Rejected);
        assert_eq!(d.conflicts, 1);
    }

    #[tokio::test]
    async fn endless_contention_gives_up_as_unavailable() {
        // Another writer gets in before every one of ours.
        let racers = (0..MAX_ATTEMPTS).map(|i| change(Failed, i64::from(i)));
        let table = Table::new(accepted()).racing(racers);
        let mut late = change(Routed, 1);
        late.platform_message_id = Some("x".into());
        match apply(&table, MessageId::generate(), None, &late).await {
            Err(StoreError::Unavailable(reason)) => assert!(reason.contains("conflicting"), "{reason}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(*table.writes.lock().unwrap(), MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn an_unknown_message_is_none() {
        struct Empty;
        impl StateStore for Empty {
            async fn read(&self, _: MessageId, _: bool) -> Result<Option<State>, StoreError> {
                Ok(None)
            }
            async fn write(&self, _: MessageId, _: &State, _: &State) -> Result<CasOutcome, StoreError> {
                unreachable!("nothing to write to")
            }
        }
        assert_eq!(
            apply(&Empty, MessageId::generate(), None, &change(Read, 1))
                .await
                .unwrap(),
            None
        );
    }
}
