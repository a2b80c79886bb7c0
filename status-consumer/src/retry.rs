//! What becomes of a status update whose message the store does not know
//! yet: it is put back, never dropped.
//!
//! A receipt may legitimately arrive before its message is visible: a
//! store replica that has not caught up, a webhook faster than the
//! sidecar's SENT, a Meta receipt found only by its platform id (out of
//! order, before the echo that names it). So a not-found update is
//! produced to the retry lane, `status-updates.retry` (same key, same
//! headers), with `retry-attempt` and `retry-not-before`, with backoff
//! doubling from the first delay, and only after the last attempt goes to
//! the dead-letter topic with the reason.
//!
//! Why a topic and not a wait in the batch handler or an in-memory set:
//! the batch's offsets are committed once the handler returns, so an
//! in-memory set loses the update on a crash, and a wait in the handler
//! holds every partition of the member for the whole backoff. Why a lane
//! of its own and not the tail of `status-updates`: there, a put-back
//! update not yet due held up every update behind it, and with receipts
//! put back all the time (every out-of-order Meta receipt) the partitions
//! spent their time waiting; an echo behind them missed its window and the
//! message was sent twice. On the retry lane only put-back updates wait,
//! each at most for those ahead of it, and any replica can take them up.

use std::time::Duration;

use chat4all_kafka::RecordHeaders;

/// How often and how patiently a not-found update is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first; 0 dead-letters at once.
    pub attempts: u32,
    /// The first delay; each further one doubles it.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    /// 1 + 2 + … + 64 s: about two minutes in all, past the longest a
    /// message's SENT may follow its receipt: a sidecar dies holding its
    /// claim (the lease, a minute) and the next one settles the call
    /// through the echo (its window, 20 s). Half a minute dead-lettered
    /// receipts of messages that reached SENT after all.
    fn default() -> Self {
        Self {
            attempts: 7,
            first_delay: Duration::from_secs(1),
        }
    }
}

/// What to do with a not-found update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Put it back as attempt `attempt`, due after `delay`.
    Retry { attempt: u32, delay: Duration },
    /// Dead-letter it with this reason.
    GiveUp { reason: String },
}

impl RetryPolicy {
    /// What follows a not-found update that has been tried `done` times
    /// after its first (0 for a record as first produced).
    pub(crate) fn after(&self, done: u32) -> Next {
        if done >= self.attempts {
            return Next::GiveUp {
                reason: format!(
                    "message not found after {} retries over {:?}",
                    done,
                    self.total_delay(done)
                ),
            };
        }
        Next::Retry {
            attempt: done + 1,
            delay: self.delay(done + 1),
        }
    }

    /// The delay before attempt `attempt` (1-based).
    fn delay(&self, attempt: u32) -> Duration {
        self.first_delay
            .saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX))
    }

    /// The longest a due record may still be waited for: a clock skewed
    /// between replicas must not stall a member for longer than that.
    pub(crate) fn longest_delay(&self) -> Duration {
        self.delay(self.attempts.max(1))
    }

    fn total_delay(&self, attempts: u32) -> Duration {
        (1..=attempts).map(|a| self.delay(a)).sum()
    }
}

/// The headers of a record put back as `attempt`, due at `now_ms + delay`.
pub(crate) fn put_back(headers: &RecordHeaders, attempt: u32, delay: Duration, now_ms: i64) -> RecordHeaders {
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    RecordHeaders {
        retry_attempt: Some(attempt),
        retry_not_before: Some(now_ms.saturating_add(delay_ms)),
        ..headers.clone()
    }
}

/// How long to wait before the batch is due: until its latest
/// `retry-not-before`, at most `longest`.
pub(crate) fn wait_before<'a>(
    headers: impl IntoIterator<Item = &'a RecordHeaders>,
    now_ms: i64,
    longest: Duration,
) -> Duration {
    let latest = headers
        .into_iter()
        .filter_map(|h| h.retry_not_before)
        .max()
        .unwrap_or(now_ms);
    let wait = u64::try_from(latest.saturating_sub(now_ms)).unwrap_or(0);
    Duration::from_millis(wait).min(longest)
}

/// Now in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_doubling_then_gives_up_with_a_reason() {
        let policy = RetryPolicy {
            attempts: 5,
            ..RetryPolicy::default()
        };
        let delays: Vec<Next> = (0..=5).map(|done| policy.after(done)).collect();
        let secs = Duration::from_secs;
        assert_eq!(
            &delays[..5],
            &[
                Next::Retry {
                    attempt: 1,
                    delay: secs(1)
                },
                Next::Retry {
                    attempt: 2,
                    delay: secs(2)
                },
                Next::Retry {
                    attempt: 3,
                    delay: secs(4)
                },
                Next::Retry {
                    attempt: 4,
                    delay: secs(8)
                },
                Next::Retry {
                    attempt: 5,
                    delay: secs(16)
                },
            ]
        );
        assert_eq!(
            delays[5],
            Next::GiveUp {
                reason: "message not found after 5 retries over 31s".into()
            }
        );
        assert_eq!(policy.longest_delay(), secs(16));
        let none = RetryPolicy {
            attempts: 0,
            ..policy
        };
        assert!(matches!(none.after(0), Next::GiveUp { .. }));
        assert_eq!(
            RetryPolicy::default().longest_delay(),
            secs(64),
            "the default waits about two minutes in all"
        );
    }

    #[test]
    fn a_put_back_record_keeps_its_trace_and_says_when_it_is_due() {
        let original = RecordHeaders::new(Some("tp".into()), Some("m-1".into()));
        let back = put_back(&original, 2, Duration::from_millis(1500), 10_000);
        assert_eq!(back.retry_attempt, Some(2));
        assert_eq!(back.retry_not_before, Some(11_500));
        assert_eq!(
            (back.traceparent, back.message_id),
            (original.traceparent, original.message_id)
        );
    }

    #[test]
    fn waits_for_the_latest_due_record_but_never_past_the_longest_delay() {
        let due = |at| RecordHeaders {
            retry_not_before: Some(at),
            ..RecordHeaders::default()
        };
        let longest = Duration::from_secs(16);
        let fresh = RecordHeaders::default();
        assert_eq!(wait_before([&fresh], 1_000, longest), Duration::ZERO);
        assert_eq!(
            wait_before([&fresh, &due(1_400), &due(1_200)], 1_000, longest),
            Duration::from_millis(400)
        );
        assert_eq!(
            wait_before([&due(500)], 1_000, longest),
            Duration::ZERO,
            "overdue"
        );
        assert_eq!(
            wait_before([&due(i64::MAX)], 0, longest),
            longest,
            "a skewed clock"
        );
    }
}
