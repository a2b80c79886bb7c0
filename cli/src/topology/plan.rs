//! Every process of the topology, its command line and its ports, decided
//! before anything starts.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chat4all_domain::Platform;
use tokio::time::Instant;

use super::kafka::BrokerFiles;
use super::ports::PortPicker;
use super::process::{Launch, Running};
use super::readiness::Probe;
use super::{
    BROKER, GATEWAY, ROUTER, SIMULATOR, STATUS_CONSUMER, STORE, TopologyConfig, adapter, replica, sidecar,
};

/// Start order, reversed to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    Broker,
    /// What the consumers call: the store, the simulator, the adapters.
    Backing,
    Consumers,
    Gateway,
}

pub(crate) const TIERS: [Tier; 4] = [Tier::Broker, Tier::Backing, Tier::Consumers, Tier::Gateway];

/// One process of the topology.
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) tier: Tier,
    pub(crate) launch: Launch,
    pub(crate) probe: Probe,
    /// What it listens on, for people.
    pub(crate) listens: Vec<(&'static str, SocketAddr)>,
    pub(crate) running: Option<Running>,
    /// Whether the supervisor starts it again when it dies: set once it was
    /// ready, cleared while it is killed or stopped on purpose.
    pub(crate) supervised: bool,
    /// When a dead supervised process is due to start again.
    pub(crate) restart_at: Option<Instant>,
    /// The pause before the next restart, doubling while it keeps dying.
    pub(crate) backoff: Duration,
    pub(crate) started_at: Instant,
}

/// The first pause before restarting a process that died.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);

impl Service {
    fn new(
        name: String,
        tier: Tier,
        launch: Launch,
        probe: Probe,
        listens: Vec<(&'static str, SocketAddr)>,
    ) -> Self {
        Self {
            name,
            tier,
            launch,
            probe,
            listens,
            running: None,
            supervised: false,
            restart_at: None,
            backoff: FIRST_BACKOFF,
            started_at: Instant::now(),
        }
    }

    pub(crate) fn spawn(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.running.is_none(), "{} is running already", self.name);
        self.running = Some(self.launch.spawn()?);
        self.started_at = Instant::now();
        self.restart_at = None;
        Ok(())
    }
}

/// Every process's command line and ports.
pub(crate) struct Plan {
    pub(crate) broker: SocketAddr,
    pub(crate) broker_files: BrokerFiles,
    pub(crate) store: SocketAddr,
    pub(crate) simulator: SocketAddr,
    /// Every gateway replica's, the first first.
    pub(crate) gateways: Vec<SocketAddr>,
    pub(crate) services: Vec<Service>,
}

/// One replica of a platform's connector pod: its adapter's ports.
struct Adapter {
    platform: Platform,
    index: usize,
    grpc: SocketAddr,
    webhook: SocketAddr,
}

