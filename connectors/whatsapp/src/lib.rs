//! The WhatsApp Business Cloud API adapter: sends text messages through the
//! Graph API and turns WhatsApp's webhooks into receipts and inbound
//! messages, served to the connector sidecar over the `Connector` gRPC
//! contract by the shared kit ([`chat4all_adapter`]).
//!
//! # Layout
//! - [`config`]: flags and environment (the kit's, and `CHAT4ALL_WHATSAPP_*`).
//! - [`client`]: the send call.
//! - [`webhook`]: the webhook envelope into events.
//! - [`callback`]: our ids in `biz_opaque_callback_data`, so receipts name
//!   our message.
//! - [`error`]: this crate's errors and WhatsApp's codes.
//!
//! For composition in one process: [`bind`] (listeners open, addresses
//! known) then [`BoundAdapter::run`]; or [`run`] for both.

pub mod callback;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod webhook;

use async_trait::async_trait;
pub use chat4all_adapter::BoundAdapter;
use chat4all_adapter::{Operation, PlatformAdapter, Secret, SignatureScheme, WebhookParseError};
use chat4all_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

pub use client::WhatsAppClient;
pub use config::WhatsAppConfig;
pub use error::WhatsAppError;

/// The platform's name in recipients, topics and metrics.
pub const PLATFORM: &str = "whatsapp";

/// What WhatsApp offers: delivery and read receipts, texts up to 4096
/// characters, 80 messages/s per number by default.
pub fn capabilities() -> pb::Capabilities {
    pb::Capabilities {
        delivery_receipts: true,
        read_receipts: true,
        channel_info: false,
        history: false,
        user_products: false,
        max_text_length: 4096,
        default_rate_per_second: 80.0,
        send_echoes: false,
    }
}

/// The WhatsApp side of the kit's [`PlatformAdapter`].
#[derive(Debug)]
pub struct WhatsApp {
    client: WhatsAppClient,
    signature: SignatureScheme,
    verify_token: Secret,
}

impl WhatsApp {
    /// An adapter for `config`'s phone number.
    pub fn new(config: &WhatsAppConfig) -> Result<Self, WhatsAppError> {
        config.validate()?;
        Ok(Self {
            client: WhatsAppClient::new(config)?,
            signature: SignatureScheme::meta(config.app_secret.clone()),
            verify_token: config.verify_token.clone(),
        })
    }
}

#[async_trait]
impl PlatformAdapter for WhatsApp {
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

    fn webhook_verify_token(&self) -> Option<&Secret> {
        Some(&self.verify_token)
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<pb::PlatformEvent>, WebhookParseError> {
        webhook::parse(body)
    }

    fn unsupported_reason(&self, operation: Operation) -> &'static str {
        match operation {
            Operation::ChannelInfo => {
                "the Cloud API has no profile look-up; names arrive with inbound messages"
            }
            Operation::History => "the Cloud API keeps no message history; messages arrive only on webhooks",
            Operation::UserProducts => "WhatsApp has no marketplace listings",
        }
    }
}

/// Validates `config`, opens the gRPC and webhook listeners, and returns the
/// adapter ready to run. The error is a [`WhatsAppError`] (`downcast_ref`
/// tells a bad configuration from a port in use).
pub async fn bind(config: WhatsAppConfig) -> anyhow::Result<BoundAdapter> {
    let adapter = WhatsApp::new(&config)?;
    config
        .serve
        .bind::<_, WhatsAppError>(adapter, config.uses_dev_credentials())
        .await
}

/// [`bind`], then serve until `shutdown` fires.
pub async fn run(config: WhatsAppConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bind(config).await?.run(shutdown).await
}
