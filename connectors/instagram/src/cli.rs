//! The `chat4all-instagram` process: its flags and its life, here rather than
//! in the binary so `chat4all run instagram` runs the same thing.

use std::process::ExitCode;

/// The Instagram messaging adapter.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-instagram", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    pub instagram: crate::InstagramConfig,
}

/// Serves until SIGTERM or SIGINT, then drains; a configuration that could
/// not work exits with EX_USAGE before any port is bound.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.instagram.clone();
    chat4all_adapter::process::run(
        "instagram",
        &cli.telemetry,
        cli.instagram.validate(),
        |shutdown| async move { crate::bind(config).await?.run(shutdown).await },
    )
    .await
}
