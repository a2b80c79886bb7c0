//! The simulator binary's flags: every platform's credentials and webhook
//! target, and the misbehaviour switches that apply to all of them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{
    BurstCycle, ChototSimConfig, Fraction, MetaMessagingSimConfig, SimulatorConfig, Switches,
    TelegramSimConfig, WhatsAppSimConfig,
};

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
    /// Where WhatsApp webhooks go (several adapter replicas: comma-separated, taken in turn).
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
    /// The token Messenger sends must carry (the page access token).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_MESSENGER_ACCESS_TOKEN",
        hide_env_values = true,
        default_value = "chat4all-dev-page-access-token"
    )]
    pub messenger_access_token: String,
    /// The app secret Messenger webhooks are signed with.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_MESSENGER_APP_SECRET",
        hide_env_values = true,
        default_value = "chat4all-dev-app-secret"
    )]
    pub messenger_app_secret: String,
    /// Where Messenger webhooks go (several adapter replicas: comma-separated, taken in turn).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_MESSENGER_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8062/webhook"
    )]
    pub messenger_webhook_url: String,
    /// The pause before each Messenger webhook after a send.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_MESSENGER_RECEIPT_DELAY",
        default_value = "5ms",
        value_parser = humantime::parse_duration
    )]
    pub messenger_receipt_delay: Duration,
    /// The fraction of Messenger delivery receipts that list their `mids`.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_MESSENGER_DELIVERY_MIDS",
        default_value_t = 0.5
    )]
    pub messenger_delivery_mids: f64,
    /// The token Instagram sends must carry.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_INSTAGRAM_ACCESS_TOKEN",
        hide_env_values = true,
        default_value = "chat4all-dev-instagram-access-token"
    )]
    pub instagram_access_token: String,
    /// The app secret Instagram webhooks are signed with.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_INSTAGRAM_APP_SECRET",
        hide_env_values = true,
        default_value = "chat4all-dev-app-secret"
    )]
    pub instagram_app_secret: String,
    /// Where Instagram webhooks go (several adapter replicas: comma-separated, taken in turn).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_INSTAGRAM_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8063/webhook"
    )]
    pub instagram_webhook_url: String,
    /// The pause before each Instagram webhook after a send.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_INSTAGRAM_RECEIPT_DELAY",
        default_value = "5ms",
        value_parser = humantime::parse_duration
    )]
    pub instagram_receipt_delay: Duration,
    /// The bot token Telegram calls must carry in their path.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_TELEGRAM_BOT_TOKEN",
        hide_env_values = true,
        default_value = "100000001:chat4all-dev-telegram-bot-token"
    )]
    pub telegram_bot_token: String,
    /// The secret Telegram webhooks carry.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_TELEGRAM_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = "chat4all-dev-telegram-webhook-secret"
    )]
    pub telegram_webhook_secret: String,
    /// Where Telegram webhooks go (several adapter replicas: comma-separated, taken in turn).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_TELEGRAM_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8064/webhook"
    )]
    pub telegram_webhook_url: String,
    /// Added before every answer of Telegram's sendMessage.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_TELEGRAM_LATENCY",
        default_value = "0ms",
        value_parser = humantime::parse_duration
    )]
    pub telegram_latency: Duration,
    /// Chat id prefixes Telegram answers "chat not found" (comma-separated).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_TELEGRAM_FAILING_RECIPIENTS",
        value_delimiter = ',',
        default_value = "999"
    )]
    pub telegram_failing_recipients: Vec<String>,
    /// The `x-project-uuid` Chotot calls must carry.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_CHOTOT_PROJECT_UUID",
        hide_env_values = true,
        default_value = "c4a11000-0000-4000-8000-000000000065"
    )]
    pub chotot_project_uuid: String,
    /// The `Service` header Chotot calls must carry.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_CHOTOT_SERVICE", default_value = "chat4all")]
    pub chotot_service: String,
    /// The secret Chotot events are signed with.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_CHOTOT_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = "chat4all-dev-chotot-webhook-secret"
    )]
    pub chotot_webhook_secret: String,
    /// Our shop's Chotot user (the adapter's sender).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_CHOTOT_BOT_USER_ID",
        default_value = "9000001"
    )]
    pub chotot_bot_user_id: String,
    /// Where Chotot events go (several adapter replicas: comma-separated, taken in turn).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_CHOTOT_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8065/webhook"
    )]
    pub chotot_webhook_url: String,
    /// Added before every answer of Chotot's send endpoint.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_CHOTOT_LATENCY",
        default_value = "0ms",
        value_parser = humantime::parse_duration
    )]
    pub chotot_latency: Duration,
    /// Whether each Chotot send comes back as an event (the echo).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_CHOTOT_ECHOES",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub chotot_echoes: bool,
    /// Every platform: the fraction of sends answered HTTP 500.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_ERROR_RATE", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Every platform: post each webhook again after this long (`0s`: never).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_DUPLICATE_WEBHOOKS",
        default_value = "0s",
        value_parser = humantime::parse_duration
    )]
    pub duplicate_webhooks: Duration,
    /// Every platform: post the receipts of a send newest first.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_OUT_OF_ORDER_RECEIPTS")]
    pub out_of_order_receipts: bool,
    /// Every platform with echoes: post the echo before answering the send.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_ECHO_BEFORE_RESPONSE")]
    pub echo_before_response: bool,
    /// Every platform: the fraction of sends acted on (webhooks follow)
    /// and never answered, until the client gives up.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_TIMEOUT_RATE", default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// Every platform: a burst of 429s (`Retry-After: 1`) this often,
    /// from the start (`0s`: never).
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_BURST_EVERY",
        default_value = "0s",
        value_parser = humantime::parse_duration
    )]
    pub burst_every: Duration,
    /// How long each of those bursts lasts.
    #[arg(
        long,
        env = "CHAT4ALL_SIMULATOR_BURST_LENGTH",
        default_value = "1s",
        value_parser = humantime::parse_duration
    )]
    pub burst_length: Duration,
    /// How many times a webhook is posted before the simulator gives up
    /// on it.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_WEBHOOK_ATTEMPTS", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_attempts: u32,
}

