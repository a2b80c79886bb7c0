//! `chat4all-router`: routes accepted messages to their platform's topic.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Chat4All's router")]
struct Args {
    #[command(flatten)]
    router: chat4all_router::RouterConfig,
    #[command(flatten)]
    kafka: chat4all_kafka::KafkaArgs,
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
    telemetry.serve_metrics(shutdown.clone()).await?;
    chat4all_telemetry::serve_grpc_health(args.health.listen, shutdown.clone()).await?;
    let router = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { chat4all_router::run(&args.router, &args.kafka, shutdown).await }
    });
    chat4all_telemetry::shutdown_signal().await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), router)
        .await
        .context("drain timed out")???;
    Ok(())
}
