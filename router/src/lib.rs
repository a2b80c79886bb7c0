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

mod inbound;
mod outbound;

use std::time::Duration;

use anyhow::Context as _;
use chat4all_kafka::{
    BatchHandler, ConsumerSettings, DeadLetter, HandlerError, KafkaArgs, Producer, Record, topics,
};
use chat4all_store::SharedStore;
use tokio_util::sync::CancellationToken;

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
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            group: "router".to_owned(),
            dedup_window: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Consumes until `shutdown`, then commits and flushes.
pub async fn run(
    config: &RouterConfig,
    kafka: &KafkaArgs,
    store: SharedStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = ConsumerSettings::new(&config.group, &[topics::MESSAGES, topics::INBOUND]);
    let dedup_window = config.dedup_window;
    chat4all_kafka::consume(
        kafka,
        settings,
        |producer| Router {
            producer,
            store,
            dedup_window,
        },
        shutdown,
    )
    .await
    .context("consuming messages and inbound")
}

/// A record and its place in the batch (for dead letters).
type Indexed<'a> = (usize, &'a Record);

struct Router {
    producer: Producer,
    store: SharedStore,
    dedup_window: Duration,
}

impl BatchHandler for Router {
    async fn handle(&self, batch: &[Record]) -> Result<Vec<DeadLetter>, HandlerError> {
        let (inbound, outbound): (Vec<Indexed<'_>>, Vec<Indexed<'_>>) = batch
            .iter()
            .enumerate()
            .partition(|(_, r)| r.topic == topics::INBOUND);
        let mut dead = outbound::route_all(&self.producer, &outbound).await?;
        dead.extend(inbound::receive_all(&self.store, &self.producer, self.dedup_window, &inbound).await?);
        Ok(dead)
    }
}
