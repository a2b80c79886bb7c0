//! The one contract every [`MessageStore`](crate::MessageStore) backend
//! honours, written once.
//!
//! Each check is a `pub async fn` over a [`SharedStore`]; [`run_all`] runs
//! them all, so a backend (the embedded one, the gRPC client in front of
//! it, Scylla when a cluster is at hand) is tested by one line. Checks make
//! their own conversations and messages, so they share a store with each
//! other and with whatever data it already holds.
//!
//! This is test code: it panics on any surprise, `unwrap` included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chat4all_domain::convert::timeline_from_proto;
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Timeline, Timestamp};
use chat4all_proto::v1 as pb;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::{
    ClaimOutcome, MessageRef, NewMessage, PutOutcome, SharedStore, StatusChange, StoreError,
    TransitionOutcome, TransitionResult,
};

use DeliveryStatus::{Accepted, Delivered, Failed, Read, Routed, Sent};
use TransitionOutcome::{Applied, Backfilled, NotFound, Rejected, Repeat};

/// One check of the contract.
pub type Check = fn(SharedStore) -> BoxFuture<'static, ()>;

/// `(name, check)` pairs from the function names, so the two cannot drift.
macro_rules! checks {
    ($($check:ident),+ $(,)?) => {
        &[$((stringify!($check), |store| $check(store).boxed())),+]
    };
}

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = checks![
    put_then_get,
    idempotent_put,
    list_pages_newest_first,
    happy_path,
    repeat_changes_nothing,
    backward_move_rejected,
    late_receipt_backfilled,
    delivered_supersedes_failed,
    receipt_by_platform_id,
    unknown_message_not_found,
    batch_in_order_with_full_history,
    concurrent_transitions_converge,
    claim_first_wins,
    stuck_messages_are_found_oldest_first,
];

/// Runs every check against `store`, in order, naming each on stderr so a
/// failure says which.
pub async fn run_all(store: SharedStore) {
    for (name, check) in CHECKS {
        eprintln!("store contract: {name}");
        check(store.clone()).await;
    }
}

// ---- put, get, list ----

/// A put message reads back whole: ACCEPTED, its timeline, one history entry.
pub async fn put_then_get(store: SharedStore) {
    let conv = conversation("put");
    let m = new_message(&conv, "hello");
    let put = store.put_message(m.clone()).await.unwrap();
    assert_eq!(put.outcome, PutOutcome::Created);
    for got in [put.message, get(&store, m.id).await] {
        assert_eq!(got.id, m.id.to_string());
        assert_eq!(got.conversation_id, conv.to_string());
        assert_eq!(
            got.recipient,
            Some(pb::Recipient {
                platform: "whatsapp".into(),
                id: "15551234567".into()
            })
        );
        assert_eq!(got.text, "hello");
        assert_eq!(got.source, "api");
        assert_eq!(got.trace_id, m.trace_id);
        assert_eq!(status(&got), Accepted);
        assert_eq!(got.created_at, Some(t(0).into()));
        assert_eq!(got.platform_message_id, "");
        assert_eq!(got.failure, None);
        assert_eq!(states(&got), [(Accepted, t(0))]);
        assert_eq!(
            history(&got),
            [(Accepted, Applied, "api-gateway".to_owned(), t(0))]
        );
        assert!(got.history[0].recorded_at.is_some());
    }
    assert_eq!(store.get_message(MessageId::generate()).await.unwrap(), None);
}

/// A key seen before writes nothing: the same request gets the first
/// message back as Duplicate, a different one as KeyConflict. A retried put
/// with the same id behaves the same, key or no key.
pub async fn idempotent_put(store: SharedStore) {
    let conv = conversation("idempotent");
    let key = format!("key-{}", MessageId::generate());
    let first = NewMessage {
        idempotency_key: Some(key.clone()),
        ..new_message(&conv, "once")
    };
    assert_eq!(
        store.put_message(first.clone()).await.unwrap().outcome,
        PutOutcome::Created
    );

    let retry = NewMessage {
        id: MessageId::generate(),
        ..first.clone()
    };
    let other = NewMessage {
        id: MessageId::generate(),
        text: "something else".into(),
        ..first.clone()
    };
    let same_id = NewMessage {
        idempotency_key: None,
        ..first.clone()
    };
    let same_id_other_text = NewMessage {
        text: "changed".into(),
        ..same_id.clone()
    };
    for (m, want) in [
        (&retry, PutOutcome::Duplicate),
        (&other, PutOutcome::KeyConflict),
        (&same_id, PutOutcome::Duplicate),
        (&same_id_other_text, PutOutcome::KeyConflict),
    ] {
        let r = store.put_message(m.clone()).await.unwrap();
        assert_eq!(r.outcome, want, "{:?}", m.text);
        assert_eq!(r.message.id, first.id.to_string(), "the first message comes back");
        assert_eq!(r.message.text, "once");
    }
    assert_eq!(
        store.get_message(retry.id).await.unwrap(),
        None,
        "a duplicate writes nothing"
    );
    assert_eq!(
        store.get_message(other.id).await.unwrap(),
        None,
        "a conflict writes nothing"
    );
    assert_eq!(get(&store, first.id).await.history.len(), 1);
    assert_eq!(
        store.list_messages(&conv, None, 10).await.unwrap().messages.len(),
        1
    );
}

