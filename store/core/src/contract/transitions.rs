//! Transitions through the state machine: outcomes, timestamps, history,
//! receipts by platform id, races.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chat4all_domain::{DeliveryStatus, MessageId, Platform, Timestamp};
use chat4all_proto::v1 as pb;

use super::support::*;
use crate::{SharedStore, StatusChange, TransitionOutcome, TransitionResult};

use DeliveryStatus::{Accepted, Delivered, Failed, Read, Routed, Sent};
use TransitionOutcome::{Applied, Backfilled, NotFound, Rejected, Repeat};

/// ACCEPTED → ROUTED → SENT → DELIVERED → READ, each time recorded.
pub async fn happy_path(store: SharedStore) {
    let conv = conversation("happy");
    let id = message_id(&put(&store, new_message(&conv, "hi")).await);
    let wamid = format!("wamid.{}", MessageId::generate());
    let mut previous = Accepted;
    for (status, secs, hop) in [
        (Routed, 1, "router"),
        (Sent, 2, "sidecar"),
        (Delivered, 3, "webhook"),
        (Read, 4, "webhook"),
    ] {
        let mut c = change(id, status, secs, hop);
        if status == Sent {
            c.platform_message_id = Some(wamid.clone());
        }
        let r = apply(&store, c).await;
        assert_eq!(r.outcome, Applied, "{status}");
        assert_eq!(r.message_id, Some(id));
        assert_eq!(r.conversation_id.as_ref(), Some(&conv));
        assert_eq!(r.recipient, Some("whatsapp:15551234567".parse().unwrap()));
        assert_eq!((r.previous, r.current), (Some(previous), Some(status)));
        assert_time(&r, t(secs));
        previous = status;
    }
    let got = get(&store, id).await;
    assert_eq!(status(&got), Read);
    assert_eq!(
        states(&got),
        [
            (Accepted, t(0)),
            (Routed, t(1)),
            (Sent, t(2)),
            (Delivered, t(3)),
            (Read, t(4))
        ]
    );
    assert_eq!(got.platform_message_id, wamid);
    assert_eq!(
        history(&got),
        [
            (Accepted, Applied, "api-gateway".to_owned(), t(0)),
            (Routed, Applied, "router".to_owned(), t(1)),
            (Sent, Applied, "sidecar".to_owned(), t(2)),
            (Delivered, Applied, "webhook".to_owned(), t(3)),
            (Read, Applied, "webhook".to_owned(), t(4)),
        ]
    );
    assert!(
        got.history[2].detail.contains(&wamid),
        "{:?}",
        got.history[2].detail
    );
}

/// The same state again changes nothing but is kept in the history.
pub async fn repeat_changes_nothing(store: SharedStore) {
    let id = message_id(&put(&store, new_message(&conversation("repeat"), "hi")).await);
    assert_eq!(
        apply(&store, change(id, Sent, 2, "sidecar")).await.outcome,
        Applied
    );
    let r = apply(&store, change(id, Sent, 5, "sidecar")).await;
    assert_eq!(r.outcome, Repeat);
    assert_eq!((r.previous, r.current, r.at), (Some(Sent), Some(Sent), None));
    let got = get(&store, id).await;
    assert_eq!(status(&got), Sent);
    assert_eq!(timeline(&got).get(Sent), Some(t(2)), "the first time stays");
    let outcomes: Vec<_> = history(&got).into_iter().map(|(s, o, ..)| (s, o)).collect();
    assert_eq!(outcomes, [(Accepted, Applied), (Sent, Applied), (Sent, Repeat)]);
}

/// A move back to a state already timed is refused, and recorded as such.
pub async fn backward_move_rejected(store: SharedStore) {
    let id = message_id(&put(&store, new_message(&conversation("backward"), "hi")).await);
    assert_eq!(
        apply(&store, change(id, Routed, 1, "router")).await.outcome,
        Applied
    );
    assert_eq!(
        apply(&store, change(id, Delivered, 3, "webhook")).await.outcome,
        Applied
    );
    for (status, secs) in [(Routed, 6), (Accepted, 7), (Failed, 8)] {
        let r = apply(&store, change(id, status, secs, "late")).await;
        assert_eq!(r.outcome, Rejected, "{status} after DELIVERED");
        assert_eq!(
            (r.previous, r.current, r.at),
            (Some(Delivered), Some(Delivered), None)
        );
    }
    let got = get(&store, id).await;
    assert_eq!(status(&got), Delivered);
    assert_eq!(
        states(&got),
        [(Accepted, t(0)), (Routed, t(1)), (Delivered, t(3))]
    );
    assert_eq!(got.failure, None);
    let rejected: Vec<_> = history(&got)
        .into_iter()
        .filter(|(_, o, ..)| *o == Rejected)
        .map(|(s, ..)| s)
        .collect();
    assert_eq!(rejected, [Routed, Accepted, Failed]);
}

