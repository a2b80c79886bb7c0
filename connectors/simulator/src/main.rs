//! `chat4all-simulator`: the platforms' APIs on one machine, for the
//! adapters to call and to receive webhooks from.

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Serves the platforms' HTTP APIs and posts their webhooks back.
#[derive(Debug, Parser)]
#[command(name = "chat4all-simulator", version, about)]
struct Cli {
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    simulator: chat4all_simulator::config::SimulatorArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = chat4all_telemetry::init(&cli.telemetry)?;
    let shutdown = CancellationToken::new();
    telemetry
        .serve_metrics(shutdown.clone())
        .await
        .context("cannot serve /metrics")?;
    let simulator = chat4all_simulator::Simulator::bind(cli.simulator.into_config()).await?;
    let run = simulator.run(shutdown.clone());
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => result,
        () = chat4all_telemetry::shutdown_signal() => {
            tracing::info!("shutdown requested");
            shutdown.cancel();
            run.await
        }
    }
}
