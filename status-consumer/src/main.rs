//! `chat4all-status-consumer`: applies delivery-status updates to the store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Chat4All's status consumer")]
struct Args {
    #[command(flatten)]
    status: chat4all_status_consumer::StatusConsumerConfig,
    #[command(flatten)]
    kafka: chat4all_kafka::KafkaArgs,
    /// The MessageStore service.
    #[arg(long, env = "CHAT4ALL_STORE_ADDR", default_value = "http://127.0.0.1:50052")]
    store_addr: String,
    #[command(flatten)]
    health: chat4all_telemetry::HealthArgs,
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let telemetry = chat4all_telemetry::init(&args.telemetry)?;
    let shutdown = CancellationToken::new();
    let store =
        chat4all_store::grpc::StoreClient::connect(&args.store_addr).context("connecting to the store")?;
    telemetry.serve_metrics(shutdown.clone()).await?;
    chat4all_telemetry::serve_grpc_health(args.health.listen, shutdown.clone()).await?;
    let consumer = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { chat4all_status_consumer::run(&args.status, &args.kafka, Arc::new(store), shutdown).await }
    });
    chat4all_telemetry::shutdown_signal().await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), consumer)
        .await
        .context("drain timed out")???;
    Ok(())
}
