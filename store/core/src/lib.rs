//! The MessageStore: the only owner of the schema. This crate is what
//! every side of it shares, and holds no database driver and no server.
//!
//! # Layout
//!
//! `store/` is a folder of crates, one job each:
//! - here (`store/core`): [`MessageStore`], what the services need from
//!   storage and no more; the values that cross it; the one conversion
//!   between a `StatusUpdate` and a [`StatusChange`], which the
//!   status-consumer and the gRPC client and server share; and the contract
//!   every backend honours (`contract`, behind the `test-util` feature);
//! - `chat4all-store-embedded`: the on-disk backend of the one-machine mode
//!   (SQLite);
//! - `chat4all-store-scylla`: the backend of a scaled-out deployment
//!   (ScyllaDB or Cassandra);
//! - `chat4all-store-grpc`: the `chat4all.v1.MessageStore` server over any
//!   [`SharedStore`], and `StoreClient`, the same trait over the wire, so a
//!   service holds an `Arc<dyn MessageStore>` and does not know which;
//! - `chat4all-store-server`: the `chat4all-store` binary, which serves
//!   either backend.
//!
//! A service links this crate and the gRPC one, so it carries neither SQLite
//! nor the Scylla driver. [`stored_rows`], [`paging`] and [`backend_rules`]
//! are for the backends: what they store, page and refuse alike.
//!
//! Every transition goes through [`chat4all_domain::decide`]: the backends
//! store, they do not judge.

pub mod backend_rules;
mod error;
mod message_cursor;
mod model;
pub mod paging;
mod status_update;
pub mod stored_rows;

#[cfg(any(test, feature = "test-util"))]
pub mod contract;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Recipient, Timestamp};
use chat4all_proto::v1 as pb;

pub use error::StoreError;
pub use message_cursor::MessageCursor;
pub use model::{
    ChannelPage, ClaimOutcome, InboundOutcome, InboundResult, MessageRef, NewInbound, NewMessage, Page,
    PlatformAnswer, PutChannelOutcome, PutOutcome, PutResult, StatusChange, TransitionOutcome,
    TransitionResult,
};
pub use status_update::{BadStatusUpdate, UNKNOWN_HOP};

/// A shared handle on whichever backend is configured.
pub type SharedStore = Arc<dyn MessageStore>;

