//! The delivery-state machine, the one place its rules live.
//!
//! `ACCEPTED → ROUTED → SENT → DELIVERED → READ`, and `FAILED` from any state
//! before DELIVERED.
//!
//! - Forward jumps are allowed: receipts arrive out of order, and WhatsApp
//!   sends `read` without `delivered` when both happen at once.
//! - A repeat is an idempotent no-op: Kafka redelivers, platforms resend
//!   webhooks.
//! - A backward move never changes the status. When the state it names was
//!   jumped over, its timestamp is still news (the late `delivered` after a
//!   `read`), so it is recorded: a *backfill*. Otherwise it is rejected.
//! - DELIVERED or READ after FAILED supersedes it: a second device got it.
//!
//! Timestamps along the way are kept non-decreasing: platforms report whole
//! seconds, so a receipt may claim a time before the send it follows. A
//! state's time is clamped into the span its neighbours allow.

use crate::{DeliveryStatus, Timestamp};

/// What to do with a status update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Move to the new status, reached at the given time.
    Advance(Timestamp),
    /// Already there: change nothing.
    Repeat,
    /// Keep the status; record that the skipped state was reached then.
    Backfill(Timestamp),
    /// Keep everything as it is.
    Reject,
}

/// The time each state was reached, when it was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline([Option<Timestamp>; 6]);

impl Timeline {
    pub fn get(&self, status: DeliveryStatus) -> Option<Timestamp> {
        self.0[status.index()]
    }

    pub fn set(&mut self, status: DeliveryStatus, at: Timestamp) {
        self.0[status.index()] = Some(at);
    }

    /// The states reached, in state order (FAILED last).
    pub fn reached(&self) -> impl Iterator<Item = (DeliveryStatus, Timestamp)> + '_ {
        DeliveryStatus::ALL
            .into_iter()
            .filter_map(|s| self.get(s).map(|at| (s, at)))
    }

    /// The latest time of a state on the way that ranks below `rank`.
    fn floor(&self, rank: u8) -> Option<Timestamp> {
        DeliveryStatus::ALL
            .into_iter()
            .filter(|s| s.rank().is_some_and(|r| r < rank))
            .filter_map(|s| self.get(s))
            .max()
    }

    /// The earliest time of a state on the way that ranks above `rank`.
    fn ceiling(&self, rank: u8) -> Option<Timestamp> {
        DeliveryStatus::ALL
            .into_iter()
            .filter(|s| s.rank().is_some_and(|r| r > rank))
            .filter_map(|s| self.get(s))
            .min()
    }
}

/// Decides what an update to `new`, reached at `at`, does to a message now
/// in `current` with the given timeline.
pub fn decide(current: DeliveryStatus, timeline: &Timeline, new: DeliveryStatus, at: Timestamp) -> Decision {
    use DeliveryStatus::{Delivered, Read};

    if new == current {
        return Decision::Repeat;
    }
    match (current.rank(), new.rank()) {
        // FAILED from any state before DELIVERED.
        (Some(from), None) => {
            if from < Delivered.rank().unwrap_or(u8::MAX) {
                Decision::Advance(at.max(timeline.floor(u8::MAX).unwrap_or(at)))
            } else {
                Decision::Reject
            }
        }
        // After FAILED only a receipt from the platform supersedes it.
        (None, Some(to)) => {
            if matches!(new, Delivered | Read) {
                Decision::Advance(clamp_above(timeline, to, at))
            } else {
                Decision::Reject
            }
        }
        (Some(from), Some(to)) if to > from => Decision::Advance(clamp_above(timeline, to, at)),
        (Some(_), Some(to)) => match timeline.get(new) {
            None => {
                let at = clamp_above(timeline, to, at);
                Decision::Backfill(timeline.ceiling(to).map_or(at, |c| at.min(c)))
            }
            Some(_) => Decision::Reject,
        },
        // Both FAILED is the repeat above.
        (None, None) => Decision::Repeat,
    }
}

