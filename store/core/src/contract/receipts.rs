//! SENT messages waiting on a platform's receipt: found only where receipts
//! come, and marked overdue once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Recipient, Timestamp};
use chat4all_proto::v1 as pb;

use super::support::*;
use crate::{NewMessage, SharedStore, TransitionOutcome};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A message to `recipient` created `secs` after T0 and SENT a second later.
async fn sent(store: &SharedStore, conv: &ConversationId, recipient: &str, secs: i64) -> MessageId {
    let message = NewMessage {
        recipient: recipient.parse::<Recipient>().unwrap(),
        created_at: t(secs),
        ..new_message(conv, recipient)
    };
    let id = message_id(&put(store, message).await);
    store
        .apply_transitions(vec![change(id, DeliveryStatus::Sent, secs + 1, "sidecar")])
        .await
        .unwrap();
    id
}

/// The SENT messages of `conv` the reconciler would look at.
async fn sent_stuck(store: &SharedStore, conv: &ConversationId) -> Vec<MessageId> {
    store
        .stuck_messages(DeliveryStatus::Sent, t(-10), 500)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.conversation_id == conv.as_str())
        .map(message_id)
        .collect()
}

fn notes(m: &pb::Message) -> Vec<&pb::StatusHistoryEntry> {
    m.history
        .iter()
        .filter(|e| TransitionOutcome::from_proto(e.outcome) == Some(TransitionOutcome::Noted))
        .collect()
}

/// SENT is stuck only where a receipt should follow it: on Telegram and
/// Chotot it is final, and those messages would crowd out the rest.
pub async fn sent_is_stuck_only_on_platforms_with_receipts(store: SharedStore) {
    let conv = conversation("sent-stuck");
    let whatsapp = sent(&store, &conv, "whatsapp:15551230001", -60).await;
    let telegram = sent(&store, &conv, "telegram:42", -58).await;
    let messenger = sent(&store, &conv, "messenger:7001", -56).await;
    let chotot = sent(&store, &conv, "chotot:7002", -54).await;
    let instagram = sent(&store, &conv, "instagram:7003", -52).await;
    let recent = sent(&store, &conv, "whatsapp:15551230002", -5).await;
    let stuck = store
        .stuck_messages(DeliveryStatus::Sent, t(-10), 500)
        .await
        .unwrap();
    assert!(stuck.iter().all(|m| status(m) == DeliveryStatus::Sent));
    assert_eq!(
        sent_stuck(&store, &conv).await,
        [whatsapp, messenger, instagram],
        "oldest first; not {telegram} nor {chotot} (SENT is final there), nor {recent}"
    );
}

/// A receipt takes a message out of the SENT look-up.
pub async fn sent_leaves_stuck_once_a_receipt_comes(store: SharedStore) {
    let conv = conversation("sent-receipt");
    let delivered = sent(&store, &conv, "whatsapp:15551230003", -60).await;
    let read = sent(&store, &conv, "messenger:7004", -59).await;
    let waiting = sent(&store, &conv, "instagram:7005", -58).await;
    assert_eq!(sent_stuck(&store, &conv).await, [delivered, read, waiting]);
    store
        .apply_transitions(vec![
            change(delivered, DeliveryStatus::Delivered, -50, "webhook"),
            change(read, DeliveryStatus::Read, -50, "webhook"),
        ])
        .await
        .unwrap();
    assert_eq!(sent_stuck(&store, &conv).await, [waiting]);
}

/// A receipt overdue is marked once, a deadline after SENT, on a platform
/// that sends receipts, while the message is still SENT: one NOTED entry in
/// its history, and its status unchanged.
pub async fn receipts_overdue_are_marked_once(store: SharedStore) {
    let conv = conversation("overdue");
    let overdue = sent(&store, &conv, "whatsapp:15551230004", -60).await;
    let telegram = sent(&store, &conv, "telegram:43", -60).await;
    let delivered = sent(&store, &conv, "messenger:7006", -60).await;
    store
        .apply_transitions(vec![change(delivered, DeliveryStatus::Delivered, -50, "webhook")])
        .await
        .unwrap();
    // Sent just now: a day is far off.
    let fresh = message_id(&put(&store, new_message(&conv, "fresh")).await);
    let mut just_sent = change(fresh, DeliveryStatus::Sent, 0, "sidecar");
    just_sent.at = Timestamp::now();
    store.apply_transitions(vec![just_sent]).await.unwrap();

    let candidates = [overdue, telegram, delivered, fresh, MessageId::generate()];
    assert_eq!(
        store.mark_receipt_overdue(&candidates, DAY).await.unwrap(),
        [overdue]
    );
    assert!(
        store
            .mark_receipt_overdue(&candidates, DAY)
            .await
            .unwrap()
            .is_empty(),
        "marked once"
    );
    assert!(store.mark_receipt_overdue(&[], DAY).await.unwrap().is_empty());

    let marked = get(&store, overdue).await;
    assert_eq!(status(&marked), DeliveryStatus::Sent, "a note, not a move");
    let noted = notes(&marked);
    assert_eq!(noted.len(), 1, "{:?}", marked.history);
    assert_eq!(
        (DeliveryStatus::from_proto(noted[0].status), noted[0].hop.as_str()),
        (Some(DeliveryStatus::Sent), "reconciler")
    );
    assert_eq!(noted[0].detail, "receipt_overdue: no receipt within 24h of SENT");
    assert_eq!(
        marked.history.last().map(|e| e.outcome),
        Some(noted[0].outcome),
        "appended last"
    );
    for other in [telegram, delivered, fresh] {
        assert!(notes(&get(&store, other).await).is_empty(), "{other}");
    }
    // Still waiting, still looked at; a receipt ends that.
    assert_eq!(sent_stuck(&store, &conv).await, [overdue]);
    store
        .apply_transitions(vec![change(overdue, DeliveryStatus::Delivered, -40, "webhook")])
        .await
        .unwrap();
    assert!(sent_stuck(&store, &conv).await.is_empty());
}
