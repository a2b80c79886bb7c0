//! The life of a service process, written once for every binary:
//! telemetry, `/metrics`, gRPC health (for services with no gRPC port of
//! their own), the service itself, then SIGINT/SIGTERM → cancel → drain
//! within a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;

use crate::{TelemetryArgs, serve_grpc_health, shutdown_signal};

/// How a service process runs.
pub struct Process<'a> {
    pub name: &'static str,
    pub telemetry: &'a TelemetryArgs,
    /// Where to serve grpc.health.v1, for a service that has no gRPC port.
    pub health: Option<SocketAddr>,
    /// How long the service may take to drain after the signal.
    pub drain: Duration,
}

impl Process<'_> {
    /// Runs `service` until a signal, then cancels it and waits for it to
    /// drain. `service` gets the shutdown token; it binds what it needs
    /// before it returns its future's first `Pending`.
    pub async fn run<F, Fut>(self, service: F) -> anyhow::Result<()>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.run_with_health(|shutdown, _| service(shutdown)).await
    }

    /// As [`run`](Self::run), handing the service the health reporter (when
    /// `health` is set) so it can report on parts of itself.
    pub async fn run_with_health<F, Fut>(self, service: F) -> anyhow::Result<()>
    where
        F: FnOnce(CancellationToken, Option<HealthReporter>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let telemetry = crate::init(self.telemetry)?;
        crate::spans::export_to(crate::spans::endpoint_from_env());
        let shutdown = CancellationToken::new();
        telemetry.serve_metrics(shutdown.clone()).await?;
        let reporter = match self.health {
            Some(addr) => Some(serve_grpc_health(addr, shutdown.clone()).await?.1),
            None => None,
        };
        let mut task = tokio::spawn(service(shutdown.clone(), reporter));
        tokio::select! {
            () = shutdown_signal() => {}
            // The service ended on its own (a start-up failure, say).
            ended = &mut task => return ended.with_context(|| format!("{} panicked", self.name))?,
        }
        tracing::info!(service = self.name, "shutting down");
        shutdown.cancel();
        let drained = tokio::time::timeout(self.drain, task)
            .await
            .with_context(|| format!("{} did not drain within {:?}", self.name, self.drain))
            .and_then(|ended| ended.with_context(|| format!("{} panicked", self.name)));
        // Spans of the drain itself are exported too.
        crate::spans::shutdown().await;
        drained?
    }
}
