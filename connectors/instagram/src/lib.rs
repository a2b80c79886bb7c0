//! The Instagram messaging adapter: text replies through the Graph API's
//! Send API and Instagram's `messaging` webhooks into inbound messages and
//! read receipts, served to the connector sidecar over the `Connector` gRPC
//! contract.
//!
//! Everything Instagram shares with Messenger (the Send API, the webhook
//! events, echoes, the index of sends) is the kit's
//! [`chat4all_adapter::meta`]; this crate is what makes Instagram itself:
//! the [`INSTAGRAM`] descriptor (webhook object `instagram`, read receipts
//! naming one `mid`, no delivery receipts at all, 2000 characters, 300
//! calls/s per account) and its flags ([`config`]).
//!
//! For composition in one process: [`bind`] (listeners open, addresses
//! known) then [`BoundAdapter::run`]; or [`run`] for both.

pub mod cli;
pub mod config;

pub use chat4all_adapter::BoundAdapter;
use chat4all_adapter::Operation;
pub use chat4all_adapter::meta::MetaError as InstagramError;
use chat4all_adapter::meta::MetaPlatform;
use chat4all_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

pub use config::InstagramConfig;

/// The platform's name in recipients, topics and metrics.
pub const PLATFORM: &str = "instagram";

/// Instagram as the shared Meta adapter sees it.
pub static INSTAGRAM: MetaPlatform = MetaPlatform {
    name: PLATFORM,
    webhook_object: "instagram",
    capabilities: pb::Capabilities {
        // Instagram sends no delivery receipts: a message goes from SENT
        // straight to READ, and Describe says so to the sidecar.
        delivery_receipts: false,
        read_receipts: true,
        channel_info: false,
        history: false,
        user_products: false,
        max_text_length: 2000,
        // 300 calls/s per account.
        default_rate_per_second: 300.0,
        send_echoes: true,
    },
    max_metadata_len: 1000,
    unsupported_reason,
};

fn unsupported_reason(operation: Operation) -> &'static str {
    match operation {
        Operation::ChannelInfo => "the adapter does not look up user profiles; ids arrive with messages",
        Operation::History => "the adapter reads no conversation history; messages arrive on webhooks",
        Operation::UserProducts => "Instagram messaging has no marketplace listings",
    }
}

/// Validates `config`, opens the gRPC and webhook listeners, and returns the
/// adapter ready to run. The error is an [`InstagramError`] (`downcast_ref`
/// tells a bad configuration from a port in use).
pub async fn bind(config: InstagramConfig) -> anyhow::Result<BoundAdapter> {
    config
        .meta
        .bind(&INSTAGRAM, &config.serve, InstagramConfig::DEFAULT_ACCESS_TOKEN)
        .await
}

/// [`bind`], then serve until `shutdown` fires.
pub async fn run(config: InstagramConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bind(config).await?.run(shutdown).await
}
