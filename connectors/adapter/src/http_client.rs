//! The one way adapters build their outbound HTTP client: rustls with the
//! ring provider (reqwest's `rustls-no-provider` keeps aws-lc out of the
//! build), and timeouts from configuration so a platform that stops
//! answering costs a bounded wait, which the sidecar then retries.

use std::time::Duration;

use crate::AdapterError;

/// Timeouts and identity of the outbound client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// The whole call, connection included.
    pub request_timeout: Duration,
    /// The TCP and TLS connection alone.
    pub connect_timeout: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            user_agent: concat!("chat4all-adapter/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl HttpClientConfig {
    /// The default with the given request timeout; the connection gets at
    /// most as long.
    pub fn with_request_timeout(request_timeout: Duration) -> Self {
        let default = Self::default();
        Self {
            request_timeout,
            connect_timeout: default.connect_timeout.min(request_timeout),
            ..default
        }
    }
}

/// Installs rustls' ring provider as the process default. Idempotent: a
/// provider installed earlier (by us or by another crate) is kept.
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client with the configured timeouts, on rustls with ring.
pub fn build_http_client(config: &HttpClientConfig) -> Result<reqwest::Client, AdapterError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .user_agent(config.user_agent.clone())
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(AdapterError::HttpClient)
}
