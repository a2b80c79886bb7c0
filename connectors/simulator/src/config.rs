//! What the simulator pretends to be, and how badly it behaves.
//!
//! The credentials default to the WhatsApp adapter's one-machine defaults,
//! so the two find each other with no flags. The [`Switches`] are the rough
//! edges a real platform has (slow answers, bursts of 429, 5xx, unknown
//! recipients, missing receipts); they start from here and can be changed
//! while running through [`crate::SimulatorHandle`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The whole simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorConfig {
    /// Where the platforms' HTTP APIs are served; port 0 picks one.
    pub listen: SocketAddr,
    /// The WhatsApp Business Cloud API.
    pub whatsapp: WhatsAppSimConfig,
    /// Facebook Messenger (the Send API of one page).
    pub messenger: MetaMessagingSimConfig,
    /// Instagram messaging (the Send API of one professional account).
    pub instagram: MetaMessagingSimConfig,
    /// The Telegram Bot API.
    pub telegram: TelegramSimConfig,
    /// Chotot's chat-api.
    pub chotot: ChototSimConfig,
    /// How many received sends are kept per platform, newest first out last:
    /// a benchmark through the simulator must not grow it without bound.
    /// Counts stay exact beyond it.
    pub max_recorded: usize,
    /// How many times a webhook is posted before the simulator gives up
    /// on it (Meta retries for days; a chaos run wants more than the
    /// default's few seconds of patience).
    pub webhook_attempts: u32,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
            whatsapp: WhatsAppSimConfig::default(),
            messenger: MetaMessagingSimConfig::messenger(),
            instagram: MetaMessagingSimConfig::instagram(),
            telegram: TelegramSimConfig::default(),
            chotot: ChototSimConfig::default(),
            max_recorded: 100_000,
            webhook_attempts: 6,
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

/// A simulated Meta messaging account: a Messenger page or an Instagram
/// professional account. One type for both because they are one API; the
/// defaults differ ([`Self::messenger`], [`Self::instagram`]), above all the
/// access token, which is how the shared `/{version}/me/messages` endpoint
/// tells them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaMessagingSimConfig {
    /// The token sends must carry (`?access_token=` or a Bearer header).
    pub access_token: String,
    /// Signs the webhooks (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// The page or account id: `entry[].id`, and the sender of echoes.
    pub account_id: String,
    /// The app id echoes carry (`message.app_id`).
    pub app_id: u64,
    /// Where webhooks go; none are sent while unset.
    pub webhook_url: Option<String>,
    /// The pause before each webhook that follows a send.
    pub receipt_delay: Duration,
    /// Misbehaviour, from the start.
    pub switches: Switches,
}

impl MetaMessagingSimConfig {
    /// The Messenger page the adapter's defaults talk to.
    pub fn messenger() -> Self {
        Self {
            access_token: "chat4all-dev-page-access-token".to_owned(),
            app_secret: "chat4all-dev-app-secret".to_owned(),
            account_id: "100000000000010".to_owned(),
            app_id: 100_000_000_000_003,
            webhook_url: None,
            receipt_delay: Duration::from_millis(5),
            switches: Switches::default(),
        }
    }

    /// The Instagram account the adapter's defaults talk to.
    pub fn instagram() -> Self {
        Self {
            access_token: "chat4all-dev-instagram-access-token".to_owned(),
            account_id: "17841400000000001".to_owned(),
            ..Self::messenger()
        }
    }
}

/// The simulated Telegram bot. The credentials are the Telegram adapter's
/// one-machine defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramSimConfig {
    /// The bot token every call's path must carry (`/bot<token>/…`).
    pub bot_token: String,
    /// The `setWebhook` secret sent in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: String,
    /// Where webhooks go; none are sent while unset.
    pub webhook_url: Option<String>,
    /// Misbehaviour, from the start (`failing_recipients` are chats that
    /// answer "chat not found"; receipts and echoes mean nothing: Telegram
    /// has neither).
    pub switches: Switches,
}

impl Default for TelegramSimConfig {
    fn default() -> Self {
        Self {
            bot_token: "100000001:chat4all-dev-telegram-bot-token".to_owned(),
            webhook_secret: "chat4all-dev-telegram-webhook-secret".to_owned(),
            webhook_url: None,
            switches: Switches::default(),
        }
    }
}

impl TelegramSimConfig {
    /// The bot's own user id: the number before the token's colon.
    pub fn bot_user_id(&self) -> i64 {
        self.bot_token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0)
    }
}

