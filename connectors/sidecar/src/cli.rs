//! The `chat4all-connector-sidecar` process: its flags and its life, here
//! rather than in the binary so `chat4all run connector-sidecar` runs the
//! same thing.

use std::time::Duration;

use anyhow::Context as _;

/// The reliability half of a connector pod.
#[derive(Debug, clap::Parser)]
#[command(
    name = "chat4all-connector-sidecar",
    version,
    about = "Chat4All's connector sidecar"
)]
pub struct Cli {
    #[command(flatten)]
    pub sidecar: crate::SidecarConfig,
    #[command(flatten)]
    pub kafka: chat4all_kafka::KafkaArgs,
    #[command(flatten)]
    pub store: chat4all_store_grpc::StoreArgs,
    #[command(flatten)]
    pub health: chat4all_telemetry::HealthArgs,
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
}

/// Consumes and sends until SIGTERM or SIGINT, then drains.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = cli.store.connect().context("store address")?;
    let process = chat4all_telemetry::Process {
        name: "connector-sidecar",
        telemetry: &cli.telemetry,
        health: Some(cli.health.listen),
        // Retries of the batch in hand are bounded; let them finish.
        drain: Duration::from_secs(60),
    };
    let (config, kafka) = (cli.sidecar.clone(), cli.kafka.clone());
    process
        .run_with_health(|shutdown, health| async move {
            let ready = chat4all_kafka::ready::single("connector-sidecar", health.as_ref(), &shutdown);
            crate::run(&config, &kafka, store, health, ready, shutdown).await
        })
        .await
}
