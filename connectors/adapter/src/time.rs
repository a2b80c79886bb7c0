//! Platform timestamps in whole seconds (WhatsApp statuses, Telegram dates)
//! made as precise as honesty allows.
//!
//! An event stamped second `s` happened in `[s, s+1)` and before its webhook
//! arrived. When the arrival falls inside that second, the arrival time is a
//! tighter truth than `s` itself; otherwise (clock skew, a late redelivery)
//! the platform's second stands. Without this every receipt of a fast
//! delivery would read as earlier than the send it follows.

use std::time::{SystemTime, UNIX_EPOCH};

use chat4all_proto::Timestamp;

/// The time of an event the platform stamped `seconds`, whose webhook
/// arrived at `received`.
pub fn refine_whole_seconds(seconds: i64, received: SystemTime) -> Timestamp {
    let whole = Timestamp { seconds, nanos: 0 };
    let Ok(since_epoch) = received.duration_since(UNIX_EPOCH) else {
        return whole;
    };
    match i64::try_from(since_epoch.as_secs()) {
        Ok(arrival_second) if arrival_second == seconds => Timestamp {
            seconds,
            nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
        },
        _ => whole,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn arrival_within_the_stamped_second_refines_it_and_nothing_else_does() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(
            refine_whole_seconds(100, at(100, 250)),
            Timestamp {
                seconds: 100,
                nanos: 250_000_000
            }
        );
        assert_eq!(
            refine_whole_seconds(100, at(101, 10)),
            Timestamp {
                seconds: 100,
                nanos: 0
            }
        );
        assert_eq!(
            refine_whole_seconds(100, at(99, 900)),
            Timestamp {
                seconds: 100,
                nanos: 0
            }
        );
    }
}
