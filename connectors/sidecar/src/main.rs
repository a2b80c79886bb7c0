//! `chat4all-connector-sidecar`: the reliability half of a connector pod.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Chat4All's connector sidecar")]
struct Args {
    #[command(flatten)]
    sidecar: chat4all_connector_sidecar::SidecarConfig,
    #[command(flatten)]
    kafka: chat4all_kafka::KafkaArgs,
    #[command(flatten)]
    store: chat4all_store::grpc::StoreArgs,
    #[command(flatten)]
    health: chat4all_telemetry::HealthArgs,
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = args.store.connect().context("store address")?;
    let process = chat4all_telemetry::Process {
        name: "connector-sidecar",
        telemetry: &args.telemetry,
        health: Some(args.health.listen),
        // Retries of the batch in hand are bounded; let them finish.
        drain: Duration::from_secs(60),
    };
    let (config, kafka) = (args.sidecar.clone(), args.kafka.clone());
    process
        .run_with_health(|shutdown, health| async move {
            chat4all_connector_sidecar::run(&config, &kafka, store, health, shutdown).await
        })
        .await
}
