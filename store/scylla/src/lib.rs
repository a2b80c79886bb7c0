//! The ScyllaDB/Cassandra backend: the store of a scaled-out deployment.
//!
//! Shape, and why (docs/storage.md has the tables and the sizing):
//! - Every look-up names a partition: tables are written per query
//!   (messages by id, a conversation by week, waiting messages by five
//!   minutes, channels by id, by vendor key and in shards for listing), so
//!   nothing scans and nothing needs `ALLOW FILTERING`.
//! - The state machine is [`chat4all_domain::decide`], as in the embedded
//!   backend. A transition reads the message, decides, and writes with a
//!   lightweight transaction conditioned on the version it read; a loser
//!   reads again and decides again (`transitions`, `status_changes`).
//! - Uniqueness (a message id, an idempotency key, an inbound key, a
//!   channel's id and vendor key, a claim) is an `INSERT … IF NOT EXISTS`.
//!   A key is claimed before the message it names is written, and index
//!   rows go before the row they index, so a crash between two writes
//!   leaves a key or an index entry pointing at nothing (which readers skip
//!   and a retry repairs), never a message nobody can find.
//! - Statements are prepared once at connect; the driver routes each
//!   request to a replica of its partition (token-aware) in the configured
//!   datacenter, at the configured consistency.
//! - The schema is versioned CQL, applied at start-up or by
//!   `chat4all migrate schema` (`schema`).

mod awaiting;
mod buckets;
mod channels;
mod claims;
mod config;
mod conversations;
mod errors;
mod inbound;
mod messages;
mod overdue;
mod pending;
mod rows;
mod schema;
mod statements;
mod status_changes;
mod transitions;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Recipient, Timestamp};
use chat4all_proto::v1 as pb;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;

pub use self::config::{ConsistencyLevel, Replication, ScyllaConfig, ScyllaStoreOptions, SerialLevel};
pub use self::schema::MigrationReport;
use self::statements::Statements;
use chat4all_store::{
    ChannelPage, ClaimOutcome, InboundResult, MessageStore, NewInbound, NewMessage, Page, PlatformAnswer,
    PutChannelOutcome, PutResult, StatusChange, StoreError, TransitionResult,
};

/// The Scylla-backed [`MessageStore`]. Cheap to clone: clones share one
/// session (its connection pools) and the prepared statements.
#[derive(Clone)]
pub struct ScyllaStore {
    db: Arc<Db>,
}

/// What every operation works with.
struct Db {
    session: Session,
    statements: Statements,
    config: ScyllaConfig,
    options: ScyllaStoreOptions,
    clock: HistoryClock,
}

impl ScyllaStore {
    /// Connects, brings the keyspace to the latest schema (or, with
    /// `skip_migrations`, checks that it is there) and prepares every
    /// statement. Meant to run once at start-up.
    pub async fn connect(config: ScyllaConfig, options: ScyllaStoreOptions) -> Result<Self, StoreError> {
        config.validate()?;
        options.validate()?;
        let session = open_session(&config).await?;
        Self::start(session, config, options).await
    }

    /// Migrates (or checks) and prepares on a connected session.
    async fn start(
        session: Session,
        config: ScyllaConfig,
        options: ScyllaStoreOptions,
    ) -> Result<Self, StoreError> {
        if options.skip_migrations {
            schema::check_current(&session, &config).await?;
        } else {
            schema::migrate(&session, &config).await?;
        }
        let serial = config.serial_consistency.as_read_consistency();
        let statements = Statements::prepare(&session, serial).await?;
        tracing::info!(
            nodes = ?config.contact_points(),
            keyspace = %config.keyspace,
            consistency = ?config.consistency,
            "scylla store connected"
        );
        Ok(Self {
            db: Arc::new(Db {
                session,
                statements,
                config,
                options,
                clock: HistoryClock::default(),
            }),
        })
    }
}

/// Creates the keyspace if absent and applies the migrations it lacks, as
/// `chat4all migrate schema` does, without starting a store.
pub async fn migrate_schema(config: &ScyllaConfig) -> Result<MigrationReport, StoreError> {
    config.validate()?;
    let session = open_session(config).await?;
    schema::migrate(&session, config).await
}

fn session_builder(config: &ScyllaConfig) -> SessionBuilder {
    let mut builder = SessionBuilder::new()
        .known_nodes(config.contact_points())
        .default_execution_profile_handle(config.execution_profile())
        .connection_timeout(Duration::from_secs(5));
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        builder = builder.user(user, password);
    }
    builder
}

async fn open_session(config: &ScyllaConfig) -> Result<Session, StoreError> {
    build_session(session_builder(config), config).await
}

async fn build_session(builder: SessionBuilder, config: &ScyllaConfig) -> Result<Session, StoreError> {
    builder.build().await.map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot connect to scylla at {}: {e}",
            config.contact_points().join(",")
        ))
    })
}

