//! The Chotot chat-api adapter: sends text messages into Chotot marketplace
//! channels, reads a channel's history, its listing, and a user's listings,
//! and turns chat-api's message events into inbound messages, served to the
//! connector sidecar over the `Connector` gRPC contract by the shared kit
//! ([`chat4all_adapter`]). It is the vendor plan's Chotot vendor:
//! `SendMessage`, `ListMessages`, `GetChannelInfo`, `GetUserProducts`.
//!
//! A SendRequest's recipient is the Chotot channel id; messages go out as
//! one configured user (`sender_id`), and that user's messages coming back
//! as events are echoes, dropped so replies do not loop. chat-api has no
//! delivery or read receipts: `Describe` says so, and a message ends at
//! SENT.
//!
//! # Layout
//! - [`config`]: flags and environment (the kit's, and `CHAT4ALL_CHOTOT_*`).
//! - [`client`]: the chat-api calls and their wire shapes.
//! - [`webhook`]: message events into events, echoes dropped.
//! - [`error`]: this crate's errors, and their one mapping to `Status`.
//!
//! For composition in one process: [`bind`] (listeners open, addresses
//! known) then [`BoundAdapter::run`]; or [`run`] for both.

pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod webhook;

use async_trait::async_trait;
pub use chat4all_adapter::BoundAdapter;
use chat4all_adapter::{PlatformAdapter, SignatureScheme, WebhookParseError};
use chat4all_proto::v1 as pb;
use tokio_util::sync::CancellationToken;
use tonic::Status;

pub use client::ChototClient;
pub use config::ChototConfig;
pub use error::ChototError;

/// The platform's name in recipients, topics and metrics.
pub const PLATFORM: &str = "chotot";

/// The header chat-api's events are signed in (lowercase): the hex
/// HMAC-SHA256 of the raw body, no prefix.
pub const SIGNATURE_HEADER: &str = "x-chotot-signature";

/// What chat-api offers: no receipts, but history, channel documents and
/// users' listings.
///
/// No text limit is documented, so none is checked here (0): chat-api's
/// own 400 would be PERMANENT anyway. The default rate, 50 messages/s, is a
/// choice, not a published limit: chat-api is Chotot's internal service and
/// serves the marketplace's own users from the same capacity, so we stay
/// well under what a public platform allows (WhatsApp's 80/s) while leaving
/// room above a busy seller's burst; a 429 with `Retry-After` still slows
/// the sidecar down if that is too much.
pub fn capabilities() -> pb::Capabilities {
    pb::Capabilities {
        delivery_receipts: false,
        read_receipts: false,
        channel_info: true,
        history: true,
        user_products: true,
        max_text_length: 0,
        default_rate_per_second: 50.0,
        send_echoes: false,
    }
}

/// The Chotot side of the kit's [`PlatformAdapter`].
#[derive(Debug)]
pub struct Chotot {
    client: ChototClient,
    signature: SignatureScheme,
    sender_id: String,
}

impl Chotot {
    /// An adapter for `config`'s project and sender.
    pub fn new(config: &ChototConfig) -> Result<Self, ChototError> {
        config.validate()?;
        // At 0 from start-up: `increase()` over a series that appears at 1
        // misses its first echo.
        metrics::counter!("chat4all_echoes_total", "platform" => PLATFORM, "ours" => "true").increment(0);
        Ok(Self {
            client: ChototClient::new(config)?,
            signature: SignatureScheme::HmacSha256Hex {
                header: SIGNATURE_HEADER,
                prefix: "",
                secret: config.webhook_secret.clone(),
            },
            sender_id: config.sender_id.trim().to_owned(),
        })
    }
}

#[async_trait]
impl PlatformAdapter for Chotot {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn capabilities(&self) -> pb::Capabilities {
        capabilities()
    }

    async fn send(
        &self,
        request: &pb::SendRequest,
        traceparent: Option<&str>,
    ) -> Result<pb::SendAccepted, pb::PlatformError> {
        self.client.send_text(request, traceparent).await
    }

    fn webhook_signature(&self) -> &SignatureScheme {
        &self.signature
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<pb::PlatformEvent>, WebhookParseError> {
        webhook::parse(body, &self.sender_id)
    }

    async fn get_channel_info(&self, request: &pb::GetChannelInfoRequest) -> Result<pb::ChannelInfo, Status> {
        Ok(self.client.channel_info(request).await?)
    }

    async fn list_messages(
        &self,
        request: &pb::ConnectorListMessagesRequest,
    ) -> Result<pb::ConnectorListMessagesResponse, Status> {
        Ok(self.client.list_messages(request).await?)
    }

    async fn list_user_products(
        &self,
        request: &pb::ListUserProductsRequest,
    ) -> Result<pb::ListUserProductsResponse, Status> {
        Ok(self.client.user_products(request).await?)
    }
}

/// Validates `config`, opens the gRPC and webhook listeners, and returns the
/// adapter ready to run. The error is a [`ChototError`] (`downcast_ref`
/// tells a bad configuration from a port in use).
pub async fn bind(config: ChototConfig) -> anyhow::Result<BoundAdapter> {
    let adapter = Chotot::new(&config)?;
    config
        .serve
        .bind::<_, ChototError>(adapter, config.uses_dev_credentials())
        .await
}

/// [`bind`], then serve until `shutdown` fires.
pub async fn run(config: ChototConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bind(config).await?.run(shutdown).await
}
