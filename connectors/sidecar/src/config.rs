//! The sidecar's settings, from flags and environment.

use std::time::Duration;

use chat4all_domain::Platform;

#[derive(Debug, Clone, clap::Args)]
pub struct SidecarConfig {
    /// The platform this pod serves.
    #[arg(long, env = "CHAT4ALL_PLATFORM", value_parser = parse_platform)]
    pub platform: Platform,
    /// The adapter's Connector gRPC address (on localhost in a pod).
    #[arg(
        long,
        env = "CHAT4ALL_CONNECTOR_ADDR",
        default_value = "http://127.0.0.1:50061"
    )]
    pub connector_addr: String,
    /// Kafka consumer group; `<platform>-sidecar` by default.
    #[arg(long = "sidecar-group", env = "CHAT4ALL_SIDECAR_GROUP")]
    pub group: Option<String>,
    /// Name of this instance in the store's claims.
    #[arg(long, env = "CHAT4ALL_INSTANCE", default_value = "sidecar")]
    pub instance: String,
    /// Platform calls one message may take, retries included. Time spent
    /// waiting on an open breaker is not an attempt.
    #[arg(long, env = "CHAT4ALL_MAX_ATTEMPTS", default_value_t = 8)]
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, with jitter.
    #[arg(long, env = "CHAT4ALL_RETRY_BASE", value_parser = humantime_ms, default_value = "100")]
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    #[arg(long, env = "CHAT4ALL_RETRY_MAX", value_parser = humantime_ms, default_value = "30000")]
    pub retry_max: Duration,
    /// How long one Connector.Send may take.
    #[arg(long, env = "CHAT4ALL_SEND_TIMEOUT", value_parser = humantime_ms, default_value = "15000")]
    pub send_timeout: Duration,
    /// Platform calls in flight at once (different conversations).
    #[arg(long, env = "CHAT4ALL_MAX_IN_FLIGHT", default_value_t = 64)]
    pub max_in_flight: usize,
    /// Sends a second; by default the platform's documented limit, as the
    /// adapter's Describe reports it.
    #[arg(long, env = "CHAT4ALL_RATE_PER_SECOND")]
    pub rate_per_second: Option<f64>,
    /// Sends allowed at once above the rate; by default a tenth of a
    /// second's worth.
    #[arg(long, env = "CHAT4ALL_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Consecutive transient failures that open the circuit breaker.
    #[arg(long, env = "CHAT4ALL_BREAKER_FAILURES", default_value_t = 5)]
    pub breaker_failures: u32,
    /// How long an open breaker waits before a probe (longer if the
    /// platform's retry-after says so).
    #[arg(long, env = "CHAT4ALL_BREAKER_OPEN", value_parser = humantime_ms, default_value = "2000")]
    pub breaker_open: Duration,
    /// How long a claim on a message holds without renewal: a sidecar that
    /// dies lets go of its messages this long after. Never shorter than a
    /// call plus the echo window.
    #[arg(long, env = "CHAT4ALL_CLAIM_LEASE", value_parser = humantime_ms, default_value = "60000")]
    pub claim_lease: Duration,
    /// After a call that may have acted, how long to wait for the
    /// platform's echo (platforms with echoes only) before sending again.
    #[arg(long, env = "CHAT4ALL_ECHO_WINDOW", value_parser = humantime_ms, default_value = "20000")]
    pub echo_window: Duration,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| e.to_string())
}

/// Milliseconds, as a number.
fn humantime_ms(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("milliseconds expected: {e}"))
}

impl SidecarConfig {
    /// Defaults for `platform` with its adapter at `connector_addr`.
    pub fn new(platform: Platform, connector_addr: impl Into<String>) -> Self {
        Self {
            platform,
            connector_addr: connector_addr.into(),
            group: None,
            instance: "sidecar".to_owned(),
            max_attempts: 8,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
            send_timeout: Duration::from_secs(15),
            max_in_flight: 64,
            rate_per_second: None,
            rate_burst: None,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(2),
            claim_lease: Duration::from_secs(60),
            echo_window: Duration::from_secs(20),
        }
    }
}