fn clamp_above(timeline: &Timeline, rank: u8, at: Timestamp) -> Timestamp {
    timeline.floor(rank).map_or(at, |floor| at.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryStatus::*;

    const T0: i64 = 1_000_000;

    /// A message that went the normal way up to `current`, one second a state.
    fn reached(current: DeliveryStatus) -> Timeline {
        let mut t = Timeline::default();
        let way = [Accepted, Routed, Sent, Delivered, Read];
        let upto = match current {
            Failed => 2, // failed after ROUTED
            s => way.iter().position(|w| *w == s).unwrap_or(0) + 1,
        };
        for (i, s) in way.iter().take(upto).enumerate() {
            t.set(*s, Timestamp::from_micros(T0 * (i as i64 + 1)));
        }
        if current == Failed {
            t.set(Failed, Timestamp::from_micros(T0 * 3));
        }
        t
    }

    /// Every pair of states, what the machine must answer.
    #[test]
    fn every_pair_of_states() {
        #[derive(Debug, PartialEq)]
        enum Want {
            Advance,
            Repeat,
            Backfill,
            Reject,
        }
        use Want as W;
        let table: [(DeliveryStatus, [Want; 6]); 6] = [
            //            to: Accepted,  Routed,     Sent,       Delivered,  Read,       Failed
            (
                Accepted,
                [
                    W::Repeat,
                    W::Advance,
                    W::Advance,
                    W::Advance,
                    W::Advance,
                    W::Advance,
                ],
            ),
            (
                Routed,
                [
                    W::Reject,
                    W::Repeat,
                    W::Advance,
                    W::Advance,
                    W::Advance,
                    W::Advance,
                ],
            ),
            (
                Sent,
                [
                    W::Reject,
                    W::Reject,
                    W::Repeat,
                    W::Advance,
                    W::Advance,
                    W::Advance,
                ],
            ),
            (
                Delivered,
                [W::Reject, W::Reject, W::Reject, W::Repeat, W::Advance, W::Reject],
            ),
            (
                Read,
                [W::Reject, W::Reject, W::Reject, W::Reject, W::Repeat, W::Reject],
            ),
            (
                Failed,
                [W::Reject, W::Reject, W::Reject, W::Advance, W::Advance, W::Repeat],
            ),
        ];
        let late = Timestamp::from_micros(T0 * 10);
        for (from, row) in table {
            for (to, want) in DeliveryStatus::ALL.into_iter().zip(row) {
                let got = match decide(from, &reached(from), to, late) {
                    Decision::Advance(_) => W::Advance,
                    Decision::Repeat => W::Repeat,
                    Decision::Backfill(_) => W::Backfill,
                    Decision::Reject => W::Reject,
                };
                assert_eq!(got, want, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_jumped_over_state_is_backfilled_once_within_its_neighbours() {
        // ROUTED then READ at once (WhatsApp skips delivered).
        let mut t = reached(Routed);
        let read_at = Timestamp::from_micros(T0 * 5);
        assert_eq!(decide(Routed, &t, Read, read_at), Decision::Advance(read_at));
        t.set(Read, read_at);
        // The late DELIVERED claims a time after READ: clamped to READ's.
        assert_eq!(
            decide(Read, &t, Delivered, Timestamp::from_micros(T0 * 9)),
            Decision::Backfill(read_at)
        );
        // A late SENT claiming a time before ROUTED is lifted to ROUTED's.
        assert_eq!(
            decide(Read, &t, Sent, Timestamp::from_micros(1)),
            Decision::Backfill(Timestamp::from_micros(T0 * 2))
        );
        t.set(Delivered, read_at);
        assert_eq!(decide(Read, &t, Delivered, read_at), Decision::Reject);
    }

    #[test]
    fn a_receipt_in_whole_seconds_never_precedes_the_state_before_it() {
        let t = reached(Sent);
        let coarse = Timestamp::from_micros(T0 * 3 - 500);
        assert_eq!(
            decide(Sent, &t, Delivered, coarse),
            Decision::Advance(Timestamp::from_micros(T0 * 3))
        );
    }

    #[test]
    fn delivered_after_failed_supersedes_it() {
        let t = reached(Failed);
        let at = Timestamp::from_micros(T0 * 7);
        assert_eq!(decide(Failed, &t, Delivered, at), Decision::Advance(at));
        assert_eq!(decide(Failed, &t, Sent, at), Decision::Reject);
    }
}
