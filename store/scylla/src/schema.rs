//! The keyspace's tables, as versioned migrations, and how a cluster
//! reaches the latest version.
//!
//! Migration `n` takes the keyspace from version `n - 1` to `n`; which
//! ones ran is recorded in `schema_migrations`, one row per version, so a
//! store (or `chat4all migrate schema`) runs only the missing ones, in
//! order. Every statement is idempotent (`IF NOT EXISTS`): CQL has no
//! transactional DDL, so a migration cut short is simply run again. A
//! keyspace at a version newer than this build is refused rather than
//! half-understood. Never edit a migration that shipped: append another.
//!
//! Why each table is shaped as it is: docs/storage.md.

use std::collections::BTreeSet;

use scylla::client::session::Session;

use super::config::{Replication, ScyllaConfig};
use super::errors::{corrupt, unavailable};
use chat4all_store::StoreError;

/// One step of the schema.
#[derive(Debug)]
pub(super) struct Migration {
    pub(super) version: i32,
    pub(super) description: &'static str,
    pub(super) statements: &'static [&'static str],
}

/// Every migration, in order.
pub(super) const MIGRATIONS: &[Migration] = &[V1, V2, V3, V4];

/// The version this build reads and writes.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Tombstones of tables whose rows are deleted or expire are purged after
/// three hours rather than ten days: Scylla's default hint window is three
/// hours, and a row of these tables coming back after a missed repair is
/// harmless (a pending entry is re-checked against the message, an expired
/// key is expired again by its own TTL).
const V1: Migration = Migration {
    version: 1,
    description: "messages, history, conversations, reconciliation, claims, channels, keys",
    statements: &[
        // Times are microseconds since the epoch (`bigint`), as the domain
        // keeps them: CQL's `timestamp` has milliseconds only, and the
        // history's order within one millisecond matters.
        "CREATE TABLE IF NOT EXISTS messages (
            id text PRIMARY KEY,
            conversation_id text,
            recipient_platform text,
            recipient_id text,
            body text,
            source text,
            trace_id text,
            sender_id text,
            sender_name text,
            status text,
            created_at bigint,
            accepted_at bigint,
            routed_at bigint,
            sent_at bigint,
            delivered_at bigint,
            read_at bigint,
            failed_at bigint,
            platform_message_id text,
            failure_code text,
            failure_reason text,
            version bigint
        )",
        // Append-only; `entry` keeps two entries of one microsecond apart.
        "CREATE TABLE IF NOT EXISTS status_history (
            message_id text,
            recorded_at bigint,
            entry uuid,
            status text,
            at bigint,
            hop text,
            outcome text,
            detail text,
            PRIMARY KEY (message_id, recorded_at, entry)
        ) WITH CLUSTERING ORDER BY (recorded_at ASC, entry ASC)",
        // One partition per conversation and week: a busy conversation
        // grows new partitions instead of one without bound. The id breaks
        // ties between messages of one microsecond (as text: a UUIDv7's text
        // sorts by its creation).
        "CREATE TABLE IF NOT EXISTS conversation_messages (
            conversation_id text,
            bucket bigint,
            created_at bigint,
            message_id text,
            PRIMARY KEY ((conversation_id, bucket), created_at, message_id)
        ) WITH CLUSTERING ORDER BY (created_at DESC, message_id DESC)",
        // Which weeks of a conversation hold messages, newest first: paging
        // skips empty weeks without guessing.
        "CREATE TABLE IF NOT EXISTS conversation_buckets (
            conversation_id text,
            bucket bigint,
            PRIMARY KEY (conversation_id, bucket)
        ) WITH CLUSTERING ORDER BY (bucket DESC)",
        // Messages in ACCEPTED or ROUTED (and, from V4, SENT awaiting a
        // receipt), by status and five minutes of creation, oldest first;
        // a row goes when its message moves on.
        "CREATE TABLE IF NOT EXISTS pending_messages (
            status text,
            bucket bigint,
            created_at bigint,
            message_id text,
            PRIMARY KEY ((status, bucket), created_at, message_id)
        ) WITH CLUSTERING ORDER BY (created_at ASC, message_id ASC)
          AND gc_grace_seconds = 10800",
        "CREATE TABLE IF NOT EXISTS external_ids (
            platform text,
            external_id text,
            message_id text,
            PRIMARY KEY ((platform, external_id))
        )",
        // Written once each with a TTL, never updated but by a take-over:
        // time-window compaction drops whole expired SSTables.
        "CREATE TABLE IF NOT EXISTS idempotency_keys (
            idempotency_key text PRIMARY KEY,
            message_id text,
            written_at bigint
        ) WITH compaction = {'class': 'TimeWindowCompactionStrategy', \
          'compaction_window_unit': 'HOURS', 'compaction_window_size': 6}
          AND gc_grace_seconds = 10800",
        "CREATE TABLE IF NOT EXISTS claims (
            message_id text PRIMARY KEY,
            claimant text,
            claimed_at bigint
        )",
        // `metadata` is the channel's JSON object, as the API's Struct.
        "CREATE TABLE IF NOT EXISTS channels (
            id text PRIMARY KEY,
            vendor_name text,
            vendor_channel_id text,
            name text,
            context text,
            kind text,
            metadata text,
            created_at bigint
        )",
        "CREATE TABLE IF NOT EXISTS channels_by_vendor (
            vendor_name text,
            vendor_channel_id text,
            channel_id text,
            PRIMARY KEY ((vendor_name, vendor_channel_id))
        )",
        // Channel ids in order, per scope (`all`, or `vendor:<name>`), in a
        // fixed number of shards so no vendor makes one huge partition.
        "CREATE TABLE IF NOT EXISTS channel_listing (
            scope text,
            shard int,
            channel_id text,
            PRIMARY KEY ((scope, shard), channel_id)
        ) WITH CLUSTERING ORDER BY (channel_id ASC)",
        "CREATE TABLE IF NOT EXISTS inbound_keys (
            platform text,
            vendor_channel_id text,
            external_id text,
            message_id text,
            expires_at bigint,
            written_at bigint,
            PRIMARY KEY ((platform, vendor_channel_id, external_id))
        ) WITH compaction = {'class': 'TimeWindowCompactionStrategy', \
          'compaction_window_unit': 'HOURS', 'compaction_window_size': 6}
          AND gc_grace_seconds = 10800",
    ],
};

