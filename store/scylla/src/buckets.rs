//! How rows are spread over partitions, so none grows without bound.
//!
//! - A conversation's messages: one partition per conversation and week of
//!   `created_at`. A page starts in the week of its cursor (the shared
//!   [`chat4all_store::MessageCursor`] holds `created_at`, hence the week) and walks
//!   older weeks through `conversation_buckets`.
//! - Messages waiting in ACCEPTED or ROUTED: one partition per status and
//!   five minutes of `created_at`, scanned oldest first over a bounded
//!   look-back.
//! - Channel listings: a fixed number of shards per scope, picked by a
//!   hash of the id that never changes with the Rust version.
//!
//! Changing a width or the shard count moves rows: it takes a migration
//! that rewrites them, never an edit here.

use std::ops::RangeInclusive;
use std::time::Duration;

use chat4all_domain::Timestamp;

const MICROS_PER_SEC: i64 = 1_000_000;

/// A week: at one message a second, a conversation's partition holds about
/// 600,000 rows of some 60 bytes, well under the sizes Scylla warns about.
pub(super) const CONVERSATION_BUCKET: i64 = 7 * 24 * 3600 * MICROS_PER_SEC;

/// Five minutes: small enough that a drained bucket's tombstones are few to
/// scan, large enough that a day's look-back is 288 partitions.
pub(super) const PENDING_BUCKET: i64 = 5 * 60 * MICROS_PER_SEC;

/// Listing shards per scope: a million channels make partitions of some
/// 60,000 rows; a page reads all of them, so few is cheaper to read.
pub(super) const CHANNEL_SHARDS: i32 = 16;

pub(super) fn conversation_bucket(created_at: Timestamp) -> i64 {
    created_at.as_micros().div_euclid(CONVERSATION_BUCKET)
}

pub(super) fn pending_bucket(created_at: Timestamp) -> i64 {
    created_at.as_micros().div_euclid(PENDING_BUCKET)
}

/// The pending buckets that may hold messages created before
/// `created_before` and not longer than `lookback` before it, oldest first.
pub(super) fn pending_buckets(created_before: Timestamp, lookback: Duration) -> RangeInclusive<i64> {
    let lookback = i64::try_from(lookback.as_micros()).unwrap_or(i64::MAX);
    let last = created_before.as_micros().saturating_sub(1);
    let first = last.saturating_sub(lookback);
    first.div_euclid(PENDING_BUCKET)..=last.div_euclid(PENDING_BUCKET)
}

/// The listing shard of a channel: FNV-1a of its id.
pub(super) fn channel_shard(id: &str) -> i32 {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    // The remainder is below CHANNEL_SHARDS, so it fits.
    i32::try_from(hash % CHANNEL_SHARDS.unsigned_abs()).unwrap_or(0)
}

/// The listing scope of every channel, and of one vendor's.
pub(super) const ALL_CHANNELS: &str = "all";

pub(super) fn vendor_scope(vendor_name: &str) -> String {
    format!("vendor:{vendor_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_split_time_at_their_width() {
        let t = |micros| Timestamp::from_micros(micros);
        assert_eq!(conversation_bucket(t(0)), 0);
        assert_eq!(conversation_bucket(t(CONVERSATION_BUCKET - 1)), 0);
        assert_eq!(conversation_bucket(t(CONVERSATION_BUCKET)), 1);
        assert_eq!(conversation_bucket(t(-1)), -1, "before 1970 is its own week");
        assert_eq!(pending_bucket(t(PENDING_BUCKET * 3 + 5)), 3);
    }

    #[test]
    fn the_look_back_covers_exactly_its_span() {
        let before = Timestamp::from_micros(PENDING_BUCKET * 100);
        let day = Duration::from_secs(24 * 3600);
        let buckets = pending_buckets(before, day);
        // Strictly before `before`: the bucket starting at it is out.
        assert_eq!(*buckets.end(), 99);
        assert_eq!(
            buckets.clone().count(),
            289,
            "a day of 5 minutes, both ends partial"
        );
        assert!(buckets.contains(&pending_bucket(Timestamp::from_micros(
            before.as_micros() - 24 * 3600 * MICROS_PER_SEC
        ))));
        let one = pending_buckets(
            Timestamp::from_micros(PENDING_BUCKET * 7 + 10),
            Duration::from_micros(5),
        );
        assert_eq!(one, 7..=7);
        let huge = pending_buckets(Timestamp::from_micros(0), Duration::MAX);
        assert!(huge.start() < huge.end());
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed values: a change here would move every listing row.
        assert_eq!(channel_shard(""), (0x811c_9dc5_u32 % 16) as i32);
        assert_eq!(channel_shard("a"), (0xe40c_292c_u32 % 16) as i32);
        let used: std::collections::HashSet<_> = (0..1000)
            .map(|i| channel_shard(&format!("channel-{i}")))
            .collect();
        assert_eq!(used.len(), CHANNEL_SHARDS as usize);
        assert!(used.iter().all(|s| (0..CHANNEL_SHARDS).contains(s)));
    }
}
