//! The `chat4all-status-consumer` process: its flags and its life, here
//! rather than in the binary so `chat4all run status-consumer` runs the
//! same thing.

use std::time::Duration;

use anyhow::Context as _;

/// Applies delivery-status updates to the store.
#[derive(Debug, clap::Parser)]
#[command(
    name = "chat4all-status-consumer",
    version,
    about = "Chat4All's status consumer"
)]
pub struct Cli {
    #[command(flatten)]
    pub status: crate::StatusConsumerConfig,
    #[command(flatten)]
    pub kafka: chat4all_kafka::KafkaArgs,
    #[command(flatten)]
    pub store: chat4all_store_grpc::StoreArgs,
    #[command(flatten)]
    pub health: chat4all_telemetry::HealthArgs,
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
}

/// Consumes until SIGTERM or SIGINT, then commits and drains.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = cli.store.connect().context("store address")?;
    let process = chat4all_telemetry::Process {
        name: "status-consumer",
        telemetry: &cli.telemetry,
        health: Some(cli.health.listen),
        drain: Duration::from_secs(30),
    };
    let (config, kafka) = (cli.status.clone(), cli.kafka.clone());
    process
        .run_with_health(|shutdown, health| async move {
            let ready = chat4all_kafka::ready::single("status-consumer", health.as_ref(), &shutdown);
            crate::run(&config, &kafka, store, ready, shutdown).await
        })
        .await
}
