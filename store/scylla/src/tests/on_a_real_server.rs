//! What only a real database shows: transactions racing through Paxos,
//! keys expiring by their TTL, statements the server prepares, and the
//! reconciler's look-ups over real partitions. Each test has a keyspace of
//! its own, so it can expect exactly what it wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// A store in a keyspace of its own on the test cluster.
async fn fresh_store(options: ScyllaStoreOptions) -> ScyllaStore {
    let config = ScyllaConfig {
        nodes: cluster().await,
        keyspace: unique_keyspace(),
        ..Default::default()
    };
    ScyllaStore::connect(config, options).await.unwrap()
}

async fn drop_keyspace(store: &ScyllaStore) {
    store
        .db
        .session
        .query_unpaged(
            format!("DROP KEYSPACE IF EXISTS {}", store.db.config.keyspace),
            (),
        )
        .await
        .unwrap();
}

fn new_message(created_at: Timestamp, idempotency_key: Option<&str>) -> NewMessage {
    NewMessage {
        id: MessageId::generate(),
        conversation_id: format!("real-{}", MessageId::generate()).parse().unwrap(),
        recipient: "whatsapp:15551234567".parse().unwrap(),
        text: "xin chào".to_owned(),
        source: chat4all_domain::SOURCE_API.to_owned(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        created_at,
        idempotency_key: idempotency_key.map(str::to_owned),
    }
}

async fn put_new(store: &ScyllaStore, message: NewMessage) -> MessageId {
    let put = store.put_message(message).await.unwrap();
    assert_eq!(put.outcome, PutOutcome::Created);
    put.message.id.parse().unwrap()
}

fn change(id: MessageId, status: DeliveryStatus, at: Timestamp, hop: &str) -> StatusChange {
    StatusChange {
        message: chat4all_store::MessageRef::Id(id),
        status,
        at,
        hop: hop.to_owned(),
        platform_message_id: None,
        failure: None,
    }
}

/// The stored row, as the last transaction left it.
async fn stored(store: &ScyllaStore, id: MessageId) -> MessageRow {
    store.db.message(id, true).await.unwrap().unwrap()
}

/// `changes`, each applied by a writer of its own, all released at once.
async fn race(store: &ScyllaStore, changes: Vec<StatusChange>) -> Vec<TransitionResult> {
    let start = Arc::new(tokio::sync::Barrier::new(changes.len()));
    let writers: Vec<_> = changes
        .into_iter()
        .map(|change| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.apply_transitions(vec![change]).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for writer in writers {
        // A writer that gave up (contention, a Paxos timeout it could not
        // resolve) fails here: the store must settle races on its own.
        let mut result = writer.await.unwrap().unwrap();
        results.push(result.remove(0));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_racing_through_paxos_agree_on_one_winner_per_step() {
    use DeliveryStatus::{Accepted, Delivered, Read, Routed, Sent};
    use TransitionOutcome::{Applied, Backfilled, Repeat};
    const WRITERS: usize = 8;
    let store = fresh_store(ScyllaStoreOptions::default()).await;
    let t = |secs: i64| Timestamp::from_secs(1_700_000_000 + secs);
    let steps = [(Routed, t(1)), (Sent, t(2)), (Delivered, t(3)), (Read, t(4))];

    // Every writer offers the same step at the same moment: one conditional
    // write wins, the seven others lose, read again and find it done.
    let id = put_new(&store, new_message(t(0), None)).await;
    for (step, (status, at)) in (1..).zip(steps) {
        let changes = (0..WRITERS)
            .map(|w| change(id, status, at, &format!("writer-{w}")))
            .collect();
        let outcomes: Vec<_> = race(&store, changes).await.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes.iter().filter(|o| **o == Applied).count(),
            1,
            "{status}: {outcomes:?}"
        );
        assert_eq!(
            outcomes.iter().filter(|o| **o == Repeat).count(),
            WRITERS - 1,
            "{status}: {outcomes:?}"
        );
        let row = stored(&store, id).await;
        assert_eq!(row.message.delivery.status, status);
        assert_eq!(
            row.version, step,
            "one state write per step, none lost or doubled"
        );
    }
    let m = store.get_message(id).await.unwrap().unwrap();
    assert_eq!(
        m.history.len(),
        1 + steps.len() * WRITERS,
        "every offer is in the history"
    );
    for (status, _) in steps {
        let applied: Vec<_> = m
            .history
            .iter()
            .filter(|h| DeliveryStatus::from_proto(h.status) == Some(status))
            .filter(|h| TransitionOutcome::from_proto(h.outcome) == Some(Applied))
            .collect();
        assert_eq!(applied.len(), 1, "{status}: {applied:?}");
    }

    // Every writer offers a different step, all at once, twice over:
    // whatever order Paxos puts them in, each state is timed once, the
    // message ends READ with the whole timeline, and the version counts
    // exactly the writes that won.
    let id = put_new(&store, new_message(t(0), None)).await;
    let changes = steps
        .iter()
        .chain(&steps)
        .enumerate()
        .map(|(w, (status, at))| change(id, *status, *at, &format!("writer-{w}")))
        .collect();
    let results = race(&store, changes).await;
    for (status, at) in steps {
        let timed: Vec<_> = results
            .iter()
            .filter(|r| matches!(r.outcome, Applied | Backfilled) && r.at == Some(at))
            .collect();
        assert_eq!(timed.len(), 1, "{status} timed once: {results:?}");
    }
    let row = stored(&store, id).await;
    let delivery = &row.message.delivery;
    assert_eq!(delivery.status, Read);
    for (status, at) in [(Accepted, t(0))].into_iter().chain(steps) {
        assert_eq!(delivery.timeline.get(status), Some(at), "{status}");
    }
    let won = results
        .iter()
        .filter(|r| matches!(r.outcome, Applied | Backfilled))
        .count();
    assert_eq!(row.version, i64::try_from(won).unwrap());
    drop_keyspace(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_forgotten_when_their_ttl_runs_out() {
    // Three seconds: long enough that the duplicate checks below run well
    // inside it on a busy machine, short enough to wait out.
    const TTL: Duration = Duration::from_secs(3);
    let store = fresh_store(ScyllaStoreOptions {
        idempotency_ttl: TTL,
        ..Default::default()
    })
    .await;
    let db = &store.db;

    // An idempotency key.
    let key = "retry-me";
    let first = new_message(Timestamp::now(), Some(key));
    let first_id = put_new(&store, first.clone()).await;
    let retry = NewMessage {
        id: MessageId::generate(),
        ..first.clone()
    };
    let dup = store.put_message(retry.clone()).await.unwrap();
    assert_eq!(dup.outcome, PutOutcome::Duplicate);
    assert_eq!(dup.message.id, first_id.to_string());
    let ttl = db
        .session
        .query_unpaged(
            "SELECT TTL(message_id) FROM idempotency_keys WHERE idempotency_key = ?",
            (key,),
        )
        .await
        .unwrap();
    let (ttl,) = first_row::<(Option<i32>,)>(ttl, "ttl").unwrap().unwrap();
    assert!(
        matches!(ttl, Some(1..=3)),
        "the server holds the key for the configured TTL: {ttl:?}"
    );
    wait_until_gone(
        db,
        "SELECT message_id FROM idempotency_keys WHERE idempotency_key = ?",
        (key,),
    )
    .await;
    // Forgotten: the same key now names a new message.
    let later = store.put_message(retry.clone()).await.unwrap();
    assert_eq!(later.outcome, PutOutcome::Created);
    assert_eq!(later.message.id, retry.id.to_string());

    // An inbound de-duplication key, its window the TTL.
    let inbound = NewInbound {
        id: MessageId::generate(),
        platform: Platform::Telegram,
        vendor_channel_id: format!("chat-{}", MessageId::generate()),
        external_message_id: "update-1".to_owned(),
        sender_id: "42".to_owned(),
        sender_name: "Lan".to_owned(),
        text: "hello".to_owned(),
        at: Timestamp::now(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        dedup_window: TTL,
    };
    let redelivery = |inbound: &NewInbound| NewInbound {
        id: MessageId::generate(),
        ..inbound.clone()
    };
    let stored_first = store.put_inbound(inbound.clone()).await.unwrap();
    assert_eq!(stored_first.outcome, InboundOutcome::Stored);
    let dup = store.put_inbound(redelivery(&inbound)).await.unwrap();
    assert_eq!(dup.outcome, InboundOutcome::Duplicate);
    wait_until_gone(
        db,
        "SELECT message_id FROM inbound_keys WHERE platform = ? AND vendor_channel_id = ? \
         AND external_id = ?",
        ("telegram", inbound.vendor_channel_id.as_str(), "update-1"),
    )
    .await;
    let again = store.put_inbound(redelivery(&inbound)).await.unwrap();
    assert_eq!(
        again.outcome,
        InboundOutcome::Stored,
        "a new message once the key expired"
    );
    assert_ne!(again.message.id, stored_first.message.id);
    assert!(!again.channel_created, "in the channel the first one made");
    drop_keyspace(&store).await;
}

/// Waits (10 s at most) until the row `select` reads has expired.
async fn wait_until_gone(db: &Db, select: &str, key: impl SerializeRow + Clone) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let result = db.session.query_unpaged(select, key.clone()).await.unwrap();
        if first_row::<(String,)>(result, select).unwrap().is_none() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still there 10 s later: {select}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn every_statement_prepares_and_is_routed_to_its_partition() {
    let store = fresh_store(ScyllaStoreOptions::default()).await;
    for cql in ALL {
        let prepared = statements::prepare(&store.db.session, cql, Consistency::LocalSerial)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", cql.name));
        assert_eq!(
            prepared.get_variable_col_specs().len(),
            cql.text.matches('?').count(),
            "{}: the server binds every marker",
            cql.name
        );
        // Every statement names its whole partition key, so the driver can
        // send it straight to a replica that owns the partition.
        assert!(prepared.is_token_aware(), "{}: not routable by its key", cql.name);
        if let Some(selected) = cql
            .text
            .strip_prefix("SELECT ")
            .and_then(|rest| rest.split(" FROM ").next())
        {
            assert_eq!(
                prepared.get_current_result_set_col_specs().get().len(),
                selected.split(',').count(),
                "{}",
                cql.name
            );
        }
    }
    drop_keyspace(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_look_ups_find_what_they_should() {
    use DeliveryStatus::{Accepted, Delivered, Routed, Sent};
    let store = fresh_store(ScyllaStoreOptions {
        stuck_lookback: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    let now = Timestamp::now();
    let ago = |minutes: i64| Timestamp::from_micros(now.as_micros() - minutes * 60_000_000);
    let deadline = ago(5);
    let put_at = |minutes| put_new(&store, new_message(ago(minutes), None));

    // Five-minute buckets over the hour before the deadline, and either side.
    let too_old = put_at(70).await;
    let a1 = put_at(60).await;
    let a2 = put_at(30).await;
    let a3 = put_at(29).await;
    let recent = put_at(2).await;
    let r1 = put_at(40).await;
    let r2 = put_at(35).await;
    let sent = put_at(45).await;
    let hop = |id, status, minutes| change(id, status, ago(minutes), "test");
    store
        .apply_transitions(vec![
            hop(r1, Routed, 39),
            hop(r2, Routed, 34),
            hop(sent, Routed, 44),
            hop(sent, Sent, 43),
        ])
        .await
        .unwrap();
    store
        .claim_for_send(&[r2], "sidecar-a", std::time::Duration::from_secs(120))
        .await
        .unwrap();
    // What a crash leaves behind: a pending row of a message that moved on
    // (the write clearing it never ran), and one of a message never stored.
    let moved_on = stored(&store, sent).await;
    store.db.set_pending(Accepted, &moved_on, true).await.unwrap();
    let mut never_stored = sample_row();
    never_stored.message.id = MessageId::generate();
    never_stored.message.created_at = ago(50);
    store.db.set_pending(Accepted, &never_stored, true).await.unwrap();

    let ids = |messages: Vec<pb::Message>| -> Vec<MessageId> {
        messages.iter().map(|m| m.id.parse().unwrap()).collect()
    };
    let stuck = |status, limit| store.stuck_messages(status, deadline, limit);
    assert_eq!(
        ids(stuck(Accepted, 500).await.unwrap()),
        [a1, a2, a3],
        "ACCEPTED within the look-back before the deadline, oldest first; not {too_old} nor {recent}"
    );
    assert_eq!(ids(stuck(Accepted, 2).await.unwrap()), [a1, a2]);
    let pending_row = |row: &MessageRow| {
        let row = row.clone();
        let db = &store.db;
        async move {
            let result = db
                .execute(
                    &db.statements.pending,
                    (
                        "ACCEPTED",
                        buckets::pending_bucket(row.message.created_at),
                        row.message.created_at.as_micros() + 1,
                        100_i32,
                    ),
                    "pending",
                )
                .await
                .unwrap();
            errors::rows::<(i64, String)>(result, "pending_messages")
                .unwrap()
                .into_iter()
                .any(|(_, id)| id == row.message.id.to_string())
        }
    };
    assert!(
        !pending_row(&moved_on).await,
        "the look-up clears a moved-on message's row"
    );
    assert!(
        pending_row(&never_stored).await,
        "a message still being put keeps its row"
    );

    assert_eq!(
        ids(stuck(Routed, 500).await.unwrap()),
        [r1],
        "{r2} is claimed by a sidecar"
    );
    store.release_claims(&[r2], "sidecar-a").await.unwrap();
    assert_eq!(ids(stuck(Routed, 500).await.unwrap()), [r1, r2]);
    // A message moving on moves between the look-ups.
    store.apply_transitions(vec![hop(a1, Routed, 59)]).await.unwrap();
    assert_eq!(ids(stuck(Accepted, 500).await.unwrap()), [a2, a3]);
    assert_eq!(ids(stuck(Routed, 500).await.unwrap()), [a1, r1, r2]);
    // SENT to a platform that sends receipts waits on one: looked up too.
    assert_eq!(ids(stuck(Sent, 500).await.unwrap()), [sent]);
    assert!(matches!(
        stuck(Delivered, 500).await,
        Err(StoreError::Invalid { .. })
    ));
    drop_keyspace(&store).await;
}

#[tokio::test]
async fn a_key_remembered_for_decades_is_still_written() {
    // Cassandra refuses a TTL ending after 2038-01-19: a twenty-year window
    // is cut to end before it rather than failing every put.
    let store = fresh_store(ScyllaStoreOptions {
        idempotency_ttl: Duration::from_secs(20 * 365 * 24 * 3600),
        ..Default::default()
    })
    .await;
    let message = new_message(Timestamp::now(), Some("forever"));
    put_new(&store, message.clone()).await;
    let again = store
        .put_message(NewMessage {
            id: MessageId::generate(),
            ..message
        })
        .await
        .unwrap();
    assert_eq!(again.outcome, PutOutcome::Duplicate);
    drop_keyspace(&store).await;
}
