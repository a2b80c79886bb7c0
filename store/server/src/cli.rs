//! The `chat4all-store` process: its flags and its life, here rather than in
//! the binary so `chat4all run store` runs the same thing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use chat4all_store::SharedStore;
use chat4all_store_embedded::{EmbeddedOptions, EmbeddedStore, Synchronous};
use chat4all_store_scylla::{ScyllaConfig, ScyllaStore, ScyllaStoreOptions};

/// The MessageStore gRPC service, over the embedded backend (one machine)
/// or ScyllaDB/Cassandra (`--store scylla`), for the services that run as
/// their own processes.
#[derive(Debug, clap::Parser)]
#[command(name = "chat4all-store", version, about = "Chat4All's MessageStore service")]
pub struct Cli {
    /// Which backend holds the data.
    #[arg(long = "store", env = "CHAT4ALL_STORE", value_enum, default_value_t = Backend::Embedded)]
    pub backend: Backend,
    /// Where the embedded store keeps its data.
    #[arg(long, env = "CHAT4ALL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Where the MessageStore gRPC service listens.
    #[arg(long, env = "CHAT4ALL_STORE_LISTEN", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,
    /// fsync every commit (survives power loss, not only a process kill).
    #[arg(long, env = "CHAT4ALL_STORE_FSYNC")]
    pub fsync: bool,
    // Boxed: most runs never use them, and `chat4all run` holds every
    // service's flags in one enum.
    #[command(flatten)]
    pub scylla: Box<ScyllaConfig>,
    #[command(flatten)]
    pub scylla_options: Box<ScyllaStoreOptions>,
    #[command(flatten)]
    pub telemetry: chat4all_telemetry::TelemetryArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// SQLite under `--data-dir`: one replica.
    Embedded,
    /// A ScyllaDB or Cassandra cluster (`--scylla-*`): any number of replicas.
    Scylla,
}

/// Serves until SIGTERM or SIGINT, then closes the database.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.backend == Backend::Scylla
        && let Err(error) = cli.scylla.validate().and(cli.scylla_options.validate())
    {
        // Bad configuration: refused before anything connects or binds.
        eprintln!("chat4all-store: {error}");
        std::process::exit(64);
    }
    let options = EmbeddedOptions {
        synchronous: if cli.fsync {
            Synchronous::Full
        } else {
            Synchronous::Normal
        },
        ..Default::default()
    };
    let path = cli.data_dir.join("store.sqlite3");
    let process = chat4all_telemetry::Process {
        name: "store",
        telemetry: &cli.telemetry,
        // Health is served on the store's own gRPC port.
        health: None,
        drain: Duration::from_secs(30),
    };
    let (listen, backend) = (cli.listen, cli.backend);
    let (scylla, scylla_options) = (cli.scylla, cli.scylla_options);
    process
        .run(|shutdown| async move {
            let (store, embedded): (SharedStore, _) = match backend {
                Backend::Embedded => {
                    let embedded = EmbeddedStore::open(&path, options)
                        .with_context(|| format!("opening {}", path.display()))?;
                    (Arc::new(embedded.clone()), Some(embedded))
                }
                Backend::Scylla => {
                    let store = ScyllaStore::connect(*scylla, *scylla_options)
                        .await
                        .context("connecting to scylla")?;
                    (Arc::new(store), None)
                }
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(addr = %listener.local_addr()?, ?backend, "store listening");
            chat4all_store_grpc::serve(store, listener, shutdown).await?;
            if let Some(embedded) = embedded {
                embedded.close().await;
            }
            Ok(())
        })
        .await
}