/// Claims become leases that say what their holder left (a call in
/// flight, the platform's answer), and named leases keep one job of a kind
/// running. New tables rather than new columns: `ALTER TABLE … ADD` cannot
/// be made idempotent on every cluster we support, and a migration cut
/// short must be safe to run again.
const V2: Migration = Migration {
    version: 2,
    description: "claim leases with the platform's answer, named leases",
    statements: &[
        "CREATE TABLE IF NOT EXISTS send_claims (
            message_id text PRIMARY KEY,
            claimant text,
            claimed_at bigint,
            lease_until bigint,
            calling boolean,
            answer_id text,
            answer_at bigint
        )",
        "CREATE TABLE IF NOT EXISTS leases (
            name text PRIMARY KEY,
            holder text,
            until bigint
        )",
    ],
};

/// The messages a platform's watermark receipt may cover: those SENT (or
/// DELIVERED) to a recipient, by when they were sent. A row leaves when its
/// message is READ or FAILED, and expires after a week regardless: a
/// watermark for a week-old send does not come.
const V3: Migration = Migration {
    version: 3,
    description: "messages awaiting a receipt, and watermarks, by recipient",
    statements: &[
        "CREATE TABLE IF NOT EXISTS awaiting_receipts (
            platform text,
            recipient_id text,
            sent_at bigint,
            message_id text,
            PRIMARY KEY ((platform, recipient_id), sent_at, message_id)
        ) WITH default_time_to_live = 604800
          AND gc_grace_seconds = 10800",
        // The latest watermark of each status first; older ones expire.
        "CREATE TABLE IF NOT EXISTS watermarks (
            platform text,
            recipient_id text,
            status text,
            up_to bigint,
            PRIMARY KEY ((platform, recipient_id, status), up_to)
        ) WITH CLUSTERING ORDER BY (up_to DESC)
          AND default_time_to_live = 604800
          AND gc_grace_seconds = 10800",
    ],
};

/// Messages whose receipt the reconciler found overdue, each marked once.
/// A table rather than a column of `messages` (see V2), written with
/// `IF NOT EXISTS` so two markers cannot both mark. No TTL: a mark that
/// expired would let a message still SENT be marked again. SENT messages
/// of platforms that report receipts also get `pending_messages` rows from
/// this version on; that needs no DDL (the status is part of the key), and
/// messages SENT before it are not looked at.
const V4: Migration = Migration {
    version: 4,
    description: "receipts overdue, marked once",
    statements: &["CREATE TABLE IF NOT EXISTS receipts_overdue (
            message_id text PRIMARY KEY,
            marked_at bigint
        )"],
};

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY,
    description text,
    applied_at bigint
)";
const APPLIED_VERSIONS: &str = "SELECT version FROM schema_migrations";
const RECORD_VERSION: &str =
    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)";

