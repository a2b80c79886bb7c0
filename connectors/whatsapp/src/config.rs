//! The WhatsApp adapter's configuration, from flags or `CHAT4ALL_WHATSAPP_*`
//! environment variables. The defaults run on one machine against the
//! platform simulator (its default listen address and credentials), so
//! `chat4all-whatsapp` with no flags talks to `chat4all-simulator` with none.
//!
//! Flags carry a `whatsapp-` prefix because one process may host several
//! adapters (the one-machine mode) with their flags side by side.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chat4all_adapter::Secret;

use crate::WhatsAppError;

/// The simulator's default address.
pub const DEFAULT_API_BASE_URL: &str = "http://127.0.0.1:9100";
/// The Graph API version in every path.
pub const DEFAULT_API_VERSION: &str = "v21.0";
/// The simulator's default phone number id.
pub const DEFAULT_PHONE_NUMBER_ID: &str = "100000000000001";
/// The simulator's default access token: for one machine only.
pub const DEFAULT_ACCESS_TOKEN: &str = "chat4all-dev-access-token";
/// The simulator's default app secret: for one machine only.
pub const DEFAULT_APP_SECRET: &str = "chat4all-dev-app-secret";
/// The default webhook verify token: for one machine only.
pub const DEFAULT_VERIFY_TOKEN: &str = "chat4all-dev-verify-token";

/// How to reach WhatsApp and where to serve.
/// `Debug` is written by hand to hide the credentials.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct WhatsAppConfig {
    /// The Graph API's base URL (the simulator on one machine,
    /// https://graph.facebook.com in production).
    #[arg(
        long = "whatsapp-api-base-url",
        env = "CHAT4ALL_WHATSAPP_API_BASE_URL",
        default_value = DEFAULT_API_BASE_URL
    )]
    pub api_base_url: String,
    /// The Graph API version.
    #[arg(
        long = "whatsapp-api-version",
        env = "CHAT4ALL_WHATSAPP_API_VERSION",
        default_value = DEFAULT_API_VERSION
    )]
    pub api_version: String,
    /// The business phone number id messages are sent from.
    #[arg(
        long = "whatsapp-phone-number-id",
        env = "CHAT4ALL_WHATSAPP_PHONE_NUMBER_ID",
        default_value = DEFAULT_PHONE_NUMBER_ID
    )]
    pub phone_number_id: String,
    /// The system-user access token (sent as a Bearer token).
    #[arg(
        long = "whatsapp-access-token",
        env = "CHAT4ALL_WHATSAPP_ACCESS_TOKEN",
        hide_env_values = true,
        default_value = DEFAULT_ACCESS_TOKEN
    )]
    pub access_token: String,
    /// The app secret webhooks are signed with (`X-Hub-Signature-256`).
    #[arg(
        long = "whatsapp-app-secret",
        env = "CHAT4ALL_WHATSAPP_APP_SECRET",
        hide_env_values = true,
        default_value = DEFAULT_APP_SECRET
    )]
    pub app_secret: String,
    /// The token of the webhook subscription handshake (`hub.verify_token`).
    #[arg(
        long = "whatsapp-verify-token",
        env = "CHAT4ALL_WHATSAPP_VERIFY_TOKEN",
        hide_env_values = true,
        default_value = DEFAULT_VERIFY_TOKEN
    )]
    pub verify_token: String,
    /// Where the `Connector` gRPC service listens (for the sidecar).
    #[arg(
        long = "whatsapp-grpc-listen",
        env = "CHAT4ALL_WHATSAPP_GRPC_LISTEN",
        default_value = "127.0.0.1:50061"
    )]
    pub grpc_listen: SocketAddr,
    /// Where webhooks are received (for the platform).
    #[arg(
        long = "whatsapp-webhook-listen",
        env = "CHAT4ALL_WHATSAPP_WEBHOOK_LISTEN",
        default_value = "127.0.0.1:8061"
    )]
    pub webhook_listen: SocketAddr,
    /// How long one call to the platform may take (`10s`, `500ms`).
    #[arg(
        long = "whatsapp-request-timeout",
        env = "CHAT4ALL_WHATSAPP_REQUEST_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub request_timeout: Duration,
    /// How many webhook events wait for the sidecar before webhooks get 503.
    #[arg(
        long = "whatsapp-event-queue-capacity",
        env = "CHAT4ALL_WHATSAPP_EVENT_QUEUE_CAPACITY",
        default_value_t = 10_000
    )]
    pub event_queue_capacity: usize,
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            phone_number_id: DEFAULT_PHONE_NUMBER_ID.to_owned(),
            access_token: DEFAULT_ACCESS_TOKEN.to_owned(),
            app_secret: DEFAULT_APP_SECRET.to_owned(),
            verify_token: DEFAULT_VERIFY_TOKEN.to_owned(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50061)),
            webhook_listen: SocketAddr::from(([127, 0, 0, 1], 8061)),
            request_timeout: Duration::from_secs(10),
            event_queue_capacity: 10_000,
        }
    }
}

