//! The `chat4all-telegram` process: its flags and its life, here rather than
//! in the binary so `chat4all run telegram` runs the same thing.

use std::process::ExitCode;

/// The Telegram Bot API adapter.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-telegram", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    pub telegram: crate::TelegramConfig,
}

/// Serves until SIGTERM or SIGINT, then drains; a configuration that could
/// not work exits with EX_USAGE before any port is bound.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.telegram.clone();
    chat4all_adapter::process::run(
        "telegram",
        &cli.telemetry,
        cli.telegram.validate(),
        |shutdown| async move { crate::bind(config).await?.run(shutdown).await },
    )
    .await
}
