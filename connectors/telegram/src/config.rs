//! The Telegram adapter's configuration, from flags or environment
//! variables: the kit's [`AdapterArgs`] (`--api-base-url`, `--grpc-listen`,
//! …) and Telegram's own settings, whose environment names the platform
//! (`CHAT4ALL_TELEGRAM_BOT_TOKEN`) so a mounted secret says whose it is.
//! The defaults run on one machine against the platform simulator (its
//! default listen address, bot token and webhook secret), so
//! `chat4all-telegram` with no flags talks to `chat4all-simulator` with none.

use chat4all_adapter::{AdapterArgs, Secret};

use crate::TelegramError;

pub use chat4all_adapter::args::DEFAULT_API_BASE_URL;
/// The simulator's default bot token (`<bot id>:<secret>`): for one machine only.
pub const DEFAULT_BOT_TOKEN: &str = "100000001:chat4all-dev-telegram-bot-token";
/// The simulator's default `setWebhook` secret token: for one machine only.
pub const DEFAULT_WEBHOOK_SECRET: &str = "chat4all-dev-telegram-webhook-secret";
/// How many recent `update_id`s are remembered to drop redeliveries.
pub const DEFAULT_DEDUP_WINDOW: usize = 10_000;

/// How to reach Telegram and where to serve. On one machine Telegram
/// listens on 50064 (gRPC) and 8064 (webhooks), where the simulator posts.
/// `Debug` hides the credentials ([`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    mut_arg("grpc_listen", |a| a.default_value("127.0.0.1:50064")),
    mut_arg("webhook_listen", |a| a.default_value("127.0.0.1:8064"))
)]
pub struct TelegramConfig {
    /// The Bot API's base URL (the simulator on one machine,
    /// https://api.telegram.org in production), the listeners and limits.
    #[command(flatten)]
    pub serve: AdapterArgs,
    /// The bot token from @BotFather; it is part of every call's path.
    #[arg(
        long,
        env = "CHAT4ALL_TELEGRAM_BOT_TOKEN",
        hide_env_values = true,
        default_value = DEFAULT_BOT_TOKEN
    )]
    pub bot_token: Secret,
    /// The `secret_token` given to `setWebhook`; Telegram echoes it in
    /// `X-Telegram-Bot-Api-Secret-Token` on every webhook.
    #[arg(
        long,
        env = "CHAT4ALL_TELEGRAM_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = DEFAULT_WEBHOOK_SECRET
    )]
    pub webhook_secret: Secret,
    /// How many recent `update_id`s are remembered, to drop a redelivered
    /// update.
    #[arg(long, env = "CHAT4ALL_TELEGRAM_DEDUP_WINDOW", default_value_t = DEFAULT_DEDUP_WINDOW)]
    pub dedup_window: usize,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            serve: AdapterArgs::on_ports(50064, 8064),
            bot_token: Secret::from(DEFAULT_BOT_TOKEN),
            webhook_secret: Secret::from(DEFAULT_WEBHOOK_SECRET),
            dedup_window: DEFAULT_DEDUP_WINDOW,
        }
    }
}

impl TelegramConfig {
    /// Refuses a configuration that could not work, before any port is bound.
    pub fn validate(&self) -> Result<(), TelegramError> {
        self.serve.validate()?;
        let invalid = |field: &'static str, reason: &str| {
            Err(TelegramError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        // The token is a path segment: anything that would change the path
        // would send it (and the message) somewhere else.
        if self.bot_token.is_empty() || self.bot_token.expose().contains(['/', '?', '#', ' ']) {
            return invalid("bot_token", "must be the token from @BotFather (<id>:<secret>)");
        }
        // setWebhook's own rule for secret_token: 1-256 of A-Z a-z 0-9 _ -.
        let secret = self.webhook_secret.expose();
        let secret_ok = (1..=256).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !secret_ok {
            return invalid(
                "webhook_secret",
                "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's secret_token rule)",
            );
        }
        if self.dedup_window == 0 {
            return invalid("dedup_window", "must be at least 1");
        }
        Ok(())
    }

    /// Whether a credential is still the one-machine default: worth a
    /// warning anywhere but a developer's machine.
    pub fn uses_dev_credentials(&self) -> bool {
        self.bot_token.expose() == DEFAULT_BOT_TOKEN || self.webhook_secret.expose() == DEFAULT_WEBHOOK_SECRET
    }

    /// The URL of a Bot API method: `{base}/bot{token}/{method}`. It holds
    /// the token: never log it.
    pub fn method_url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.serve.base_url(),
            self.bot_token.expose()
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use chat4all_adapter::testing::parse_flags;

    use super::*;

    #[test]
    fn flag_defaults_are_the_default() {
        let parsed = parse_flags::<TelegramConfig>(&["chat4all-telegram"]).unwrap();
        assert_eq!(parsed, TelegramConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            parsed.method_url("sendMessage"),
            format!("http://127.0.0.1:9100/bot{DEFAULT_BOT_TOKEN}/sendMessage")
        );
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let parsed = parse_flags::<TelegramConfig>(&[
            "x",
            "--api-base-url=https://api.telegram.org/",
            "--request-timeout=250ms",
            "--bot-token=42:abc",
        ])
        .unwrap();
        assert_eq!(parsed.serve.request_timeout, Duration::from_millis(250));
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
