//! The router: outbound routing and inbound sync.
//!
//! - [`outbound`]: `messages` → the platform's topic. Each message is
//!   marked ROUTED on `status-updates` (acked) before it is produced to
//!   `<platform>-outbound`, so on the conversation's partition ROUTED always
//!   precedes the SENT the connector reports later.
//! - [`inbound`]: `inbound` (what users wrote, from the connectors) → the
//!   store, once (de-duplicated on the platform's message id within a
//!   window), in its channel (found or created) → `message-events`, where
//!   the gateway's watchers see it.

pub mod cli;
mod inbound;
pub mod loop_guard;
mod outbound;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chat4all_kafka::{
    BatchHandler, ConsumerSettings, DeadLetter, HandlerError, KafkaArgs, Producer, ReadyFlag, Record, topics,
};
use chat4all_store::SharedStore;
use chat4all_telemetry::HopTracer;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::loop_guard::{LoopGuard, LoopGuardConfig};

/// The router's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct RouterConfig {
    /// Kafka consumer group of the routers.
    #[arg(
        long = "router-group",
        env = "CHAT4ALL_ROUTER_GROUP",
        default_value = "router"
    )]
    pub group: String,
    /// How long a platform message id is remembered: a webhook the platform
    /// delivers again within it is stored once.
    #[arg(long = "inbound-dedup-window", env = "CHAT4ALL_INBOUND_DEDUP_WINDOW",
        value_parser = humantime::parse_duration, default_value = "24h")]
    pub dedup_window: Duration,
    /// Bounces (a user message answered, the answer echoed back) a
    /// conversation may make within the loop guard's window before it is
    /// held.
    #[arg(
        long = "loop-guard-bounces",
        env = "CHAT4ALL_LOOP_GUARD_BOUNCES",
        default_value_t = 20
    )]
    pub loop_guard_bounces: usize,
    /// The loop guard's sync window.
    #[arg(long = "loop-guard-window", env = "CHAT4ALL_LOOP_GUARD_WINDOW",
        value_parser = humantime::parse_duration, default_value = "10s")]
    pub loop_guard_window: Duration,
    /// How long a looping conversation is held.
    #[arg(long = "loop-guard-hold", env = "CHAT4ALL_LOOP_GUARD_HOLD",
        value_parser = humantime::parse_duration, default_value = "60s")]
    pub loop_guard_hold: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            group: "router".to_owned(),
            dedup_window: Duration::from_secs(24 * 60 * 60),
            loop_guard_bounces: LoopGuardConfig::default().max_bounces,
            loop_guard_window: LoopGuardConfig::default().window,
            loop_guard_hold: LoopGuardConfig::default().hold,
        }
    }
}

/// Consumes until `shutdown`, then commits and flushes. `ready` is set once
/// the router has its partitions.
pub async fn run(
    config: &RouterConfig,
    kafka: &KafkaArgs,
    store: SharedStore,
    health: Option<HealthReporter>,
    ready: ReadyFlag,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    register_series();
    // Routing a message again is a repeat (its claim keeps the platform
    // call single) and an inbound message is stored once by its platform
    // id, so a batch cut short by a stop is safe to redo.
    let settings = ConsumerSettings::new(&config.group, &[topics::MESSAGES, topics::INBOUND])
        .with_ready(ready)
        .with_drain(std::time::Duration::from_secs(3));
    let dedup_window = config.dedup_window;
    let guard = Arc::new(LoopGuard::new(LoopGuardConfig {
        max_bounces: config.loop_guard_bounces.max(1),
        window: config.loop_guard_window,
        hold: config.loop_guard_hold,
    }));
    let reporter = tokio::spawn(report_guard(guard.clone(), health, shutdown.clone()));
    let tracer = chat4all_telemetry::spans::tracer("chat4all-router");
    let make = |producer| Router {
        producer,
        tracer,
        store,
        dedup_window,
        guard,
    };
    let consumed = chat4all_kafka::consume(kafka, settings, make, shutdown)
        .await
        .context("consuming messages and inbound");
    let _ = reporter.await;
    consumed
}

