//! `chat4all-chotot`: the Chotot adapter as its own process, beside a
//! connector sidecar in the Chotot connector pod.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// The Chotot chat-api adapter.
#[derive(Debug, Parser)]
#[command(name = "chat4all-chotot", version, about)]
struct Cli {
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    chotot: chat4all_chotot::ChototConfig,
}

/// EX_USAGE: bad configuration, refused before any port is bound.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Err(e) = cli.chotot.validate() {
        eprintln!("chat4all-chotot: refusing to start: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let process = chat4all_telemetry::Process {
        name: "chotot-adapter",
        telemetry: &cli.telemetry,
        // Health is served on the adapter's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    let config = cli.chotot.clone();
    process
        .run(|shutdown| async move { chat4all_chotot::bind(config).await?.run(shutdown).await })
        .await?;
    Ok(ExitCode::SUCCESS)
}
