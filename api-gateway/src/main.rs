//! `chat4all-api-gateway`: the public gRPC API alone, against a Kafka
//! cluster and a MessageStore service.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Chat4All's public gRPC API")]
struct Args {
    #[command(flatten)]
    gateway: chat4all_api_gateway::GatewayConfig,
    #[command(flatten)]
    kafka: chat4all_kafka::KafkaArgs,
    #[command(flatten)]
    store: chat4all_store::grpc::StoreArgs,
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = args.store.connect().context("store address")?;
    let process = chat4all_telemetry::Process {
        name: "api-gateway",
        telemetry: &args.telemetry,
        // Health is served on the gateway's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    let (config, kafka) = (args.gateway.clone(), args.kafka.clone());
    process
        .run(|shutdown| async move {
            let gateway = chat4all_api_gateway::bind(&config, &kafka, store).await?;
            tracing::info!(addr = %gateway.local_addr(), "api-gateway listening");
            gateway.run(shutdown).await
        })
        .await
}