/// Newest first, page by page through cursors to a last page without one;
/// a cursor nobody handed out is the caller's mistake.
pub async fn list_pages_newest_first(store: SharedStore) {
    let conv = conversation("list");
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(put(&store, new_message(&conv, &format!("m{i}"))).await.id);
    }
    put(
        &store,
        new_message(&conversation("list-elsewhere"), "not in the page"),
    )
    .await;
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list_messages(&conv, cursor.as_deref(), 3).await.unwrap();
        pages += 1;
        assert!(pages <= 3, "paging must end after 3 pages of 3, 3 and 1");
        for m in &page.messages {
            assert_eq!(m.conversation_id, conv.to_string());
            assert_eq!(states(m), [(Accepted, t(0))], "a page carries the timeline");
            assert!(m.history.is_empty(), "a page carries no history");
        }
        seen.extend(page.messages.iter().map(|m| m.id.clone()));
        match page.next_cursor {
            Some(next) => {
                assert_eq!(page.messages.len(), 3, "a cursor follows only a full page");
                cursor = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    let whole = store.list_messages(&conv, None, 7).await.unwrap();
    assert_eq!(whole.messages.len(), 7);
    assert_eq!(whole.next_cursor, None, "no cursor to an empty page");

    let empty = store
        .list_messages(&conversation("list-empty"), None, 10)
        .await
        .unwrap();
    assert!(empty.messages.is_empty());
    assert_eq!(empty.next_cursor, None);

    match store.list_messages(&conv, Some("not-a-cursor"), 3).await {
        Err(StoreError::Invalid {
            field: "page_token", ..
        }) => {}
        other => panic!("a malformed cursor gave {other:?}"),
    }
}

// ---- transitions ----

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
    store
        .apply_transitions(vec![change(routed, DeliveryStatus::Routed, -69, "router")])
        .await
        .unwrap();

    // Other checks (and earlier runs on a shared cluster) leave messages
    // too: look only at this conversation's.
    let stuck = store
        .stuck_messages(DeliveryStatus::Accepted, t(-10), 500)
        .await
        .unwrap();
    let ours: Vec<MessageId> = stuck
        .iter()
        .filter(|m| m.conversation_id == conv.as_str())
        .map(message_id)
        .collect();
    assert_eq!(
        ours,
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
    assert!(routed_stuck.iter().any(|m| message_id(m) == routed));
}

// ---- helpers ----

const T0_SECS: i64 = 1_700_000_000;

/// A time `secs` after the test messages were created.
fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(T0_SECS + secs)
}

/// A conversation no other check (or earlier run) uses.
fn conversation(tag: &str) -> ConversationId {
    format!("contract-{tag}-{}", MessageId::generate())
        .parse()
        .unwrap()
}

