//! The embedded backend: one SQLite file, for the one-machine mode.
//!
//! Shape, and why:
//! - One writer thread (`writer`) owns the only write connection and
//!   group-commits whatever is queued: the gateway puts messages from many
//!   concurrent requests, and one commit for many of them is what makes
//!   SQLite keep up. It also serialises every read-decide-write of a
//!   transition without locks.
//! - Reads go to a pool of read-only connections on tokio's blocking pool
//!   (`readers`); WAL mode lets them run beside the writer.
//! - Nothing here blocks the async runtime, except [`EmbeddedStore::open`],
//!   which is meant to run once at start-up.
//! - The file is versioned (`schema`) and survives a killed process:
//!   WAL with `synchronous=NORMAL` by default, `FULL` for power cuts.

mod claims;
mod db_error;
mod queries;
mod readers;
mod rows;
mod schema;
mod writer;
mod writes;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Recipient, Timestamp};
use chat4all_proto::v1 as pb;

use self::db_error::db_error;
use self::readers::Readers;
use self::writer::Writer;
use chat4all_store::paging;
use chat4all_store::{
    ChannelPage, ClaimOutcome, InboundResult, MessageCursor, MessageStore, NewInbound, NewMessage, Page,
    PlatformAnswer, PutChannelOutcome, PutResult, StatusChange, StoreError, TransitionResult,
};

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives a killed process; a power cut may lose the last commits.
    #[default]
    Normal,
    /// Survives a power cut too, at the price of an fsync per batch.
    Full,
}

/// How the embedded store runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// How hard each commit is pushed to disk.
    pub synchronous: Synchronous,
    /// Reads that may run at once, each on its own connection.
    pub readers: usize,
    /// The most writes committed together in one transaction.
    pub max_batch: usize,
    /// Writes that may wait for the writer before callers wait to queue.
    pub queue_depth: usize,
    /// How long a statement waits for a lock another process holds.
    pub busy_timeout: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            readers: 4,
            max_batch: 512,
            queue_depth: 4096,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite-backed [`MessageStore`]. Clones share one file, one writer
