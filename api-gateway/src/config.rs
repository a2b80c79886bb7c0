//! The gateway's settings, from flags and environment.

use std::net::SocketAddr;

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
        }
    }
}