impl Plan {
    pub(crate) fn new(
        config: &TopologyConfig,
        binary: PathBuf,
        broker_libs: PathBuf,
        log_dir: &Path,
        cassandra: Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        let replicas = usize::from(config.replicas.max(1));
        let mut ports = PortPicker::default();
        let broker = ports.next()?;
        let controller = ports.next()?;
        let store = ports.next()?;
        let simulator = ports.next()?;
        let mut gateways = Vec::with_capacity(replicas);
        for index in 0..replicas {
            gateways.push(if index == 0 && config.gateway_listen.port() != 0 {
                config.gateway_listen
            } else {
                ports.next()?
            });
        }
        let bootstrap = broker.to_string();
        let store_url = format!("http://{store}");
        let simulator_url = format!("http://{simulator}");
        let log = |name: &str| log_dir.join(format!("{name}.log"));
        let mut services = Vec::new();

        let broker_files = BrokerFiles::write(
            super::kafka::java(config.java.as_deref()),
            broker_libs,
            config.broker_heap.clone(),
            &config.data_dir.join("broker"),
            broker,
            controller,
            config.partitions,
        )?;
        services.push(Service::new(
            BROKER.to_owned(),
            Tier::Broker,
            broker_files.launch(log(BROKER)),
            Probe::Listening(broker),
            vec![("kafka", broker), ("controller", controller)],
        ));

        // Every service is `chat4all run <service> <flags>`, with its own
        // metrics port and the shared log filter.
        let service = |name: String,
                       command: &str,
                       tier: Tier,
                       probe: Probe,
                       mut listens: Vec<(&'static str, SocketAddr)>,
                       flags: Vec<String>,
                       metrics: SocketAddr|
         -> Service {
            listens.push(("metrics", metrics));
            let mut args = vec![
                "run".to_owned(),
                command.to_owned(),
                "--log-filter".to_owned(),
                config.log_filter.clone(),
                "--metrics-addr".to_owned(),
                metrics.to_string(),
            ];
            args.extend(flags);
            let launch = Launch {
                program: binary.clone(),
                args: os_args(&args),
                env: Vec::new(),
                log: log(&name),
            };
            Service::new(name, tier, launch, probe, listens)
        };
        let kafka_flags = || {
            vec![
                "--kafka-bootstrap".to_owned(),
                bootstrap.clone(),
                "--kafka-stall-secs".to_owned(),
                config.stall_secs.to_string(),
            ]
        };
        let store_flags = || vec!["--store-addr".to_owned(), store_url.clone()];

        services.push(service(
            STORE.to_owned(),
            "store",
            Tier::Backing,
            Probe::GrpcHealth(store),
            vec![("grpc", store)],
            store_backend_flags(config, store, cassandra),
            ports.next()?,
        ));

        let mut adapters = Vec::new();
        for platform in Platform::ALL {
            for index in 0..replicas {
                adapters.push(Adapter {
                    platform,
                    index,
                    grpc: ports.next()?,
                    webhook: ports.next()?,
                });
            }
        }
        let mut simulator_flags = vec!["--listen".to_owned(), simulator.to_string()];
        for platform in Platform::ALL {
            let urls: Vec<String> = adapters
                .iter()
                .filter(|a| a.platform == platform)
                .map(|a| format!("http://{}{}", a.webhook, chat4all_adapter::WEBHOOK_PATH))
                .collect();
            simulator_flags.push(format!("--{}-webhook-url", platform.as_str()));
            simulator_flags.push(urls.join(","));
        }
        simulator_flags.extend(config.simulator_args.iter().cloned());
        services.push(service(
            SIMULATOR.to_owned(),
            "simulator",
            Tier::Backing,
            Probe::Listening(simulator),
            vec![("http", simulator)],
            simulator_flags,
            ports.next()?,
        ));

        for a in &adapters {
            let mut flags = vec![
                "--api-base-url".to_owned(),
                simulator_url.clone(),
                "--grpc-listen".to_owned(),
                a.grpc.to_string(),
                "--webhook-listen".to_owned(),
                a.webhook.to_string(),
            ];
            flags.extend(config.adapter_args.iter().cloned());
            services.push(service(
                replica(&adapter(a.platform), a.index),
                a.platform.as_str(),
                Tier::Backing,
                Probe::GrpcHealth(a.grpc),
                vec![("grpc", a.grpc), ("webhook", a.webhook)],
                flags,
                ports.next()?,
            ));
        }
        // A sidecar and its adapter are one pod: each sidecar replica
        // calls its own adapter.
        for a in &adapters {
            let name = replica(&sidecar(a.platform), a.index);
            let health = ports.next()?;
            let mut flags = vec![
                "--platform".to_owned(),
                a.platform.as_str().to_owned(),
                "--connector-addr".to_owned(),
                format!("http://{}", a.grpc),
                "--health-listen".to_owned(),
                health.to_string(),
                // Claims name their holder: replicas must not share one.
                "--instance".to_owned(),
                name.clone(),
            ];
            if config.connector_rate > 0.0 {
                flags.extend(["--rate-per-second".to_owned(), config.connector_rate.to_string()]);
            }
            flags.extend(kafka_flags());
            flags.extend(store_flags());
            flags.extend(config.sidecar_args.iter().cloned());
            services.push(service(
                name,
                "connector-sidecar",
                Tier::Consumers,
                Probe::GrpcHealth(health),
                vec![("health", health)],
                flags,
                ports.next()?,
            ));
        }
        for (name, command) in [(ROUTER, "router"), (STATUS_CONSUMER, "status-consumer")] {
            for index in 0..replicas {
                let health = ports.next()?;
                let mut flags = vec!["--health-listen".to_owned(), health.to_string()];
                flags.extend(kafka_flags());
                flags.extend(store_flags());
                services.push(service(
                    replica(name, index),
                    command,
                    Tier::Consumers,
                    Probe::GrpcHealth(health),
                    vec![("health", health)],
                    flags,
                    ports.next()?,
                ));
            }
        }

        for (index, &gateway) in gateways.iter().enumerate() {
            let mut flags = vec!["--gateway-listen".to_owned(), gateway.to_string()];
            flags.extend(config.reconcile.to_flags());
            // Each gateway asks the adapters of its own index, as a pod
            // would reach whichever replica its Service picked.
            for a in adapters.iter().filter(|a| a.index == index) {
                flags.push("--connector".to_owned());
                flags.push(format!("{}=http://{}", a.platform.as_str(), a.grpc));
            }
            flags.extend(kafka_flags());
            flags.extend(store_flags());
            services.push(service(
                replica(GATEWAY, index),
                "api-gateway",
                Tier::Gateway,
                Probe::GrpcHealth(gateway),
                vec![("grpc", gateway)],
                flags,
                ports.next()?,
            ));
        }

        ports.release();
        Ok(Self {
            broker,
            broker_files,
            store,
            simulator,
            gateways,
            services,
        })
    }
}

/// The store service's flags: its SQLite file under the data directory, or
/// the Cassandra node (the backend's defaults, one copy of each row at
/// LOCAL_QUORUM, are right for one node).
fn store_backend_flags(
    config: &TopologyConfig,
    listen: SocketAddr,
    cassandra: Option<SocketAddr>,
) -> Vec<String> {
    let mut flags = vec!["--listen".to_owned(), listen.to_string()];
    match cassandra {
        None => flags.extend([
            "--data-dir".to_owned(),
            config.data_dir.join("store").display().to_string(),
        ]),
        Some(node) => flags.extend([
            "--store".to_owned(),
            "scylla".to_owned(),
            "--scylla-nodes".to_owned(),
            node.to_string(),
        ]),
    }
    flags
}

fn os_args<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Vec<OsString> {
    args.into_iter().map(|a| OsString::from(a.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn plan(replicas: u16, cassandra: Option<SocketAddr>) -> (tempfile::TempDir, Plan) {
        plan_with(|config| config.replicas = replicas, cassandra)
    }

    fn plan_with(
        configure: impl FnOnce(&mut TopologyConfig),
        cassandra: Option<SocketAddr>,
    ) -> (tempfile::TempDir, Plan) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = TopologyConfig::ephemeral(dir.path(), "/bin/chat4all");
        configure(&mut config);
        let plan = Plan::new(
            &config,
            "/bin/chat4all".into(),
            dir.path().join("libs"),
            &dir.path().join("logs"),
            cassandra,
        )
        .unwrap();
        (dir, plan)
    }

    fn args(plan: &Plan, name: &str) -> Vec<String> {
        let service = plan.services.iter().find(|s| s.name == name).unwrap();
        service
            .launch
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
        let at = args
            .iter()
            .position(|a| a == name)
            .unwrap_or_else(|| panic!("no {name} in {args:?}"));
        &args[at + 1]
    }

    fn listens(plan: &Plan, name: &str, what: &str) -> SocketAddr {
        let service = plan.services.iter().find(|s| s.name == name).unwrap();
        service.listens.iter().find(|(w, _)| *w == what).unwrap().1
    }

    #[test]
    fn one_replica_keeps_the_names_it_always_had() {
        let (_dir, plan) = plan(1, None);
        let names: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"router") && names.contains(&"whatsapp-sidecar"));
        assert!(!names.iter().any(|n| n.ends_with("-1")), "{names:?}");
        assert_eq!(plan.gateways.len(), 1);
    }

