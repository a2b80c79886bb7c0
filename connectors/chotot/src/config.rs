//! The Chotot adapter's configuration, from flags or environment
//! variables: the kit's [`AdapterArgs`] (`--api-base-url`, `--grpc-listen`,
//! …) and Chotot's own settings, whose environment names the platform
//! (`CHAT4ALL_CHOTOT_WEBHOOK_SECRET`) so a mounted secret says whose it is.
//! The defaults run on one machine against the platform simulator (its
//! default listen address, project, service name, sender and webhook
//! secret), so `chat4all-chotot` with no flags talks to `chat4all-simulator`
//! with none.

use chat4all_adapter::{AdapterArgs, Secret};

use crate::ChototError;

pub use chat4all_adapter::args::DEFAULT_API_BASE_URL;
/// The simulator's default `x-project-uuid`: for one machine only.
pub const DEFAULT_PROJECT_UUID: &str = "c4a11000-0000-4000-8000-000000000065";
/// The `Service` header: who calls chat-api's internal endpoints.
pub const DEFAULT_SERVICE: &str = "chat4all";
/// The simulator's default bot user, the sender of everything we send.
pub const DEFAULT_SENDER_ID: &str = "9000001";
/// The simulator's default webhook secret (`X-Chotot-Signature`): for one
/// machine only.
pub const DEFAULT_WEBHOOK_SECRET: &str = "chat4all-dev-chotot-webhook-secret";

/// How to reach Chotot's chat-api and where to serve. On one machine
/// Chotot listens on 50065 (gRPC) and 8065 (webhooks), where the simulator
/// posts. `Debug` hides the credentials ([`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    mut_arg("grpc_listen", |a| a.default_value("127.0.0.1:50065")),
    mut_arg("webhook_listen", |a| a.default_value("127.0.0.1:8065"))
)]
pub struct ChototConfig {
    /// chat-api's base URL (the simulator on one machine), the listeners
    /// and limits.
    #[command(flatten)]
    pub serve: AdapterArgs,
    /// Sent as `x-project-uuid` on every call: the project chat-api knows
    /// us by.
    #[arg(
        long,
        env = "CHAT4ALL_CHOTOT_PROJECT_UUID",
        hide_env_values = true,
        default_value = DEFAULT_PROJECT_UUID
    )]
    pub project_uuid: Secret,
    /// Sent as `Service` on every call.
    #[arg(long, env = "CHAT4ALL_CHOTOT_SERVICE", default_value = DEFAULT_SERVICE)]
    pub service: String,
    /// The Chotot user (the bot) our messages are sent as; its messages
    /// coming back as events are echoes, not inbound.
    #[arg(long, env = "CHAT4ALL_CHOTOT_SENDER_ID", default_value = DEFAULT_SENDER_ID)]
    pub sender_id: String,
    /// The secret events are signed with (`X-Chotot-Signature`).
    #[arg(
        long,
        env = "CHAT4ALL_CHOTOT_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = DEFAULT_WEBHOOK_SECRET
    )]
    pub webhook_secret: Secret,
}

impl Default for ChototConfig {
    fn default() -> Self {
        Self {
            serve: AdapterArgs::on_ports(50065, 8065),
            project_uuid: Secret::from(DEFAULT_PROJECT_UUID),
            service: DEFAULT_SERVICE.to_owned(),
            sender_id: DEFAULT_SENDER_ID.to_owned(),
            webhook_secret: Secret::from(DEFAULT_WEBHOOK_SECRET),
        }
    }
}

impl ChototConfig {
    /// Refuses a configuration that could not work, before any port is bound.
    pub fn validate(&self) -> Result<(), ChototError> {
        self.serve.validate()?;
        let invalid = |field: &'static str, reason: &str| {
            Err(ChototError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.project_uuid.expose().trim().is_empty() {
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
        Ok(())
    }

    /// Whether a credential is still the one-machine default: worth a
    /// warning anywhere but a developer's machine.
    pub fn uses_dev_credentials(&self) -> bool {
        self.project_uuid.expose() == DEFAULT_PROJECT_UUID
            || self.webhook_secret.expose() == DEFAULT_WEBHOOK_SECRET
    }

    /// `{base}/api/v1/internal/{path}`.
    pub fn internal_url(&self, path: &str) -> String {
        format!("{}/api/v1/internal/{path}", self.serve.base_url())
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
        let parsed = parse_flags::<ChototConfig>(&["chat4all-chotot"]).unwrap();
        assert_eq!(parsed, ChototConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            parsed.internal_url("messages"),
            "http://127.0.0.1:9100/api/v1/internal/messages"
        );
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let parsed = parse_flags::<ChototConfig>(&[
            "x",
            "--api-base-url=https://chat-api.internal/",
            "--sender-id=42",
            "--request-timeout=250ms",
        ])
        .unwrap();
        assert_eq!(parsed.serve.request_timeout, Duration::from_millis(250));
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
                serve: AdapterArgs {
                    api_base_url: "chat-api".into(),
                    ..base.serve.clone()
                },
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
                webhook_secret: Secret::default(),
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