/// A late receipt for a state that was jumped over keeps the status but
/// records its time, within its neighbours'.
pub async fn late_receipt_backfilled(store: SharedStore) {
    let id = message_id(&put(&store, new_message(&conversation("backfill"), "hi")).await);
    assert_eq!(
        apply(&store, change(id, Routed, 1, "router")).await.outcome,
        Applied
    );
    assert_eq!(
        apply(&store, change(id, Read, 5, "webhook")).await.outcome,
        Applied
    );

    // Claims a time after READ's: clamped to it.
    let r = apply(&store, change(id, Delivered, 9, "webhook")).await;
    assert_eq!(r.outcome, Backfilled);
    assert_eq!((r.previous, r.current), (Some(Read), Some(Read)));
    assert_time(&r, t(5));
    // Claims a time before ROUTED's: lifted to it.
    let r = apply(&store, change(id, Sent, 0, "sidecar")).await;
    assert_eq!(r.outcome, Backfilled);
    assert_time(&r, t(1));
    // Once timed, a state is not backfilled again.
    assert_eq!(
        apply(&store, change(id, Delivered, 4, "webhook")).await.outcome,
        Rejected
    );

    let got = get(&store, id).await;
    assert_eq!(status(&got), Read);
    assert_eq!(
        states(&got),
        [
            (Accepted, t(0)),
            (Routed, t(1)),
            (Sent, t(1)),
            (Delivered, t(5)),
            (Read, t(5))
        ]
    );
    // The history keeps the time as the hop reported it.
    let delivered = history(&got).into_iter().find(|(s, ..)| *s == Delivered).unwrap();
    assert_eq!(delivered, (Delivered, Backfilled, "webhook".to_owned(), t(9)));
}

/// FAILED records why; a receipt from a second device supersedes it, and
/// nothing but a receipt does.
pub async fn delivered_supersedes_failed(store: SharedStore) {
    let id = message_id(&put(&store, new_message(&conversation("failed"), "hi")).await);
    assert_eq!(
        apply(&store, change(id, Routed, 1, "router")).await.outcome,
        Applied
    );
    let failure = pb::Failure {
        code: "131026".into(),
        reason: "receiver incapable".into(),
    };
    let r = apply(
        &store,
        StatusChange {
            failure: Some(failure.clone()),
            ..change(id, Failed, 2, "sidecar")
        },
    )
    .await;
    assert_eq!(r.outcome, Applied);
    assert_eq!((r.previous, r.current), (Some(Routed), Some(Failed)));
    let got = get(&store, id).await;
    assert_eq!(status(&got), Failed);
    assert_eq!(got.failure, Some(failure));
    assert_eq!(timeline(&got).get(Failed), Some(t(2)));
    assert!(
        got.history.last().unwrap().detail.contains("131026"),
        "{:?}",
        got.history.last()
    );

    assert_eq!(
        apply(&store, change(id, Sent, 3, "sidecar")).await.outcome,
        Rejected
    );
    let r = apply(&store, change(id, Delivered, 4, "webhook")).await;
    assert_eq!(r.outcome, Applied);
    assert_eq!((r.previous, r.current), (Some(Failed), Some(Delivered)));
    let got = get(&store, id).await;
    assert_eq!(status(&got), Delivered);
    assert_eq!(got.failure, None, "the failure no longer describes the message");
    assert_eq!(
        apply(&store, change(id, Failed, 5, "sidecar")).await.outcome,
        Rejected
    );
    assert_eq!(
        apply(&store, change(id, Read, 6, "webhook")).await.outcome,
        Applied
    );
}

/// A receipt that names only the platform's id finds the message whose
/// SENT carried it; the first id recorded stays.
pub async fn receipt_by_platform_id(store: SharedStore) {
    let conv = conversation("external");
    let id = message_id(&put(&store, new_message(&conv, "hi")).await);
    let wamid = format!("wamid.{}", MessageId::generate());
    let sent = StatusChange {
        platform_message_id: Some(wamid.clone()),
        ..change(id, Sent, 2, "sidecar")
    };
    assert_eq!(apply(&store, sent).await.outcome, Applied);
    assert_eq!(get(&store, id).await.platform_message_id, wamid);

    let other = format!("wamid.{}", MessageId::generate());
    let resent = StatusChange {
        platform_message_id: Some(other.clone()),
        ..change(id, Sent, 2, "sidecar")
    };
    assert_eq!(apply(&store, resent).await.outcome, Repeat);
    assert_eq!(
        get(&store, id).await.platform_message_id,
        wamid,
        "the first id stays"
    );
    assert_eq!(
        apply(&store, receipt(Platform::WhatsApp, &other, Delivered, 3))
            .await
            .outcome,
        NotFound
    );

    let r = apply(&store, receipt(Platform::WhatsApp, &wamid, Delivered, 3)).await;
    assert_eq!(r.outcome, Applied);
    assert_eq!(r.message_id, Some(id));
    assert_eq!(r.conversation_id, Some(conv));
    assert_eq!((r.previous, r.current), (Some(Sent), Some(Delivered)));
    // The same id on another platform is another message.
    assert_eq!(
        apply(&store, receipt(Platform::Telegram, &wamid, Read, 4))
            .await
            .outcome,
        NotFound
    );
    assert_eq!(
        apply(&store, receipt(Platform::WhatsApp, &wamid, Read, 4))
            .await
            .outcome,
        Applied
    );
    assert_eq!(status(&get(&store, id).await), Read);
}