    #[test]
    fn two_replicas_each_with_its_own_ports_instance_and_adapter() {
        let (_dir, plan) = plan(2, None);
        for name in [
            "api-gateway-1",
            "router-1",
            "status-consumer-1",
            "chotot-1",
            "chotot-sidecar-1",
        ] {
            assert!(plan.services.iter().any(|s| s.name == name), "no {name}");
        }
        assert_eq!(
            plan.services
                .iter()
                .filter(|s| s.name.starts_with("store"))
                .count(),
            1
        );
        assert_eq!(plan.gateways.len(), 2);

        let mut seen = HashSet::new();
        for (what, addr) in plan.services.iter().flat_map(|s| s.listens.iter()) {
            assert!(seen.insert(*addr), "{what} {addr} handed out twice");
        }

        let sidecar = args(&plan, "whatsapp-sidecar-1");
        assert_eq!(flag(&sidecar, "--instance"), "whatsapp-sidecar-1");
        assert_eq!(
            flag(&sidecar, "--connector-addr"),
            format!("http://{}", listens(&plan, "whatsapp-1", "grpc"))
        );
        assert_eq!(
            flag(&args(&plan, "whatsapp-sidecar"), "--instance"),
            "whatsapp-sidecar"
        );

        let webhooks: Vec<String> = ["whatsapp", "whatsapp-1"]
            .iter()
            .map(|a| format!("http://{}/webhook", listens(&plan, a, "webhook")))
            .collect();
        assert_eq!(
            flag(&args(&plan, "simulator"), "--whatsapp-webhook-url"),
            webhooks.join(",")
        );
    }

