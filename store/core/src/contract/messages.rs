//! Put, get and list.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chat4all_domain::{DeliveryStatus, MessageId};
use chat4all_proto::v1 as pb;

use super::support::*;
use crate::{MessageCursor, NewMessage, PutOutcome, SharedStore, StoreError, TransitionOutcome};

use DeliveryStatus::Accepted;
use TransitionOutcome::Applied;

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

/// A conversation lists by when a message was written, not when it was
/// stored: history backfilled late sorts among its peers. A cursor made from
/// a time pages from there.
pub async fn list_orders_by_written_time(store: SharedStore) {
    let conv = conversation("list-by-time");
    let at = |secs: i64, text: &str| NewMessage {
        created_at: t(secs),
        ..new_message(&conv, text)
    };
    let ten = put(&store, at(10, "ten")).await.id;
    let thirty = put(&store, at(30, "thirty")).await.id;
    // Stored last, written first.
    let five = put(&store, at(5, "five")).await.id;
    let twenty = put(&store, at(20, "twenty")).await.id;

    let ids = |page: &crate::Page| page.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    let whole = store.list_messages(&conv, None, 10).await.unwrap();
    assert_eq!(ids(&whole), [thirty, twenty, ten.clone(), five.clone()]);

    let before_twenty = MessageCursor::older_than(t(20)).encode();
    let page = store.list_messages(&conv, Some(&before_twenty), 1).await.unwrap();
    assert_eq!(ids(&page), [ten], "strictly older than the time, newest first");
    let rest = store
        .list_messages(&conv, page.next_cursor.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(ids(&rest), [five]);
    assert_eq!(rest.next_cursor, None);

    let before_all = MessageCursor::older_than(t(5)).encode();
    let none = store.list_messages(&conv, Some(&before_all), 10).await.unwrap();
    assert!(none.messages.is_empty());
}
