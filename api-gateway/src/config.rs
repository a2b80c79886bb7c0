//! The gateway's settings, from flags and environment.

use std::net::SocketAddr;
use std::time::Duration;

use chat4all_domain::Platform;

#[derive(Debug, Clone, clap::Args)]
pub struct GatewayConfig {
    /// Where the public gRPC API listens.
    #[arg(
        long = "gateway-listen",
        env = "CHAT4ALL_GATEWAY_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,
    /// The platforms a connector serves; a message to any other is refused
    /// at once rather than left waiting for a connector that never comes.
    #[arg(
        long = "enabled-platforms",
        env = "CHAT4ALL_ENABLED_PLATFORMS",
        value_delimiter = ',',
        default_value = "whatsapp,instagram,messenger,telegram,chotot",
        value_parser = parse_platform
    )]
    pub enabled_platforms: Vec<Platform>,
    /// The longest text accepted, in characters (the platforms' own limit).
    #[arg(
        long = "max-text-chars",
        env = "CHAT4ALL_MAX_TEXT_CHARS",
        default_value_t = 4096
    )]
    pub max_text_chars: usize,
    /// A message still ACCEPTED this long after it was stored is published
    /// again (its first record was lost).
    #[arg(long = "reconcile-after", env = "CHAT4ALL_RECONCILE_AFTER", value_parser = humantime::parse_duration, default_value = "60s")]
    pub reconcile_after: Duration,
    /// How often the reconciliation job looks.
    #[arg(long = "reconcile-every", env = "CHAT4ALL_RECONCILE_EVERY", value_parser = humantime::parse_duration, default_value = "10s")]
    pub reconcile_every: Duration,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| e.to_string())
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            enabled_platforms: Platform::ALL.to_vec(),
            max_text_chars: 4096,
            reconcile_after: Duration::from_secs(60),
            reconcile_every: Duration::from_secs(10),
        }
    }
}
