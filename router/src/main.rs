//! `chat4all-router`: routes accepted messages to their platform's topic.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Chat4All's router")]
struct Args {
    #[command(flatten)]
    router: chat4all_router::RouterConfig,
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
    let process = chat4all_telemetry::Process {
        name: "router",
        telemetry: &args.telemetry,
        health: Some(args.health.listen),
        drain: Duration::from_secs(30),
    };
    let store = args.store.connect().context("store address")?;
    let (router, kafka) = (args.router.clone(), args.kafka.clone());
    process
        .run_with_health(|shutdown, health| async move {
            chat4all_router::run(&router, &kafka, store, health, shutdown).await
        })
        .await
}