impl SimulatorArgs {
    /// The configuration these flags describe.
    pub fn into_config(self) -> SimulatorConfig {
        let mut config = self.clone().platforms_config();
        for switches in [
            &mut config.whatsapp.switches,
            &mut config.messenger.switches,
            &mut config.instagram.switches,
            &mut config.telegram.switches,
            &mut config.chotot.switches,
        ] {
            *switches = self.misbehave(switches.clone());
        }
        config
    }

    fn platforms_config(self) -> SimulatorConfig {
        let webhook_url = Some(self.whatsapp_webhook_url).filter(|u| !u.is_empty());
        SimulatorConfig {
            max_recorded: SimulatorConfig::default().max_recorded,
            webhook_attempts: self.webhook_attempts,
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
            messenger: MetaMessagingSimConfig {
                access_token: self.messenger_access_token,
                app_secret: self.messenger_app_secret,
                webhook_url: Some(self.messenger_webhook_url).filter(|u| !u.is_empty()),
                receipt_delay: self.messenger_receipt_delay,
                switches: Switches {
                    delivery_mids: Fraction::new(self.messenger_delivery_mids),
                    ..Switches::default()
                },
                ..MetaMessagingSimConfig::messenger()
            },
            instagram: MetaMessagingSimConfig {
                access_token: self.instagram_access_token,
                app_secret: self.instagram_app_secret,
                webhook_url: Some(self.instagram_webhook_url).filter(|u| !u.is_empty()),
                receipt_delay: self.instagram_receipt_delay,
                ..MetaMessagingSimConfig::instagram()
            },
            telegram: TelegramSimConfig {
                bot_token: self.telegram_bot_token,
                webhook_secret: self.telegram_webhook_secret,
                webhook_url: Some(self.telegram_webhook_url).filter(|u| !u.is_empty()),
                switches: Switches {
                    latency: self.telegram_latency,
                    failing_recipients: self.telegram_failing_recipients,
                    ..Switches::default()
                },
            },
            chotot: ChototSimConfig {
                project_uuid: self.chotot_project_uuid,
                service: self.chotot_service,
                webhook_secret: self.chotot_webhook_secret,
                bot_user_id: self.chotot_bot_user_id,
                echoes: self.chotot_echoes,
                webhook_url: Some(self.chotot_webhook_url).filter(|u| !u.is_empty()),
                switches: Switches {
                    latency: self.chotot_latency,
                    ..Switches::default()
                },
            },
        }
    }

    /// `switches` with the flags that apply to every platform
    /// (`--error-rate`, `--duplicate-webhooks`, …) laid over them.
    pub fn misbehave(&self, switches: Switches) -> Switches {
        Switches {
            error_rate: Fraction::new(self.error_rate),
            duplicate_webhooks: Some(self.duplicate_webhooks).filter(|d| !d.is_zero()),
            out_of_order: self.out_of_order_receipts,
            echo_before_response: self.echo_before_response,
            timeout_rate: Fraction::new(self.timeout_rate),
            burst_cycle: Some(BurstCycle {
                every: self.burst_every,
                length: self.burst_length,
            })
            .filter(|cycle| !cycle.every.is_zero()),
            ..switches
        }
    }
}
