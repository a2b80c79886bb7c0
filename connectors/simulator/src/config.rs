//! What the simulator pretends to be, and how badly it behaves.
//!
//! The credentials default to the WhatsApp adapter's one-machine defaults,
//! so the two find each other with no flags. The [`Switches`] are the rough
//! edges a real platform has (slow answers, bursts of 429, 5xx, unknown
//! recipients, missing receipts); they start from here and can be changed
//! while running through [`crate::SimulatorHandle`].

use std::net::SocketAddr;
use std::time::Duration;

/// The whole simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorConfig {
    /// Where the platforms' HTTP APIs are served; port 0 picks one.
    pub listen: SocketAddr,
    /// The WhatsApp Business Cloud API.
    pub whatsapp: WhatsAppSimConfig,
    /// How many received sends are kept per platform, newest first out last:
    /// a benchmark through the simulator must not grow it without bound.
    /// Counts stay exact beyond it.
    pub max_recorded: usize,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
            whatsapp: WhatsAppSimConfig::default(),
            max_recorded: 100_000,
        }
    }
}

/// The simulated WhatsApp business account and phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppSimConfig {
    /// The Bearer token sends must carry.
    pub access_token: String,
    /// Signs the webhooks (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// The only phone number id the send endpoint knows.
    pub phone_number_id: String,
    /// The business account id (`entry[].id` of webhooks).
    pub business_account_id: String,
    /// The number as displayed (`metadata.display_phone_number`).
    pub display_phone_number: String,
    /// Where webhooks go; none are sent while unset.
    pub webhook_url: Option<String>,
    /// The pause before each receipt (sent, delivered, read).
    pub receipt_delay: Duration,
    /// Misbehaviour, from the start.
    pub switches: Switches,
}

impl Default for WhatsAppSimConfig {
    fn default() -> Self {
        Self {
            access_token: "chat4all-dev-access-token".to_owned(),
            app_secret: "chat4all-dev-app-secret".to_owned(),
            phone_number_id: "100000000000001".to_owned(),
            business_account_id: "100000000000002".to_owned(),
            display_phone_number: "15550000001".to_owned(),
            webhook_url: None,
            receipt_delay: Duration::from_millis(5),
            switches: Switches::default(),
        }
    }
}

/// How a platform misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switches {
    /// Added before every answer of the send endpoint (past the client's
    /// timeout, it is a platform that took the message but never said so).
    pub latency: Duration,
    /// How many of the next sends fail with [`Self::failure`].
    pub fail_next: u32,
    /// The failure those sends get.
    pub failure: InjectedFailure,
    /// Recipients starting with one of these always fail permanently
    /// (unknown recipient).
    pub failing_recipients: Vec<String>,
    /// Whether receipts are posted after a send.
    pub receipts: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            fail_next: 0,
            failure: InjectedFailure::server_error(),
            failing_recipients: vec!["999".to_owned()],
            receipts: true,
        }
    }
}

impl Switches {
    /// Whether sends to `to` always fail.
    pub fn fails_recipient(&self, to: &str) -> bool {
        let to = to.strip_prefix('+').unwrap_or(to);
        self.failing_recipients
            .iter()
            .any(|prefix| !prefix.is_empty() && to.starts_with(prefix.as_str()))
    }
}

/// An error answer the simulator gives on purpose, in the platform's error
/// format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFailure {
    /// The HTTP status.
    pub http_status: u16,
    /// The platform's error code (Graph `error.code`).
    pub code: i64,
    /// The error text.
    pub message: String,
    /// Sent as `Retry-After`, in whole seconds.
    pub retry_after: Option<Duration>,
}

impl InjectedFailure {
    /// HTTP 429, Graph 130429 (throughput exceeded), with `Retry-After`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            http_status: 429,
            code: 130_429,
            message: "Rate limit hit".to_owned(),
            retry_after: Some(retry_after),
        }
    }

    /// HTTP 500, Graph 131000 (something went wrong).
    pub fn server_error() -> Self {
        Self {
            http_status: 500,
            code: 131_000,
            message: "Something went wrong".to_owned(),
            retry_after: None,
        }
    }

    /// HTTP 400, Graph 131026 (message undeliverable).
    pub fn unknown_recipient() -> Self {
        Self {
            http_status: 400,
            code: 131_026,
            message: "Message undeliverable".to_owned(),
            retry_after: None,
        }
    }
}

/// The simulator's flags (`CHAT4ALL_SIMULATOR_*`). The binary's webhook
/// target defaults to the WhatsApp adapter's default webhook, so both run
/// together with no flags; the library default has none.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulatorArgs {
    /// Where the platforms' APIs are served.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_LISTEN", default_value = "127.0.0.1:9100")]
    pub listen: SocketAddr,
    /// The Bearer token WhatsApp sends must carry.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_ACCESS_TOKEN",
        hide_env_values = true,
        default_value = "chat4all-dev-access-token"
    )]
    pub whatsapp_access_token: String,
    /// The app secret WhatsApp webhooks are signed with.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_APP_SECRET",
        hide_env_values = true,
        default_value = "chat4all-dev-app-secret"
    )]
    pub whatsapp_app_secret: String,
    /// The phone number id the WhatsApp send endpoint knows.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_PHONE_NUMBER_ID",
        default_value = "100000000000001"
    )]
    pub whatsapp_phone_number_id: String,
    /// Where WhatsApp webhooks go.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8061/webhook"
    )]
    pub whatsapp_webhook_url: String,
    /// The pause before each WhatsApp receipt.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_RECEIPT_DELAY",
        default_value = "5ms",
        value_parser = humantime::parse_duration
    )]
    pub whatsapp_receipt_delay: Duration,
    /// Added before every answer of the WhatsApp send endpoint.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_LATENCY",
        default_value = "0ms",
        value_parser = humantime::parse_duration
    )]
    pub whatsapp_latency: Duration,
    /// Recipient prefixes whose WhatsApp sends always fail (comma-separated).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_FAILING_RECIPIENTS",
        value_delimiter = ',',
        default_value = "999"
    )]
    pub whatsapp_failing_recipients: Vec<String>,
    /// Whether receipts follow a WhatsApp send.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_WHATSAPP_RECEIPTS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub whatsapp_receipts: bool,
}

impl SimulatorArgs {
    /// The configuration these flags describe.
    pub fn into_config(self) -> SimulatorConfig {
        let webhook_url = Some(self.whatsapp_webhook_url).filter(|u| !u.is_empty());
        SimulatorConfig {
            max_recorded: SimulatorConfig::default().max_recorded,
            listen: self.listen,
            whatsapp: WhatsAppSimConfig {
                access_token: self.whatsapp_access_token,
                app_secret: self.whatsapp_app_secret,
                phone_number_id: self.whatsapp_phone_number_id,
                webhook_url,
                receipt_delay: self.whatsapp_receipt_delay,
                switches: Switches {
                    latency: self.whatsapp_latency,
                    failing_recipients: self.whatsapp_failing_recipients,
                    receipts: self.whatsapp_receipts,
                    ..Switches::default()
                },
                ..WhatsAppSimConfig::default()
            },
        }
    }
}
