//! What the checks share: fixed times, fresh conversations, short
//! helpers over the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chat4all_domain::convert::timeline_from_proto;
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Timeline, Timestamp};
use chat4all_proto::v1 as pb;

use crate::{
    MessageRef, NewMessage, PutOutcome, SharedStore, StatusChange, TransitionOutcome, TransitionResult,
};

pub(super) const T0_SECS: i64 = 1_700_000_000;

/// A time `secs` after the test messages were created.
pub(super) fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(T0_SECS + secs)
}

/// A conversation no other check (or earlier run) uses.
pub(super) fn conversation(tag: &str) -> ConversationId {
    format!("contract-{tag}-{}", MessageId::generate())
        .parse()
        .unwrap()
}

pub(super) fn new_message(conversation: &ConversationId, text: &str) -> NewMessage {
    NewMessage {
        id: MessageId::generate(),
        conversation_id: conversation.clone(),
        recipient: "whatsapp:15551234567".parse().unwrap(),
        text: text.to_owned(),
        source: chat4all_domain::SOURCE_API.to_owned(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        created_at: t(0),
        idempotency_key: None,
    }
}

pub(super) fn change(id: MessageId, status: DeliveryStatus, secs: i64, hop: &str) -> StatusChange {
    StatusChange {
        message: MessageRef::Id(id),
        status,
        at: t(secs),
        hop: hop.to_owned(),
        platform_message_id: None,
        failure: None,
    }
}

pub(super) fn receipt(
    platform: Platform,
    external_id: &str,
    status: DeliveryStatus,
    secs: i64,
) -> StatusChange {
    StatusChange {
        message: MessageRef::External {
            platform,
            external_id: external_id.to_owned(),
        },
        ..change(MessageId::generate(), status, secs, "webhook")
    }
}

pub(super) async fn put(store: &SharedStore, m: NewMessage) -> pb::Message {
    let r = store.put_message(m).await.unwrap();
    assert_eq!(r.outcome, PutOutcome::Created);
    r.message
}

pub(super) async fn get(store: &SharedStore, id: MessageId) -> pb::Message {
    store
        .get_message(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("message {id} is missing"))
}

pub(super) async fn apply(store: &SharedStore, c: StatusChange) -> TransitionResult {
    let mut results = store.apply_transitions(vec![c]).await.unwrap();
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// The time an applied or backfilled result reports.
pub(super) fn assert_time(r: &TransitionResult, want: Timestamp) {
    assert_eq!(r.at, Some(want), "{r:?}");
}

pub(super) fn message_id(m: &pb::Message) -> MessageId {
    m.id.parse().unwrap()
}

pub(super) fn status(m: &pb::Message) -> DeliveryStatus {
    DeliveryStatus::from_proto(m.status).unwrap()
}

pub(super) fn timeline(m: &pb::Message) -> Timeline {
    timeline_from_proto(&m.timeline)
}

pub(super) fn states(m: &pb::Message) -> Vec<(DeliveryStatus, Timestamp)> {
    m.timeline
        .iter()
        .map(|s| {
            (
                DeliveryStatus::from_proto(s.status).unwrap(),
                Timestamp::from(s.at.unwrap()),
            )
        })
        .collect()
}

pub(super) fn history(m: &pb::Message) -> Vec<(DeliveryStatus, TransitionOutcome, String, Timestamp)> {
    m.history
        .iter()
        .map(|e| {
            (
                DeliveryStatus::from_proto(e.status).unwrap(),
                TransitionOutcome::from_proto(e.outcome).unwrap(),
                e.hop.clone(),
                Timestamp::from(e.at.unwrap()),
            )
        })
        .collect()
}

/// A deterministic shuffle (xorshift, Fisher–Yates): each seed its own order,
/// the same on every run, and no dependency on `rand`.
pub(super) fn shuffled<T, const N: usize>(mut items: [T; N], seed: u64) -> [T; N] {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..N).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    items
}

#[cfg(test)]
mod tests {
    #[test]
    fn shuffles_differ_by_seed_and_keep_every_item() {
        let orders: std::collections::HashSet<_> = (0..8).map(|s| super::shuffled([1, 2, 3, 4], s)).collect();
        assert!(orders.len() > 1);
        for mut order in orders {
            order.sort_unstable();
            assert_eq!(order, [1, 2, 3, 4]);
        }
    }
}
