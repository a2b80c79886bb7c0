//! When a started process is ready: its gRPC health says SERVING, or its
//! port takes connections (the simulator, the broker).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use std::process::ExitStatus;

use super::process::log_tail;

/// What says a process is ready.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Probe {
    /// grpc.health.v1 at this address answers SERVING for the server.
    GrpcHealth(SocketAddr),
    /// The port accepts a connection.
    Listening(SocketAddr),
}

impl Probe {
    async fn passes(self) -> bool {
        match self {
            Probe::GrpcHealth(addr) => serving(addr).await,
            Probe::Listening(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
        }
    }
}

async fn serving(addr: SocketAddr) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
    else {
        return false;
    };
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    matches!(answer, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32)
}

/// Waits until `probe` passes; fails early, with the end of its log, if
/// the process exits first.
pub(crate) async fn wait_ready(
    name: &str,
    probe: Probe,
    mut exited: impl FnMut() -> Option<ExitStatus>,
    log: &Path,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if probe.passes().await {
            return Ok(());
        }
        if let Some(status) = exited() {
            anyhow::bail!(
                "{name} exited ({status}) before it was ready; the end of {}:\n{}",
                log.display(),
                log_tail(log, 20)
            );
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{name} was not ready within {within:?}; the end of {}:\n{}",
                log.display(),
                log_tail(log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
