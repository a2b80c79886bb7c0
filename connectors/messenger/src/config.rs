//! The Messenger adapter's configuration, from flags or environment
//! variables: the kit's [`AdapterArgs`] (`--api-base-url`, `--grpc-listen`,
//! …) and [`MetaArgs`] (`--access-token`, `--app-secret`, …), whose
//! environment names the platform (`CHAT4ALL_MESSENGER_ACCESS_TOKEN`) so a
//! mounted secret says whose it is. The defaults run on one machine against
//! the platform simulator, whose default page token is
//! [`MessengerConfig::DEFAULT_ACCESS_TOKEN`].

use chat4all_adapter::AdapterArgs;
use chat4all_adapter::meta::config::MetaArgs;

use crate::{MESSENGER, MessengerError};

/// How to reach Messenger (the page's Send API) and where to serve.
/// On one machine it listens on 50062 (gRPC) and 8062 (webhooks), where the
/// simulator posts. `Debug` hides the credentials.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    mut_arg("grpc_listen", |a| a.default_value("127.0.0.1:50062")),
    mut_arg("webhook_listen", |a| a.default_value("127.0.0.1:8062")),
    mut_arg("api_version", |a| a.env("CHAT4ALL_MESSENGER_API_VERSION")),
    mut_arg("access_token", |a| {
        a.env("CHAT4ALL_MESSENGER_ACCESS_TOKEN")
            .default_value(MessengerConfig::DEFAULT_ACCESS_TOKEN)
    }),
    mut_arg("app_secret", |a| a.env("CHAT4ALL_MESSENGER_APP_SECRET")),
    mut_arg("verify_token", |a| a.env("CHAT4ALL_MESSENGER_VERIFY_TOKEN")),
    mut_arg("sent_index_capacity", |a| a.env("CHAT4ALL_MESSENGER_SENT_INDEX_CAPACITY"))
)]
pub struct MessengerConfig {
    /// The Graph API's base URL (the simulator on one machine,
    /// https://graph.facebook.com in production), the listeners and limits.
    #[command(flatten)]
    pub serve: AdapterArgs,
    /// The Graph API version and the credentials.
    #[command(flatten)]
    pub meta: MetaArgs,
}

impl Default for MessengerConfig {
    fn default() -> Self {
        Self {
            serve: AdapterArgs::on_ports(50062, 8062),
            meta: MetaArgs::with_access_token(Self::DEFAULT_ACCESS_TOKEN),
        }
    }
}

impl MessengerConfig {
    /// The one-machine default access token.
    pub const DEFAULT_ACCESS_TOKEN: &'static str = "chat4all-dev-page-access-token";

    /// Refuses a configuration that could not work, before any port is
    /// bound.
    pub fn validate(&self) -> Result<(), MessengerError> {
        self.meta.validate(&MESSENGER, &self.serve)
    }

    /// Whether a credential is still the one-machine default.
    pub fn uses_dev_credentials(&self) -> bool {
        self.meta.uses_dev_credentials(Self::DEFAULT_ACCESS_TOKEN)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use chat4all_adapter::meta::MetaError;
    use chat4all_adapter::testing::parse_flags;

    use super::*;

    #[test]
    fn flag_defaults_are_the_default_and_flags_override() {
        let parsed = parse_flags::<MessengerConfig>(&["chat4all-messenger"]).unwrap();
        assert_eq!(parsed, MessengerConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(parsed.serve.grpc_listen.port(), 50062);
        assert_eq!(parsed.serve.webhook_listen.port(), 8062);
        assert_eq!(
            parsed.meta.settings(&parsed.serve).messages_url(),
            "http://127.0.0.1:9100/v21.0/me/messages"
        );

        let parsed = parse_flags::<MessengerConfig>(&[
            "x",
            "--api-base-url=https://graph.facebook.com/",
            "--request-timeout=250ms",
            "--access-token=EAAB",
        ])
        .unwrap();
        assert_eq!(parsed.serve.request_timeout, Duration::from_millis(250));
        assert_eq!(parsed.meta.access_token.expose(), "EAAB");
        assert!(
            !parsed.uses_dev_credentials() || parsed.meta.app_secret.expose() == "chat4all-dev-app-secret"
        );
        assert!(parse_flags::<MessengerConfig>(&["x", "--request-timeout=soon"]).is_err());

        let base = MessengerConfig::default();
        let bad = MessengerConfig {
            serve: AdapterArgs {
                api_base_url: "localhost:9100".into(),
                ..base.serve.clone()
            },
            ..base
        };
        assert!(matches!(
            bad.validate(),
            Err(MetaError::InvalidConfig {
                platform: "messenger",
                field: "api_base_url",
                ..
            })
        ));
    }

    #[test]
    fn debug_hides_credentials() {
        let shown = format!("{:?}", MessengerConfig::default());
        assert!(!shown.contains(MessengerConfig::DEFAULT_ACCESS_TOKEN), "{shown}");
        assert!(!shown.contains("chat4all-dev-app-secret"), "{shown}");
    }
}
