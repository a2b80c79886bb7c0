//! `chat4all`: run the whole system on this machine, send, follow, measure.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chat4all::{System, SystemConfig, Topology, TopologyConfig, bench, client};
use chat4all_proto::v1::{self as pb, SendMessageRequest};
use clap::{CommandFactory as _, Parser, Subcommand};

// Many threads allocate and free small buffers (gRPC, HTTP, Kafka):
// glibc's malloc spent about a tenth of the benchmark's CPU on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long `chat4all dev` waits for its consumers to join: the mock
/// cluster's first join takes about 3 s, the rest is slack for a loaded
/// machine.
const DEV_READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Parser)]
#[command(
    version,
    about = "Chat4All: one gRPC API to WhatsApp, Instagram, Messenger, Telegram and Chotot"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once and consumed at once: a large variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Runs every service in this process: Kafka as librdkafka's mock
    /// cluster, the embedded store, the platform simulator.
    Dev {
        #[command(flatten)]
        system: SystemConfig,
        #[command(flatten)]
        telemetry: chat4all_telemetry::TelemetryArgs,
    },
    /// Sends a message; prints its id.
    Send {
        /// `platform:id`, e.g. `whatsapp:15551234567`.
        #[arg(long)]
        to: String,
        #[arg(long)]
        text: String,
        #[arg(long, default_value = "")]
        conversation: String,
        #[arg(long, default_value = "")]
        idempotency_key: String,
        /// After a platform call with no answer, send again rather than
        /// end FAILED with `outcome_unknown` (the user may get it twice).
        #[arg(long)]
        at_least_once: bool,
        #[arg(long, env = "CHAT4ALL_GATEWAY", default_value = "http://127.0.0.1:50051")]
        gateway: String,
    },
    /// Prints a message's delivery timeline and trace id.
    Status {
        message_id: String,
        #[arg(long, env = "CHAT4ALL_GATEWAY", default_value = "http://127.0.0.1:50051")]
        gateway: String,
        /// A tracing dashboard's trace URL prefix, to print a link.
        #[arg(long, env = "CHAT4ALL_DASHBOARD_URL")]
        dashboard: Option<String>,
    },
    /// Follows a conversation's new messages and status changes, or
    /// everything exchanged with a channel's platform user.
    Watch {
        #[arg(long, required_unless_present = "channel", conflicts_with = "channel")]
        conversation: Option<String>,
        /// A channel's id: its inbound messages and every reply to it.
        #[arg(long)]
        channel: Option<String>,
        #[arg(long, env = "CHAT4ALL_GATEWAY", default_value = "http://127.0.0.1:50051")]
        gateway: String,
    },
    /// Runs every service as its own process on Apache Kafka (its jars
    /// fetched by Maven on first use), on this machine; with `--store
    /// cassandra --replicas 2`, the production form: Apache Cassandra under
    /// the store and two of each scaled service. Ctrl-C stops them all,
    /// the broker last.
    Topology {
        #[command(flatten)]
        config: TopologyConfig,
    },
    /// Runs one service, with the flags of its own binary
    /// (`chat4all run router …` is `chat4all-router …`).
    Run {
        #[command(subcommand)]
        service: chat4all::services::Service,
    },
    /// Creates every topic Chat4All uses on a Kafka cluster (existing ones
    /// are left alone).
    CreateTopics {
        #[command(flatten)]
        kafka: chat4all_kafka::KafkaArgs,
        #[arg(long, env = "CHAT4ALL_PARTITIONS", default_value_t = 8)]
        partitions: i32,
        /// Copies of each partition: 1 for one broker, 3 in production.
        #[arg(long, env = "CHAT4ALL_REPLICATION_FACTOR", default_value_t = 1)]
        replication_factor: i32,
    },
    /// Moves data to the current model.
    Migrate {
        #[command(subcommand)]
        what: Migration,
    },
    /// Measures the one-machine system against bare tonic and bare Kafka.
    Bench {
        #[command(flatten)]
        options: bench::BenchOptions,
        /// Where the benchmark's store lives (a fresh temporary one by default).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Measures put_message/s and transitions/s of the embedded store and
    /// of Cassandra (a node started for the run, or `--scylla-nodes`), by
    /// the same code.
    StoreBench {
        #[command(flatten)]
        options: chat4all::store_bench::StoreBenchOptions,
    },
}