    #[test]
    fn extra_flags_reach_every_process_of_their_kind_and_no_other() {
        let (_dir, plan) = plan_with(
            |config| {
                config.replicas = 2;
                config.simulator_args = vec!["--timeout-rate=0.02".to_owned()];
                config.sidecar_args = vec!["--claim-lease=20000".to_owned()];
                config.adapter_args = vec!["--request-timeout=3s".to_owned()];
            },
            None,
        );
        for service in &plan.services {
            let args = args(&plan, &service.name);
            let has = |flag: &str| args.iter().any(|a| a == flag);
            let name = service.name.as_str();
            let kind = if name == "simulator" {
                "simulator"
            } else if name.contains("-sidecar") {
                "sidecar"
            } else if Platform::ALL
                .iter()
                .any(|p| name.trim_end_matches("-1") == p.as_str())
            {
                "adapter"
            } else {
                "other"
            };
            assert_eq!(has("--timeout-rate=0.02"), kind == "simulator", "{name}");
            assert_eq!(has("--claim-lease=20000"), kind == "sidecar", "{name}");
            assert_eq!(has("--request-timeout=3s"), kind == "adapter", "{name}");
        }
    }

    #[test]
    fn the_store_runs_on_cassandra_when_there_is_one() {
        let node = SocketAddr::from(([127, 0, 0, 1], 9042));
        let (_dir, plan) = plan(1, Some(node));
        let store = args(&plan, "store");
        assert_eq!(flag(&store, "--store"), "scylla");
        assert_eq!(flag(&store, "--scylla-nodes"), "127.0.0.1:9042");
        assert!(!store.contains(&"--data-dir".to_owned()));

        let (_dir, plan) = self::plan(1, None);
        assert!(args(&plan, "store").contains(&"--data-dir".to_owned()));
    }
}