impl Db {
    /// Runs a prepared statement whose answer fits one page (writes, and
    /// reads of one row or with a LIMIT).
    async fn execute(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        what: &str,
    ) -> Result<QueryResult, StoreError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| errors::unavailable(what, e))
    }

    /// Runs a conditional write: whether it applied.
    async fn transact(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        what: &str,
    ) -> Result<bool, StoreError> {
        let result = self.execute(statement, values, what).await?;
        errors::applied(result, what)
    }
}

/// Times history entries: never twice the same microsecond in one process,
/// so entries written one after another sort in that order, even within a
/// microsecond (`entry` only separates writers in different processes).
#[derive(Default)]
struct HistoryClock(AtomicI64);

impl HistoryClock {
    fn tick(&self) -> Timestamp {
        let now = Timestamp::now().as_micros();
        let previous = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .unwrap_or_else(|last| last);
        Timestamp::from_micros(now.max(previous.saturating_add(1)))
    }
}

impl fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("keyspace", &self.db.config.keyspace)
            .field("nodes", &self.db.config.nodes)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MessageStore for ScyllaStore {
    async fn put_message(&self, message: NewMessage) -> Result<PutResult, StoreError> {
        messages::put(&self.db, message).await
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<pb::Message>, StoreError> {
        messages::get(&self.db, id).await
    }

    async fn list_messages(
        &self,
        conversation: &ConversationId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        conversations::page(&self.db, conversation, before, limit).await
    }

    async fn apply_transitions(
        &self,
        changes: Vec<StatusChange>,
    ) -> Result<Vec<TransitionResult>, StoreError> {
        status_changes::apply_all(&self.db, &changes).await
    }

    async fn stuck_messages(
        &self,
        status: DeliveryStatus,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<pb::Message>, StoreError> {
        pending::stuck(&self.db, status, created_before, limit).await
    }

    async fn claim_for_send(
        &self,
        ids: &[MessageId],
        claimant: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        claims::claim(&self.db, ids, claimant, lease).await
    }

    async fn renew_claim(
        &self,
        id: MessageId,
        claimant: &str,
        lease: Duration,
        calling: bool,
    ) -> Result<bool, StoreError> {
        claims::renew(&self.db, id, claimant, lease, calling).await
    }

    async fn record_answer(&self, id: MessageId, answer: &PlatformAnswer) -> Result<(), StoreError> {
        claims::record_answer(&self.db, id, answer).await
    }

    async fn awaiting_receipt(
        &self,
        recipient: &Recipient,
        sent_up_to: Timestamp,
        short_of: DeliveryStatus,
        limit: u32,
    ) -> Result<Vec<MessageId>, StoreError> {
        let limit = chat4all_store::paging::page_size(limit);
        awaiting::awaiting(&self.db, recipient, sent_up_to, short_of, limit).await
    }

    async fn record_watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
        up_to: Timestamp,
    ) -> Result<(), StoreError> {
        awaiting::record_watermark(&self.db, recipient, status, up_to).await
    }

    async fn watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
    ) -> Result<Option<Timestamp>, StoreError> {
        awaiting::watermark(&self.db, recipient, status).await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        claims::acquire_lease(&self.db, name, holder, ttl).await
    }

    async fn release_claims(&self, ids: &[MessageId], claimant: &str) -> Result<(), StoreError> {
        claims::release(&self.db, ids, claimant).await
    }

    async fn mark_receipt_overdue(
        &self,
        ids: &[MessageId],
        deadline: Duration,
    ) -> Result<Vec<MessageId>, StoreError> {
        overdue::mark(&self.db, ids, deadline).await
    }

    async fn put_channel(
        &self,
        channel: pb::Channel,
    ) -> Result<(PutChannelOutcome, pb::Channel), StoreError> {
        channels::put(&self.db, channel).await
    }

    async fn get_channel(&self, id: &str) -> Result<Option<pb::Channel>, StoreError> {
        channels::get(&self.db, id).await
    }

    async fn find_channel(
        &self,
        vendor_name: &str,
        vendor_channel_id: &str,
    ) -> Result<Option<pb::Channel>, StoreError> {
        channels::find(&self.db, vendor_name, vendor_channel_id).await
    }

    async fn list_channels(
        &self,
        vendor_name: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<ChannelPage, StoreError> {
        channels::page(&self.db, vendor_name, after, limit).await
    }

    async fn put_inbound(&self, inbound: NewInbound) -> Result<InboundResult, StoreError> {
        inbound::put(&self.db, inbound).await
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn history_times_never_repeat_in_one_process() {
        let clock = HistoryClock::default();
        let ticks: Vec<_> = (0..1000).map(|_| clock.tick()).collect();
        assert!(ticks.windows(2).all(|w| w[0] < w[1]));
        let now = Timestamp::now();
        assert!(ticks[0] <= now && now.micros_since(ticks[0]) < 10_000_000);
    }
}
