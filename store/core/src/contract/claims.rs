//! Claims for the one platform call, and the reconciler's look-up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_domain::{DeliveryStatus, MessageId, Timestamp};
use chat4all_proto::v1 as pb;

use super::support::*;
use crate::{ClaimOutcome, NewMessage, PlatformAnswer, SharedStore};

/// Longer than any check runs.
const LEASE: Duration = Duration::from_secs(120);
/// Short enough to wait out.
const SHORT: Duration = Duration::from_millis(400);

async fn outlive_short_leases() {
    tokio::time::sleep(SHORT + Duration::from_millis(250)).await;
}

/// A released claim can be taken again; only its holder releases it.
pub async fn released_claims_are_claimable_again(store: SharedStore) {
    let conv = conversation("release");
    let a = message_id(&put(&store, new_message(&conv, "a")).await);
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-1", LEASE).await.unwrap(),
        [ClaimOutcome::Claimed]
    );
    store.release_claims(&[a], "sidecar-2").await.unwrap();
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-2", LEASE).await.unwrap(),
        [ClaimOutcome::AlreadyClaimed]
    );
    store
        .release_claims(&[a, MessageId::generate()], "sidecar-1")
        .await
        .unwrap();
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-2", LEASE).await.unwrap(),
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
        store
            .claim_for_send(&[a, unknown], "sidecar-1", LEASE)
            .await
            .unwrap(),
        [ClaimOutcome::Claimed, ClaimOutcome::NotFound]
    );
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-2", LEASE).await.unwrap(),
        [ClaimOutcome::AlreadyClaimed]
    );
    assert_eq!(
        store.claim_for_send(&[a], "sidecar-1", LEASE).await.unwrap(),
        [ClaimOutcome::AlreadyClaimed]
    );
    assert!(
        store
            .claim_for_send(&[], "sidecar-1", LEASE)
            .await
            .unwrap()
            .is_empty()
    );

    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_for_send(&[b], &format!("sidecar-{i}"), LEASE)
                    .await
                    .unwrap()
            })
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
    store
        .claim_for_send(&[claimed], "sidecar-a", LEASE)
        .await
        .unwrap();

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

/// A claim whose lease ran out is taken over, and the taker learns what the
/// holder left: an answer (announce it), a call in flight (the platform may
/// have acted), or nothing (call). A live lease keeps everyone else out,
/// and a holder that lost its claim cannot renew it.
pub async fn expired_claims_tell_what_their_holder_left(store: SharedStore) {
    let conv = conversation("lease");
    let calling = message_id(&put(&store, new_message(&conv, "calling")).await);
    let idle = message_id(&put(&store, new_message(&conv, "idle")).await);
    let answered = message_id(&put(&store, new_message(&conv, "answered")).await);
    let claims = store
        .claim_for_send(&[calling, idle, answered], "dying", SHORT)
        .await
        .unwrap();
    assert_eq!(claims, vec![ClaimOutcome::Claimed; 3]);
    // Between attempts, after a call the platform refused for now.
    assert!(store.renew_claim(idle, "dying", SHORT, false).await.unwrap());
    assert!(!store.renew_claim(idle, "other", SHORT, false).await.unwrap());
    let answer = PlatformAnswer {
        platform_message_id: "wamid.lease".into(),
        at: Timestamp::from_micros(t(5).as_micros() + 123),
    };
    store.record_answer(answered, &answer).await.unwrap();
    assert_eq!(
        store
            .claim_for_send(&[calling, idle, answered], "taker", LEASE)
            .await
            .unwrap(),
        vec![ClaimOutcome::AlreadyClaimed; 3],
        "live leases keep others out"
    );

    outlive_short_leases().await;
    assert_eq!(
        store
            .claim_for_send(&[calling, idle, answered], "taker", LEASE)
            .await
            .unwrap(),
        [
            ClaimOutcome::Uncertain,
            ClaimOutcome::Claimed,
            ClaimOutcome::Answered(answer.clone())
        ]
    );
    assert!(
        !store.renew_claim(calling, "dying", LEASE, true).await.unwrap(),
        "the claim moved on"
    );
    assert!(store.renew_claim(calling, "taker", LEASE, true).await.unwrap());
    assert_eq!(
        store
            .claim_for_send(&[calling, idle], "third", LEASE)
            .await
            .unwrap(),
        vec![ClaimOutcome::AlreadyClaimed; 2],
        "the taker holds them now"
    );
    assert!(
        !store
            .renew_claim(MessageId::generate(), "taker", LEASE, true)
            .await
            .unwrap()
    );
}