impl fmt::Debug for WhatsAppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppConfig")
            .field("api_base_url", &self.api_base_url)
            .field("api_version", &self.api_version)
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &Secret::from(self.access_token.as_str()))
            .field("app_secret", &Secret::from(self.app_secret.as_str()))
            .field("verify_token", &Secret::from(self.verify_token.as_str()))
            .field("grpc_listen", &self.grpc_listen)
            .field("webhook_listen", &self.webhook_listen)
            .field("request_timeout", &self.request_timeout)
            .field("event_queue_capacity", &self.event_queue_capacity)
            .finish()
    }
}

impl WhatsAppConfig {
    /// Refuses a configuration that could not work, before any port is bound.
    pub fn validate(&self) -> Result<(), WhatsAppError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(WhatsAppError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        match reqwest::Url::parse(&self.api_base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return invalid("api_base_url", "must be an http(s) URL"),
        }
        if self.api_version.is_empty() || self.api_version.contains(['/', '?', '#']) {
            return invalid("api_version", "must be a version such as v21.0");
        }
        if self.phone_number_id.is_empty() || !self.phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(
                "phone_number_id",
                "must be the numeric id of the business phone number",
            );
        }
        if self.access_token.is_empty() {
            return invalid("access_token", "is required");
        }
        if self.app_secret.is_empty() {
            return invalid(
                "app_secret",
                "is required: webhooks cannot be verified without it",
            );
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be more than zero");
        }
        if self.event_queue_capacity == 0 {
            return invalid("event_queue_capacity", "must be at least 1");
        }
        Ok(())
    }

    /// Whether a credential is still the one-machine default: worth a
    /// warning anywhere but a developer's machine.
    pub fn uses_dev_credentials(&self) -> bool {
        self.access_token == DEFAULT_ACCESS_TOKEN || self.app_secret == DEFAULT_APP_SECRET
    }

    /// The send endpoint: `{base}/{version}/{phone-number-id}/messages`.
    pub fn messages_url(&self) -> String {
        format!(
            "{}/{}/{}/messages",
            self.api_base_url.trim_end_matches('/'),
            self.api_version,
            self.phone_number_id
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
        config: WhatsAppConfig,
    }

    #[test]
    fn flag_defaults_are_the_default() {
        let parsed = Cli::try_parse_from(["chat4all-whatsapp"]).unwrap().config;
        assert_eq!(parsed, WhatsAppConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            parsed.messages_url(),
            "http://127.0.0.1:9100/v21.0/100000000000001/messages"
        );
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let parsed = Cli::try_parse_from([
            "x",
            "--whatsapp-api-base-url=https://graph.facebook.com/",
            "--whatsapp-request-timeout=250ms",
            "--whatsapp-phone-number-id=123",
        ])
        .unwrap()
        .config;
        assert_eq!(parsed.request_timeout, Duration::from_millis(250));
        assert_eq!(
            parsed.messages_url(),
            "https://graph.facebook.com/v21.0/123/messages"
        );
        assert!(Cli::try_parse_from(["x", "--whatsapp-request-timeout=soon"]).is_err());

        let bad = |config: WhatsAppConfig| match config.validate() {
            Err(WhatsAppError::InvalidConfig { field, .. }) => field,
            other => panic!("expected invalid config, got {other:?}"),
        };
        let base = WhatsAppConfig::default();
        assert_eq!(
            bad(WhatsAppConfig {
                api_base_url: "localhost:9100".into(),
                ..base.clone()
            }),
            "api_base_url"
        );
        assert_eq!(
            bad(WhatsAppConfig {
                phone_number_id: "12a".into(),
                ..base.clone()
            }),
            "phone_number_id"
        );
        assert_eq!(
            bad(WhatsAppConfig {
                app_secret: String::new(),
                ..base.clone()
            }),
            "app_secret"
        );
        assert_eq!(
            bad(WhatsAppConfig {
                api_version: "v1/x".into(),
                ..base
            }),
            "api_version"
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let shown = format!("{:?}", WhatsAppConfig::default());
        assert!(
            !shown.contains(DEFAULT_ACCESS_TOKEN) && !shown.contains(DEFAULT_APP_SECRET),
            "{shown}"
        );
    }
}
