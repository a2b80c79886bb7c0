//! What every simulated platform shares: the record of sends received, the
//! switches, the webhook target, and the [`SimulatorHandle`] that tests and
//! the one-machine composition use to read and change them while the
//! simulator runs.
//!
//! State sits behind one short-held mutex per platform; nothing awaits while
//! holding it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{
    ChototSimConfig, InjectedFailure, MetaMessagingSimConfig, SimulatorConfig, Switches, TelegramSimConfig,
    WhatsAppSimConfig,
};
use crate::faults::SimRng;
use crate::webhooks::{DeliveryError, SignedWebhook, WebhookPoster};
use crate::{chotot, instagram, messenger, telegram, whatsapp};

/// The platforms the simulator speaks, by name.
pub const PLATFORMS: &[&str] = &[
    whatsapp::PLATFORM,
    messenger::PLATFORM,
    instagram::PLATFORM,
    telegram::PLATFORM,
    chotot::PLATFORM,
];

/// One call the simulator received on a platform's send endpoint, whatever
/// it answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedSend {
    pub platform: String,
    /// The recipient, as sent.
    pub to: String,
    pub text: String,
    /// The `traceparent` header of the call.
    pub traceparent: Option<String>,
    /// The `tracestate` header of the call.
    pub tracestate: Option<String>,
    /// The sender's opaque data (`biz_opaque_callback_data`).
    pub opaque: Option<String>,
    /// The id the simulator returned (a wamid), when it accepted the send.
    pub platform_message_id: Option<String>,
    /// The HTTP status it answered.
    pub http_status: u16,
    /// The request body as received (`null` if it was not JSON).
    pub body: serde_json::Value,
    /// When it arrived, in unix milliseconds.
    pub received_at_unix_ms: u64,
}

/// What one platform did so far: calls to its send endpoint, webhooks
/// it got accepted (each after its retries) and gave up on, and among
/// them the receipts and echoes that follow sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlatformStats {
    pub sends: usize,
    pub webhooks_delivered: usize,
    pub webhooks_failed: usize,
    pub receipts_delivered: usize,
    pub receipts_failed: usize,
}

/// What went wrong on a [`SimulatorHandle`] call.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("unknown platform {name:?}; the simulator speaks {}", PLATFORMS.join(", "))]
    UnknownPlatform { name: String },
    #[error("no webhook target is set for {platform}")]
    NoWebhookTarget { platform: &'static str },
    #[error("the {platform} webhook was not accepted")]
    Webhook {
        platform: &'static str,
        #[source]
        source: DeliveryError,
    },
}

#[derive(Debug, Default)]
pub(crate) struct PlatformState {
    pub(crate) switches: Switches,
    pub(crate) webhook_url: Option<String>,
    pub(crate) received: VecDeque<ReceivedSend>,
    pub(crate) received_total: usize,
    pub(crate) webhooks_delivered: usize,
    pub(crate) webhooks_failed: usize,
    /// The webhooks that follow sends (receipts, echoes), accepted and
    /// given up on.
    pub(crate) receipts_delivered: usize,
    pub(crate) receipts_failed: usize,
    /// Draws for the error rate and other chance switches.
    pub(crate) rng: SimRng,
}

#[derive(Debug)]
pub(crate) struct Shared {
    platforms: BTreeMap<&'static str, Mutex<PlatformState>>,
    pub(crate) poster: WebhookPoster,
    pub(crate) stop: CancellationToken,
    pub(crate) whatsapp: WhatsAppSimConfig,
    pub(crate) messenger: MetaMessagingSimConfig,
    pub(crate) instagram: MetaMessagingSimConfig,
    pub(crate) telegram: TelegramSimConfig,
    /// Telegram's update ids and per-chat message ids.
    pub(crate) telegram_ids: telegram::Ids,
    pub(crate) chotot: ChototSimConfig,
    /// Chotot's seeded marketplace: users, listings, channels, history.
    pub(crate) chotot_data: chotot::Store,
    max_recorded: usize,
    /// Where recurring bursts count from.
    pub(crate) started: Instant,
}