/// A ROUTED message whose claim expired is stuck again: its holder died
/// before the status was announced.
pub async fn expired_claims_are_stuck_again(store: SharedStore) {
    let conv = conversation("expired");
    let old = NewMessage {
        created_at: t(-60),
        ..new_message(&conv, "expired")
    };
    let expired = message_id(&put(&store, old.clone()).await);
    let live = message_id(
        &put(
            &store,
            NewMessage {
                id: MessageId::generate(),
                ..old
            },
        )
        .await,
    );
    store
        .apply_transitions(vec![
            change(expired, DeliveryStatus::Routed, -59, "router"),
            change(live, DeliveryStatus::Routed, -59, "router"),
        ])
        .await
        .unwrap();
    store.claim_for_send(&[expired], "gone", SHORT).await.unwrap();
    store.claim_for_send(&[live], "alive", LEASE).await.unwrap();
    outlive_short_leases().await;
    let stuck: Vec<MessageId> = store
        .stuck_messages(DeliveryStatus::Routed, t(-10), 500)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.conversation_id == conv.as_str())
        .map(message_id)
        .collect();
    assert_eq!(stuck, [expired]);
}

/// A named lease has one holder at a time; its holder keeps it by taking
/// it again, and anyone takes it once it ran out.
pub async fn named_leases_have_one_holder(store: SharedStore) {
    let name = format!("contract-{}", MessageId::generate());
    assert!(store.acquire_lease(&name, "gateway-0", SHORT).await.unwrap());
    assert!(!store.acquire_lease(&name, "gateway-1", SHORT).await.unwrap());
    assert!(store.acquire_lease(&name, "gateway-0", SHORT).await.unwrap());
    outlive_short_leases().await;
    assert!(store.acquire_lease(&name, "gateway-1", LEASE).await.unwrap());
    assert!(!store.acquire_lease(&name, "gateway-0", SHORT).await.unwrap());
    assert!(store.acquire_lease(&name, "gateway-1", LEASE).await.unwrap());
}

/// A watermark covers the messages to its recipient SENT at or before it
/// and still short of its status; not later ones, not other recipients',
/// not those already there.
pub async fn watermarks_cover_what_was_sent_before_them(store: SharedStore) {
    let conv = conversation("watermark");
    let recipient: chat4all_domain::Recipient =
        format!("messenger:{}", MessageId::generate()).parse().unwrap();
    let to = |text: &str| NewMessage {
        recipient: recipient.clone(),
        ..new_message(&conv, text)
    };
    let early = message_id(&put(&store, to("early")).await);
    let delivered = message_id(&put(&store, to("delivered")).await);
    let late = message_id(&put(&store, to("late")).await);
    let routed = message_id(&put(&store, to("routed")).await);
    let elsewhere = message_id(&put(&store, new_message(&conv, "other recipient")).await);
    store
        .apply_transitions(vec![
            change(early, DeliveryStatus::Sent, 10, "sidecar"),
            change(delivered, DeliveryStatus::Sent, 11, "sidecar"),
            change(delivered, DeliveryStatus::Delivered, 12, "webhook"),
            change(late, DeliveryStatus::Sent, 30, "sidecar"),
            change(routed, DeliveryStatus::Routed, 5, "router"),
            change(elsewhere, DeliveryStatus::Sent, 10, "sidecar"),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .awaiting_receipt(&recipient, t(20), DeliveryStatus::Delivered, 100)
            .await
            .unwrap(),
        [early]
    );
    assert_eq!(
        store
            .awaiting_receipt(&recipient, t(20), DeliveryStatus::Read, 100)
            .await
            .unwrap(),
        [early, delivered]
    );
    assert_eq!(
        store
            .awaiting_receipt(&recipient, t(30), DeliveryStatus::Read, 100)
            .await
            .unwrap(),
        [early, delivered, late]
    );
    store
        .apply_transitions(vec![change(early, DeliveryStatus::Read, 40, "webhook")])
        .await
        .unwrap();
    assert_eq!(
        store
            .awaiting_receipt(&recipient, t(30), DeliveryStatus::Read, 1)
            .await
            .unwrap(),
        [delivered],
        "READ is no longer awaited; the limit holds"
    );
}

/// The latest watermark of each status is kept, per recipient.
pub async fn watermarks_keep_the_latest(store: SharedStore) {
    let recipient: chat4all_domain::Recipient =
        format!("messenger:{}", MessageId::generate()).parse().unwrap();
    let other: chat4all_domain::Recipient = format!("messenger:{}", MessageId::generate()).parse().unwrap();
    assert_eq!(
        store.watermark(&recipient, DeliveryStatus::Read).await.unwrap(),
        None
    );
    for secs in [20, 10, 30, 25] {
        store
            .record_watermark(&recipient, DeliveryStatus::Read, t(secs))
            .await
            .unwrap();
    }
    store
        .record_watermark(&recipient, DeliveryStatus::Delivered, t(40))
        .await
        .unwrap();
    assert_eq!(
        store.watermark(&recipient, DeliveryStatus::Read).await.unwrap(),
        Some(t(30))
    );
    assert_eq!(
        store
            .watermark(&recipient, DeliveryStatus::Delivered)
            .await
            .unwrap(),
        Some(t(40))
    );
    assert_eq!(store.watermark(&other, DeliveryStatus::Read).await.unwrap(), None);
}
