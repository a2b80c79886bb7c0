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
    #[command(flatten)]
    pub reconcile: ReconcileArgs,
    /// A platform's connector (its adapter's gRPC address), for the calls
    /// that read the platform: `chotot=http://127.0.0.1:50071`. Repeat the
    /// flag, or separate with commas.
    #[arg(
        long = "connector",
        env = "CHAT4ALL_CONNECTORS",
        value_delimiter = ',',
        value_parser = parse_connector
    )]
    pub connectors: Vec<ConnectorAddr>,
    /// The longest a call to a connector may take.
    #[arg(long = "connector-timeout", env = "CHAT4ALL_CONNECTOR_TIMEOUT", value_parser = humantime::parse_duration, default_value = "5s")]
    pub connector_timeout: Duration,
    /// How long a backfilled message's platform id is remembered against
    /// redelivery, as the router's inbound window.
    #[arg(long = "inbound-dedup-window", env = "CHAT4ALL_INBOUND_DEDUP_WINDOW", value_parser = humantime::parse_duration, default_value = "24h")]
    pub inbound_dedup_window: Duration,
    /// The most WatchMessages streams open at once on this gateway; past it
    /// WatchMessages answers RESOURCE_EXHAUSTED. A stream on a scope of its
    /// own holds an 8 KiB event buffer besides its HTTP/2 state, so the
    /// default, 10,000, keeps those buffers under 80 MiB.
    #[arg(
        long = "max-watch-streams",
        env = "CHAT4ALL_MAX_WATCH_STREAMS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_watch_streams: u32,
}

/// Where one platform's connector listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorAddr {
    pub platform: Platform,
    pub uri: String,
}

fn parse_connector(s: &str) -> Result<ConnectorAddr, String> {
    let (platform, uri) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not platform=uri (chotot=http://127.0.0.1:50071)"))?;
    let platform = parse_platform(platform.trim())?;
    let uri = uri.trim();
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(format!("{uri:?} is not an http:// or https:// address"));
    }
    Ok(ConnectorAddr {
        platform,
        uri: uri.to_owned(),
    })
}

/// When the reconciliation job re-publishes a message whose record was
/// lost: the gateway's flags, and those of the commands that start one.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ReconcileArgs {
    /// A message still ACCEPTED this long after it was stored is published
    /// again (its first record was lost).
    #[arg(long = "reconcile-after", env = "CHAT4ALL_RECONCILE_AFTER", value_parser = humantime::parse_duration, default_value = "60s")]
    pub after: Duration,
    /// A message still ROUTED, and claimed by no sidecar, this long after it
    /// was stored is published again (its `<platform>-outbound` record was
    /// lost). Longer than a platform's backlog takes to drain, or the
    /// backlog gets copies (which the sidecars' claims then skip).
    #[arg(long = "reconcile-routed-after", env = "CHAT4ALL_RECONCILE_ROUTED_AFTER", value_parser = humantime::parse_duration, default_value = "5m")]
    pub routed_after: Duration,
    /// How often the reconciliation job looks.
    #[arg(long = "reconcile-every", env = "CHAT4ALL_RECONCILE_EVERY", value_parser = humantime::parse_duration, default_value = "10s")]
    pub every: Duration,
    /// A message still SENT this long after it was sent, on a platform that
    /// reports receipts (WhatsApp, Messenger, Instagram), is marked overdue
    /// in its history and counted. Not re-sent: nothing in our pipeline is
    /// owed. Long, because a delivery receipt comes only once the phone is
    /// on and online, and a day off-line is ordinary.
    #[arg(long = "receipt-deadline", env = "CHAT4ALL_RECEIPT_DEADLINE", value_parser = parse_deadline, default_value = "24h")]
    pub receipt_deadline: Duration,
}

/// A receipt deadline: a duration, and more than nothing (which would mark
/// every SENT message overdue the moment it is sent).
fn parse_deadline(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be more than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl Default for ReconcileArgs {
    fn default() -> Self {
        Self {
            after: Duration::from_secs(60),
            routed_after: Duration::from_secs(300),
            every: Duration::from_secs(10),
            receipt_deadline: Duration::from_secs(24 * 3600),
        }
    }
}

impl ReconcileArgs {
    /// The same settings as flags, for a gateway started as its own process.
    pub fn to_flags(&self) -> Vec<String> {
        [
            ("--reconcile-after", self.after),
            ("--reconcile-routed-after", self.routed_after),
            ("--reconcile-every", self.every),
            ("--receipt-deadline", self.receipt_deadline),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), humantime::format_duration(value).to_string()])
        .collect()
    }
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
            reconcile: ReconcileArgs::default(),
            connectors: Vec::new(),
            connector_timeout: Duration::from_secs(5),
            inbound_dedup_window: Duration::from_secs(24 * 60 * 60),
            max_watch_streams: 10_000,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connectors_parse_as_platform_equals_uri() {
        assert_eq!(
            parse_connector("chotot=http://127.0.0.1:50071").unwrap(),
            ConnectorAddr {
                platform: Platform::Chotot,
                uri: "http://127.0.0.1:50071".into()
            }
        );
        assert!(parse_connector("chotot").unwrap_err().contains("platform=uri"));
        assert!(parse_connector("fax=http://x").is_err());
        assert!(
            parse_connector("chotot=127.0.0.1:1")
                .unwrap_err()
                .contains("http://")
        );
    }

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        reconcile: ReconcileArgs,
    }

    #[derive(clap::Parser)]
    struct Gateway {
        #[command(flatten)]
        gateway: GatewayConfig,
    }

    #[test]
    fn max_watch_streams_defaults_as_dev_does_and_refuses_zero() {
        use clap::Parser as _;
        let flagless = Gateway::try_parse_from(["gateway"]).unwrap().gateway;
        assert_eq!(
            flagless.max_watch_streams,
            GatewayConfig::default().max_watch_streams
        );
        let set = Gateway::try_parse_from(["gateway", "--max-watch-streams", "3"]).unwrap();
        assert_eq!(set.gateway.max_watch_streams, 3);
        assert!(Gateway::try_parse_from(["gateway", "--max-watch-streams", "0"]).is_err());
    }

    #[test]
    fn reconcile_flags_round_trip_and_default_as_documented() {
        use clap::Parser as _;
        let given = ReconcileArgs {
            after: Duration::from_secs(2),
            routed_after: Duration::from_millis(20_500),
            every: Duration::from_millis(500),
            receipt_deadline: Duration::from_secs(90 * 60),
        };
        let flags = std::iter::once("gateway".to_owned()).chain(given.to_flags());
        let parsed = Flags::try_parse_from(flags).unwrap().reconcile;
        let fields = |r: ReconcileArgs| (r.after, r.routed_after, r.every, r.receipt_deadline);
        assert_eq!(fields(parsed), fields(given));
        let (defaults, flagless) = (
            ReconcileArgs::default(),
            Flags::try_parse_from(["gateway"]).unwrap().reconcile,
        );
        assert_eq!(fields(flagless), fields(defaults));
        assert!(Flags::try_parse_from(["gateway", "--receipt-deadline", "0s"]).is_err());
    }
}
