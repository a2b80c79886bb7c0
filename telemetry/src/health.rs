//! gRPC health (`grpc.health.v1`) for services that serve no other gRPC:
//! the consumers; a [`GrpcPort`] with no services of its own. Kubernetes
//! probes it with its built-in `grpc:` probe. SERVING once started;
//! NOT_SERVING as soon as shutdown begins, so traffic and restarts route
//! around a draining pod.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;

use crate::GrpcPort;

/// The gRPC health flag of the consumer services.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Where grpc.health.v1 is served.
    #[arg(
        long = "health-listen",
        env = "CHAT4ALL_HEALTH_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: SocketAddr,
}

/// Binds and serves health (and reflection, which lists only health and
/// itself) until `shutdown`; returns the bound address and the reporter,
/// for services that report on parts of themselves.
pub async fn serve_grpc_health(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, HealthReporter)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding gRPC health on {addr}"))?;
    let bound = listener.local_addr()?;
    let (routes, health) = GrpcPort::new()
        .build()
        .await
        .context("building gRPC reflection")?;
    let reporter = health.reporter().clone();
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), health.draining(shutdown))
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "gRPC health server stopped");
        }
    });
    Ok((bound, reporter))
}
