//! The flags and environment every adapter takes to reach its platform and
//! to serve: [`AdapterArgs`], flattened into each platform's config struct.
//!
//! The names carry no platform prefix (`--grpc-listen`,
//! `CHAT4ALL_GRPC_LISTEN`): a standalone binary runs exactly one adapter,
//! and the one-machine system builds its configs in code. Credentials stay
//! in the platform's struct, their environment named after the platform, so
//! a secret mounted in a pod says whose it is.
//!
//! The defaults run on one machine against the platform simulator. Each
//! platform listens on its own ports there (the simulator posts its
//! webhooks to them), so a platform config overrides the listen defaults:
//! [`AdapterArgs::on_ports`] for `Default`, and `mut_arg` for the flags.

use std::net::SocketAddr;
use std::time::Duration;

use crate::{AdapterError, BoundAdapter, PlatformAdapter, ServeConfig, WebhookLimits};

/// The simulator's default address.
pub const DEFAULT_API_BASE_URL: &str = "http://127.0.0.1:9100";

/// Where a platform's API is and where its adapter serves.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AdapterArgs {
    /// The platform API's base URL (the simulator on one machine).
    #[arg(long, env = "CHAT4ALL_API_BASE_URL", default_value = DEFAULT_API_BASE_URL)]
    pub api_base_url: String,
    /// Where the `Connector` gRPC service listens (for the sidecar).
    #[arg(long, env = "CHAT4ALL_GRPC_LISTEN", default_value = "127.0.0.1:50061")]
    pub grpc_listen: SocketAddr,
    /// Where webhooks are received (for the platform).
    #[arg(long, env = "CHAT4ALL_WEBHOOK_LISTEN", default_value = "127.0.0.1:8061")]
    pub webhook_listen: SocketAddr,
    /// How long one call to the platform may take (`10s`, `500ms`).
    #[arg(
        long,
        env = "CHAT4ALL_REQUEST_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub request_timeout: Duration,
    /// How many webhook events wait for the sidecar before webhooks get 503.
    #[arg(long, env = "CHAT4ALL_EVENT_QUEUE_CAPACITY", default_value_t = 10_000)]
    pub event_queue_capacity: usize,
    /// How long a webhook waits for the sidecar to ack its events (durable
    /// in Kafka) before it answers 503 and the platform redelivers; well
    /// within the platform's patience (Meta's and Telegram's is ~20 s).
    #[arg(
        long,
        env = "CHAT4ALL_EVENT_ACK_TIMEOUT",
        default_value = "8s",
        value_parser = humantime::parse_duration
    )]
    pub event_ack_timeout: Duration,
    /// What the webhook server grants each client (`--webhook-*-timeout`,
    /// `--webhook-max-connections`).
    #[command(flatten)]
    pub webhook_limits: WebhookLimits,
}

impl Default for AdapterArgs {
    fn default() -> Self {
        Self::on_ports(50061, 8061)
    }
}

/// A setting [`AdapterArgs::validate`] refuses; each platform wraps it in
/// its own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidArg {
    /// The field, as named in the config struct.
    pub field: &'static str,
    /// Why it cannot work.
    pub reason: &'static str,
}

