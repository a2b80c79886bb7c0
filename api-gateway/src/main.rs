//! `chat4all-api-gateway`: the public gRPC API alone, against a Kafka
//! cluster and a MessageStore service.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Chat4All's public gRPC API")]
struct Args {
    #[command(flatten)]
    gateway: chat4all_api_gateway::GatewayConfig,
    #[command(flatten)]
    kafka: chat4all_kafka::KafkaArgs,
    /// The MessageStore service.
    #[arg(long, env = "CHAT4ALL_STORE_ADDR", default_value = "http://127.0.0.1:50052")]
    store_addr: String,
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
    let gateway = chat4all_api_gateway::bind(&args.gateway, &args.kafka, std::sync::Arc::new(store)).await?;
    telemetry.serve_metrics(shutdown.clone()).await?;
    tracing::info!(addr = %gateway.local_addr(), "api-gateway listening");
    let server = tokio::spawn(gateway.run(shutdown.clone()));
    chat4all_telemetry::shutdown_signal().await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .context("drain timed out")???;
    Ok(())
}
