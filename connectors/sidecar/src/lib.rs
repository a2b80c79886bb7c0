//! The connector sidecar: the same binary in every connector pod, doing the
//! reliability work once so a platform adapter only knows its platform.
//!
//! - [`outbound`]: consume `<platform>-outbound`, claim each message in the
//!   store (a redelivered record never calls the platform twice), call the
//!   adapter's `Connector.Send` over gRPC with retries ([`retry`]), publish
//!   SENT or FAILED to `status-updates`; offsets are stored only after the
//!   statuses are acked.
//! - [`events`]: follow the adapter's `StreamEvents` and publish receipts to
//!   `status-updates` and user messages to `inbound`.

pub mod config;
mod events;
mod outbound;
pub mod retry;

use std::time::Duration;

use anyhow::Context as _;
use chat4all_kafka::{ConsumerSettings, KafkaArgs, Producer};
use chat4all_proto::v1::connector_client::ConnectorClient;
use chat4all_store::SharedStore;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

pub use config::SidecarConfig;

/// Runs the sidecar until `shutdown`: finishes the batch in hand, commits,
/// flushes.
pub async fn run(
    config: &SidecarConfig,
    kafka: &KafkaArgs,
    store: SharedStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let platform = config.platform;
    let channel: Channel = Endpoint::from_shared(config.connector_addr.clone())
        .context("connector address")?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    let connector = ConnectorClient::new(channel);
    let topic = platform.outbound_topic();
    let group = config
        .group
        .clone()
        .unwrap_or_else(|| format!("{platform}-sidecar"));
    let mut pump = None;
    let make = |producer: Producer| {
        let events = events::pump(connector.clone(), producer.clone(), platform, shutdown.clone());
        pump = Some(tokio::spawn(events));
        outbound::Sender::new(config, connector.clone(), store, producer)
    };
    let settings = ConsumerSettings::new(group, &[topic.as_str()]);
    let consumed = chat4all_kafka::consume(kafka, settings, make, shutdown.clone())
        .await
        .with_context(|| format!("consuming {topic}"));
    if let Some(pump) = pump {
        let _ = pump.await;
    }
    consumed?;
    tracing::info!(%platform, "sidecar stopped");
    Ok(())
}
