//! The `chat4all-simulator` process: its flags and its life, here rather
//! than in the binary so `chat4all run simulator` runs the same thing.

use std::time::Duration;

/// Serves the platforms' HTTP APIs and posts their webhooks back.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-simulator", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    pub simulator: crate::args::SimulatorArgs,
}

/// Serves until SIGTERM or SIGINT; pending webhooks are abandoned.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let process = chat4all_telemetry::Process {
        name: "simulator",
        telemetry: &cli.telemetry,
        health: None,
        drain: Duration::from_secs(10),
    };
    let config = cli.simulator.into_config();
    process
        .run(|shutdown| async move { crate::Simulator::bind(config).await?.run(shutdown).await })
        .await
}