/// A change to no known message is NotFound, in its place in the batch.
pub async fn unknown_message_not_found(store: SharedStore) {
    let id = message_id(&put(&store, new_message(&conversation("unknown"), "hi")).await);
    let results = store
        .apply_transitions(vec![
            change(MessageId::generate(), Read, 1, "webhook"),
            receipt(
                Platform::WhatsApp,
                &format!("wamid.{}", MessageId::generate()),
                Delivered,
                1,
            ),
            change(id, Routed, 1, "router"),
        ])
        .await
        .unwrap();
    let nothing = TransitionResult {
        outcome: NotFound,
        message_id: None,
        conversation_id: None,
        recipient: None,
        previous: None,
        current: None,
        at: None,
    };
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], nothing);
    assert_eq!(results[1], nothing);
    assert_eq!(results[2].outcome, Applied);
    assert!(store.apply_transitions(Vec::new()).await.unwrap().is_empty());
}

/// The changes of one batch apply in order, each seeing the ones before;
/// every one lands in the history, whatever became of it.
pub async fn batch_in_order_with_full_history(store: SharedStore) {
    let id = message_id(&put(&store, new_message(&conversation("batch"), "hi")).await);
    let wamid = format!("wamid.{}", MessageId::generate());
    let batch = vec![
        change(id, Routed, 1, "router"),
        change(id, Routed, 1, "router"),
        change(id, Accepted, 0, "api-gateway"),
        change(id, Read, 5, "webhook"),
        StatusChange {
            platform_message_id: Some(wamid.clone()),
            ..change(id, Sent, 2, "sidecar")
        },
        change(id, Delivered, 9, "webhook"),
        change(id, Failed, 6, "sidecar"),
    ];
    let results = store.apply_transitions(batch).await.unwrap();
    let got: Vec<_> = results.iter().map(|r| (r.outcome, r.current)).collect();
    assert_eq!(
        got,
        [
            (Applied, Some(Routed)),
            (Repeat, Some(Routed)),
            (Rejected, Some(Routed)),
            (Applied, Some(Read)),
            (Backfilled, Some(Read)),
            (Backfilled, Some(Read)),
            (Rejected, Some(Read)),
        ]
    );

    let m = get(&store, id).await;
    let h = |s, o, hop: &str, secs| (s, o, hop.to_owned(), t(secs));
    assert_eq!(
        history(&m),
        [
            h(Accepted, Applied, "api-gateway", 0),
            h(Routed, Applied, "router", 1),
            h(Routed, Repeat, "router", 1),
            h(Accepted, Rejected, "api-gateway", 0),
            h(Read, Applied, "webhook", 5),
            h(Sent, Backfilled, "sidecar", 2),
            h(Delivered, Backfilled, "webhook", 9),
            h(Failed, Rejected, "sidecar", 6),
        ]
    );
    let recorded: Vec<Timestamp> = m
        .history
        .iter()
        .map(|e| Timestamp::from(e.recorded_at.unwrap()))
        .collect();
    assert!(
        recorded.windows(2).all(|w| w[0] <= w[1]),
        "recorded in order: {recorded:?}"
    );
    assert_eq!(timeline(&m).get(Delivered), Some(t(5)));
    assert_eq!(
        m.platform_message_id, wamid,
        "a backfilled SENT still tells the platform id"
    );
}

/// Eight writers racing on one message, each with the way in its own
/// order, end in READ with every update in the history and every state
/// timed once.
pub async fn concurrent_transitions_converge(store: SharedStore) {
    const TASKS: u64 = 8;
    let id = message_id(&put(&store, new_message(&conversation("race"), "hi")).await);
    let way = [(Routed, 1), (Sent, 2), (Delivered, 3), (Read, 4)];
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for (status, secs) in shuffled(way, task) {
                    let r = store
                        .apply_transitions(vec![change(id, status, secs, &format!("task-{task}"))])
                        .await
                        .unwrap();
                    assert_ne!(r[0].outcome, NotFound);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let m = get(&store, id).await;
    assert_eq!(status(&m), Read);
    assert_eq!(
        states(&m),
        [
            (Accepted, t(0)),
            (Routed, t(1)),
            (Sent, t(2)),
            (Delivered, t(3)),
            (Read, t(4))
        ]
    );
    let history = history(&m);
    assert_eq!(
        history.len(),
        1 + 4 * TASKS as usize,
        "every update is in the history"
    );
    for (status, _) in way {
        let timed = history
            .iter()
            .filter(|(s, o, ..)| *s == status && matches!(o, Applied | Backfilled))
            .count();
        assert_eq!(timed, 1, "{status} timed exactly once");
    }
}