/// `CREATE KEYSPACE` for a validated config. `tablets`: the cluster is a
/// ScyllaDB that may place a network-topology keyspace on tablets, where
/// lightweight transactions are not supported; the keyspace asks for
/// vnodes instead. (SimpleStrategy keyspaces never use tablets, and
/// Cassandra knows no such option.)
pub(super) fn create_keyspace(config: &ScyllaConfig, tablets: bool) -> String {
    let vnodes = if tablets && config.replication == Replication::NetworkTopology {
        " AND tablets = {'enabled': false}"
    } else {
        ""
    };
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}{vnodes}",
        config.keyspace,
        config.replication_map()
    )
}

/// Whether the cluster knows tablets: only a ScyllaDB that does has the
/// `system.tablets` table (anything else answers with an error).
async fn knows_tablets(session: &Session) -> bool {
    session
        .query_unpaged("SELECT keyspace_name FROM system.tablets LIMIT 1", ())
        .await
        .is_ok()
}

/// The migrations still to run on a keyspace where `applied` ran, in order.
pub(super) fn pending(applied: &BTreeSet<i32>) -> Result<Vec<&'static Migration>, StoreError> {
    let latest = latest();
    if let Some(newer) = applied.iter().find(|v| **v > latest || **v < 1) {
        return Err(StoreError::Corrupt(format!(
            "the keyspace is at schema version {newer}, which this build does not know (1 to {latest})"
        )));
    }
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect())
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub keyspace: String,
    /// Versions applied by this run, in order.
    pub applied: Vec<i32>,
    /// The version the keyspace is at now.
    pub current: i32,
}

impl std::fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.applied.as_slice() {
            [] => write!(
                f,
                "keyspace {} is at schema version {}; nothing to do",
                self.keyspace, self.current
            ),
            applied => write!(
                f,
                "keyspace {}: applied {:?}; now at schema version {}",
                self.keyspace, applied, self.current
            ),
        }
    }
}

/// Creates the keyspace if absent, switches the session to it, and runs the
/// migrations it lacks. Each statement waits for schema agreement (the
/// driver's default), so the next one, or the first prepared statement,
/// never meets a node that has not seen the table yet.
pub(super) async fn migrate(session: &Session, config: &ScyllaConfig) -> Result<MigrationReport, StoreError> {
    let tablets = knows_tablets(session).await;
    session
        .query_unpaged(create_keyspace(config, tablets), ())
        .await
        .map_err(|e| unavailable("creating the keyspace", e))?;
    use_keyspace(session, config).await?;
    session
        .query_unpaged(CREATE_MIGRATIONS_TABLE, ())
        .await
        .map_err(|e| unavailable("creating schema_migrations", e))?;
    let applied = applied_versions(session).await?;
    let mut report = MigrationReport {
        keyspace: config.keyspace.clone(),
        applied: Vec::new(),
        current: applied.last().copied().unwrap_or(0),
    };
    for migration in pending(&applied)? {
        for statement in migration.statements {
            session
                .query_unpaged(*statement, ())
                .await
                .map_err(|e| unavailable(&format!("schema version {}", migration.version), e))?;
        }
        let now = chat4all_domain::Timestamp::now().as_micros();
        session
            .query_unpaged(RECORD_VERSION, (migration.version, migration.description, now))
            .await
            .map_err(|e| unavailable("recording the schema version", e))?;
        tracing::info!(
            keyspace = %config.keyspace,
            version = migration.version,
            "store schema migrated"
        );
        report.applied.push(migration.version);
        report.current = migration.version;
    }
    Ok(report)
}

/// For a store told not to migrate: the keyspace must already be current.
pub(super) async fn check_current(session: &Session, config: &ScyllaConfig) -> Result<(), StoreError> {
    use_keyspace(session, config).await?;
    let applied = applied_versions(session).await.map_err(|e| {
        StoreError::Unavailable(format!(
            "{e}; has `chat4all migrate schema` run on keyspace {}?",
            config.keyspace
        ))
    })?;
    let missing: Vec<i32> = pending(&applied)?.iter().map(|m| m.version).collect();
    if !missing.is_empty() {
        return Err(StoreError::Unavailable(format!(
            "keyspace {} lacks schema versions {missing:?}: run `chat4all migrate schema`",
            config.keyspace
        )));
    }
    Ok(())
}

