//! The flags and environment of a Meta messaging adapter, written once as
//! [`meta_config!`](crate::meta_config): every Meta platform takes the same
//! settings, and only the names differ (`--messenger-…`,
//! `CHAT4ALL_INSTAGRAM_…`) because one process may host several adapters
//! with their flags side by side. clap's derive cannot take a prefix as a
//! parameter, so a macro stamps out the struct rather than each platform
//! crate carrying a copy of it.
//!
//! The defaults run on one machine against the platform simulator: its
//! address, its credentials.

use std::time::Duration;

use super::{MetaPlatform, MetaSettings};
use crate::{Secret, ServeConfig};

/// The simulator's default address.
pub const DEFAULT_API_BASE_URL: &str = "http://127.0.0.1:9100";
/// The Graph API version in every path.
pub const DEFAULT_API_VERSION: &str = "v21.0";
/// The simulator's default app secret: for one machine only.
pub const DEFAULT_APP_SECRET: &str = "chat4all-dev-app-secret";
/// The default webhook verify token: for one machine only.
pub const DEFAULT_VERIFY_TOKEN: &str = "chat4all-dev-verify-token";
/// How many sends the watermark index remembers by default.
pub const DEFAULT_SENT_INDEX_CAPACITY: usize = 100_000;

/// Parses `10s`, `500ms` (the macro's `request_timeout` flag), as the
/// other adapters' flags do.
pub fn parse_duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// The fields every generated config struct has, for the shared
/// conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaConfigParts {
    pub settings: MetaSettings,
    pub serve: ServeConfig,
    pub access_token_default: &'static str,
}

impl MetaConfigParts {
    /// Whether a credential is still the one-machine default: worth a
    /// warning anywhere but a developer's machine.
    pub fn uses_dev_credentials(&self) -> bool {
        self.settings.access_token.expose() == self.access_token_default
            || self.settings.app_secret.expose() == DEFAULT_APP_SECRET
    }

    /// Validates, then binds `platform`'s adapter on the configured ports.
    pub async fn bind(self, platform: &'static MetaPlatform) -> anyhow::Result<crate::BoundAdapter> {
        let adapter = super::MetaAdapter::new(platform, &self.settings)?;
        if self.uses_dev_credentials() {
            tracing::warn!(
                platform = platform.name,
                "using the one-machine default credentials"
            );
        }
        Ok(crate::bind(adapter, self.serve)
            .await
            .map_err(super::MetaError::from)?)
    }
}

/// For the macro: a `Secret` from a default string.
pub fn secret(s: &str) -> Secret {
    Secret::from(s)
}

