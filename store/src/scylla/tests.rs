//! The backend against servers.
//!
//! - The whole store contract against a real database: the cluster
//!   `CHAT4ALL_SCYLLA_NODES` names, else one Apache Cassandra node this test
//!   binary starts (see [`cluster`]). Each test runs in a keyspace of its
//!   own, dropped at the end.
//! - A smoke test through the real driver against `kassandra-tester`, an
//!   in-process CQL emulator: connecting with the configured profile, the
//!   migrations (twice), and rows written and read back with the backend's
//!   own statements and mapping. The emulator ignores `IF` conditions and
//!   TTLs, so nothing there is evidence about transactions or expiry: those
//!   are the real database's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chat4all_domain::{Platform, Recipient};
use chat4all_engines::{Cassandra, RunningCassandra};
use kassandra_tester::KassandraTester;
use kassandra_tester::kassandra::session::KassandraSession;
use scylla::serialize::row::SerializeRow;
use scylla::statement::Consistency;

use super::errors::first_row;
use super::rows::{ChannelRecord, HistoryRecord, MessageRecord, MessageRow, channel_insert_values};
use super::statements::{self, ALL};
use super::*;
use crate::stored_rows::{ChannelColumns, HistoryColumns};
use crate::{InboundOutcome, PutOutcome, TransitionOutcome};

/// The cluster the tests run against: the one `CHAT4ALL_SCYLLA_NODES`
/// names, else one Apache Cassandra node this test binary starts when a
/// test first asks and shares with the others (each test keeps to a
/// keyspace of its own). Failing to start it fails the test: nothing here
/// passes by skipping.
///
/// The node lives in a static, which is never dropped. It is stopped all
/// the same when this test binary exits, whichever way: its watchdog
/// (chat4all-engines) holds a pipe only this process writes to, and kills
/// the node and deletes its files when the pipe closes.
async fn cluster() -> Vec<String> {
    if let Some(nodes) = cluster_nodes() {
        return nodes;
    }
    static NODE: OnceLock<Result<RunningCassandra, String>> = OnceLock::new();
    let node = tokio::task::spawn_blocking(|| {
        NODE.get_or_init(|| {
            let node = Cassandra::default()
                .start_temporary()
                .map_err(|e| e.to_string())?;
            eprintln!(
                "Cassandra {} for the Scylla backend's tests on {}, up in {:?}",
                node.version(),
                node.contact_point(),
                node.started_in()
            );
            Ok(node)
        })
    })
    .await
    .unwrap();
    match node {
        Ok(node) => vec![node.contact_point().to_string()],
        Err(why) => panic!(
            "the Scylla backend's tests need a cluster: name one with CHAT4ALL_SCYLLA_NODES=host:port, \
             or let them start Apache Cassandra, which failed: {why}"
        ),
    }
}

/// The cluster named by `CHAT4ALL_SCYLLA_NODES`, if any.
fn cluster_nodes() -> Option<Vec<String>> {
    let nodes = std::env::var("CHAT4ALL_SCYLLA_NODES").ok()?;
    let nodes: Vec<String> = nodes
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    (!nodes.is_empty()).then_some(nodes)
}

