//! The WhatsApp adapter's configuration, from flags or environment
//! variables: the kit's [`AdapterArgs`] (`--api-base-url`, `--grpc-listen`,
//! …) and WhatsApp's own settings, whose environment names the platform
//! (`CHAT4ALL_WHATSAPP_ACCESS_TOKEN`) so a mounted secret says whose it is.
//! The defaults run on one machine against the platform simulator (its
//! default listen address and credentials), so `chat4all-whatsapp` with no
//! flags talks to `chat4all-simulator` with none.

use chat4all_adapter::{AdapterArgs, Secret};

use crate::WhatsAppError;

pub use chat4all_adapter::args::DEFAULT_API_BASE_URL;
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

/// How to reach WhatsApp and where to serve. The listen defaults are the
/// kit's own (WhatsApp's ports on one machine). `Debug` hides the
/// credentials ([`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct WhatsAppConfig {
    /// The Graph API's base URL (the simulator on one machine,
    /// https://graph.facebook.com in production), the listeners and limits.
    #[command(flatten)]
    pub serve: AdapterArgs,
    /// The Graph API version.
    #[arg(long, env = "CHAT4ALL_WHATSAPP_API_VERSION", default_value = DEFAULT_API_VERSION)]
    pub api_version: String,
    /// The business phone number id messages are sent from.
    #[arg(
        long,
        env = "CHAT4ALL_WHATSAPP_PHONE_NUMBER_ID",
        default_value = DEFAULT_PHONE_NUMBER_ID
    )]
    pub phone_number_id: String,
    /// The system-user access token (sent as a Bearer token).
    #[arg(
        long,
        env = "CHAT4ALL_WHATSAPP_ACCESS_TOKEN",
        hide_env_values = true,
        default_value = DEFAULT_ACCESS_TOKEN
    )]
    pub access_token: Secret,
    /// The app secret webhooks are signed with (`X-Hub-Signature-256`).
    #[arg(
        long,
        env = "CHAT4ALL_WHATSAPP_APP_SECRET",
        hide_env_values = true,
        default_value = DEFAULT_APP_SECRET
    )]
    pub app_secret: Secret,
    /// The token of the webhook subscription handshake (`hub.verify_token`).
    #[arg(
        long,
        env = "CHAT4ALL_WHATSAPP_VERIFY_TOKEN",
        hide_env_values = true,
        default_value = DEFAULT_VERIFY_TOKEN
    )]
    pub verify_token: Secret,
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        Self {
            serve: AdapterArgs::default(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            phone_number_id: DEFAULT_PHONE_NUMBER_ID.to_owned(),
            access_token: Secret::from(DEFAULT_ACCESS_TOKEN),
            app_secret: Secret::from(DEFAULT_APP_SECRET),
            verify_token: Secret::from(DEFAULT_VERIFY_TOKEN),
        }
    }
}

impl WhatsAppConfig {
    /// Refuses a configuration that could not work, before any port is bound.
    pub fn validate(&self) -> Result<(), WhatsAppError> {
        self.serve.validate()?;
        let invalid = |field: &'static str, reason: &str| {
            Err(WhatsAppError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
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
        Ok(())
    }

    /// Whether a credential is still the one-machine default: worth a
    /// warning anywhere but a developer's machine.
    pub fn uses_dev_credentials(&self) -> bool {
        self.access_token.expose() == DEFAULT_ACCESS_TOKEN || self.app_secret.expose() == DEFAULT_APP_SECRET
    }

    /// The send endpoint: `{base}/{version}/{phone-number-id}/messages`.
    pub fn messages_url(&self) -> String {
        format!(
            "{}/{}/{}/messages",
            self.serve.base_url(),
            self.api_version,
            self.phone_number_id
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
        let parsed = parse_flags::<WhatsAppConfig>(&["chat4all-whatsapp"]).unwrap();
        assert_eq!(parsed, WhatsAppConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            parsed.messages_url(),
            "http://127.0.0.1:9100/v21.0/100000000000001/messages"
        );
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let parsed = parse_flags::<WhatsAppConfig>(&[
            "x",
            "--api-base-url=https://graph.facebook.com/",
            "--request-timeout=250ms",
            "--phone-number-id=123",
        ])
        .unwrap();
        assert_eq!(parsed.serve.request_timeout, Duration::from_millis(250));
        assert_eq!(
            parsed.messages_url(),
            "https://graph.facebook.com/v21.0/123/messages"
        );
        assert!(parse_flags::<WhatsAppConfig>(&["x", "--request-timeout=soon"]).is_err());

        let bad = |config: WhatsAppConfig| match config.validate() {
            Err(WhatsAppError::InvalidConfig { field, .. }) => field,
            other => panic!("expected invalid config, got {other:?}"),
        };
        let base = WhatsAppConfig::default();
        assert_eq!(
            bad(WhatsAppConfig {
                serve: AdapterArgs {
                    api_base_url: "localhost:9100".into(),
                    ..base.serve.clone()
                },
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
                app_secret: Secret::default(),
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
