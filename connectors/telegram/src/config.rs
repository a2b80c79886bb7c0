//! The Telegram adapter's configuration, from flags or `CHAT4ALL_TELEGRAM_*`
//! environment variables. The defaults run on one machine against the
//! platform simulator (its default listen address, bot token and webhook
//! secret), so `chat4all-telegram` with no flags talks to
//! `chat4all-simulator` with none.
//!
//! Flags carry a `telegram-` prefix because one process may host several
//! adapters (the one-machine mode) with their flags side by side.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chat4all_adapter::Secret;

use crate::TelegramError;

/// The simulator's default address.
pub const DEFAULT_API_BASE_URL: &str = "http://127.0.0.1:9100";
/// The simulator's default bot token (`<bot id>:<secret>`): for one machine only.
pub const DEFAULT_BOT_TOKEN: &str = "100000001:chat4all-dev-telegram-bot-token";
/// The simulator's default `setWebhook` secret token: for one machine only.
pub const DEFAULT_WEBHOOK_SECRET: &str = "chat4all-dev-telegram-webhook-secret";
/// How many recent `update_id`s are remembered to drop redeliveries.
pub const DEFAULT_DEDUP_WINDOW: usize = 10_000;

/// How to reach Telegram and where to serve.
/// `Debug` is written by hand to hide the credentials.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct TelegramConfig {
    /// The Bot API's base URL (the simulator on one machine,
    /// https://api.telegram.org in production).
    #[arg(
        long = "telegram-api-base-url",
        env = "CHAT4ALL_TELEGRAM_API_BASE_URL",
        default_value = DEFAULT_API_BASE_URL
    )]
    pub api_base_url: String,
    /// The bot token from @BotFather; it is part of every call's path.
    #[arg(
        long = "telegram-bot-token",
        env = "CHAT4ALL_TELEGRAM_BOT_TOKEN",
        hide_env_values = true,
        default_value = DEFAULT_BOT_TOKEN
    )]
    pub bot_token: String,
    /// The `secret_token` given to `setWebhook`; Telegram echoes it in
    /// `X-Telegram-Bot-Api-Secret-Token` on every webhook.
    #[arg(
        long = "telegram-webhook-secret",
        env = "CHAT4ALL_TELEGRAM_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = DEFAULT_WEBHOOK_SECRET
    )]
    pub webhook_secret: String,
    /// Where the `Connector` gRPC service listens (for the sidecar).
    #[arg(
        long = "telegram-grpc-listen",
        env = "CHAT4ALL_TELEGRAM_GRPC_LISTEN",
        default_value = "127.0.0.1:50064"
    )]
    pub grpc_listen: SocketAddr,
    /// Where webhooks are received (for the platform).
    #[arg(
        long = "telegram-webhook-listen",
        env = "CHAT4ALL_TELEGRAM_WEBHOOK_LISTEN",
        default_value = "127.0.0.1:8064"
    )]
    pub webhook_listen: SocketAddr,
    /// How long one call to the platform may take (`10s`, `500ms`).
    #[arg(
        long = "telegram-request-timeout",
        env = "CHAT4ALL_TELEGRAM_REQUEST_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub request_timeout: Duration,
    /// How many webhook events wait for the sidecar before webhooks get 503.
    #[arg(
        long = "telegram-event-queue-capacity",
        env = "CHAT4ALL_TELEGRAM_EVENT_QUEUE_CAPACITY",
        default_value_t = 10_000
    )]
    pub event_queue_capacity: usize,
    /// How many recent `update_id`s are remembered, to drop a redelivered
    /// update.
    #[arg(
        long = "telegram-dedup-window",
        env = "CHAT4ALL_TELEGRAM_DEDUP_WINDOW",
        default_value_t = DEFAULT_DEDUP_WINDOW
    )]
    pub dedup_window: usize,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            bot_token: DEFAULT_BOT_TOKEN.to_owned(),
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50064)),
            webhook_listen: SocketAddr::from(([127, 0, 0, 1], 8064)),
            request_timeout: Duration::from_secs(10),
            event_queue_capacity: 10_000,
            dedup_window: DEFAULT_DEDUP_WINDOW,
        }
    }
}

