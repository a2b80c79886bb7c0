//! Claims for the one platform call, and the reconciler's look-up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chat4all_domain::{DeliveryStatus, MessageId};
use chat4all_proto::v1 as pb;

use super::support::*;
use crate::{ClaimOutcome, NewMessage, SharedStore};

/// A released claim can be taken again; only its holder releases it.
pub async fn released_claims_are_claimable_again(store: SharedStore) {
    let conv = conversation("release");
    let a = message_id(&put(&store, new_message(&conv, "a")).await);
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-1").await.unwrap(),
        [ClaimOutcome::Claimed]
    );
    store.release_claims(&[a], "sidecar-2").await.unwrap();
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-2").await.unwrap(),
        [ClaimOutcome::AlreadyClaimed]
    );
    store
        .release_claims(&[a, MessageId::generate()], "sidecar-1")
        .await
        .unwrap();
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-2").await.unwrap(),
        [ClaimOutcome::Claimed]
    );
    store.release_claims(&[], "sidecar-2").await.unwrap();
}

/// The first claim wins, concurrent ones included; a redelivered record,
/// even to the same claimant, is AlreadyClaimed.
pub async fn claim_first_wins(store: SharedStore) {
    let conv = conversation("claim");
    let a = message_id(&put(&store, new_message(&conv, "a")).await);
    let b = message_id(&put(&store, new_message(&conv, "b")).await);
    let unknown = MessageId::generate();

    assert_eq!(
        store.claim_for_send(&[a, unknown], "sidecar-1").await.unwrap(),
        [ClaimOutcome::Claimed, ClaimOutcome::NotFound]
    );
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-2").await.unwrap(),
        [ClaimOutcome::AlreadyClaimed]
    );
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-1").await.unwrap(),
        [ClaimOutcome::AlreadyClaimed]
    );
    assert!(store.claim_for_send(&[], "sidecar-1").await.unwrap().is_empty());

    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_for_send(&[b], &format!("sidecar-{i}")).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.extend(racer.await.unwrap());
    }
    let claimed = outcomes.iter().filter(|o| **o == ClaimOutcome::Claimed).count();
    assert_eq!(claimed, 1, "exactly one racer wins: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ClaimOutcome::Claimed | ClaimOutcome::AlreadyClaimed))
    );
}

pub async fn stuck_messages_are_found_oldest_first(store: SharedStore) {
    let conv = conversation("stuck");
    let at = |secs| NewMessage {
        created_at: t(secs),
        ..new_message(&conv, &format!("at {secs}"))
    };
    let newer = message_id(&put(&store, at(-50)).await);
    let older = message_id(&put(&store, at(-60)).await);
    let routed = message_id(&put(&store, at(-70)).await);
    let recent = message_id(&put(&store, at(-5)).await);
    let claimed = message_id(&put(&store, at(-65)).await);
    store
        .apply_transitions(vec![
            change(routed, DeliveryStatus::Routed, -69, "router"),
            change(claimed, DeliveryStatus::Routed, -64, "router"),
        ])
        .await
        .unwrap();
    store.claim_for_send(&[claimed], "sidecar-a").await.unwrap();

    // Other checks (and earlier runs on a shared cluster) leave messages
    // too: look only at this conversation's.
    let stuck = store
        .stuck_messages(DeliveryStatus::Accepted, t(-10), 500)
        .await
        .unwrap();
    let ours = |stuck: &[pb::Message]| -> Vec<MessageId> {
        stuck
            .iter()
            .filter(|m| m.conversation_id == conv.as_str())
            .map(message_id)
            .collect()
    };
    assert_eq!(
        ours(&stuck),
        [older, newer],
        "ACCEPTED before the deadline, oldest first; not {routed} nor {recent}"
    );
    assert!(stuck.iter().all(|m| status(m) == DeliveryStatus::Accepted));
    assert!(
        store
            .stuck_messages(DeliveryStatus::Accepted, t(-10), 1)
            .await
            .unwrap()
            .len()
            <= 1
    );
    let routed_stuck = store
        .stuck_messages(DeliveryStatus::Routed, t(-10), 500)
        .await
        .unwrap();
    assert_eq!(
        ours(&routed_stuck),
        [routed],
        "ROUTED and unclaimed only: {claimed} is a sidecar's already"
    );
}
