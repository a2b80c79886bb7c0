//! The production topology on one machine: Apache Kafka as its own JVM
//! process, and every service as its own process
//! (`chat4all run <service>`), talking over TCP on loopback ports chosen at
//! run time. `chat4all topology` runs it; the end-to-end tests drive the
//! same [`Topology`] to kill a process, restart it, or restart the broker.
//!
//! Start order follows the data, one tier at a time, each process ready
//! (its gRPC health SERVING, or its port open) before the next tier
//! starts: the broker, then the topics; the store, the simulator and the
//! platform adapters; the connector sidecars, the router and the
//! status-consumer; the gateway. Stop is the reverse, SIGTERM first and
//! SIGKILL after the grace period, the broker last.
//!
//! - `plan`: every process's command line; `ports`: every port picked
//!   before anything starts, since processes name each other and a
//!   restarted one comes back on its own ports.
//! - `process`: starting a process (again), its log, SIGTERM/SIGKILL.
//! - `readiness`: when a started process is ready.
//! - [`supervisor`]: a process that dies on its own starts again, as a
//!   Deployment's pod would.
//! - [`kafka`]: the broker's jars, fetched by Maven into `target/` on
//!   first use, its config, its storage formatted, wiped for a test.

pub mod kafka;
mod plan;
mod ports;
mod process;
mod readiness;
pub mod supervisor;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use chat4all_domain::Platform;
use chat4all_engines::{Cassandra, RunningCassandra};
use chat4all_kafka::{KafkaArgs, topics};
use futures::future::{join_all, try_join_all};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use process::Stopped;
pub use supervisor::Death;

use plan::{Plan, Service, TIERS, Tier};
use process::Running;

/// The broker's process name.
pub const BROKER: &str = "broker";
pub const STORE: &str = "store";
pub const SIMULATOR: &str = "simulator";
pub const ROUTER: &str = "router";
pub const STATUS_CONSUMER: &str = "status-consumer";
pub const GATEWAY: &str = "api-gateway";

/// The process name of a platform's adapter.
pub fn adapter(platform: Platform) -> String {
    platform.as_str().to_owned()
}

/// The process name of a platform's connector sidecar.
pub fn sidecar(platform: Platform) -> String {
    format!("{}-sidecar", platform.as_str())
}

/// The process name of replica `index` (from 0) of a scaled service: the
/// service's own name for the first, `<name>-<index>` for the others, so
/// a topology of one replica names its processes as it always did.
pub fn replica(name: &str, index: usize) -> String {
    if index == 0 {
        name.to_owned()
    } else {
        format!("{name}-{index}")
    }
}

/// The database under the store service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreEngine {
    /// The store's SQLite file under the data directory: one store process.
    Embedded,
    /// An Apache Cassandra node the topology starts (its jars fetched by
    /// Maven on first use; Java 11 or 17), through the store's
    /// Scylla/Cassandra backend: the production form.
    Cassandra,
}

