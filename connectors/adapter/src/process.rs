//! An adapter's process, written once: a configuration that could not work
//! exits with EX_USAGE before any port is bound, then the adapter serves
//! until SIGTERM or SIGINT and drains. Each platform's `cli` names itself
//! and hands over its validation and its bind.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use chat4all_telemetry::TelemetryArgs;
use tokio_util::sync::CancellationToken;

/// EX_USAGE: bad configuration, refused before any port is bound.
const EXIT_CONFIG: u8 = 64;

/// Runs the adapter of `platform`: `valid` is its configuration's check,
/// `serve` binds and serves until the token is cancelled.
pub async fn run<F, Fut>(
    platform: &'static str,
    telemetry: &TelemetryArgs,
    valid: Result<(), impl Display>,
    serve: F,
) -> anyhow::Result<ExitCode>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    if let Err(e) = valid {
        eprintln!("chat4all-{platform}: refusing to start: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let name = format!("{platform}-adapter");
    let process = chat4all_telemetry::Process {
        // One name per process for its whole life: leaked once at start-up.
        name: Box::leak(name.into_boxed_str()),
        telemetry,
        // Health is served on the adapter's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    process.run(serve).await?;
    Ok(ExitCode::SUCCESS)
}
