//! `chat4all-store`: the MessageStore gRPC service over the embedded
//! backend, for the services that run as their own processes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chat4all_proto::v1::message_store_server::MessageStoreServer;
use chat4all_store::SharedStore;
use chat4all_store::embedded::{EmbeddedOptions, EmbeddedStore, Synchronous};
use chat4all_store::grpc::StoreService;
use clap::Parser;
use tonic::transport::server::TcpIncoming;

#[derive(Parser)]
#[command(version, about = "Chat4All's MessageStore service")]
struct Args {
    /// Where the embedded store keeps its data.
    #[arg(long, env = "CHAT4ALL_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Where the MessageStore gRPC service listens.
    #[arg(long, env = "CHAT4ALL_STORE_LISTEN", default_value = "127.0.0.1:50052")]
    listen: SocketAddr,
    /// fsync every commit (survives power loss, not only a process kill).
    #[arg(long, env = "CHAT4ALL_STORE_FSYNC")]
    fsync: bool,
    #[command(flatten)]
    telemetry: chat4all_telemetry::TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = EmbeddedOptions {
        synchronous: if args.fsync {
            Synchronous::Full
        } else {
            Synchronous::Normal
        },
        ..Default::default()
    };
    let path = args.data_dir.join("store.sqlite3");
    let process = chat4all_telemetry::Process {
        name: "store",
        telemetry: &args.telemetry,
        // Health is served on the store's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    let listen = args.listen;
    process
        .run(|shutdown| async move {
            let embedded =
                EmbeddedStore::open(&path, options).with_context(|| format!("opening {}", path.display()))?;
            let store: SharedStore = Arc::new(embedded.clone());
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let (health_reporter, health) = tonic_health::server::health_reporter();
            health_reporter
                .set_serving::<MessageStoreServer<StoreService>>()
                .await;
            tracing::info!(addr = %listener.local_addr()?, path = %path.display(), "store listening");
            tonic::transport::Server::builder()
                .add_service(health)
                .add_service(chat4all_store::grpc::server(store))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
                .await
                .context("serving")?;
            embedded.close().await;
            Ok(())
        })
        .await
}
