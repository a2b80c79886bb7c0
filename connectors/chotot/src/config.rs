//! The Chotot adapter's configuration, from flags or `CHAT4ALL_CHOTOT_*`
//! environment variables. The defaults run on one machine against the
//! platform simulator (its default listen address, project, service name,
//! sender and webhook secret), so `chat4all-chotot` with no flags talks to
//! `chat4all-simulator` with none.
//!
//! Flags carry a `chotot-` prefix because one process may host several
//! adapters (the one-machine mode) with their flags side by side.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chat4all_adapter::Secret;

use crate::ChototError;

/// The simulator's default address.
pub const DEFAULT_API_BASE_URL: &str = "http://127.0.0.1:9100";
/// The simulator's default `x-project-uuid`: for one machine only.
pub const DEFAULT_PROJECT_UUID: &str = "c4a11000-0000-4000-8000-000000000065";
/// The `Service` header: who calls chat-api's internal endpoints.
pub const DEFAULT_SERVICE: &str = "chat4all";
/// The simulator's default bot user, the sender of everything we send.
pub const DEFAULT_SENDER_ID: &str = "9000001";
/// The simulator's default webhook secret (`X-Chotot-Signature`): for one
/// machine only.
pub const DEFAULT_WEBHOOK_SECRET: &str = "chat4all-dev-chotot-webhook-secret";

/// How to reach Chotot's chat-api and where to serve.
/// `Debug` is written by hand to hide the credentials.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct ChototConfig {
    /// chat-api's base URL (the simulator on one machine).
    #[arg(
        long = "chotot-api-base-url",
        env = "CHAT4ALL_CHOTOT_API_BASE_URL",
        default_value = DEFAULT_API_BASE_URL
    )]
    pub api_base_url: String,
    /// Sent as `x-project-uuid` on every call: the project chat-api knows
    /// us by.
    #[arg(
        long = "chotot-project-uuid",
        env = "CHAT4ALL_CHOTOT_PROJECT_UUID",
        hide_env_values = true,
        default_value = DEFAULT_PROJECT_UUID
    )]
    pub project_uuid: String,
    /// Sent as `Service` on every call.
    #[arg(
        long = "chotot-service",
        env = "CHAT4ALL_CHOTOT_SERVICE",
        default_value = DEFAULT_SERVICE
    )]
    pub service: String,
    /// The Chotot user (the bot) our messages are sent as; its messages
    /// coming back as events are echoes, not inbound.
    #[arg(
        long = "chotot-sender-id",
        env = "CHAT4ALL_CHOTOT_SENDER_ID",
        default_value = DEFAULT_SENDER_ID
    )]
    pub sender_id: String,
    /// The secret events are signed with (`X-Chotot-Signature`).
    #[arg(
        long = "chotot-webhook-secret",
        env = "CHAT4ALL_CHOTOT_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = DEFAULT_WEBHOOK_SECRET
    )]
    pub webhook_secret: String,
    /// Where the `Connector` gRPC service listens (for the sidecar).
    #[arg(
        long = "chotot-grpc-listen",
        env = "CHAT4ALL_CHOTOT_GRPC_LISTEN",
        default_value = "127.0.0.1:50065"
    )]
    pub grpc_listen: SocketAddr,
    /// Where webhooks are received (for the platform).
    #[arg(
        long = "chotot-webhook-listen",
        env = "CHAT4ALL_CHOTOT_WEBHOOK_LISTEN",
        default_value = "127.0.0.1:8065"
    )]
    pub webhook_listen: SocketAddr,
    /// How long one call to the platform may take (`10s`, `500ms`).
    #[arg(
        long = "chotot-request-timeout",
        env = "CHAT4ALL_CHOTOT_REQUEST_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub request_timeout: Duration,
    /// How many webhook events wait for the sidecar before webhooks get 503.
    #[arg(
        long = "chotot-event-queue-capacity",
        env = "CHAT4ALL_CHOTOT_EVENT_QUEUE_CAPACITY",
        default_value_t = 10_000
    )]
    pub event_queue_capacity: usize,
}

