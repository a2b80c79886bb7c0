//! `chat4all-status-consumer`: applies delivery-status updates to the store.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Chat4All's status consumer")]
struct Args {
    #[command(flatten)]
    status: chat4all_status_consumer::StatusConsumerConfig,
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
        name: "status-consumer",
        telemetry: &args.telemetry,
        health: Some(args.health.listen),
        drain: Duration::from_secs(30),
    };
    let (config, kafka) = (args.status.clone(), args.kafka.clone());
    process
        .run(|shutdown| async move { chat4all_status_consumer::run(&config, &kafka, store, shutdown).await })
        .await
}