#[derive(Subcommand)]
enum Migration {
    /// Legacy channel documents (JSON lines: external_channel_id,
    /// item_name, item_price, ...) into channels with vendor and metadata.
    /// Running it again changes nothing.
    Channels {
        /// The JSON-lines file.
        #[arg(long)]
        from: PathBuf,
        /// Write to the embedded store under this directory (nothing else
        /// may be running on it) instead of the store service.
        #[arg(long, conflicts_with = "addr")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        store: chat4all_store_grpc::StoreArgs,
    },
    /// The store's keyspace on ScyllaDB/Cassandra: created if absent, then
    /// brought to this version's schema. Running it again changes nothing.
    Schema {
        #[command(flatten)]
        scylla: chat4all_store_scylla::ScyllaConfig,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One line a cause, never a backtrace: the CLI's errors are the user's
    // to read (a refused request, an unreachable gateway).
    let cli = Cli::parse_from(as_invoked(std::env::args_os()));
    // A service run here keeps its own exit codes (EX_USAGE for a
    // configuration it refuses).
    let result = match cli.command {
        Command::Run { service } => chat4all::services::run(service).await,
        command => run(Cli { command })
            .await
            .map(|()| std::process::ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("chat4all: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The arguments as `chat4all` takes them. The image ships this one binary
/// with every service's name linked to it (busybox style), so the chart's
/// `chat4all-router …` runs as `chat4all run router …`: a link named
/// `chat4all-<service>` becomes `chat4all run <service>`. Any other name,
/// `chat4all` itself included, is taken as it is.
fn as_invoked(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let service = args
        .first()
        .and_then(|program| Path::new(program).file_name())
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("chat4all-"))
        .map(str::to_owned);
    if let Some(service) = service
        && Cli::command()
            .find_subcommand("run")
            .is_some_and(|run| run.find_subcommand(&service).is_some())
    {
        args.splice(..1, ["chat4all".into(), "run".into(), service.into()]);
    }
    args
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev { system, telemetry } => {
            let telemetry = chat4all_telemetry::init(&telemetry)?;
            println!("starting every service; ready once each Kafka consumer has joined its group…");
            let system = System::start(system).await?;
            let metrics = telemetry.serve_metrics(system.shutdown_token()).await?;
            let shutdown = chat4all_telemetry::shutdown_signal();
            tokio::pin!(shutdown);
            let ready = tokio::select! {
                ready = system.ready(DEV_READY_WITHIN) => ready,
                () = &mut shutdown => return system.stop().await,
            };
            let ready = match ready {
                Ok(ready) => ready,
                Err(error) => {
                    let _ = system.stop().await;
                    return Err(error);
                }
            };
            println!("chat4all is ready");
            println!("  gateway    {}", system.gateway_url());
            println!("  store      http://{}", system.store_addr);
            println!("  simulator  http://{}", system.simulator_addr);
            println!("  metrics    http://{metrics}/metrics");
            println!("  kafka      {}", system.kafka.bootstrap);
            print!("{ready}");
            println!(
                "try: chat4all send --to whatsapp:15551234567 --text hi --gateway {}",
                system.gateway_url()
            );
            shutdown.await;
            system.stop().await
        }
        Command::Topology { config } => topology(config).await,
        Command::Run { service } => chat4all::services::run(service).await.map(drop),
        Command::Send {
            to,
            text,
            conversation,
            idempotency_key,
            at_least_once,
            gateway,
        } => {
            let id = client::send(
                &gateway,
                SendMessageRequest {
                    recipient: to,
                    text,
                    conversation_id: conversation,
                    idempotency_key,
                    at_least_once,
                },
            )
            .await?;
            println!("{id}");
            Ok(())
        }
        Command::Status {
            message_id,
            gateway,
            dashboard,
        } => {
            print!(
                "{}",
                client::status(&gateway, &message_id, dashboard.as_deref()).await?
            );
            Ok(())
        }
        Command::Watch {
            conversation,
            channel,
            gateway,
        } => {
            let scope = match (conversation, channel) {
                (_, Some(channel)) => pb::watch_messages_request::Scope::ChannelId(channel),
                (Some(conversation), None) => pb::watch_messages_request::Scope::ConversationId(conversation),
                (None, None) => anyhow::bail!("give --conversation or --channel"),
            };
            client::watch(
                &gateway,
                scope,
                |line| println!("{line}"),
                chat4all_telemetry::shutdown_signal(),
            )
            .await
        }
        Command::CreateTopics {
            kafka,
            partitions,
            replication_factor,
        } => {
            let topics = chat4all_kafka::topics::all();
            chat4all_kafka::admin::ensure_topics(&kafka, &topics, partitions, replication_factor).await?;
            println!("{} topics present on {}", topics.len(), kafka.bootstrap);
            Ok(())
        }
        Command::Migrate {
            what:
                Migration::Channels {
                    from,
                    data_dir,
                    store,
                },
        } => {
            let store: chat4all_store::SharedStore = match data_dir {
                Some(dir) => std::sync::Arc::new(
                    chat4all_store_embedded::EmbeddedStore::open(
                        &dir.join("store.sqlite3"),
                        Default::default(),
                    )
                    .with_context(|| format!("opening the store under {}", dir.display()))?,
                ),
                None => store.connect().context("store address")?,
            };
            let report = chat4all::migrate::channels(&store, &from).await?;
            println!("{report}");
            Ok(())
        }
        Command::Migrate {
            what: Migration::Schema { scylla },
        } => {
            println!("{}", chat4all::migrate::schema(&scylla).await?);
            Ok(())
        }
        Command::Bench { options, data_dir } => {
            let report = bench::run(options, data_dir).await.context("benchmark")?;
            println!("{report}");
            Ok(())
        }
        Command::StoreBench { options } => {
            let report = chat4all::store_bench::run(options)
                .await
                .context("store benchmark")?;
            print!("{report}");
            Ok(())
        }
    }
}

/// `chat4all topology`: starts it, says where everything is, reports a
/// process that died (the topology starts it again), and stops it all on
/// Ctrl-C or SIGTERM.
async fn topology(config: TopologyConfig) -> anyhow::Result<()> {
    let shutdown = chat4all_telemetry::shutdown_signal();
    tokio::pin!(shutdown);
    println!("starting the broker and every service, each its own process…");
    let topology = tokio::select! {
        started = Topology::start(config) => started?,
        // Dropping the half-started topology kills what it started.
        () = &mut shutdown => return Ok(()),
    };
    println!("chat4all topology is running");
    println!("  gateway    {}", topology.gateway_urls().join(", "));
    println!("  store      http://{}", topology.store_addr);
    if let Some(node) = topology.cassandra_contact_point() {
        println!("  cassandra  {node} (Apache Cassandra, CQL)");
    }
    println!("  simulator  {}", topology.simulator_url());
    println!("  kafka      {} (Apache Kafka, KRaft)", topology.kafka.bootstrap);
    println!("  logs       {}", topology.log_dir.display());
    print!("{}", topology.describe());
    println!(
        "try: chat4all send --to whatsapp:15551234567 --text hi --gateway {}",
        topology.gateway_url()
    );
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                for death in topology.take_deaths() {
                    eprintln!(
                        "chat4all: {} exited ({}) and is started again; its log: {}",
                        death.name,
                        death.status,
                        topology.log_dir.join(format!("{}.log", death.name)).display()
                    );
                }
            }
        }
    }
    if topology.cassandra_contact_point().is_some() {
        println!("stopping every service, then the broker and Cassandra…");
    } else {
        println!("stopping every service, then the broker…");
    }
    topology.stop().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoked(args: &[&str]) -> Vec<String> {
        as_invoked(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_link_named_after_a_service_runs_that_service() {
        assert_eq!(
            invoked(&["/usr/local/bin/chat4all-router", "--help"]),
            ["chat4all", "run", "router", "--help"]
        );
        assert_eq!(
            invoked(&["chat4all-connector-sidecar", "--platform", "chotot"]),
            ["chat4all", "run", "connector-sidecar", "--platform", "chotot"]
        );
        // Every service the image links, by its binary's name.
        for service in [
            "store",
            "api-gateway",
            "status-consumer",
            "whatsapp",
            "messenger",
            "instagram",
            "telegram",
            "chotot",
            "simulator",
        ] {
            let name = format!("chat4all-{service}");
            assert_eq!(invoked(&[&name]), ["chat4all", "run", service]);
        }
    }

    #[test]
    fn any_other_name_is_taken_as_it_is() {
        for args in [
            &["chat4all", "dev"][..],
            &["target/release/chat4all", "run", "router"],
            &["chat4all-nothing", "dev"],
            &["chat4all-", "dev"],
        ] {
            assert_eq!(invoked(args), args);
        }
        assert!(invoked(&[]).is_empty());
    }

    #[test]
    fn a_linked_service_parses_as_chat4all_run() {
        let cli = Cli::try_parse_from(as_invoked(
            ["chat4all-router", "--router-group", "r"].map(OsString::from),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cli.command, Command::Run { .. }));
    }
}