/// The simulated Chotot chat-api. The credentials are the Chotot adapter's
/// one-machine defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChototSimConfig {
    /// The `x-project-uuid` every call must carry.
    pub project_uuid: String,
    /// The `Service` header every call must carry.
    pub service: String,
    /// Signs the events (`X-Chotot-Signature`, hex HMAC-SHA256).
    pub webhook_secret: String,
    /// Our shop's user: a member of the seeded channels, owner of the
    /// seeded listings, the sender the adapter sends as.
    pub bot_user_id: String,
    /// Whether each accepted send is published back as an event (an echo),
    /// as chat-api publishes every message.
    pub echoes: bool,
    /// Where webhooks go; none are sent while unset.
    pub webhook_url: Option<String>,
    /// Misbehaviour, from the start (`failing_recipients` are channels that
    /// answer 404; `receipts` means nothing: chat-api has none).
    pub switches: Switches,
}

impl Default for ChototSimConfig {
    fn default() -> Self {
        Self {
            project_uuid: "c4a11000-0000-4000-8000-000000000065".to_owned(),
            service: "chat4all".to_owned(),
            webhook_secret: "chat4all-dev-chotot-webhook-secret".to_owned(),
            bot_user_id: "9000001".to_owned(),
            echoes: true,
            webhook_url: None,
            switches: Switches::default(),
        }
    }
}

/// A probability, kept in parts per million so that switches stay `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fraction(u32);

impl Fraction {
    /// Never.
    pub const NEVER: Self = Self(0);
    /// Always.
    pub const ALWAYS: Self = Self(1_000_000);

    /// `p` clamped to `[0, 1]` (NaN is never).
    pub fn new(p: f64) -> Self {
        if p.is_nan() || p <= 0.0 {
            Self::NEVER
        } else if p >= 1.0 {
            Self::ALWAYS
        } else {
            Self((p * 1_000_000.0).round() as u32)
        }
    }

    /// As a float in `[0, 1]`.
    pub fn get(self) -> f64 {
        f64::from(self.0) / 1_000_000.0
    }

    /// Parts per million.
    pub fn per_million(self) -> u32 {
        self.0
    }
}

/// How a platform misbehaves. Every platform module reads these through the
/// same helpers (`faults.rs`), so a switch means the same on every platform.
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
    /// The fraction of sends answered with [`Self::error_failure`], drawn
    /// from the platform's random source (seedable, for repeatable tests).
    pub error_rate: Fraction,
    /// The failure those sends get.
    pub error_failure: InjectedFailure,
    /// Until then, every send is answered with [`Self::burst_failure`]: a
    /// burst of 429s with `Retry-After`, as a platform over its limit does.
    pub burst_until: Option<Instant>,
    /// The failure of the burst.
    pub burst_failure: InjectedFailure,
    /// Bursts that come back on their own: [`Self::burst_failure`] for
    /// `length` out of every `every`, counted from the simulator's start.
    pub burst_cycle: Option<BurstCycle>,
    /// The platform acts on every send at once (webhooks follow) but holds
    /// the answer this long: past the client's timeout it is an answer
    /// lost. `Duration::MAX` holds it until the client gives up.
    pub timeout: Option<Duration>,
    /// The fraction of accepted sends the platform acts on (webhooks
    /// follow) and then never answers, until the client gives up: a
    /// timeout after acting, drawn per send.
    pub timeout_rate: Fraction,
    /// Every webhook is posted again this long after it was accepted, as
    /// Meta redelivers events.
    pub duplicate_webhooks: Option<Duration>,
    /// The receipts of a send are posted newest first.
    pub out_of_order: bool,
    /// The echo of a send is posted, and accepted, before the send is
    /// answered (platforms with echoes only).
    pub echo_before_response: bool,
    /// The fraction of delivery receipts that list their messages' ids;
    /// the others carry only a watermark (Messenger only).
    pub delivery_mids: Fraction,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            fail_next: 0,
            failure: InjectedFailure::server_error(),
            failing_recipients: vec!["999".to_owned()],
            receipts: true,
            error_rate: Fraction::NEVER,
            error_failure: InjectedFailure::server_error(),
            burst_until: None,
            burst_failure: InjectedFailure::rate_limited(Duration::from_secs(1)),
            burst_cycle: None,
            timeout: None,
            timeout_rate: Fraction::NEVER,
            duplicate_webhooks: None,
            out_of_order: false,
            echo_before_response: false,
            delivery_mids: Fraction::new(0.5),
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

/// A burst of failures that recurs: `length` out of every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstCycle {
    pub every: Duration,
    pub length: Duration,
}

impl BurstCycle {
    /// Whether `elapsed` since the start falls inside a burst.
    pub fn bursting(self, elapsed: Duration) -> bool {
        let every = self.every.as_nanos();
        every > 0 && elapsed.as_nanos() % every < self.length.as_nanos()
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

    /// The same failure with another platform code (Messenger's rate
    /// limit is 613, say).
    pub fn with_code(self, code: i64) -> Self {
        Self { code, ..self }
    }

    /// HTTP 400, Graph 551: Messenger's "this person isn't available right
    /// now" (permanent).
    pub fn person_unavailable() -> Self {
        Self {
            http_status: 400,
            code: 551,
            message: "This person isn't available right now.".to_owned(),
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
