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
use chat4all_store::stored_rows::{ChannelColumns, HistoryColumns};
use chat4all_store::{InboundOutcome, PutOutcome, TransitionOutcome};

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

    chat4all_store::contract::run_all(Arc::new(store.clone())).await;

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

mod on_a_real_server;
