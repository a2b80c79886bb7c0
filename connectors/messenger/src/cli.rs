//! The `chat4all-messenger` process: its flags and its life, here rather than
//! in the binary so `chat4all run messenger` runs the same thing.

use std::process::ExitCode;

/// The Facebook Messenger adapter.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-messenger", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    pub messenger: crate::MessengerConfig,
}

/// Serves until SIGTERM or SIGINT, then drains; a configuration that could
/// not work exits with EX_USAGE before any port is bound.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.messenger.clone();
    chat4all_adapter::process::run(
        "messenger",
        &cli.telemetry,
        cli.messenger.validate(),
        |shutdown| async move { crate::bind(config).await?.run(shutdown).await },
    )
    .await
}
