//! The machinery every Rust platform adapter shares, written once so that a
//! platform is a small crate: a `config.rs`, a `client.rs` that calls the
//! platform, a `webhook.rs` that parses what it posts back, and an
//! implementation of [`PlatformAdapter`].
//!
//! # Layout
//! - [`PlatformAdapter`] (in [`platform`]): the small trait a platform crate
//!   implements: send one message, say how its webhooks are signed, parse
//!   them into [`pb::PlatformEvent`]s.
//! - [`grpc`]: the one generic server of the `Connector` gRPC contract over
//!   that trait, so every adapter answers the sidecar the same way.
//! - [`webhook`]: the HTTP side: signature first (on the raw bytes, in
//!   constant time), then parsing, then a bounded queue ([`events`]) that
//!   `StreamEvents` drains; the webhook is answered 200 only once the
//!   sidecar acked all its events as durable, 503 past the ack timeout or
//!   when the queue is full, so the platform redelivers instead of the
//!   adapter buffering without bound or losing what it answered for.
//! - [`webhook_server`]: those routes served to the internet with bounded
//!   time per client and a cap on clients ([`WebhookLimits`]).
//! - [`signature`]: HMAC-SHA256 and shared-token checks for webhooks.
//! - [`http_client`] and [`graph`]: the outbound HTTP client and the Graph API
//!   error mapping that WhatsApp, Messenger and Instagram share.
//! - [`meta`]: the Send API and `messaging` webhooks Messenger and Instagram
//!   share, so each of them is a descriptor and a config struct.
//! - `testing` (feature `test-util`): the harness adapters' tests share.
//! - [`args`]: the flags every adapter takes to reach its platform and to
//!   serve ([`AdapterArgs`]), flattened into each platform's config.
//! - [`server`]: `bind` both listeners, then `run` until a
//!   `CancellationToken` fires.
//!
//! The kit knows no platform: everything platform-specific arrives through
//! the trait.
//!
//! [`pb::PlatformEvent`]: chat4all_proto::v1::PlatformEvent

pub mod args;
pub mod error;
pub mod events;
pub mod graph;
pub mod grpc;
pub mod http_client;
pub mod meta;
pub mod platform;
pub mod process;
pub mod secret;
pub mod server;
pub mod signature;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod time;
pub mod webhook;
pub mod webhook_server;

pub use args::{AdapterArgs, InvalidArg};
pub use error::AdapterError;
pub use http_client::{HttpClientConfig, build_http_client, install_crypto_provider};
pub use platform::{Operation, PlatformAdapter, WebhookParseError, unsupported};
pub use secret::Secret;
pub use server::{BoundAdapter, ServeConfig, bind};
pub use signature::{SignatureError, SignatureScheme};
pub use webhook_server::WebhookLimits;

/// The path the webhook server answers on (POST events, GET verification).
pub const WEBHOOK_PATH: &str = "/webhook";