/// A keyspace no other run uses.
fn unique_keyspace() -> String {
    format!("chat4all_test_{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scylla_store_honours_the_contract() {
    let nodes = cluster().await;
    let keyspace = unique_keyspace();
    let config = ScyllaConfig {
        nodes,
        keyspace: keyspace.clone(),
        ..Default::default()
    };
    // Told not to migrate, a store refuses a keyspace that is not there.
    let skipping = ScyllaStoreOptions {
        skip_migrations: true,
        ..Default::default()
    };
    assert!(matches!(
        ScyllaStore::connect(config.clone(), skipping.clone()).await,
        Err(StoreError::Unavailable(_))
    ));

    let store = ScyllaStore::connect(config.clone(), ScyllaStoreOptions::default())
        .await
        .unwrap();
    // Migrated once: a second run, and a store that skips migrating, find
    // the schema current.
    let again = migrate_schema(&config).await.unwrap();
    assert!(again.applied.is_empty(), "{again}");
    assert_eq!(again.current, schema::latest());
    ScyllaStore::connect(config, skipping).await.unwrap();

    crate::contract::run_all(Arc::new(store.clone())).await;

    store
        .db
        .session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await
        .unwrap();
}

fn sample_row() -> MessageRow {
    let mut row = MessageRow::try_from(MessageRecord {
        id: MessageId::generate().to_string(),
        conversation_id: "smoke-conversation".into(),
        recipient_platform: "whatsapp".into(),
        recipient_id: "15551234567".into(),
        body: "xin chào".into(),
        source: "api".into(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        sender_id: Some(String::new()),
        sender_name: Some(String::new()),
        status: "SENT".into(),
        created_at: 1_700_000_000_000_000,
        accepted_at: Some(1_700_000_000_000_000),
        routed_at: None,
        sent_at: Some(1_700_000_002_000_000),
        delivered_at: None,
        read_at: None,
        failed_at: None,
        platform_message_id: Some("wamid.smoke".into()),
        failure_code: None,
        failure_reason: None,
        version: 2,
    })
    .unwrap();
    row.message.recipient = Recipient::new(Platform::WhatsApp, "15551234567").unwrap();
    row
}

/// The smoke test's body: every step through the driver, with the
/// backend's own CQL.
async fn smoke(session: Session, config: ScyllaConfig) -> Result<(), StoreError> {
    let report = schema::migrate(&session, &config).await?;
    assert_eq!(report.applied, (1..=schema::latest()).collect::<Vec<_>>());
    let again = schema::migrate(&session, &config).await?;
    assert!(again.applied.is_empty(), "migrations run once: {again}");
    assert_eq!(again.current, schema::latest());
    schema::check_current(&session, &config).await?;

    let prepared = |name: &'static str| {
        let cql = ALL.iter().find(|c| c.name == name).unwrap();
        statements::prepare(&session, cql, Consistency::LocalSerial)
    };

    // A message row, written and read back into the same domain values.
    let row = sample_row();
    let id = row.message.id.to_string();
    session
        .execute_unpaged(&prepared("insert_message").await?, row.insert_values())
        .await
        .map_err(|e| errors::unavailable("insert", e))?;
    let read = session
        .execute_unpaged(&prepared("message").await?, (id.as_str(),))
        .await
        .map_err(|e| errors::unavailable("select", e))?;
    let record: MessageRecord = first_row(read, "messages")?.expect("the row just written");
    assert_eq!(MessageRow::try_from(record)?, row);
    let missing = session
        .execute_unpaged(&prepared("message").await?, (MessageId::generate().to_string(),))
        .await
        .map_err(|e| errors::unavailable("select", e))?;
    assert_eq!(first_row::<MessageRecord>(missing, "messages")?, None);

    // A history entry.
    session
        .execute_unpaged(
            &prepared("insert_history").await?,
            (
                id.as_str(),
                7_i64,
                uuid::Uuid::new_v4(),
                "SENT",
                5_i64,
                "sidecar",
                "APPLIED",
                "platform_message_id=wamid.smoke",
            ),
        )
        .await
        .map_err(|e| errors::unavailable("insert history", e))?;
    let read = session
        .execute_unpaged(&prepared("history").await?, (id.as_str(),))
        .await
        .map_err(|e| errors::unavailable("select history", e))?;
    let record = first_row::<HistoryRecord>(read, "status_history")?.unwrap();
    let entry = pb::StatusHistoryEntry::try_from(HistoryColumns::from(record))?;
    assert_eq!(entry.status, i32::from(pb::DeliveryStatus::Sent));
    assert_eq!(entry.recorded_at, Some(Timestamp::from_micros(7).into()));

    // A channel, its metadata a JSON object.
    let channel = pb::Channel {
        name: "Trần Thị B".into(),
        context: "item:1".into(),
        r#type: "buyer".into(),
        ..Default::default()
    };
    let record = ChannelColumns::new(
        "smoke-channel".into(),
        ("chotot", "42"),
        &channel,
        Timestamp::from_micros(9),
    );
    session
        .execute_unpaged(&prepared("insert_channel").await?, channel_insert_values(&record))
        .await
        .map_err(|e| errors::unavailable("insert channel", e))?;
    let read = session
        .execute_unpaged(&prepared("channel").await?, ("smoke-channel",))
        .await
        .map_err(|e| errors::unavailable("select channel", e))?;
    let back = ChannelColumns::from(first_row::<ChannelRecord>(read, "channels")?.unwrap());
    assert_eq!(back, record);
    assert!(back.same_fields(&channel)?);

    // A platform id, and a conversation's index row (type-checked against
    // the table by the driver).
    session
        .execute_unpaged(
            &prepared("insert_external_id").await?,
            ("whatsapp", "wamid.smoke", id.as_str()),
        )
        .await
        .map_err(|e| errors::unavailable("insert external id", e))?;
    let read = session
        .execute_unpaged(&prepared("external_id").await?, ("whatsapp", "wamid.smoke"))
        .await
        .map_err(|e| errors::unavailable("select external id", e))?;
    assert_eq!(first_row::<(String,)>(read, "external_ids")?, Some((id.clone(),)));
    let created_at = row.message.created_at;
    let bucket = buckets::conversation_bucket(created_at);
    session
        .execute_unpaged(
            &prepared("insert_conversation_message").await?,
            ("smoke-conversation", bucket, created_at.as_micros(), id.as_str()),
        )
        .await
        .map_err(|e| errors::unavailable("insert conversation row", e))?;
    // Not read back: the emulator takes no bind marker in LIMIT, which
    // every page read has. The contract reads pages on a cluster.
    Ok(())
}

#[tokio::test]
async fn the_driver_creates_the_schema_and_round_trips_rows_through_a_cql_server() {
    let outcome = std::sync::Mutex::new(None);
    KassandraTester::new(KassandraSession::new())
        .in_scope(|addr| {
            let outcome = &outcome;
            async move {
                let config = ScyllaConfig {
                    nodes: vec![addr.to_string()],
                    keyspace: "chat4all_smoke".into(),
                    ..Default::default()
                };
                config.validate().unwrap();
                // The emulator reports no peers, which the driver's wait for
                // schema agreement takes for an error; a cluster does not.
                let builder = session_builder(&config).auto_await_schema_agreement(false);
                let result = match build_session(builder, &config).await {
                    Ok(session) => smoke(session, config).await,
                    Err(e) => Err(e),
                };
                *outcome.lock().unwrap() = Some(result);
                Ok::<(), ()>(())
            }
        })
        .await
        .unwrap();
    let result = outcome.lock().unwrap().take().expect("the smoke test ran");
    result.unwrap();
}

// What only a real database shows: transactions racing through Paxos,
// keys expiring by their TTL, statements the server prepares, and the
// reconciler's look-ups over real partitions. Each test has a keyspace of
// its own, so it can expect exactly what it wrote.

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
        message: crate::MessageRef::Id(id),
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
    use DeliveryStatus::{Accepted, Routed, Sent};
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
    store.claim_for_send(&[r2], "sidecar-a").await.unwrap();
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
    assert!(matches!(stuck(Sent, 500).await, Err(StoreError::Invalid { .. })));
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
