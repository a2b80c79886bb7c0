//! The flags and environment of a Meta messaging adapter: what Messenger
//! and Instagram add to the kit's [`AdapterArgs`], written once as
//! [`MetaArgs`] and flattened into each platform's config struct.
//!
//! The flags carry no platform prefix (a binary runs one adapter), but the
//! environment must name the platform (`CHAT4ALL_MESSENGER_ACCESS_TOKEN`) so
//! a secret mounted in a pod says whose it is. clap's derive cannot take a
//! name as a parameter, so [`MetaArgs`] declares no environment of its own:
//! each platform struct names it with `mut_arg`, as it sets its one-machine
//! access token and ports.
//!
//! The defaults run on one machine against the platform simulator: its
//! address, its credentials.

use super::{MetaError, MetaPlatform, MetaSettings};
use crate::{AdapterArgs, BoundAdapter, Secret};

/// The Graph API version in every path.
pub const DEFAULT_API_VERSION: &str = "v21.0";
/// The simulator's default app secret: for one machine only.
pub const DEFAULT_APP_SECRET: &str = "chat4all-dev-app-secret";
/// The default webhook verify token: for one machine only.
pub const DEFAULT_VERIFY_TOKEN: &str = "chat4all-dev-verify-token";
/// How many sends the watermark index remembers by default.
pub const DEFAULT_SENT_INDEX_CAPACITY: usize = 100_000;

/// What every Meta platform is configured with beyond [`AdapterArgs`].
/// `Debug` hides the credentials ([`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct MetaArgs {
    /// The Graph API version.
    #[arg(long, default_value = DEFAULT_API_VERSION)]
    pub api_version: String,
    /// The page or account access token (sent as `access_token`).
    // Empty unless the platform sets its own default: validation then
    // refuses it rather than sending another platform's token.
    #[arg(long, hide_env_values = true, default_value = "")]
    pub access_token: Secret,
    /// The app secret webhooks are signed with (`X-Hub-Signature-256`).
    #[arg(long, hide_env_values = true, default_value = DEFAULT_APP_SECRET)]
    pub app_secret: Secret,
    /// The token of the webhook subscription handshake (`hub.verify_token`).
    #[arg(long, hide_env_values = true, default_value = DEFAULT_VERIFY_TOKEN)]
    pub verify_token: Secret,
    /// How many sends are remembered to turn watermarks into receipts.
    #[arg(long, default_value_t = DEFAULT_SENT_INDEX_CAPACITY)]
    pub sent_index_capacity: usize,
}

impl MetaArgs {
    /// The one-machine defaults, with the platform's own access token.
    pub fn with_access_token(access_token: &str) -> Self {
        Self {
            api_version: DEFAULT_API_VERSION.to_owned(),
            access_token: Secret::from(access_token),
            app_secret: Secret::from(DEFAULT_APP_SECRET),
            verify_token: Secret::from(DEFAULT_VERIFY_TOKEN),
            sent_index_capacity: DEFAULT_SENT_INDEX_CAPACITY,
        }
    }

    /// The kit's view of this configuration.
    pub fn settings(&self, serve: &AdapterArgs) -> MetaSettings {
        MetaSettings {
            api_base_url: serve.api_base_url.clone(),
            api_version: self.api_version.clone(),
            access_token: self.access_token.clone(),
            app_secret: self.app_secret.clone(),
            verify_token: self.verify_token.clone(),
            request_timeout: serve.request_timeout,
            sent_index_capacity: self.sent_index_capacity,
        }
    }

    /// Refuses a configuration that could not work, before any port is
    /// bound.
    pub fn validate(&self, platform: &MetaPlatform, serve: &AdapterArgs) -> Result<(), MetaError> {
        serve.validate().map_err(|e| MetaError::InvalidConfig {
            platform: platform.name,
            field: e.field,
            reason: e.reason.to_owned(),
        })?;
        self.settings(serve).validate(platform)
    }

    /// Whether a credential is still the one-machine default (the
    /// platform's `access_token_default`): worth a warning anywhere but a
    /// developer's machine.
    pub fn uses_dev_credentials(&self, access_token_default: &str) -> bool {
        self.access_token.expose() == access_token_default || self.app_secret.expose() == DEFAULT_APP_SECRET
    }

    /// Validates, then binds `platform`'s adapter on `serve`'s ports.
    pub async fn bind(
        &self,
        platform: &'static MetaPlatform,
        serve: &AdapterArgs,
        access_token_default: &str,
    ) -> anyhow::Result<BoundAdapter> {
        self.validate(platform, serve)?;
        let adapter = super::MetaAdapter::new(platform, &self.settings(serve))?;
        serve
            .bind::<_, MetaError>(adapter, self.uses_dev_credentials(access_token_default))
            .await
    }
}