#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores a new message as ACCEPTED (its timeline holds ACCEPTED at
    /// `created_at`, its history one APPLIED entry from hop `api-gateway`).
    /// When `idempotency_key` was seen before, nothing is written: the first
    /// message comes back as `Duplicate` if the request is the same
    /// (recipient, conversation, text), else as `KeyConflict`.
    async fn put_message(&self, message: NewMessage) -> Result<PutResult, StoreError>;

    /// The message with its timeline and full status history.
    async fn get_message(&self, id: MessageId) -> Result<Option<pb::Message>, StoreError>;

    /// A conversation's messages, newest first, `limit` at most, older than
    /// the cursor `before` (from a previous page's `next_cursor`). Messages in
    /// a page carry their timeline but not their history.
    async fn list_messages(
        &self,
        conversation: &ConversationId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page, StoreError>;

    /// Offers each change to the state machine, in order, and records every
    /// one in the status history whatever the decision. One result per
    /// change, in order. A change to SENT (or any change) that names a
    /// platform message id records it, so later receipts naming only that id
    /// find the message.
    async fn apply_transitions(
        &self,
        changes: Vec<StatusChange>,
    ) -> Result<Vec<TransitionResult>, StoreError>;

    /// Messages still in `status` that were created before `created_before`,
    /// oldest first, `limit` at most: what the reconciliation job
    /// re-publishes when a record was lost. A ROUTED message counts only
    /// while no sidecar holds a live claim on it: a live claim is a send in
    /// progress, and an expired one (its holder died, or recorded the
    /// answer and died before announcing it) needs its record again. SENT
    /// counts only on platforms that report receipts
    /// ([`Platform::reports_receipts`](chat4all_domain::Platform::reports_receipts)):
    /// elsewhere SENT is final, and those messages would crowd out the ones
    /// still waiting. Messages already marked overdue are still returned.
    async fn stuck_messages(
        &self,
        status: DeliveryStatus,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<pb::Message>, StoreError>;

    /// Claims each message for its one platform call, for `lease`: the
    /// first claim wins and every later one (a redelivered Kafka record) is
    /// `AlreadyClaimed` while the lease lives. A claim is taken just before
    /// the call, so it starts with a call in flight. Once the lease runs
    /// out, the next claimant gets `Answered` if the answer was recorded,
    /// `Uncertain` if a call was in flight, else `Claimed`.
    async fn claim_for_send(
        &self,
        ids: &[MessageId],
        claimant: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimOutcome>, StoreError>;

    /// Extends `claimant`'s claim on `id` by `lease` from now, and records
    /// whether a platform call is in flight (`calling`). False when the
    /// claim is not `claimant`'s any more: it must not call.
    async fn renew_claim(
        &self,
        id: MessageId,
        claimant: &str,
        lease: Duration,
        calling: bool,
    ) -> Result<bool, StoreError>;

    /// Keeps the platform's answer with the message's claim, whoever holds
    /// it now: the platform took the message, which no later claimant may
    /// forget. Written before SENT is announced.
    async fn record_answer(&self, id: MessageId, answer: &PlatformAnswer) -> Result<(), StoreError>;

    /// Messages to `recipient` that reached SENT at or before `sent_up_to`
    /// and are still short of `short_of` (DELIVERED or READ), oldest first,
    /// `limit` at most (0 means 50, at most 500): what a platform's
    /// watermark receipt covers, whichever replica sent them.
    async fn awaiting_receipt(
        &self,
        recipient: &Recipient,
        sent_up_to: Timestamp,
        short_of: DeliveryStatus,
        limit: u32,
    ) -> Result<Vec<MessageId>, StoreError>;

    /// Remembers that every message to `recipient` SENT at or before
    /// `up_to` reached `status` (DELIVERED or READ); the latest of each is
    /// kept. A message whose SENT is stored after its watermark was
    /// resolved is then caught up by [`watermark`](Self::watermark).
    async fn record_watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
        up_to: Timestamp,
    ) -> Result<(), StoreError>;

    /// The latest watermark recorded for `recipient` and `status`.
    async fn watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// Takes the named lease for `holder` for `ttl` from now, or keeps it:
    /// true when `holder` holds it now (it was free, expired, or already
    /// `holder`'s). One job of a kind at a time across replicas.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Creates the channel, or finds the one with the same vendor key
    /// (`vendor.name`, `vendor.channel_id`, both required): `Unchanged` when
    /// name, context, type and metadata are the same, else `Updated` with
    /// them replaced. A given `id` is kept (a migrated channel keeps its
    /// legacy id); an empty one gets a new id. Returns the stored channel.
    async fn put_channel(&self, channel: pb::Channel)
    -> Result<(PutChannelOutcome, pb::Channel), StoreError>;

    async fn get_channel(&self, id: &str) -> Result<Option<pb::Channel>, StoreError>;

    /// The channel with this vendor key.
    async fn find_channel(
        &self,
        vendor_name: &str,
        vendor_channel_id: &str,
    ) -> Result<Option<pb::Channel>, StoreError>;

    /// Channels in id order, `limit` at most (0 means 50, at most 500),
    /// after the cursor; only `vendor_name`'s when given.
    async fn list_channels(
        &self,
        vendor_name: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<ChannelPage, StoreError>;

    /// Stores what a platform user wrote, once, in one transaction:
    /// - a key `(platform, vendor_channel_id, external_message_id)` seen
    ///   within its window is `Duplicate` (nothing written; the first
    ///   message and its channel come back); an expired key counts as unseen,
    ///   and expired keys are purged as writes go, so they cost nothing;
    /// - the channel with vendor key `(platform, vendor_channel_id)` is found,
    ///   or created (named after the sender) with `channel_created`;
    /// - the message is stored with source `vendor:<platform>`, conversation
    ///   = the channel id, recipient = the vendor key, sender id and name,
    ///   status DELIVERED at `at` (never ACCEPTED: the reconciler must not
    ///   take it for an unsent message), platform message id = the external id.
    async fn put_inbound(&self, inbound: NewInbound) -> Result<InboundResult, StoreError>;

    /// Gives back `claimant`'s claims on messages it never sent to the
    /// platform (it was stopped first), so their redelivered records are
    /// claimed and sent again. A claim held by anyone else stays.
    async fn release_claims(&self, ids: &[MessageId], claimant: &str) -> Result<(), StoreError>;

    /// Marks each message whose receipt is overdue: still SENT, on a
    /// platform that reports receipts, more than `deadline` after its SENT.
    /// A message is marked once, with one history entry (hop `reconciler`,
    /// outcome NOTED, status SENT); its status does not change. Returns the
    /// ids marked by this call, in order: not those marked before, not those
    /// unknown or not overdue.
    async fn mark_receipt_overdue(
        &self,
        ids: &[MessageId],
        deadline: Duration,
    ) -> Result<Vec<MessageId>, StoreError>;
}