impl Default for ChototConfig {
    fn default() -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            project_uuid: DEFAULT_PROJECT_UUID.to_owned(),
            service: DEFAULT_SERVICE.to_owned(),
            sender_id: DEFAULT_SENDER_ID.to_owned(),
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50065)),
            webhook_listen: SocketAddr::from(([127, 0, 0, 1], 8065)),
            request_timeout: Duration::from_secs(10),
            event_queue_capacity: 10_000,
        }
    }
}

impl fmt::Debug for ChototConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChototConfig")
            .field("api_base_url", &self.api_base_url)
            .field("project_uuid", &Secret::from(self.project_uuid.as_str()))
            .field("service", &self.service)
            .field("sender_id", &self.sender_id)
            .field("webhook_secret", &Secret::from(self.webhook_secret.as_str()))
            .field("grpc_listen", &self.grpc_listen)
            .field("webhook_listen", &self.webhook_listen)
            .field("request_timeout", &self.request_timeout)
            .field("event_queue_capacity", &self.event_queue_capacity)
            .finish()
    }
}

impl ChototConfig {
    /// Refuses a configuration that could not work, before any port is bound.
    pub fn validate(&self) -> Result<(), ChototError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(ChototError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        match reqwest::Url::parse(&self.api_base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return invalid("api_base_url", "must be an http(s) URL"),
        }
        if self.project_uuid.trim().is_empty() {
            return invalid("project_uuid", "is required: chat-api refuses calls without it");
        }
        if self.service.trim().is_empty() {
            return invalid("service", "is required: chat-api refuses calls without it");
        }
        if self.sender_id.trim().is_empty() {
            return invalid(
                "sender_id",
                "is required: messages are sent as that user, and its echoes recognised by it",
            );
        }
        if self.webhook_secret.is_empty() {
            return invalid(
                "webhook_secret",
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
        self.project_uuid == DEFAULT_PROJECT_UUID || self.webhook_secret == DEFAULT_WEBHOOK_SECRET
    }

    /// `{base}/api/v1/internal/{path}`.
    pub fn internal_url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/internal/{path}",
            self.api_base_url.trim_end_matches('/')
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
        config: ChototConfig,
    }

    #[test]
    fn flag_defaults_are_the_default() {
        let parsed = Cli::try_parse_from(["chat4all-chotot"]).unwrap().config;
        assert_eq!(parsed, ChototConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            parsed.internal_url("messages"),
            "http://127.0.0.1:9100/api/v1/internal/messages"
        );
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let parsed = Cli::try_parse_from([
            "x",
            "--chotot-api-base-url=https://chat-api.internal/",
            "--chotot-sender-id=42",
            "--chotot-request-timeout=250ms",
        ])
        .unwrap()
        .config;
        assert_eq!(parsed.request_timeout, Duration::from_millis(250));
        assert_eq!(parsed.sender_id, "42");
        assert_eq!(
            parsed.internal_url("messages"),
            "https://chat-api.internal/api/v1/internal/messages"
        );

        let bad = |config: ChototConfig| match config.validate() {
            Err(ChototError::InvalidConfig { field, .. }) => field,
            other => panic!("expected invalid config, got {other:?}"),
        };
        let base = ChototConfig::default();
        assert_eq!(
            bad(ChototConfig {
                api_base_url: "chat-api".into(),
                ..base.clone()
            }),
            "api_base_url"
        );
        assert_eq!(
            bad(ChototConfig {
                sender_id: " ".into(),
                ..base.clone()
            }),
            "sender_id"
        );
        assert_eq!(
            bad(ChototConfig {
                webhook_secret: String::new(),
                ..base
            }),
            "webhook_secret"
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let shown = format!("{:?}", ChototConfig::default());
        assert!(
            !shown.contains(DEFAULT_PROJECT_UUID) && !shown.contains(DEFAULT_WEBHOOK_SECRET),
            "{shown}"
        );
    }
}