/// How long one process may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// What the topology runs and where.
#[derive(Debug, Clone, clap::Args)]
pub struct TopologyConfig {
    /// Where the store keeps its data and every process writes its log.
    #[arg(long, env = "CHAT4ALL_DATA_DIR", default_value = "./data/topology")]
    pub data_dir: PathBuf,
    /// A directory holding the Kafka broker's jars. By default those of
    /// tests/engines/kafka/pom.xml, fetched from Maven Central on first use
    /// into target/engines/kafka (needs Maven).
    #[arg(long, env = "CHAT4ALL_KAFKA_LIBS")]
    pub kafka_libs: Option<PathBuf>,
    /// The `java` (17 or newer) that runs the broker; `$JAVA_HOME/bin/java`,
    /// else the one on the PATH, by default.
    #[arg(long, env = "CHAT4ALL_JAVA")]
    pub java: Option<PathBuf>,
    /// The broker JVM's heap (`-Xmx`, `-Xms`).
    #[arg(long, env = "CHAT4ALL_BROKER_HEAP", default_value = "512m")]
    pub broker_heap: String,
    /// The database under the store service. Cassandra's `java` and jars
    /// come from `CHAT4ALL_CASSANDRA_JAVA` and `CHAT4ALL_CASSANDRA_LIBS`
    /// when set.
    #[arg(long = "store", env = "CHAT4ALL_TOPOLOGY_STORE", value_enum, default_value_t = StoreEngine::Embedded)]
    pub store: StoreEngine,
    /// The Cassandra JVM's heap, with `--store cassandra`.
    #[arg(long, env = "CHAT4ALL_CASSANDRA_HEAP", default_value = "768m")]
    pub cassandra_heap: String,
    /// Processes of each scaled service: the gateway, the router, the
    /// status-consumer and every platform's sidecar+adapter pair. Replicas
    /// of a consumer share its group's partitions; the simulator posts
    /// each platform's webhooks to its adapters in turn.
    #[arg(long, env = "CHAT4ALL_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=8))]
    pub replicas: u16,
    /// The public gRPC API; port 0 picks a free one.
    #[arg(long, env = "CHAT4ALL_GATEWAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub gateway_listen: SocketAddr,
    /// Partitions of each topic.
    #[arg(long, env = "CHAT4ALL_PARTITIONS", default_value_t = 8)]
    pub partitions: i32,
    /// Sends a second per connector sidecar. The simulator has no limit,
    /// so the default does not throttle; 0 uses each platform's own.
    #[arg(long, env = "CHAT4ALL_CONNECTOR_RATE", default_value_t = 100_000.0)]
    pub connector_rate: f64,
    /// When the gateway re-publishes messages whose record was lost.
    #[command(flatten)]
    pub reconcile: chat4all_api_gateway::ReconcileArgs,
    /// How long a service's Kafka client may be stuck (a producer failing
    /// every record of a partition, a consumer whose partition has no
    /// leader while the broker is up) before the service replaces it.
    #[arg(
        long = "kafka-stall-secs",
        env = "CHAT4ALL_KAFKA_STALL_SECS",
        default_value_t = 60
    )]
    pub stall_secs: u64,
    /// How long a process may take to stop after SIGTERM before SIGKILL.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    pub stop_timeout: Duration,
    /// Every service's log filter (`RUST_LOG` syntax).
    #[arg(long, default_value = "info")]
    pub log_filter: String,
    /// A flag for the platform simulator, repeatable: its faults
    /// (`--simulator-arg=--error-rate=0.05`; `chat4all run simulator
    /// --help` lists them).
    #[arg(long = "simulator-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub simulator_args: Vec<String>,
    /// A flag for every connector sidecar, repeatable
    /// (`--sidecar-arg=--claim-lease=20000`).
    #[arg(long = "sidecar-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub sidecar_args: Vec<String>,
    /// A flag for every platform adapter, repeatable
    /// (`--adapter-arg=--request-timeout=3s`).
    #[arg(long = "adapter-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub adapter_args: Vec<String>,
    /// The chat4all executable each service runs as (`chat4all run
    /// <service>`); this one by default.
    #[arg(long, hide = true)]
    pub binary: Option<PathBuf>,
}

impl TopologyConfig {
    /// Every port picked at run time, everything under `data_dir`, the
    /// services run as `binary`: for tests.
    pub fn ephemeral(data_dir: impl Into<PathBuf>, binary: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            kafka_libs: std::env::var_os("CHAT4ALL_KAFKA_LIBS").map(PathBuf::from),
            java: std::env::var_os("CHAT4ALL_JAVA").map(PathBuf::from),
            broker_heap: "512m".to_owned(),
            store: StoreEngine::Embedded,
            cassandra_heap: "768m".to_owned(),
            replicas: 1,
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            partitions: 4,
            connector_rate: 100_000.0,
            reconcile: chat4all_api_gateway::ReconcileArgs::default(),
            stall_secs: 60,
            stop_timeout: Duration::from_secs(20),
            log_filter: "info".to_owned(),
            simulator_args: Vec::new(),
            sidecar_args: Vec::new(),
            adapter_args: Vec::new(),
            binary: Some(binary.into()),
        }
    }
}

