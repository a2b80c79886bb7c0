//! The `chat4all-api-gateway` process: its flags and its life, here rather
//! than in the binary so `chat4all run api-gateway` runs the same thing.

use std::time::Duration;

use anyhow::Context as _;

/// Chat4All's public gRPC API, against a Kafka cluster and a MessageStore
/// service.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-api-gateway", version, about = "Chat4All's public gRPC API")]
pub struct Cli {
    #[command(flatten)]
    pub gateway: crate::GatewayConfig,
    #[command(flatten)]
    pub kafka: chat4all_kafka::KafkaArgs,
    #[command(flatten)]
    pub store: chat4all_store_grpc::StoreArgs,
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
}

/// Serves until SIGTERM or SIGINT, then drains.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = cli.store.connect().context("store address")?;
    let process = chat4all_telemetry::Process {
        name: "api-gateway",
        telemetry: &cli.telemetry,
        // Health is served on the gateway's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    let (config, kafka) = (cli.gateway.clone(), cli.kafka.clone());
    process
        .run(|shutdown| async move {
            let gateway = crate::bind(&config, &kafka, store).await?;
            tracing::info!(addr = %gateway.local_addr(), "api-gateway listening");
            gateway.run(shutdown).await
        })
        .await
}