/// and one read pool; the writer stops once every clone is dropped (after
/// the writes queued before) or on [`EmbeddedStore::close`].
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Readers>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, creating its directory and
    /// migrating the schema. Blocking: call it at start-up, before serving,
    /// or through `spawn_blocking`.
    pub fn open(path: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = schema::open_writer(path, &options)?;
        schema::migrate(&mut conn)?;
        let writer = Writer::spawn(conn, options.max_batch, options.queue_depth)?;
        let readers = Arc::new(Readers::new(
            path.to_owned(),
            options.readers,
            options.busy_timeout,
        ));
        tracing::info!(path = %path.display(), synchronous = ?options.synchronous, "embedded store open");
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer,
                readers,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Commits the writes queued so far, refuses later ones, and returns
    /// once the writer has stopped. Reads keep working until the last clone
    /// is dropped.
    pub async fn close(&self) {
        self.inner.writer.close().await;
    }
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn put_message(&self, message: NewMessage) -> Result<PutResult, StoreError> {
        self.inner
            .writer
            .submit(move |conn| writes::put_message(conn, &message, Timestamp::now()))
            .await
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<pb::Message>, StoreError> {
        self.inner
            .readers
            .read(move |conn| {
                // One read transaction: the row and its history agree.
                let tx = conn.transaction().map_err(db_error)?;
                queries::message_by_id(&tx, &id)?
                    .map(|row| queries::full_message(&tx, row))
                    .transpose()
            })
            .await
    }

    async fn list_messages(
        &self,
        conversation: &ConversationId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let before = before.map(MessageCursor::decode).transpose()?;
        let conversation = conversation.clone();
        let limit = paging::page_size(limit);
        self.inner
            .readers
            .read(move |conn| queries::page(conn, &conversation, before, limit))
            .await
    }

    async fn stuck_messages(
        &self,
        status: DeliveryStatus,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<pb::Message>, StoreError> {
        let limit = paging::page_size(limit);
        self.inner
            .readers
            .read(move |conn| queries::stuck(conn, status, created_before, limit, Timestamp::now()))
            .await
    }

    async fn apply_transitions(
        &self,
        changes: Vec<StatusChange>,
    ) -> Result<Vec<TransitionResult>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.inner
            .writer
            .submit(move |conn| writes::apply_transitions(conn, &changes, Timestamp::now()))
            .await
    }

    async fn claim_for_send(
        &self,
        ids: &[MessageId],
        claimant: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        let claimant = claimant.to_owned();
        self.inner
            .writer
            .submit(move |conn| claims::claim_for_send(conn, &ids, &claimant, lease, Timestamp::now()))
            .await
    }

    async fn renew_claim(
        &self,
        id: MessageId,
        claimant: &str,
        lease: Duration,
        calling: bool,
    ) -> Result<bool, StoreError> {
        let claimant = claimant.to_owned();
        self.inner
            .writer
            .submit(move |conn| claims::renew_claim(conn, &id, &claimant, lease, calling, Timestamp::now()))
            .await
    }

    async fn record_answer(&self, id: MessageId, answer: &PlatformAnswer) -> Result<(), StoreError> {
        let answer = answer.clone();
        self.inner
            .writer
            .submit(move |conn| claims::record_answer(conn, &id, &answer))
            .await
    }

    async fn awaiting_receipt(
        &self,
        recipient: &Recipient,
        sent_up_to: Timestamp,
        short_of: DeliveryStatus,
        limit: u32,
    ) -> Result<Vec<MessageId>, StoreError> {
        let limit = paging::page_size(limit);
        let recipient = recipient.clone();
        self.inner
            .readers
            .read(move |conn| queries::awaiting_receipt(conn, &recipient, sent_up_to, short_of, limit))
            .await
    }

    async fn record_watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
        up_to: Timestamp,
    ) -> Result<(), StoreError> {
        let recipient = recipient.clone();
        self.inner
            .writer
            .submit(move |conn| claims::record_watermark(conn, &recipient, status, up_to))
            .await
    }

    async fn watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
    ) -> Result<Option<Timestamp>, StoreError> {
        let recipient = recipient.clone();
        self.inner
            .readers
            .read(move |conn| queries::watermark(conn, &recipient, status))
            .await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.inner
            .writer
            .submit(move |conn| claims::acquire_lease(conn, &name, &holder, ttl, Timestamp::now()))
            .await
    }

    async fn release_claims(&self, ids: &[MessageId], claimant: &str) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        let claimant = claimant.to_owned();
        self.inner
            .writer
            .submit(move |conn| claims::release_claims(conn, &ids, &claimant))
            .await
    }

    async fn mark_receipt_overdue(
        &self,
        ids: &[MessageId],
        deadline: Duration,
    ) -> Result<Vec<MessageId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.inner
            .writer
            .submit(move |conn| writes::mark_receipt_overdue(conn, &ids, deadline, Timestamp::now()))
            .await
    }

    async fn put_channel(
        &self,
        channel: pb::Channel,
    ) -> Result<(PutChannelOutcome, pb::Channel), StoreError> {
        // Refused before queueing: a bad request need not wait for the writer.
        chat4all_store::backend_rules::channel_vendor_key(&channel)?;
        self.inner
            .writer
            .submit(move |conn| writes::put_channel(conn, &channel, Timestamp::now()))
            .await
    }

    async fn get_channel(&self, id: &str) -> Result<Option<pb::Channel>, StoreError> {
        if id.is_empty() {
            return Ok(None);
        }
        let id = id.to_owned();
        self.inner
            .readers
            .read(move |conn| {
                queries::channel_by_id(conn, &id)?
                    .map(pb::Channel::try_from)
                    .transpose()
            })
            .await
    }

    async fn find_channel(
        &self,
        vendor_name: &str,
        vendor_channel_id: &str,
    ) -> Result<Option<pb::Channel>, StoreError> {
        let (vendor_name, vendor_channel_id) = (vendor_name.to_owned(), vendor_channel_id.to_owned());
        self.inner
            .readers
            .read(move |conn| {
                queries::channel_by_vendor(conn, &vendor_name, &vendor_channel_id)?
                    .map(pb::Channel::try_from)
                    .transpose()
            })
            .await
    }

    async fn list_channels(
        &self,
        vendor_name: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<ChannelPage, StoreError> {
        let after = after.map(paging::decode_key).transpose()?;
        let vendor_name = vendor_name.map(str::to_owned);
        let limit = paging::page_size(limit);
        self.inner
            .readers
            .read(move |conn| queries::channel_page(conn, vendor_name.as_deref(), after.as_deref(), limit))
            .await
    }

    async fn put_inbound(&self, inbound: NewInbound) -> Result<InboundResult, StoreError> {
        // Refused before queueing: a bad request need not wait for the writer.
        chat4all_store::backend_rules::check_inbound_key(&inbound)?;
        self.inner
            .writer
            .submit(move |conn| writes::put_inbound(conn, &inbound, Timestamp::now()))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use chat4all_domain::{DeliveryStatus, Platform, Recipient};

    use super::*;
    use chat4all_store::{MessageRef, PutOutcome, TransitionOutcome};

    fn message(conversation: &str, text: &str) -> NewMessage {
        NewMessage {
            id: MessageId::generate(),
            conversation_id: conversation.parse().unwrap(),
            recipient: Recipient::new(Platform::Telegram, "42").unwrap(),
            text: text.to_owned(),
            source: chat4all_domain::SOURCE_API.to_owned(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
            created_at: Timestamp::from_secs(1_700_000_000),
            idempotency_key: None,
        }
    }

    fn sent(id: MessageId, platform_id: &str) -> StatusChange {
        StatusChange {
            message: MessageRef::Id(id),
            status: DeliveryStatus::Sent,
            at: Timestamp::from_secs(1_700_000_001),
            hop: "sidecar".to_owned(),
            platform_message_id: Some(platform_id.to_owned()),
            failure: None,
        }
    }

    #[tokio::test]
    async fn creates_the_directory_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/store.db");
        let m = message("c-restart", "kept");
        {
            let store = EmbeddedStore::open(&path, EmbeddedOptions::default()).unwrap();
            store.put_message(m.clone()).await.unwrap();
            let results = store.apply_transitions(vec![sent(m.id, "tg-1")]).await.unwrap();
            assert_eq!(results[0].outcome, TransitionOutcome::Applied);
            assert_eq!(
                store
                    .claim_for_send(&[m.id], "sidecar-a", Duration::from_secs(60))
                    .await
                    .unwrap(),
                [ClaimOutcome::Claimed]
            );
            store.close().await;
            // After close, writes are refused rather than lost silently.
            assert!(matches!(
                store.put_message(message("c-restart", "late")).await,
                Err(StoreError::Unavailable(_))
            ));
        }
        let store = EmbeddedStore::open(&path, EmbeddedOptions::default()).unwrap();
        let got = store
            .get_message(m.id)
            .await
            .unwrap()
            .expect("message survives the restart");
        assert_eq!(got.status, i32::from(pb::DeliveryStatus::Sent));
        assert_eq!(got.platform_message_id, "tg-1");
        assert_eq!(got.history.len(), 2);
        assert_eq!(
            store
                .claim_for_send(&[m.id], "sidecar-b", Duration::from_secs(60))
                .await
                .unwrap(),
            [ClaimOutcome::AlreadyClaimed]
        );
        let by_external = MessageRef::External {
            platform: Platform::Telegram,
            external_id: "tg-1".into(),
        };
        let read = StatusChange {
            message: by_external,
            status: DeliveryStatus::Read,
            ..sent(m.id, "tg-1")
        };
        assert_eq!(
            store.apply_transitions(vec![read]).await.unwrap()[0].outcome,
            TransitionOutcome::Applied
        );
        let page = store
            .list_messages(&"c-restart".parse().unwrap(), None, 10)
            .await
            .unwrap();
        assert_eq!(
            page.messages.len(),
            1,
            "the write refused after close left nothing"
        );
    }

    #[tokio::test]
    async fn dropping_every_handle_keeps_what_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let m = message("c-drop", "kept");
        let store = EmbeddedStore::open(
            &path,
            EmbeddedOptions {
                synchronous: Synchronous::Full,
                ..Default::default()
            },
        )
        .unwrap();
        let shared: chat4all_store::SharedStore = Arc::new(store.clone());
        shared.put_message(m.clone()).await.unwrap();
        drop(shared);
        drop(store);
        let reopened = EmbeddedStore::open(&path, EmbeddedOptions::default()).unwrap();
        assert_eq!(
            reopened.get_message(m.id).await.unwrap().map(|g| g.text),
            Some("kept".to_owned())
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_puts_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.db"), EmbeddedOptions::default()).unwrap();
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut m = message("c-many", &format!("n{i}"));
                    m.idempotency_key = Some(format!("k{i}"));
                    store.put_message(m).await.map(|r| r.outcome)
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), PutOutcome::Created);
        }
        let mut seen = HashSet::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_messages(&"c-many".parse().unwrap(), cursor.as_deref(), 0)
                .await
                .unwrap();
            assert!(page.messages.len() <= paging::DEFAULT_PAGE_SIZE as usize);
            seen.extend(page.messages.into_iter().map(|m| m.text));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 300);
    }

    #[tokio::test]
    async fn refuses_a_file_from_a_newer_build() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(EmbeddedStore::open(&path, EmbeddedOptions::default()).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 1000).unwrap();
        drop(conn);
        assert!(matches!(
            EmbeddedStore::open(&path, EmbeddedOptions::default()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