/// What an operator alerts on, at 0 from start-up: `increase()` over a
/// series that appears at 1 misses its first event.
fn register_series() {
    for platform in chat4all_domain::Platform::ALL.map(chat4all_domain::Platform::as_str) {
        metrics::counter!("chat4all_inbound_duplicates_total", "platform" => platform).increment(0);
    }
    metrics::counter!("chat4all_loop_guard_trips_total").increment(0);
    metrics::counter!("chat4all_loop_guard_held_messages_total").increment(0);
    metrics::gauge!("chat4all_loop_guard_held_conversations").set(0.0);
}

/// The held conversations as a gauge, and as the health service
/// `chat4all.router.loop_guard` (NOT_SERVING while any is held); the
/// router's own health stays SERVING.
async fn report_guard(guard: Arc<LoopGuard>, health: Option<HealthReporter>, shutdown: CancellationToken) {
    let mut last = None;
    loop {
        let held = guard.held();
        metrics::gauge!("chat4all_loop_guard_held_conversations").set(held as f64);
        if let Some(health) = &health
            && last != Some(held > 0)
        {
            let status = if held > 0 {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            health
                .set_service_status("chat4all.router.loop_guard", status)
                .await;
            last = Some(held > 0);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// A record and its place in the batch (for dead letters).
type Indexed<'a> = (usize, &'a Record);

struct Router {
    producer: Producer,
    tracer: HopTracer,
    store: SharedStore,
    dedup_window: Duration,
    guard: Arc<LoopGuard>,
}

impl BatchHandler for Router {
    async fn handle(&self, batch: &[Record]) -> Result<Vec<DeadLetter>, HandlerError> {
        let (inbound, outbound): (Vec<Indexed<'_>>, Vec<Indexed<'_>>) = batch
            .iter()
            .enumerate()
            .partition(|(_, r)| r.topic == topics::INBOUND);
        let mut dead = outbound::route_all(&self.producer, &self.tracer, &self.guard, &outbound).await?;
        dead.extend(
            inbound::receive_all(
                &self.store,
                &self.producer,
                &self.tracer,
                &self.guard,
                self.dedup_window,
                &inbound,
            )
            .await?,
        );
        Ok(dead)
    }
}

#[cfg(test)]
mod tests {
    use chat4all_domain::Platform;
    use chat4all_proto::v1 as pb;

    use super::*;
    use crate::loop_guard::{Direction, Verdict};

    /// A bot answering every message of a Telegram chat by `telegram:42`
    /// while the chat's channel has its own conversation id: both
    /// directions must count under one key, or the loop never trips.
    #[tokio::test(start_paused = true)]
    async fn a_platform_id_reply_loop_trips_the_guard() {
        let guard = LoopGuard::new(LoopGuardConfig {
            max_bounces: 3,
            window: Duration::from_secs(10),
            hold: Duration::from_secs(60),
        });
        let inbound = pb::InboundMessage {
            platform: "telegram".into(),
            vendor_channel_id: "42".into(),
            external_message_id: "42:1".into(),
            text: "echo".into(),
            ..Default::default()
        };
        let inbound = inbound::to_new_inbound(inbound, None, Duration::from_secs(60)).unwrap();
        let reply = pb::OutboundMessage {
            message_id: "m".into(),
            // The gateway's default for `telegram:42`, not the channel's id.
            conversation_id: "telegram:42".into(),
            recipient: Some(pb::Recipient {
                platform: "telegram".into(),
                id: "42".into(),
            }),
            ..Default::default()
        };
        let (inbound_key, outbound_key) = (
            inbound::guard_key(&inbound),
            outbound::guard_key(Platform::Telegram, &reply),
        );
        assert_eq!(inbound_key, outbound_key);
        let mut verdicts = Vec::new();
        for _ in 0..3 {
            verdicts.push(guard.observe(&inbound_key, Direction::Inbound));
            verdicts.push(guard.observe(&outbound_key, Direction::Outbound));
        }
        assert_eq!(verdicts[..4], [Verdict::Pass; 4], "three bounces are allowed");
        assert_eq!(verdicts[4..], [Verdict::Hold; 2], "the fourth bounce trips");
        assert_eq!(guard.held(), 1);
    }
}
