//! `chat4all-telegram`: the Telegram adapter as its own process, beside a
//! connector sidecar in the Telegram connector pod.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// The Telegram Bot API adapter.
#[derive(Debug, Parser)]
#[command(name = "chat4all-telegram", version, about)]
struct Cli {
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    telegram: chat4all_telegram::TelegramConfig,
}

/// EX_USAGE: bad configuration, refused before any port is bound.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Err(e) = cli.telegram.validate() {
        eprintln!("chat4all-telegram: refusing to start: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let process = chat4all_telemetry::Process {
        name: "telegram-adapter",
        telemetry: &cli.telemetry,
        // Health is served on the adapter's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    let config = cli.telegram.clone();
    process
        .run(|shutdown| async move { chat4all_telegram::bind(config).await?.run(shutdown).await })
        .await?;
    Ok(ExitCode::SUCCESS)
}