async fn use_keyspace(session: &Session, config: &ScyllaConfig) -> Result<(), StoreError> {
    session
        .use_keyspace(config.keyspace.as_str(), false)
        .await
        .map_err(|e| StoreError::Unavailable(format!("using keyspace {}: {e}", config.keyspace)))
}

async fn applied_versions(session: &Session) -> Result<BTreeSet<i32>, StoreError> {
    let rows = session
        .query_unpaged(APPLIED_VERSIONS, ())
        .await
        .map_err(|e| unavailable("reading schema_migrations", e))?
        .into_rows_result()
        .map_err(|e| corrupt("schema_migrations", e))?;
    rows.rows::<(i32,)>()
        .map_err(|e| corrupt("schema_migrations", e))?
        .map(|row| row.map(|(v,)| v).map_err(|e| corrupt("schema_migrations", e)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one_without_gaps() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i32 + 1, "{}", migration.description);
            assert!(!migration.statements.is_empty());
        }
        assert_eq!(latest(), MIGRATIONS.len() as i32);
    }

    #[test]
    fn every_statement_can_run_twice() {
        for migration in MIGRATIONS {
            for statement in migration.statements {
                let upper = statement.to_ascii_uppercase();
                assert!(
                    upper.starts_with("CREATE TABLE IF NOT EXISTS ")
                        || upper.starts_with("CREATE TYPE IF NOT EXISTS ")
                        || upper.starts_with("CREATE INDEX IF NOT EXISTS "),
                    "v{}: not idempotent: {statement}",
                    migration.version
                );
                assert!(!upper.contains("ALLOW FILTERING"));
                assert!(!statement.contains(';'));
                // Unqualified: the session's keyspace is the configured one.
                assert!(!upper.contains("CHAT4ALL."), "{statement}");
            }
        }
    }

    #[test]
    fn only_the_missing_migrations_run_in_order() {
        let all: Vec<i32> = pending(&BTreeSet::new())
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(all, (1..=latest()).collect::<Vec<_>>());
        let done: BTreeSet<i32> = (1..=latest()).collect();
        assert!(pending(&done).unwrap().is_empty());
        for bad in [latest() + 1, 0, -3] {
            let applied: BTreeSet<i32> = [1, bad].into();
            assert!(matches!(pending(&applied), Err(StoreError::Corrupt(_))), "{bad}");
        }
    }

    #[test]
    fn the_keyspace_takes_the_configured_replication() {
        let config = ScyllaConfig {
            keyspace: "chat4all_eu".into(),
            replication: Replication::NetworkTopology,
            replication_factor: 3,
            datacenter: Some("dc1".into()),
            ..Default::default()
        };
        assert_eq!(
            create_keyspace(&config, false),
            "CREATE KEYSPACE IF NOT EXISTS chat4all_eu WITH replication = \
             {'class': 'NetworkTopologyStrategy', 'dc1': 3}"
        );
        // Transactions need vnodes where a ScyllaDB would pick tablets.
        assert_eq!(
            create_keyspace(&config, true),
            "CREATE KEYSPACE IF NOT EXISTS chat4all_eu WITH replication = \
             {'class': 'NetworkTopologyStrategy', 'dc1': 3} AND tablets = {'enabled': false}"
        );
        let simple = ScyllaConfig::default();
        assert_eq!(
            create_keyspace(&simple, true),
            "CREATE KEYSPACE IF NOT EXISTS chat4all WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
    }

    #[test]
    fn every_table_a_statement_uses_is_created() {
        let created: Vec<String> = MIGRATIONS
            .iter()
            .flat_map(|m| m.statements)
            .filter_map(|s| {
                s.strip_prefix("CREATE TABLE IF NOT EXISTS ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            })
            .collect();
        for cql in super::super::statements::ALL {
            let table = cql
                .text
                .split_whitespace()
                .skip_while(|w| !matches!(*w, "FROM" | "INTO" | "UPDATE"))
                .nth(1)
                .unwrap_or_else(|| panic!("{}: no table", cql.name));
            assert!(created.iter().any(|t| t == table), "{}: {table}", cql.name);
        }
    }
}
