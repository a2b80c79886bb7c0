//! The `chat4all-router` process: its flags and its life, here rather than
//! in the binary so `chat4all run router` runs the same thing.

use std::time::Duration;

use anyhow::Context as _;

/// Routes accepted messages to their platform's topic, and stores what
/// users wrote on the platforms.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-router", version, about = "Chat4All's router")]
pub struct Cli {
    #[command(flatten)]
    pub router: crate::RouterConfig,
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
    let process = chat4all_telemetry::Process {
        name: "router",
        telemetry: &cli.telemetry,
        health: Some(cli.health.listen),
        drain: Duration::from_secs(30),
    };
    let store = cli.store.connect().context("store address")?;
    let (router, kafka) = (cli.router.clone(), cli.kafka.clone());
    process
        .run_with_health(|shutdown, health| async move {
            let ready = chat4all_kafka::ready::single("router", health.as_ref(), &shutdown);
            crate::run(&router, &kafka, store, health, ready, shutdown).await
        })
        .await
}