impl Shared {
    pub(crate) fn new(config: &SimulatorConfig) -> anyhow::Result<Self> {
        let mut platforms = BTreeMap::new();
        platforms.insert(
            whatsapp::PLATFORM,
            Mutex::new(PlatformState {
                switches: config.whatsapp.switches.clone(),
                webhook_url: config.whatsapp.webhook_url.clone(),
                ..PlatformState::default()
            }),
        );
        for (name, meta) in [
            (messenger::PLATFORM, &config.messenger),
            (instagram::PLATFORM, &config.instagram),
        ] {
            platforms.insert(
                name,
                Mutex::new(PlatformState {
                    switches: meta.switches.clone(),
                    webhook_url: meta.webhook_url.clone(),
                    ..PlatformState::default()
                }),
            );
        }
        for (name, switches, webhook_url) in [
            (
                telegram::PLATFORM,
                &config.telegram.switches,
                &config.telegram.webhook_url,
            ),
            (
                chotot::PLATFORM,
                &config.chotot.switches,
                &config.chotot.webhook_url,
            ),
        ] {
            platforms.insert(
                name,
                Mutex::new(PlatformState {
                    switches: switches.clone(),
                    webhook_url: webhook_url.clone(),
                    ..PlatformState::default()
                }),
            );
        }
        Ok(Self {
            platforms,
            poster: WebhookPoster::new(config.webhook_attempts)?,
            stop: CancellationToken::new(),
            whatsapp: config.whatsapp.clone(),
            messenger: config.messenger.clone(),
            instagram: config.instagram.clone(),
            telegram: config.telegram.clone(),
            telegram_ids: telegram::Ids::default(),
            chotot: config.chotot.clone(),
            chotot_data: chotot::Store::seeded(&config.chotot),
            max_recorded: config.max_recorded,
            started: Instant::now(),
        })
    }

    fn resolve(&self, platform: &str) -> Result<(&'static str, &Mutex<PlatformState>), SimulatorError> {
        self.platforms
            .get_key_value(platform)
            .map(|(name, state)| (*name, state))
            .ok_or_else(|| SimulatorError::UnknownPlatform {
                name: platform.chars().take(64).collect(),
            })
    }

    /// Runs `f` on a platform's state under its lock.
    pub(crate) fn with<R>(
        &self,
        platform: &str,
        f: impl FnOnce(&mut PlatformState) -> R,
    ) -> Result<R, SimulatorError> {
        let (_, state) = self.resolve(platform)?;
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(f(&mut state))
    }

    /// Posts a webhook with retries and counts the outcome; with duplicates
    /// on, an accepted one is posted again later.
    pub(crate) async fn deliver(
        &self,
        platform: &'static str,
        hook: &SignedWebhook,
    ) -> Result<(), SimulatorError> {
        let result = self.poster.deliver(hook, &self.stop).await;
        let _ = self.with(platform, |s| match &result {
            Ok(()) => s.webhooks_delivered += 1,
            Err(_) => s.webhooks_failed += 1,
        });
        if result.is_ok() {
            crate::faults::post_duplicate(self, platform, hook);
        }
        result.map_err(|source| SimulatorError::Webhook { platform, source })
    }

    /// Records one send, forgetting the oldest beyond the limit.
    pub(crate) fn record(&self, state: &mut PlatformState, send: ReceivedSend) {
        state.received_total += 1;
        state.received.push_back(send);
        while state.received.len() > self.max_recorded {
            state.received.pop_front();
        }
    }

    pub(crate) fn webhook_url(&self, platform: &'static str) -> Result<String, SimulatorError> {
        self.with(platform, |s| s.webhook_url.clone())?
            .ok_or(SimulatorError::NoWebhookTarget { platform })
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Reads and changes a running simulator: what it received, where its
/// webhooks go, how it misbehaves. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimulatorHandle {
    pub(crate) shared: Arc<Shared>,
}

impl SimulatorHandle {
    /// Where `platform`'s webhooks go from now on. An unknown platform is
    /// logged and ignored: nothing would ever post to it.
    pub fn set_webhook_target(&self, platform: &str, url: impl Into<String>) {
        let url = url.into();
        if let Err(e) = self.shared.with(platform, |s| s.webhook_url = Some(url)) {
            tracing::warn!(error = %e, "webhook target ignored");
        }
    }

