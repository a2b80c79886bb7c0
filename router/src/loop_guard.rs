//! The per-conversation loop guard: the last line against a bounce loop (a
//! bot of ours answering a platform that echoes everything back with fresh
//! ids, which no de-duplication can recognise).
//!
//! A loop is a conversation bouncing: inbound, outbound, inbound, ... A
//! one-way burst (a campaign, a chatty user) is not one. So the guard
//! counts *bounces*, messages whose direction differs from the one before,
//! in a sliding window; past `max_bounces` within `window` the conversation
//! is held for `hold`: outbound messages to it fail with `loop_guard`
//! instead of reaching the platform, which starves the loop. Inbound
//! messages are still stored (a person's words are never dropped).
//!
//! # One key, one replica
//!
//! Both directions count under the *vendor key*, `platform:id` ([`vendor_key`]):
//! an inbound message's platform and vendor channel id, an outbound
//! message's recipient (a reply to a channel is addressed to the channel's
//! `vendor.name:vendor.channel_id`, so it is the same key). The state is in
//! memory, per router replica, and still sees a whole loop with N replicas
//! because both directions of a vendor key reach the same replica:
//! `messages` (the api-gateway) and `inbound` (the sidecars) are keyed by
//! that same vendor key, so with the same partition count and the same
//! partitioner a key lands on partition *i* of both topics; and the router
//! group uses the range assignor, which hands partition *i* of every topic
//! its members share to the same member (pinned in
//! `kafka/tests/co_partitioned.rs`). A rebalance moves a key's partitions
//! together; the new owner starts counting afresh, so the guard then trips
//! one window later, not never.
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chat4all_domain::Platform;
use tokio::time::Instant;

/// The key a conversation is guarded under, the same for both directions:
/// `platform:id`, as the sidecars key `inbound` and the gateway keys
/// `messages`.
pub fn vendor_key(platform: Platform, id: &str) -> String {
    format!("{}:{id}", platform.as_str())
}

/// When a conversation counts as looping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopGuardConfig {
    /// Bounces (direction changes) a conversation may make within `window`.
    pub max_bounces: usize,
    pub window: Duration,
    /// How long a tripped conversation is held.
    pub hold: Duration,
}

impl Default for LoopGuardConfig {
    fn default() -> Self {
        Self {
            max_bounces: 20,
            window: Duration::from_secs(10),
            hold: Duration::from_secs(60),
        }
    }
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A platform user wrote it.
    Inbound,
    /// We send it.
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Held: do not send.
    Hold,
}

#[derive(Debug, Default)]
struct Conversation {
    last: Option<Direction>,
    /// When each bounce in the window happened.
    bounces: VecDeque<Instant>,
    held_until: Option<Instant>,
}

#[derive(Debug)]
pub struct LoopGuard {
    config: LoopGuardConfig,
    conversations: Mutex<HashMap<String, Conversation>>,
}

impl LoopGuard {
    pub fn new(config: LoopGuardConfig) -> Self {
        Self {
            config,
            conversations: Mutex::default(),
        }
    }

    /// Counts one message of `conversation` and says whether it is held.
    pub fn observe(&self, conversation: &str, direction: Direction) -> Verdict {
        let now = Instant::now();
        let window = self.config.window;
        let mut all = self.conversations.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget quiet conversations now and then, so the map stays small.
        if all.len() > 10_000 {
            all.retain(|_, c| {
                c.held_until.is_some_and(|h| h > now) || c.bounces.back().is_some_and(|t| now - *t < window)
            });
        }
        let entry = all.entry(conversation.to_owned()).or_default();
        let bounced = entry.last.is_some_and(|last| last != direction);
        entry.last = Some(direction);
        while entry.bounces.front().is_some_and(|t| now - *t > window) {
            entry.bounces.pop_front();
        }
        if let Some(until) = entry.held_until {
            if until > now {
                return Verdict::Hold;
            }
            entry.held_until = None;
            entry.bounces.clear();
        }
        if bounced {
            entry.bounces.push_back(now);
        }
        if entry.bounces.len() > self.config.max_bounces {
            entry.held_until = Some(now + self.config.hold);
            metrics::counter!("chat4all_loop_guard_trips_total").increment(1);
            tracing::warn!(
                conversation,
                bounces = entry.bounces.len(),
                window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                "loop guard tripped: conversation held"
            );
            return Verdict::Hold;
        }
        Verdict::Pass
    }

    /// Conversations held now (for the gauge and health).
    pub fn held(&self) -> usize {
        let now = Instant::now();
        let all = self.conversations.lock().unwrap_or_else(PoisonError::into_inner);
        all.values()
            .filter(|c| c.held_until.is_some_and(|h| h > now))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Inbound, Outbound};

    fn guard() -> LoopGuard {
        LoopGuard::new(LoopGuardConfig {
            max_bounces: 3,
            window: Duration::from_secs(10),
            hold: Duration::from_secs(60),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_bounce_trips_holds_then_lets_go() {
        let g = guard();
        // in, out, in, out: three bounces are allowed.
        for direction in [Inbound, Outbound, Inbound, Outbound] {
            assert_eq!(g.observe("c", direction), Verdict::Pass);
        }
        assert_eq!(
            g.observe("other", Outbound),
            Verdict::Pass,
            "other conversations are unaffected"
        );
        assert_eq!(g.observe("c", Inbound), Verdict::Hold, "the fourth bounce trips");
        assert_eq!(g.held(), 1);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(g.observe("c", Outbound), Verdict::Hold, "still held");
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(g.observe("c", Outbound), Verdict::Pass, "released after the hold");
        assert_eq!(g.held(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_one_way_burst_is_no_loop() {
        let g = guard();
        for _ in 0..100 {
            assert_eq!(g.observe("campaign", Outbound), Verdict::Pass);
        }
        for _ in 0..100 {
            assert_eq!(g.observe("chatty user", Inbound), Verdict::Pass);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_conversation_never_trips() {
        let g = guard();
        for i in 0..20 {
            let direction = if i % 2 == 0 { Inbound } else { Outbound };
            assert_eq!(g.observe("c", direction), Verdict::Pass);
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
    }
}
