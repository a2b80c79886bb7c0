//! The Facebook Messenger adapter: text replies through the Send API and
//! Messenger's `messaging` webhooks into inbound messages and receipts,
//! served to the connector sidecar over the `Connector` gRPC contract.
//!
//! Everything Messenger shares with Instagram (the Send API, the webhook
//! events, echoes, the watermark index) is the kit's [`chat4all_adapter::meta`];
//! this crate is what makes Messenger itself: the [`MESSENGER`] descriptor
//! (webhook object `page`, delivery and read receipts by watermark, 2000
//! characters, 300 calls/s per page) and its flags ([`config`]).
//!
//! For composition in one process: [`bind`] (listeners open, addresses
//! known) then [`BoundAdapter::run`]; or [`run`] for both.

pub mod cli;
pub mod config;

pub use chat4all_adapter::BoundAdapter;
use chat4all_adapter::Operation;
pub use chat4all_adapter::meta::MetaError as MessengerError;
use chat4all_adapter::meta::MetaPlatform;
use chat4all_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

pub use config::MessengerConfig;

/// The platform's name in recipients, topics and metrics.
pub const PLATFORM: &str = "messenger";

/// Messenger as the shared Meta adapter sees it.
pub static MESSENGER: MetaPlatform = MetaPlatform {
    name: PLATFORM,
    webhook_object: "page",
    capabilities: pb::Capabilities {
        delivery_receipts: true,
        read_receipts: true,
        channel_info: false,
        history: false,
        user_products: false,
        // The Send API's documented limit for text.
        max_text_length: 2000,
        // 300 calls/s per page for text.
        default_rate_per_second: 300.0,
        send_echoes: true,
    },
    // The Send API's limit on `message.metadata`.
    max_metadata_len: 1000,
    unsupported_reason,
};

fn unsupported_reason(operation: Operation) -> &'static str {
    match operation {
        Operation::ChannelInfo => "the adapter does not look up user profiles; ids arrive with messages",
        Operation::History => "the Send API keeps no history the adapter reads; messages arrive on webhooks",
        Operation::UserProducts => "Messenger has no marketplace listings",
    }
}

/// Validates `config`, opens the gRPC and webhook listeners, and returns the
/// adapter ready to run. The error is a [`MessengerError`] (`downcast_ref`
/// tells a bad configuration from a port in use).
pub async fn bind(config: MessengerConfig) -> anyhow::Result<BoundAdapter> {
    config
        .meta
        .bind(&MESSENGER, &config.serve, MessengerConfig::DEFAULT_ACCESS_TOKEN)
        .await
}

/// [`bind`], then serve until `shutdown` fires.
pub async fn run(config: MessengerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bind(config).await?.run(shutdown).await
}
