//! What every Chat4All binary sets up once: JSON logs, the Prometheus
//! recorder and its `/metrics` endpoint, the shutdown signal, health and
//! reflection for its gRPC ports, and the W3C trace context that rides
//! along each message.
//!
//! One process may host many services (the one-machine mode), so the
//! recorder and the log subscriber are installed at most once per process.

mod grpc_port;
mod health;
mod logging;
pub mod metric_catalog;
mod metrics_endpoint;
pub mod otlp_sink;
mod process;
pub mod spans;
pub mod trace_context;

use std::net::SocketAddr;

pub use grpc_port::{GrpcPort, PortHealth};
pub use health::{HealthArgs, serve_grpc_health};
pub use logging::LogFormat;
pub use metrics_endpoint::{MetricsEndpoint, metrics_handle};
pub use process::Process;
pub use spans::{Hop, HopKind, HopTracer};
pub use trace_context::TraceContext;

/// The telemetry flags every binary shares.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log format: `json` lines, or `pretty` for people.
    #[arg(long, env = "CHAT4ALL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter, in `RUST_LOG` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// Where `/metrics` (Prometheus text) is served; port 0 picks one.
    #[arg(long, env = "CHAT4ALL_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
}

impl Default for TelemetryArgs {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            log_filter: "info".to_owned(),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// Telemetry set up for this process.
pub struct Telemetry {
    args: TelemetryArgs,
}

/// Installs logging and the metrics recorder (once per process).
pub fn init(args: &TelemetryArgs) -> anyhow::Result<Telemetry> {
    logging::init(args.log_format, &args.log_filter)?;
    metrics_handle();
    Ok(Telemetry { args: args.clone() })
}

impl Telemetry {
    /// Binds `/metrics` and serves it until `shutdown`.
    pub async fn serve_metrics(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<SocketAddr> {
        let endpoint = MetricsEndpoint::bind(self.args.metrics_addr).await?;
        let addr = endpoint.local_addr();
        tokio::spawn(endpoint.run(shutdown));
        Ok(addr)
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