/// The running topology. Dropping it kills every process; [`stop`](Self::stop)
/// stops them in order.
pub struct Topology {
    /// The first gateway replica's address.
    pub gateway_addr: SocketAddr,
    /// Every gateway replica's address.
    pub gateway_addrs: Vec<SocketAddr>,
    pub store_addr: SocketAddr,
    pub simulator_addr: SocketAddr,
    pub kafka: KafkaArgs,
    pub log_dir: PathBuf,
    broker: kafka::BrokerFiles,
    /// The store's database with `--store cassandra`, stopped after every
    /// service.
    cassandra: Option<RunningCassandra>,
    partitions: i32,
    stop_timeout: Duration,
    services: Arc<Mutex<Vec<Service>>>,
    deaths: Arc<Mutex<Vec<Death>>>,
    supervisor: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Topology {
    /// Starts the broker, creates the topics, then starts every service
    /// and waits until each is ready; from then on a process that dies is
    /// started again.
    pub async fn start(config: TopologyConfig) -> anyhow::Result<Self> {
        let log_dir = config.data_dir.join("logs");
        std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        let binary = match &config.binary {
            Some(binary) => binary.clone(),
            None => std::env::current_exe().context("finding the chat4all executable")?,
        };
        let libs = {
            let explicit = config.kafka_libs.clone();
            tokio::task::spawn_blocking(move || kafka::locate_libs(explicit.as_deref())).await??
        };
        let cassandra = match config.store {
            StoreEngine::Embedded => None,
            StoreEngine::Cassandra => Some(start_cassandra(&config).await?),
        };
        let plan = Plan::new(
            &config,
            binary,
            libs,
            &log_dir,
            cassandra.as_ref().map(RunningCassandra::contact_point),
        )?;
        {
            let broker = plan.broker_files.clone();
            tokio::task::spawn_blocking(move || broker.format_if_new()).await??;
        }
        let kafka = KafkaArgs::new(plan.broker.to_string());
        let mut topology = Self {
            gateway_addr: plan.gateways[0],
            gateway_addrs: plan.gateways,
            store_addr: plan.store,
            simulator_addr: plan.simulator,
            kafka,
            log_dir,
            broker: plan.broker_files,
            cassandra,
            partitions: config.partitions,
            stop_timeout: config.stop_timeout,
            services: Arc::new(Mutex::new(plan.services)),
            deaths: Arc::default(),
            supervisor: None,
        };
        for tier in TIERS {
            let names: Vec<String> = topology
                .table()
                .iter()
                .filter(|s| s.tier == tier)
                .map(|s| s.name.clone())
                .collect();
            for name in &names {
                topology.service(name, Service::spawn)??;
            }
            try_join_all(names.iter().map(|name| topology.wait_ready(name))).await?;
            if tier == Tier::Broker {
                topology.create_topics().await?;
            }
            for name in &names {
                topology.service(name, |s| s.supervised = true)?;
            }
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervisor::supervise(
            topology.services.clone(),
            topology.deaths.clone(),
            stop.clone(),
        ));
        topology.supervisor = Some((stop, task));
        Ok(topology)
    }

    /// The first gateway's URL for a tonic client.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    /// Every gateway replica's URL, for a client that spreads its calls.
    pub fn gateway_urls(&self) -> Vec<String> {
        self.gateway_addrs
            .iter()
            .map(|addr| format!("http://{addr}"))
            .collect()
    }

    /// Where the store's Cassandra node takes CQL, with `--store cassandra`.
    pub fn cassandra_contact_point(&self) -> Option<SocketAddr> {
        self.cassandra.as_ref().map(RunningCassandra::contact_point)
    }

    /// The simulator's base URL (its `/_simulator/received` tells what
    /// each platform received).
    pub fn simulator_url(&self) -> String {
        format!("http://{}", self.simulator_addr)
    }

    /// Every process's name, in start order.
    pub fn names(&self) -> Vec<String> {
        self.table().iter().map(|s| s.name.clone()).collect()
    }

    /// A process's pid, while it runs.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.table()
            .iter()
            .find(|s| s.name == name)?
            .running
            .as_ref()?
            .pid()
    }

    /// Where process `name` listens for `what` (`grpc`, `metrics`, …).
    pub fn listen_addr(&self, name: &str, what: &str) -> Option<SocketAddr> {
        self.table()
            .iter()
            .find(|s| s.name == name)?
            .listens
            .iter()
            .find(|(w, _)| *w == what)
            .map(|(_, addr)| *addr)
    }

    fn table(&self) -> MutexGuard<'_, Vec<Service>> {
        self.services.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `f` to the process named `name`.
    fn service<T>(&self, name: &str, f: impl FnOnce(&mut Service) -> T) -> anyhow::Result<T> {
        let mut table = self.table();
        let service = table
            .iter_mut()
            .find(|s| s.name == name)
            .with_context(|| format!("no process named {name}"))?;
        Ok(f(service))
    }

    /// Takes the process out of supervision and hands over its child.
    fn unsupervise(&self, name: &str) -> anyhow::Result<Running> {
        self.service(name, |s| {
            s.supervised = false;
            s.restart_at = None;
            s.running.take()
        })?
        .with_context(|| format!("{name} is not running"))
    }

    async fn wait_ready(&self, name: &str) -> anyhow::Result<()> {
        let (probe, log) = self.service(name, |s| (s.probe, s.launch.log.clone()))?;
        let exited = || {
            self.service(name, |s| s.running.as_mut().and_then(Running::exited))
                .ok()
                .flatten()
        };
        readiness::wait_ready(name, probe, exited, &log, READY_WITHIN).await
    }

    /// SIGKILL: the process gets no chance to drain or commit, and stays
    /// down until [`start_service`](Self::start_service).
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<Stopped> {
        Ok(self.unsupervise(name)?.kill().await)
    }

    /// SIGTERM, and SIGKILL if it has not exited within the grace period;
    /// it stays down until [`start_service`](Self::start_service).
    pub async fn stop_service(&mut self, name: &str) -> anyhow::Result<Stopped> {
        let grace = self.stop_timeout;
        Ok(self.unsupervise(name)?.terminate(grace).await)
    }

