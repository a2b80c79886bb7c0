//! The Instagram adapter's configuration, from flags or environment
//! variables: the kit's [`AdapterArgs`] (`--api-base-url`, `--grpc-listen`,
//! …) and [`MetaArgs`] (`--access-token`, `--app-secret`, …), whose
//! environment names the platform (`CHAT4ALL_INSTAGRAM_ACCESS_TOKEN`) so a
//! mounted secret says whose it is. The defaults run on one machine against
//! the platform simulator, whose default Instagram token is
//! [`InstagramConfig::DEFAULT_ACCESS_TOKEN`] (not the Messenger page's: the
//! simulator tells the two platforms apart by it, as they share one path).

use chat4all_adapter::AdapterArgs;
use chat4all_adapter::meta::config::MetaArgs;

use crate::{INSTAGRAM, InstagramError};

/// How to reach Instagram messaging (the account's Send API) and where
/// to serve.
/// On one machine it listens on 50063 (gRPC) and 8063 (webhooks), where the
/// simulator posts. `Debug` hides the credentials.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    mut_arg("grpc_listen", |a| a.default_value("127.0.0.1:50063")),
    mut_arg("webhook_listen", |a| a.default_value("127.0.0.1:8063")),
    mut_arg("api_version", |a| a.env("CHAT4ALL_INSTAGRAM_API_VERSION")),
    mut_arg("access_token", |a| {
        a.env("CHAT4ALL_INSTAGRAM_ACCESS_TOKEN")
            .default_value(InstagramConfig::DEFAULT_ACCESS_TOKEN)
    }),
    mut_arg("app_secret", |a| a.env("CHAT4ALL_INSTAGRAM_APP_SECRET")),
    mut_arg("verify_token", |a| a.env("CHAT4ALL_INSTAGRAM_VERIFY_TOKEN")),
    mut_arg("sent_index_capacity", |a| a.env("CHAT4ALL_INSTAGRAM_SENT_INDEX_CAPACITY"))
)]
pub struct InstagramConfig {
    /// The Graph API's base URL (the simulator on one machine,
    /// https://graph.facebook.com in production), the listeners and limits.
    #[command(flatten)]
    pub serve: AdapterArgs,
    /// The Graph API version and the credentials.
    #[command(flatten)]
    pub meta: MetaArgs,
}

impl Default for InstagramConfig {
    fn default() -> Self {
        Self {
            serve: AdapterArgs::on_ports(50063, 8063),
            meta: MetaArgs::with_access_token(Self::DEFAULT_ACCESS_TOKEN),
        }
    }
}

impl InstagramConfig {
    /// The one-machine default access token.
    pub const DEFAULT_ACCESS_TOKEN: &'static str = "chat4all-dev-instagram-access-token";

    /// Refuses a configuration that could not work, before any port is
    /// bound.
    pub fn validate(&self) -> Result<(), InstagramError> {
        self.meta.validate(&INSTAGRAM, &self.serve)
    }

    /// Whether a credential is still the one-machine default.
    pub fn uses_dev_credentials(&self) -> bool {
        self.meta.uses_dev_credentials(Self::DEFAULT_ACCESS_TOKEN)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_adapter::testing::parse_flags;

    use super::*;

    #[test]
    fn flag_defaults_are_the_default() {
        let parsed = parse_flags::<InstagramConfig>(&["chat4all-instagram"]).unwrap();
        assert_eq!(parsed, InstagramConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            (
                parsed.serve.grpc_listen.port(),
                parsed.serve.webhook_listen.port()
            ),
            (50063, 8063)
        );
        let parsed = parse_flags::<InstagramConfig>(&["x", "--access-token=IGQV"]).unwrap();
        assert_eq!(parsed.meta.access_token.expose(), "IGQV");
        assert!(!format!("{parsed:?}").contains("IGQV"));
    }
}
