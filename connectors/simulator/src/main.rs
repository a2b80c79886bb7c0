//! `chat4all-simulator`: the platforms' APIs on one machine, for the
//! adapters to call and to receive webhooks from.

use std::time::Duration;

use clap::Parser;

/// Serves the platforms' HTTP APIs and posts their webhooks back.
#[derive(Debug, Parser)]
#[command(name = "chat4all-simulator", version, about)]
struct Cli {
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    simulator: chat4all_simulator::args::SimulatorArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let process = chat4all_telemetry::Process {
        name: "simulator",
        telemetry: &cli.telemetry,
        health: None,
        drain: Duration::from_secs(10),
    };
    let config = cli.simulator.into_config();
    process
        .run(|shutdown| async move {
            chat4all_simulator::Simulator::bind(config)
                .await?
                .run(shutdown)
                .await
        })
        .await
}