/// Stamps out a Meta adapter's configuration struct: clap flags
/// `--<prefix>-…`, environment `CHAT4ALL_<ENV>_…`, a `Default` equal to the
/// flag defaults, `validate`, and the conversion to the kit's settings.
///
/// ```ignore
/// chat4all_adapter::meta_config! {
///     /// How to reach Messenger and where to serve.
///     MessengerConfig {
///         platform: crate::MESSENGER,
///         prefix: "messenger",
///         env: "MESSENGER",
///         access_token: "chat4all-dev-page-access-token",
///         grpc_listen: "127.0.0.1:50062",
///         webhook_listen: "127.0.0.1:8062",
///     }
/// }
/// ```
#[macro_export]
macro_rules! meta_config {
    (
        $(#[$doc:meta])*
        $name:ident {
            platform: $platform:path,
            prefix: $prefix:literal,
            env: $env:literal,
            access_token: $token:literal,
            grpc_listen: $grpc:literal,
            webhook_listen: $webhook:literal $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
        pub struct $name {
            /// The Graph API's base URL (the simulator on one machine,
            /// https://graph.facebook.com in production).
            #[arg(
                long = concat!($prefix, "-api-base-url"),
                env = concat!("CHAT4ALL_", $env, "_API_BASE_URL"),
                default_value = $crate::meta::config::DEFAULT_API_BASE_URL
            )]
            pub api_base_url: String,
            /// The Graph API version.
            #[arg(
                long = concat!($prefix, "-api-version"),
                env = concat!("CHAT4ALL_", $env, "_API_VERSION"),
                default_value = $crate::meta::config::DEFAULT_API_VERSION
            )]
            pub api_version: String,
            /// The page or account access token (sent as `access_token`).
            #[arg(
                long = concat!($prefix, "-access-token"),
                env = concat!("CHAT4ALL_", $env, "_ACCESS_TOKEN"),
                hide_env_values = true,
                default_value = $token
            )]
            pub access_token: $crate::Secret,
            /// The app secret webhooks are signed with (`X-Hub-Signature-256`).
            #[arg(
                long = concat!($prefix, "-app-secret"),
                env = concat!("CHAT4ALL_", $env, "_APP_SECRET"),
                hide_env_values = true,
                default_value = $crate::meta::config::DEFAULT_APP_SECRET
            )]
            pub app_secret: $crate::Secret,
            /// The token of the webhook subscription handshake (`hub.verify_token`).
            #[arg(
                long = concat!($prefix, "-verify-token"),
                env = concat!("CHAT4ALL_", $env, "_VERIFY_TOKEN"),
                hide_env_values = true,
                default_value = $crate::meta::config::DEFAULT_VERIFY_TOKEN
            )]
            pub verify_token: $crate::Secret,
            /// Where the `Connector` gRPC service listens (for the sidecar).
            #[arg(
                long = concat!($prefix, "-grpc-listen"),
                env = concat!("CHAT4ALL_", $env, "_GRPC_LISTEN"),
                default_value = $grpc
            )]
            pub grpc_listen: std::net::SocketAddr,
            /// Where webhooks are received (for the platform).
            #[arg(
                long = concat!($prefix, "-webhook-listen"),
                env = concat!("CHAT4ALL_", $env, "_WEBHOOK_LISTEN"),
                default_value = $webhook
            )]
            pub webhook_listen: std::net::SocketAddr,
            /// How long one call to the platform may take (`10s`, `500ms`).
            #[arg(
                long = concat!($prefix, "-request-timeout"),
                env = concat!("CHAT4ALL_", $env, "_REQUEST_TIMEOUT"),
                default_value = "10s",
                value_parser = $crate::meta::config::parse_duration
            )]
            pub request_timeout: std::time::Duration,
            /// How many webhook events wait for the sidecar before webhooks get 503.
            #[arg(
                long = concat!($prefix, "-event-queue-capacity"),
                env = concat!("CHAT4ALL_", $env, "_EVENT_QUEUE_CAPACITY"),
                default_value_t = 10_000
            )]
            pub event_queue_capacity: usize,
            /// How many sends are remembered to turn watermarks into receipts.
            #[arg(
                long = concat!($prefix, "-sent-index-capacity"),
                env = concat!("CHAT4ALL_", $env, "_SENT_INDEX_CAPACITY"),
                default_value_t = $crate::meta::config::DEFAULT_SENT_INDEX_CAPACITY
            )]
            pub sent_index_capacity: usize,
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    api_base_url: $crate::meta::config::DEFAULT_API_BASE_URL.to_owned(),
                    api_version: $crate::meta::config::DEFAULT_API_VERSION.to_owned(),
                    access_token: $crate::meta::config::secret($token),
                    app_secret: $crate::meta::config::secret($crate::meta::config::DEFAULT_APP_SECRET),
                    verify_token: $crate::meta::config::secret($crate::meta::config::DEFAULT_VERIFY_TOKEN),
                    grpc_listen: $crate::meta::config::socket_addr($grpc),
                    webhook_listen: $crate::meta::config::socket_addr($webhook),
                    request_timeout: std::time::Duration::from_secs(10),
                    event_queue_capacity: 10_000,
                    sent_index_capacity: $crate::meta::config::DEFAULT_SENT_INDEX_CAPACITY,
                }
            }
        }

        impl $name {
            /// The one-machine default access token.
            pub const DEFAULT_ACCESS_TOKEN: &'static str = $token;

            /// The kit's view of this configuration.
            pub fn parts(&self) -> $crate::meta::config::MetaConfigParts {
                $crate::meta::config::MetaConfigParts {
                    settings: $crate::meta::MetaSettings {
                        api_base_url: self.api_base_url.clone(),
                        api_version: self.api_version.clone(),
                        access_token: self.access_token.clone(),
                        app_secret: self.app_secret.clone(),
                        verify_token: self.verify_token.clone(),
                        request_timeout: self.request_timeout,
                        sent_index_capacity: self.sent_index_capacity,
                    },
                    serve: $crate::ServeConfig {
                        grpc_listen: self.grpc_listen,
                        webhook_listen: self.webhook_listen,
                        event_queue_capacity: self.event_queue_capacity,
                        ..$crate::ServeConfig::default()
                    },
                    access_token_default: $token,
                }
            }

            /// Refuses a configuration that could not work, before any
            /// port is bound.
            pub fn validate(&self) -> Result<(), $crate::meta::MetaError> {
                if self.event_queue_capacity == 0 {
                    return Err($crate::meta::MetaError::InvalidConfig {
                        platform: $platform.name,
                        field: "event_queue_capacity",
                        reason: "must be at least 1".to_owned(),
                    });
                }
                self.parts().settings.validate(&$platform)
            }

            /// Whether a credential is still the one-machine default.
            pub fn uses_dev_credentials(&self) -> bool {
                self.parts().uses_dev_credentials()
            }
        }
    };
}

/// For the macro: a listen address from a literal the macro's caller wrote.
/// A typo there is a programming error caught by the crate's own tests;
/// it falls back to an ephemeral local port rather than panicking.
pub fn socket_addr(s: &str) -> std::net::SocketAddr {
    s.parse()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}
