//! `chat4all-whatsapp`: the WhatsApp adapter as its own process, beside a
//! connector sidecar in the WhatsApp connector pod.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// The WhatsApp Business Cloud API adapter.
#[derive(Debug, Parser)]
#[command(name = "chat4all-whatsapp", version, about)]
struct Cli {
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
    #[command(flatten)]
    whatsapp: chat4all_whatsapp::WhatsAppConfig,
}

/// EX_USAGE: bad configuration, refused before any port is bound.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let telemetry = chat4all_telemetry::init(&cli.telemetry)?;
    if let Err(e) = cli.whatsapp.validate() {
        tracing::error!(error = %e, "refusing to start");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let shutdown = CancellationToken::new();
    telemetry
        .serve_metrics(shutdown.clone())
        .await
        .context("cannot serve /metrics")?;
    let adapter = chat4all_whatsapp::bind(cli.whatsapp)
        .await
        .context("cannot start the adapter")?;
    let run = adapter.run(shutdown.clone());
    tokio::pin!(run);
    let result = tokio::select! {
        result = &mut run => result,
        () = chat4all_telemetry::shutdown_signal() => {
            tracing::info!("shutdown requested");
            shutdown.cancel();
            run.await
        }
    };
    shutdown.cancel();
    result.context("the adapter failed")?;
    Ok(ExitCode::SUCCESS)
}