impl AdapterArgs {
    /// The defaults, listening on `127.0.0.1` at the given ports.
    pub fn on_ports(grpc_port: u16, webhook_port: u16) -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], grpc_port)),
            webhook_listen: SocketAddr::from(([127, 0, 0, 1], webhook_port)),
            request_timeout: Duration::from_secs(10),
            event_queue_capacity: 10_000,
            event_ack_timeout: crate::server::DEFAULT_EVENT_ACK_TIMEOUT,
            webhook_limits: WebhookLimits::default(),
        }
    }

    /// Refuses settings that could not work, before any port is bound.
    pub fn validate(&self) -> Result<(), InvalidArg> {
        let invalid = |field, reason| Err(InvalidArg { field, reason });
        match reqwest::Url::parse(&self.api_base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return invalid("api_base_url", "must be an http(s) URL"),
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be more than zero");
        }
        if self.event_queue_capacity == 0 {
            return invalid("event_queue_capacity", "must be at least 1");
        }
        if self.event_ack_timeout.is_zero() {
            return invalid("event_ack_timeout", "must be more than zero");
        }
        let limits = &self.webhook_limits;
        // Zero would cut every client off before its first byte.
        for (field, timeout) in [
            ("webhook_header_timeout", limits.header_timeout),
            ("webhook_body_timeout", limits.body_timeout),
            ("webhook_idle_timeout", limits.idle_timeout),
        ] {
            if timeout.is_zero() {
                return invalid(field, "must be more than zero");
            }
        }
        if limits.max_connections == 0 {
            return invalid("webhook_max_connections", "must be at least 1");
        }
        Ok(())
    }

    /// The base URL without a trailing `/`, to append paths to.
    pub fn base_url(&self) -> &str {
        self.api_base_url.trim_end_matches('/')
    }

    /// Where and how to serve.
    pub fn serve_config(&self) -> ServeConfig {
        ServeConfig {
            grpc_listen: self.grpc_listen,
            webhook_listen: self.webhook_listen,
            event_queue_capacity: self.event_queue_capacity,
            event_ack_timeout: self.event_ack_timeout,
            webhook_limits: self.webhook_limits,
            ..ServeConfig::default()
        }
    }

    /// Opens both listeners for `adapter`, warning first if it runs on the
    /// one-machine credentials (fine on a laptop, worth noticing anywhere
    /// else). A listen error comes back as the platform's error type `E`,
    /// so callers can `downcast_ref` it as before.
    pub async fn bind<A, E>(&self, adapter: A, dev_credentials: bool) -> anyhow::Result<BoundAdapter>
    where
        A: PlatformAdapter,
        E: From<AdapterError> + std::error::Error + Send + Sync + 'static,
    {
        if dev_credentials {
            tracing::warn!(
                platform = adapter.platform(),
                "using the one-machine default credentials"
            );
        }
        Ok(crate::bind(adapter, self.serve_config()).await.map_err(E::from)?)
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
        serve: AdapterArgs,
    }

    #[test]
    fn flag_defaults_are_the_default() {
        let parsed = Cli::try_parse_from(["x"]).unwrap().serve;
        assert_eq!(parsed, AdapterArgs::default());
        assert_eq!(parsed.validate(), Ok(()));
    }

    #[test]
    fn the_ack_timeout_comes_from_its_flag() {
        let parsed = Cli::try_parse_from(["x", "--event-ack-timeout=3s"])
            .unwrap()
            .serve;
        assert_eq!(parsed.serve_config().event_ack_timeout, Duration::from_secs(3));
    }

    #[test]
    fn webhook_limits_come_from_flags() {
        let parsed = Cli::try_parse_from([
            "x",
            "--webhook-header-timeout=2s",
            "--webhook-body-timeout=3s",
            "--webhook-idle-timeout=4s",
            "--webhook-max-connections=5",
        ])
        .unwrap()
        .serve;
        assert_eq!(
            parsed.serve_config().webhook_limits,
            WebhookLimits {
                header_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(4),
                max_connections: 5,
            }
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let field = |args: AdapterArgs| args.validate().map_err(|e| e.field);
        let base = AdapterArgs::default();
        assert_eq!(
            field(AdapterArgs {
                api_base_url: "localhost:9100".into(),
                ..base.clone()
            }),
            Err("api_base_url")
        );
        assert_eq!(
            field(AdapterArgs {
                request_timeout: Duration::ZERO,
                ..base.clone()
            }),
            Err("request_timeout")
        );
        assert_eq!(
            field(AdapterArgs {
                event_queue_capacity: 0,
                ..base.clone()
            }),
            Err("event_queue_capacity")
        );
        assert_eq!(
            field(AdapterArgs {
                event_ack_timeout: Duration::ZERO,
                ..base.clone()
            }),
            Err("event_ack_timeout")
        );
        let limits = |webhook_limits| {
            field(AdapterArgs {
                webhook_limits,
                ..base.clone()
            })
        };
        let default = WebhookLimits::default();
        assert_eq!(
            limits(WebhookLimits {
                header_timeout: Duration::ZERO,
                ..default
            }),
            Err("webhook_header_timeout")
        );
        assert_eq!(
            limits(WebhookLimits {
                body_timeout: Duration::ZERO,
                ..default
            }),
            Err("webhook_body_timeout")
        );
        assert_eq!(
            limits(WebhookLimits {
                idle_timeout: Duration::ZERO,
                ..default
            }),
            Err("webhook_idle_timeout")
        );
        assert_eq!(
            limits(WebhookLimits {
                max_connections: 0,
                ..default
            }),
            Err("webhook_max_connections")
        );
        assert!(Cli::try_parse_from(["x", "--request-timeout=soon"]).is_err());
        assert!(Cli::try_parse_from(["x", "--event-ack-timeout=soon"]).is_err());
        assert!(Cli::try_parse_from(["x", "--webhook-idle-timeout=soon"]).is_err());
    }
}