fn new_message(conversation: &ConversationId, text: &str) -> NewMessage {
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

fn change(id: MessageId, status: DeliveryStatus, secs: i64, hop: &str) -> StatusChange {
    StatusChange {
        message: MessageRef::Id(id),
        status,
        at: t(secs),
        hop: hop.to_owned(),
        platform_message_id: None,
        failure: None,
    }
}

fn receipt(platform: Platform, external_id: &str, status: DeliveryStatus, secs: i64) -> StatusChange {
    StatusChange {
        message: MessageRef::External {
            platform,
            external_id: external_id.to_owned(),
        },
        ..change(MessageId::generate(), status, secs, "webhook")
    }
}

async fn put(store: &SharedStore, m: NewMessage) -> pb::Message {
    let r = store.put_message(m).await.unwrap();
    assert_eq!(r.outcome, PutOutcome::Created);
    r.message
}

async fn get(store: &SharedStore, id: MessageId) -> pb::Message {
    store
        .get_message(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("message {id} is missing"))
}

async fn apply(store: &SharedStore, c: StatusChange) -> TransitionResult {
    let mut results = store.apply_transitions(vec![c]).await.unwrap();
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// The time an applied or backfilled result reports.
fn assert_time(r: &TransitionResult, want: Timestamp) {
    assert_eq!(r.at, Some(want), "{r:?}");
}

fn message_id(m: &pb::Message) -> MessageId {
    m.id.parse().unwrap()
}

fn status(m: &pb::Message) -> DeliveryStatus {
    DeliveryStatus::from_proto(m.status).unwrap()
}

fn timeline(m: &pb::Message) -> Timeline {
    timeline_from_proto(&m.timeline)
}

fn states(m: &pb::Message) -> Vec<(DeliveryStatus, Timestamp)> {
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

fn history(m: &pb::Message) -> Vec<(DeliveryStatus, TransitionOutcome, String, Timestamp)> {
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
fn shuffled<T, const N: usize>(mut items: [T; N], seed: u64) -> [T; N] {
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
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;
    use tonic::transport::Server;
    use tonic::transport::server::TcpIncoming;
    use tonic_types::StatusExt;

    use super::*;
    use crate::MessageStore;
    use crate::embedded::{EmbeddedOptions, EmbeddedStore};
    use crate::grpc::{self, StoreClient};

    fn embedded(dir: &tempfile::TempDir) -> EmbeddedStore {
        EmbeddedStore::open(&dir.path().join("contract.db"), EmbeddedOptions::default()).unwrap()
    }

    /// A store server on a free loopback port, until `stop` is sent.
    struct Served {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: JoinHandle<Result<(), tonic::transport::Error>>,
    }

    async fn serve(store: SharedStore) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            Server::builder()
                .add_service(grpc::server(store))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                }),
        );
        Served { addr, stop, task }
    }

    #[test]
    fn shuffles_differ_by_seed_and_keep_every_item() {
        let orders: std::collections::HashSet<_> = (0..8).map(|s| shuffled([1, 2, 3, 4], s)).collect();
        assert!(orders.len() > 1);
        for mut order in orders {
            order.sort_unstable();
            assert_eq!(order, [1, 2, 3, 4]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_embedded_store_honours_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = embedded(&dir);
        run_all(Arc::new(store.clone())).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_store_over_grpc_honours_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = embedded(&dir);
        let served = serve(Arc::new(store.clone())).await;
        let client = StoreClient::connect(&served.addr.to_string()).unwrap();
        run_all(Arc::new(client)).await;
        served.stop.send(()).unwrap();
        served.task.await.unwrap().unwrap();
        store.close().await;
    }

    #[tokio::test]
    async fn malformed_ids_are_invalid_arguments_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let served = serve(Arc::new(embedded(&dir))).await;
        let mut raw =
            pb::message_store_client::MessageStoreClient::connect(format!("http://{}", served.addr))
                .await
                .unwrap();
        let field_of = |status: tonic::Status| {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
            status.get_details_bad_request().unwrap().field_violations[0]
                .field
                .clone()
        };
        let err = raw
            .get_message(pb::StoreGetMessageRequest {
                message_id: "nope".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(field_of(err), "message_id");
        let update = pb::StatusUpdate {
            message_id: "nope".into(),
            status: pb::DeliveryStatus::Sent.into(),
            ..Default::default()
        };
        let err = raw
            .apply_transitions(pb::ApplyTransitionsRequest {
                updates: vec![update],
            })
            .await
            .unwrap_err();
        assert_eq!(field_of(err), "updates.message_id");
        let err = raw
            .claim_for_send(pb::ClaimForSendRequest {
                message_ids: vec!["nope".into()],
                claimant: "s".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(field_of(err), "message_ids");
        let err = raw
            .list_messages(pb::StoreListMessagesRequest {
                conversation_id: "c-1".into(),
                limit: 3,
                before: "garbage".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(field_of(err), "page_token");
        let _ = served.stop.send(());
    }

    #[tokio::test]
    async fn an_unreachable_store_is_unavailable() {
        // Bind then drop: a loopback port nobody listens on.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let client = StoreClient::connect(&addr.to_string()).unwrap();
        match client.get_message(MessageId::generate()).await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
