//! The `chat4all-chotot` process: its flags and its life, here rather than
//! in the binary so `chat4all run chotot` runs the same thing.

use std::process::ExitCode;

/// The Chotot chat-api adapter.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-chotot", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    pub chotot: crate::ChototConfig,
}

/// Serves until SIGTERM or SIGINT, then drains; a configuration that could
/// not work exits with EX_USAGE before any port is bound.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.chotot.clone();
    chat4all_adapter::process::run(
        "chotot",
        &cli.telemetry,
        cli.chotot.validate(),
        |shutdown| async move { crate::bind(config).await?.run(shutdown).await },
    )
    .await
}
