//! How often the reconciler may re-publish one message.
//!
//! A message stays ACCEPTED in the store until the router's ROUTED is
//! applied, and ROUTED travels through the status pipeline. When that
//! pipeline lags by more than the reconciler's `after`, every round finds
//! the same messages stuck and re-publishes them all again, and each copy
//! comes back as one more ROUTED for the lagging pipeline: the lag feeds
//! itself (the chaos test saw twenty status updates per message). So one
//! message is re-published at most once per `after`, the pause doubling
//! with each re-publish up to [`LONGEST`]; a message no longer stuck is
//! forgotten. The memory is the lease holder's own: a new holder starts
//! afresh, which costs at most one round of repeats.

use std::collections::HashMap;
use std::time::Duration;

use chat4all_domain::MessageId;
use tokio::time::Instant;

/// The longest pause between two re-publishes of one message.
const LONGEST: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub(crate) struct RepublishPace {
    /// Per message: when it may go again, and the pause after that.
    next: HashMap<MessageId, (Instant, Duration)>,
}

impl RepublishPace {
    /// Of this round's stuck messages, those due for a re-publish (each
    /// then waits before the next); forgets every message not stuck now.
    pub(crate) fn due(&mut self, stuck: &[MessageId], after: Duration, now: Instant) -> Vec<MessageId> {
        self.next.retain(|id, _| stuck.contains(id));
        stuck
            .iter()
            .filter(|id| {
                let (at, pause) = self
                    .next
                    .entry(**id)
                    .or_insert((now, after.max(Duration::from_secs(1))));
                if now < *at {
                    return false;
                }
                *at = now + *pause;
                *pause = (*pause * 2).min(LONGEST);
                true
            })
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_goes_again_only_after_a_doubling_pause_and_is_forgotten_once_moved_on() {
        let mut pace = RepublishPace::default();
        let (a, b) = (MessageId::generate(), MessageId::generate());
        let after = Duration::from_secs(2);
        let t0 = Instant::now();
        assert_eq!(pace.due(&[a], after, t0), [a]);
        assert!(pace.due(&[a], after, t0 + Duration::from_millis(500)).is_empty());
        assert_eq!(pace.due(&[a, b], after, t0 + Duration::from_secs(2)), [a, b]);
        // a's pause is now 4 s; b's first is 2 s.
        assert_eq!(pace.due(&[a, b], after, t0 + Duration::from_secs(4)), [b]);
        assert_eq!(pace.due(&[a, b], after, t0 + Duration::from_secs(6)), [a]);
        // a moved on: forgotten, so stuck again it goes at once.
        assert!(pace.due(&[b], after, t0 + Duration::from_secs(7)).is_empty());
        assert_eq!(pace.due(&[a], after, t0 + Duration::from_secs(7)), [a]);
    }
}