    /// The sends `platform` received, oldest first (the newest
    /// `max_recorded`; empty for an unknown platform).
    pub fn received(&self, platform: &str) -> Vec<ReceivedSend> {
        self.shared
            .with(platform, |s| s.received.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many sends `platform` received, all of them: each is one
    /// platform call.
    pub fn received_count(&self, platform: &str) -> usize {
        self.shared
            .with(platform, |s| s.received_total)
            .unwrap_or_default()
    }

    /// Forgets the sends `platform` received.
    pub fn clear_received(&self, platform: &str) {
        let _ = self.shared.with(platform, |s| {
            s.received.clear();
            s.received_total = 0;
        });
    }

    /// How many webhooks `platform` got accepted by the adapter (each after
    /// its retries), and how many it gave up on.
    pub fn webhooks_posted(&self, platform: &str) -> (usize, usize) {
        self.shared
            .with(platform, |s| (s.webhooks_delivered, s.webhooks_failed))
            .unwrap_or_default()
    }

    /// What `platform` did so far, counted exactly (the record of sends
    /// keeps only the newest).
    pub fn stats(&self, platform: &str) -> Result<PlatformStats, SimulatorError> {
        self.shared.with(platform, |s| PlatformStats {
            sends: s.received_total,
            webhooks_delivered: s.webhooks_delivered,
            webhooks_failed: s.webhooks_failed,
            receipts_delivered: s.receipts_delivered,
            receipts_failed: s.receipts_failed,
        })
    }

    /// The current switches of `platform`.
    pub fn switches(&self, platform: &str) -> Result<Switches, SimulatorError> {
        self.shared.with(platform, |s| s.switches.clone())
    }

    /// Replaces all switches of `platform`.
    pub fn set_switches(&self, platform: &str, switches: Switches) -> Result<(), SimulatorError> {
        self.shared.with(platform, |s| s.switches = switches)
    }

    /// Delays every answer of `platform`'s send endpoint.
    pub fn set_latency(&self, platform: &str, latency: Duration) -> Result<(), SimulatorError> {
        self.shared.with(platform, |s| s.switches.latency = latency)
    }

    /// Fails the next `n` sends of `platform` with `failure`.
    pub fn fail_next(&self, platform: &str, n: u32, failure: InjectedFailure) -> Result<(), SimulatorError> {
        self.shared.with(platform, |s| {
            s.switches.fail_next = n;
            s.switches.failure = failure;
        })
    }

    /// Recipients (by prefix) whose sends always fail permanently.
    pub fn set_failing_recipients(
        &self,
        platform: &str,
        prefixes: Vec<String>,
    ) -> Result<(), SimulatorError> {
        self.shared
            .with(platform, |s| s.switches.failing_recipients = prefixes)
    }

    /// Turns receipts after a send on or off.
    pub fn set_receipts(&self, platform: &str, enabled: bool) -> Result<(), SimulatorError> {
        self.shared.with(platform, |s| s.switches.receipts = enabled)
    }

    /// A platform user writes `text`: posts the inbound webhook (signed,
    /// retried) and returns the platform's id of the message.
    pub async fn inbound_text(
        &self,
        platform: &str,
        from: &str,
        sender_name: &str,
        text: &str,
    ) -> Result<String, SimulatorError> {
        let (platform, _) = self.shared.resolve(platform)?;
        match platform {
            whatsapp::PLATFORM => whatsapp::inbound_text(&self.shared, from, sender_name, text).await,
            messenger::PLATFORM | instagram::PLATFORM => {
                crate::meta_messaging::inbound_text(&self.shared, platform, from, text).await
            }
            telegram::PLATFORM => telegram::inbound_text(&self.shared, from, sender_name, text).await,
            chotot::PLATFORM => chotot::inbound_text(&self.shared, from, sender_name, text).await,
            _ => Err(SimulatorError::UnknownPlatform {
                name: platform.to_owned(),
            }),
        }
    }

    /// Posts `body` once to `platform`'s webhook target, signed as the
    /// platform signs, without retrying; the HTTP status the adapter
    /// answered. For rough edges: duplicates, out-of-order receipts, bodies
    /// the adapter must refuse.
    pub async fn post_webhook(&self, platform: &str, body: Vec<u8>) -> Result<u16, SimulatorError> {
        let (platform, _) = self.shared.resolve(platform)?;
        let hook = match platform {
            whatsapp::PLATFORM => whatsapp::signed(&self.shared, body)?,
            messenger::PLATFORM | instagram::PLATFORM => {
                crate::meta_messaging::signed(&self.shared, platform, body)?
            }
            telegram::PLATFORM => telegram::signed(&self.shared, body)?,
            chotot::PLATFORM => chotot::signed(&self.shared, body)?,
            _ => {
                return Err(SimulatorError::UnknownPlatform {
                    name: platform.to_owned(),
                });
            }
        };
        self.shared
            .poster
            .post_once(&hook)
            .await
            .map_err(|source| SimulatorError::Webhook { platform, source })
    }
}