    /// Starts a stopped process again, on its own ports, and waits until it
    /// is ready; after the broker, creates the topics it lacks (all of
    /// them, after [`restart_broker_empty`](Self::restart_broker_empty)).
    pub async fn start_service(&mut self, name: &str) -> anyhow::Result<()> {
        self.service(name, Service::spawn)??;
        self.wait_ready(name).await?;
        if name == BROKER {
            self.create_topics().await?;
        }
        self.service(name, |s| s.supervised = true)
    }

    /// Stops the process (if it runs) and starts it again.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        if self.service(name, |s| s.running.is_some())? {
            self.stop_service(name).await?;
        }
        self.start_service(name).await
    }

    /// Restarts the broker (SIGTERM, then started again): Kafka's log
    /// survives, as it does a rolling restart.
    pub async fn restart_broker(&mut self) -> anyhow::Result<()> {
        self.restart(BROKER).await
    }

    /// Stops the broker, deletes its log and starts it again empty, as a
    /// broker whose disk was lost: every topic, record and committed offset
    /// gone; the topics are created again.
    pub async fn restart_broker_empty(&mut self) -> anyhow::Result<()> {
        if self.service(BROKER, |s| s.running.is_some())? {
            self.stop_service(BROKER).await?;
        }
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || broker.wipe()).await??;
        self.start_service(BROKER).await
    }

    /// The processes that died on their own (and were started again) since
    /// the last call.
    pub fn take_deaths(&self) -> Vec<Death> {
        std::mem::take(&mut *self.deaths.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Stops every process, tier by tier from the gateway down, the broker
    /// last; fails if a service needed SIGKILL or exited with an error.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some((stop, task)) = self.supervisor.take() {
            stop.cancel();
            let _ = task.await;
        }
        let grace = self.stop_timeout;
        let mut unclean = Vec::new();
        for tier in TIERS.into_iter().rev() {
            let stopping: Vec<(String, Running)> = self
                .table()
                .iter_mut()
                .filter(|s| s.tier == tier)
                .filter_map(|s| Some((s.name.clone(), s.running.take()?)))
                .collect();
            let stopped = join_all(
                stopping
                    .into_iter()
                    .map(|(name, running)| async move { (name, running.terminate(grace).await) }),
            )
            .await;
            for (name, how) in stopped {
                // The JVM exits 143 after its shutdown hooks ran on SIGTERM.
                let clean = how.is_clean() || (tier == Tier::Broker && how != Stopped::Killed);
                if !clean {
                    unclean.push(format!("{name}: {how}"));
                }
            }
        }
        if let Some(mut cassandra) = self.cassandra.take() {
            let how = tokio::task::spawn_blocking(move || cassandra.stop()).await?;
            if matches!(how, chat4all_engines::Stopped::Killed) {
                unclean.push(format!("cassandra: {how:?}"));
            }
        }
        anyhow::ensure!(
            unclean.is_empty(),
            "not stopped cleanly: {}; logs in {}",
            unclean.join("; "),
            self.log_dir.display()
        );
        Ok(())
    }

    /// Every process, its pid and what it listens on.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for service in self.table().iter() {
            let pid = service
                .running
                .as_ref()
                .and_then(Running::pid)
                .map_or_else(|| "-".to_owned(), |pid| pid.to_string());
            let listens: Vec<String> = service
                .listens
                .iter()
                .map(|(what, addr)| format!("{what} {addr}"))
                .collect();
            let _ = writeln!(out, "  {:<20} {:>8}  {}", service.name, pid, listens.join(", "));
        }
        out
    }

    /// Creates the topics the broker lacks, retrying while it settles.
    async fn create_topics(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        let names = topics::all();
        loop {
            match chat4all_kafka::admin::ensure_topics(&self.kafka, &names, self.partitions, 1).await {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    return Err(error).context(format!("creating the topics on {}", self.kafka.bootstrap));
                }
                Err(error) => {
                    tracing::debug!(%error, "topic creation failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// Starts the store's Cassandra node under `<data-dir>/cassandra`, where
/// its data stays between runs.
async fn start_cassandra(config: &TopologyConfig) -> anyhow::Result<RunningCassandra> {
    let dir = config.data_dir.join("cassandra");
    let engine = Cassandra::default().heap(config.cassandra_heap.clone());
    let node = tokio::task::spawn_blocking(move || engine.start(&dir))
        .await?
        .context("starting the store's Cassandra node")?;
    tracing::info!(
        contact_point = %node.contact_point(),
        version = node.version(),
        started_in = ?node.started_in(),
        "cassandra ready"
    );
    Ok(node)
}

impl Drop for Topology {
    fn drop(&mut self) {
        // The supervisor would otherwise start again what dropping kills.
        if let Some((stop, _)) = &self.supervisor {
            stop.cancel();
        }
    }
}
