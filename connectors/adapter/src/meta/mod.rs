//! What the Meta messaging platforms (Messenger, Instagram) share, written
//! once: the Send API call (`POST /{version}/me/messages`), our ids riding in
//! `message.metadata`, the `messaging` webhook events (inbound, `is_echo`
//! echoes, `delivery` and `read`), and the index of what we sent that turns
//! watermarks into receipts.
//!
//! A platform is a [`MetaPlatform`] value: its name, the webhook `object` it
//! posts, its capabilities (which also say whether `delivery` events exist)
//! and why it lacks the optional calls. [`MetaAdapter`] is the one
//! [`PlatformAdapter`](crate::PlatformAdapter) over any of them, so a new
//! Meta platform is a descriptor and a config struct, not a copy of this
//! module.
//!
//! # Layout
//! - [`settings`]: what every Meta platform is configured with, and its checks.
//! - [`config`]: [`MetaArgs`](config::MetaArgs), the flags a platform crate flattens.
//! - [`ours`]: our message id, conversation id and trace context in `metadata`.
//! - [`send`]: the Send API body and call.
//! - [`webhook`]: the `messaging` envelope into typed events.
//! - [`sent`]: the bounded in-memory index of sends, for watermarks.
//! - [`adapter`]: [`MetaAdapter`], tying them together.

pub mod adapter;
pub mod config;
pub mod ours;
pub mod send;
pub mod sent;
pub mod settings;
pub mod webhook;

use chat4all_proto::v1 as pb;

use crate::{AdapterError, Operation};

pub use adapter::MetaAdapter;
pub use ours::OurIds;
pub use settings::MetaSettings;

/// What makes one Meta messaging platform itself; everything else is shared.
#[derive(Debug, Clone, Copy)]
pub struct MetaPlatform {
    /// The name in recipients, topics and metrics: `messenger`.
    pub name: &'static str,
    /// The webhook envelope's `object`: `page` for Messenger, `instagram`.
    pub webhook_object: &'static str,
    /// What `Describe` answers. `delivery_receipts` also decides whether
    /// `delivery` events are turned into receipts.
    pub capabilities: pb::Capabilities,
    /// The longest `message.metadata` the platform carries back.
    pub max_metadata_len: usize,
    /// Why the platform lacks an optional call.
    pub unsupported_reason: fn(Operation) -> &'static str,
}

/// What can go wrong setting up a Meta adapter. A refusal by the platform
/// is not here: it is a `PlatformError` value the sidecar acts on.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("invalid {platform} configuration: {field} {reason}")]
    InvalidConfig {
        platform: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Adapter(#[from] AdapterError),
}