impl fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("api_base_url", &self.api_base_url)
            .field("bot_token", &Secret::from(self.bot_token.as_str()))
            .field("webhook_secret", &Secret::from(self.webhook_secret.as_str()))
            .field("grpc_listen", &self.grpc_listen)
            .field("webhook_listen", &self.webhook_listen)
            .field("request_timeout", &self.request_timeout)
            .field("event_queue_capacity", &self.event_queue_capacity)
            .field("dedup_window", &self.dedup_window)
            .finish()
    }
}

impl TelegramConfig {
    /// Refuses a configuration that could not work, before any port is bound.
    pub fn validate(&self) -> Result<(), TelegramError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(TelegramError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        match reqwest::Url::parse(&self.api_base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return invalid("api_base_url", "must be an http(s) URL"),
        }
        // The token is a path segment: anything that would change the path
        // would send it (and the message) somewhere else.
        if self.bot_token.is_empty() || self.bot_token.contains(['/', '?', '#', ' ']) {
            return invalid("bot_token", "must be the token from @BotFather (<id>:<secret>)");
        }
        // setWebhook's own rule for secret_token: 1-256 of A-Z a-z 0-9 _ -.
        let secret_ok = (1..=256).contains(&self.webhook_secret.len())
            && self
                .webhook_secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !secret_ok {
            return invalid(
                "webhook_secret",
                "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's secret_token rule)",
            );
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be more than zero");
        }
        if self.event_queue_capacity == 0 {
            return invalid("event_queue_capacity", "must be at least 1");
        }
        if self.dedup_window == 0 {
            return invalid("dedup_window", "must be at least 1");
        }
        Ok(())
    }

    /// Whether a credential is still the one-machine default: worth a
    /// warning anywhere but a developer's machine.
    pub fn uses_dev_credentials(&self) -> bool {
        self.bot_token == DEFAULT_BOT_TOKEN || self.webhook_secret == DEFAULT_WEBHOOK_SECRET
    }

    /// The URL of a Bot API method: `{base}/bot{token}/{method}`. It holds
    /// the token: never log it.
    pub fn method_url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.api_base_url.trim_end_matches('/'),
            self.bot_token
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: TelegramConfig,
    }

    #[test]
    fn flag_defaults_are_the_default() {
        let parsed = Cli::try_parse_from(["chat4all-telegram"]).unwrap().config;
        assert_eq!(parsed, TelegramConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            parsed.method_url("sendMessage"),
            format!("http://127.0.0.1:9100/bot{DEFAULT_BOT_TOKEN}/sendMessage")
        );
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let parsed = Cli::try_parse_from([
            "x",
            "--telegram-api-base-url=https://api.telegram.org/",
            "--telegram-request-timeout=250ms",
            "--telegram-bot-token=42:abc",
        ])
        .unwrap()
        .config;
        assert_eq!(parsed.request_timeout, Duration::from_millis(250));
        assert_eq!(
            parsed.method_url("sendMessage"),
            "https://api.telegram.org/bot42:abc/sendMessage"
        );

        let bad = |config: TelegramConfig| match config.validate() {
            Err(TelegramError::InvalidConfig { field, .. }) => field,
            other => panic!("expected invalid config, got {other:?}"),
        };
        let base = TelegramConfig::default();
        assert_eq!(
            bad(TelegramConfig {
                bot_token: "42:a/b".into(),
                ..base.clone()
            }),
            "bot_token"
        );
        assert_eq!(
            bad(TelegramConfig {
                webhook_secret: "has space".into(),
                ..base.clone()
            }),
            "webhook_secret"
        );
        assert_eq!(
            bad(TelegramConfig {
                dedup_window: 0,
                ..base
            }),
            "dedup_window"
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let shown = format!("{:?}", TelegramConfig::default());
        assert!(
            !shown.contains(DEFAULT_BOT_TOKEN) && !shown.contains(DEFAULT_WEBHOOK_SECRET),
            "{shown}"
        );
    }
}
