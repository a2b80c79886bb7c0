//! `chat4all-messenger`: the Messenger adapter as its own process, beside a
//! connector sidecar in the Messenger connector pod.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// The Facebook Messenger adapter.
#[derive(Debug, Parser)]
#[command(name = "chat4all-messenger", version, about)]
struct Cli {
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    messenger: chat4all_messenger::MessengerConfig,
}

/// EX_USAGE: bad configuration, refused before any port is bound.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Err(e) = cli.messenger.validate() {
        eprintln!("chat4all-messenger: refusing to start: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let process = chat4all_telemetry::Process {
        name: "messenger-adapter",
        telemetry: &cli.telemetry,
        // Health is served on the adapter's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    let config = cli.messenger.clone();
    process
        .run(|shutdown| async move { chat4all_messenger::bind(config).await?.run(shutdown).await })
        .await?;
    Ok(ExitCode::SUCCESS)
}
