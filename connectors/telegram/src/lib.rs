//! The Telegram Bot API adapter: sends text messages with `sendMessage` and
//! turns Telegram's webhook updates into inbound messages, served to the
//! connector sidecar over the `Connector` gRPC contract by the shared kit
//! ([`chat4all_adapter`]).
//!
//! Telegram has no delivery or read receipts: a message ends at SENT (or
//! FAILED), and `Describe` says so, so the sidecar never waits for one.
//! Webhooks are authenticated by the `setWebhook` secret echoed in
//! `X-Telegram-Bot-Api-Secret-Token` (the kit's shared-token scheme), and
//! a redelivered update is dropped by its `update_id`.
//!
//! # Layout
//! - [`config`]: flags and environment (the kit's, and `CHAT4ALL_TELEGRAM_*`).
//! - [`client`]: the send call and the mapping of Telegram's refusals.
//! - [`webhook`]: updates into events, and the window of seen `update_id`s.
//! - [`error`]: this crate's errors.
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
use chat4all_adapter::{Operation, PlatformAdapter, SignatureScheme, WebhookParseError};
use chat4all_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

pub use client::TelegramClient;
pub use config::TelegramConfig;
pub use error::TelegramError;
use webhook::UpdateWindow;

/// The platform's name in recipients, topics and metrics.
pub const PLATFORM: &str = "telegram";

/// The header Telegram echoes the `setWebhook` secret in (lowercase).
pub const SECRET_TOKEN_HEADER: &str = "x-telegram-bot-api-secret-token";

/// What Telegram offers: no receipts of any kind, texts up to 4096
/// characters, about 30 messages/s per bot overall (1/s per chat and 20/min
/// per group are finer limits the sidecar's retry on 429 absorbs).
pub fn capabilities() -> pb::Capabilities {
    pb::Capabilities {
        delivery_receipts: false,
        read_receipts: false,
        channel_info: false,
        history: false,
        user_products: false,
        max_text_length: 4096,
        default_rate_per_second: 30.0,
        send_echoes: false,
    }
}

/// The Telegram side of the kit's [`PlatformAdapter`].
#[derive(Debug)]
pub struct Telegram {
    client: TelegramClient,
    signature: SignatureScheme,
    seen: UpdateWindow,
}

impl Telegram {
    /// An adapter for `config`'s bot.
    pub fn new(config: &TelegramConfig) -> Result<Self, TelegramError> {
        config.validate()?;
        Ok(Self {
            client: TelegramClient::new(config)?,
            signature: SignatureScheme::SharedToken {
                header: SECRET_TOKEN_HEADER,
                token: config.webhook_secret.clone(),
            },
            seen: UpdateWindow::new(config.dedup_window),
        })
    }
}

#[async_trait]
impl PlatformAdapter for Telegram {
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
        let parsed = webhook::parse(body)?;
        if !self.seen.first_sighting(parsed.update_id) {
            metrics::counter!("chat4all_adapter_webhook_duplicates_total", "platform" => PLATFORM)
                .increment(1);
            tracing::debug!(
                update_id = parsed.update_id,
                "telegram update redelivered, dropped"
            );
            return Ok(Vec::new());
        }
        Ok(parsed.event.into_iter().collect())
    }

    fn webhook_not_queued(&self, body: &[u8]) {
        if let Some(id) = webhook::update_id(body) {
            self.seen.forget(id);
        }
    }

    fn unsupported_reason(&self, operation: Operation) -> &'static str {
        match operation {
            Operation::ChannelInfo => {
                "a bot reads chats only through getChat, which Chat4All does not use; names arrive with messages"
            }
            Operation::History => {
                "the Bot API keeps no history a bot can read; messages arrive only on webhooks"
            }
            Operation::UserProducts => "Telegram has no marketplace listings",
        }
    }
}

/// Validates `config`, opens the gRPC and webhook listeners, and returns the
/// adapter ready to run. The error is a [`TelegramError`] (`downcast_ref`
/// tells a bad configuration from a port in use).
pub async fn bind(config: TelegramConfig) -> anyhow::Result<BoundAdapter> {
    let adapter = Telegram::new(&config)?;
    config
        .serve
        .bind::<_, TelegramError>(adapter, config.uses_dev_credentials())
        .await
}

/// [`bind`], then serve until `shutdown` fires.
pub async fn run(config: TelegramConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bind(config).await?.run(shutdown).await
}
