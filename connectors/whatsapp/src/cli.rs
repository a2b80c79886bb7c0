//! The `chat4all-whatsapp` process: its flags and its life, here rather than
//! in the binary so `chat4all run whatsapp` runs the same thing.

use std::process::ExitCode;

/// The WhatsApp Business Cloud API adapter.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-whatsapp", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    pub whatsapp: crate::WhatsAppConfig,
}

/// Serves until SIGTERM or SIGINT, then drains; a configuration that could
/// not work exits with EX_USAGE before any port is bound.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.whatsapp.clone();
    chat4all_adapter::process::run(
        "whatsapp",
        &cli.telemetry,
        cli.whatsapp.validate(),
        |shutdown| async move { crate::bind(config).await?.run(shutdown).await },
    )
    .await
}
