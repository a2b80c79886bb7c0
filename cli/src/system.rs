//! The whole system in one process: the same services, wired by
//! configuration instead of deployment.
//!
//! Start order follows the data: Kafka and its topics, the store, the
//! simulator, the adapter (which needs the simulator's address, and whose
//! webhook address the simulator needs back), then the services. Started is
//! not ready: [`System::ready`] waits until every consumer has joined its
//! group, so the first message does not wait seconds for the join. Stop is
//! one cancellation: each service drains, commits and flushes; the store
//! closes last, then Kafka.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chat4all_adapter::{AdapterArgs, BoundAdapter};
use chat4all_domain::Platform;
use chat4all_kafka::mock::MockKafka;
use chat4all_kafka::{KafkaArgs, Readiness, topics};
use chat4all_simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use chat4all_store::SharedStore;
use chat4all_store_embedded::EmbeddedStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the one-machine system needs to know.
#[derive(Debug, Clone, clap::Args)]
pub struct SystemConfig {
    /// Where the embedded store keeps its data.
    #[arg(long, env = "CHAT4ALL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The public gRPC API.
    #[arg(long, env = "CHAT4ALL_GATEWAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub gateway_listen: SocketAddr,
    /// The MessageStore gRPC service, for tools and separate processes.
    #[arg(long, env = "CHAT4ALL_STORE_LISTEN", default_value = "127.0.0.1:50052")]
    pub store_listen: SocketAddr,
    /// The platform simulator's HTTP server.
    #[arg(long, env = "CHAT4ALL_SIMULATOR_LISTEN", default_value = "127.0.0.1:9100")]
    pub simulator_listen: SocketAddr,
    /// Partitions of each topic.
    #[arg(long, env = "CHAT4ALL_PARTITIONS", default_value_t = 8)]
    pub partitions: i32,
    /// Sends a second per connector. The simulator has no limit, so the
    /// default does not throttle; 0 uses each platform's documented limit.
    #[arg(long, env = "CHAT4ALL_CONNECTOR_RATE", default_value_t = 100_000.0)]
    pub connector_rate: f64,
    #[command(flatten)]
    pub router: chat4all_router::RouterConfig,
    #[command(flatten)]
    pub reconcile: chat4all_api_gateway::ReconcileArgs,
    /// How long an adapter waits for a platform's answer; past it the call's
    /// outcome is unknown (the platform may have acted).
    #[arg(long, env = "CHAT4ALL_ADAPTER_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    pub adapter_timeout: Duration,
    /// Where spans go, over OTLP/gRPC; unset, the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` decides, and without it nothing is
    /// exported.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
}

impl SystemConfig {
    /// Every port picked at run time, data under `data_dir`: for tests.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            data_dir: data_dir.into(),
            gateway_listen: any,
            store_listen: any,
            simulator_listen: any,
            partitions: 8,
            connector_rate: 100_000.0,
            router: chat4all_router::RouterConfig::default(),
            reconcile: chat4all_api_gateway::ReconcileArgs::default(),
            adapter_timeout: Duration::from_secs(10),
            otlp_endpoint: None,
        }
    }
}

/// An adapter's webhook endpoint, and how a webhook posted to it by hand
/// must be signed to be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub platform: Platform,
    pub url: String,
    /// The signature header and the one-machine secret behind it.
    pub signing: String,
}

/// Meta's signature (WhatsApp, Messenger, Instagram) with `app_secret`.
fn meta_signing(app_secret: &str) -> String {
    format!("X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body, key {app_secret:?}>")
}

/// Every platform's adapter, bound to free ports, calling the simulator at
/// `base_url`, with how its webhooks are signed, in the order of
/// `Platform::ALL`. Credentials are the
/// adapters' built-in one-machine defaults, which are the simulator's.
async fn start_adapters(
    base_url: &str,
    request_timeout: Duration,
) -> anyhow::Result<Vec<(Platform, BoundAdapter, String)>> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    // Every adapter serves on free ports, so only the base URL differs from
    // the defaults; each platform keeps its own credentials' defaults.
    let serve = AdapterArgs {
        api_base_url: base_url.to_owned(),
        grpc_listen: any,
        webhook_listen: any,
        request_timeout,
        ..Default::default()
    };
    let whatsapp = chat4all_whatsapp::WhatsAppConfig {
        serve: serve.clone(),
        ..Default::default()
    };
    let messenger = chat4all_messenger::MessengerConfig {
        serve: serve.clone(),
        ..Default::default()
    };
    let instagram = chat4all_instagram::InstagramConfig {
        serve: serve.clone(),
        ..Default::default()
    };
    let telegram = chat4all_telegram::TelegramConfig {
        serve: serve.clone(),
        ..Default::default()
    };
    let chotot = chat4all_chotot::ChototConfig {
        serve,
        ..Default::default()
    };
    // Read before the configurations move into their adapters.
    let signing = [
        meta_signing(whatsapp.app_secret.expose()),
        meta_signing(instagram.meta.app_secret.expose()),
        meta_signing(messenger.meta.app_secret.expose()),
        format!(
            "X-Telegram-Bot-Api-Secret-Token: {}",
            telegram.webhook_secret.expose()
        ),
        format!(
            "X-Chotot-Signature: <hex HMAC-SHA256 of the body, key {:?}>",
            chotot.webhook_secret.expose()
        ),
    ];
    let adapters = [
        (
            Platform::WhatsApp,
            chat4all_whatsapp::bind(whatsapp)
                .await
                .context("starting the WhatsApp adapter")?,
        ),
        (
            Platform::Instagram,
            chat4all_instagram::bind(instagram)
                .await
                .context("starting the Instagram adapter")?,
        ),
        (
            Platform::Messenger,
            chat4all_messenger::bind(messenger)
                .await
                .context("starting the Messenger adapter")?,
        ),
        (
            Platform::Telegram,
            chat4all_telegram::bind(telegram)
                .await
                .context("starting the Telegram adapter")?,
        ),
        (
            Platform::Chotot,
            chat4all_chotot::bind(chotot)
                .await
                .context("starting the Chotot adapter")?,
        ),
    ];
    Ok(adapters
        .into_iter()
        .zip(signing)
        .map(|((platform, adapter), signing)| (platform, adapter, signing))
        .collect())
}

/// The system once every consumer has its partitions: what `chat4all dev`
/// prints.
#[derive(Debug, Clone)]
pub struct Ready {
    /// From the start of [`System::start`].
    pub after: Duration,
    /// The consumers waited for, by name.
    pub consumers: Vec<String>,
    pub webhooks: Vec<Webhook>,
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  consumers  {} joined their groups ({:.1} s after start); the gateway's message-events tail is assigned",
            self.consumers.len(),
            self.after.as_secs_f64()
        )?;
        writeln!(
            f,
            "  webhooks   the simulator posts here; to post by hand, sign with the dev secret shown \
             (the adapter's default, connectors/<platform>/src/config.rs)"
        )?;
        for webhook in &self.webhooks {
            writeln!(
                f,
                "    {:<10} {}  {}",
                webhook.platform.as_str(),
                webhook.url,
                webhook.signing
            )?;
        }
        Ok(())
    }
}

/// The running system.
pub struct System {
    pub gateway_addr: SocketAddr,
    pub store_addr: SocketAddr,
    pub simulator_addr: SocketAddr,
    pub simulator: SimulatorHandle,
    pub kafka: KafkaArgs,
    pub store: SharedStore,
    /// The adapters' webhook endpoints, in the order of `Platform::ALL`.
    pub webhooks: Vec<Webhook>,
    /// The adapters' `Connector` gRPC URLs, in the order of `Platform::ALL`.
    pub connectors: Vec<(Platform, String)>,
    /// Every consumer of the system; see [`System::ready`].
    pub readiness: Readiness,
    started: Instant,
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
    kafka_cluster: Option<MockKafka>,
}

impl System {
    /// Starts every service; they are ready only once [`System::ready`]
    /// says so.
    pub async fn start(config: SystemConfig) -> anyhow::Result<Self> {
        let started = Instant::now();
        let shutdown = CancellationToken::new();
        let readiness = Readiness::new();
        let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
        // Before any service asks for its tracer.
        if let Some(endpoint) = config
            .otlp_endpoint
            .clone()
            .or_else(chat4all_telemetry::spans::endpoint_from_env)
        {
            chat4all_telemetry::spans::export_to(Some(endpoint));
        }

        let cluster = MockKafka::start(1).context("starting the Kafka mock cluster")?;
        let kafka = cluster.args();
        cluster
            .create_topics(&topics::all(), config.partitions)
            .context("creating topics")?;

        let embedded = EmbeddedStore::open(&config.data_dir.join("store.sqlite3"), Default::default())
            .with_context(|| format!("opening the store under {}", config.data_dir.display()))?;
        let store: SharedStore = Arc::new(embedded);
        let store_listener = TcpListener::bind(config.store_listen)
            .await
            .context("binding the store port")?;
        let store_addr = store_listener.local_addr()?;
        tasks.push((
            "store",
            tokio::spawn(chat4all_store_grpc::serve(
                store.clone(),
                store_listener,
                shutdown.clone(),
            )),
        ));

        // Webhook targets are set once the adapters have their ports.
        let sim_config = SimulatorConfig {
            listen: config.simulator_listen,
            ..Default::default()
        };
        let simulator = Simulator::bind(sim_config)
            .await
            .context("starting the simulator")?;
        let simulator_addr = simulator.local_addr();
        let simulator_handle = simulator.handle();
        tasks.push(("simulator", tokio::spawn(simulator.run(shutdown.clone()))));

        let adapters = start_adapters(&format!("http://{simulator_addr}"), config.adapter_timeout).await?;
        let mut connectors = Vec::with_capacity(adapters.len());
        let mut webhooks = Vec::with_capacity(adapters.len());
        for (platform, adapter, signing) in adapters {
            simulator_handle.set_webhook_target(platform.as_str(), adapter.webhook_url());
            webhooks.push(Webhook {
                platform,
                url: adapter.webhook_url(),
                signing,
            });
            connectors.push((platform, format!("http://{}", adapter.grpc_addr())));
            tasks.push((platform.as_str(), tokio::spawn(adapter.run(shutdown.clone()))));
        }

        let gateway_config = chat4all_api_gateway::GatewayConfig {
            listen: config.gateway_listen,
            enabled_platforms: Platform::ALL.to_vec(),
            reconcile: config.reconcile,
            connectors: connectors
                .iter()
                .map(|(platform, uri)| chat4all_api_gateway::ConnectorAddr {
                    platform: *platform,
                    uri: uri.clone(),
                })
                .collect(),
            inbound_dedup_window: config.router.dedup_window,
            ..Default::default()
        };
        // The gateway's message-events tail is assigned its partitions
        // directly, before bind returns: it has no group join to wait for.
        let gateway = chat4all_api_gateway::bind(&gateway_config, &kafka, store.clone()).await?;
        let gateway_addr = gateway.local_addr();
        tasks.push(("api-gateway", tokio::spawn(gateway.run(shutdown.clone()))));

        // Every part is registered here, before any is waited for.
        tasks.push(("router", {
            let (kafka, store, shutdown) = (kafka.clone(), store.clone(), shutdown.clone());
            let router = config.router.clone();
            let ready = readiness.part("router");
            tokio::spawn(
                async move { chat4all_router::run(&router, &kafka, store, None, ready, shutdown).await },
            )
        }));
        tasks.push(("status-consumer", {
            let (kafka, store, shutdown) = (kafka.clone(), store.clone(), shutdown.clone());
            let ready = readiness.part("status-consumer");
            tokio::spawn(async move {
                chat4all_status_consumer::run(&Default::default(), &kafka, store, ready, shutdown).await
            })
        }));
        for (platform, connector_addr) in connectors.clone() {
            let mut sidecar = chat4all_connector_sidecar::SidecarConfig::new(platform, connector_addr);
            sidecar.rate_per_second = (config.connector_rate > 0.0).then_some(config.connector_rate);
            let (kafka, store, shutdown) = (kafka.clone(), store.clone(), shutdown.clone());
            let ready = readiness.part(format!("{platform}-sidecar"));
            tasks.push((
                "sidecar",
                tokio::spawn(async move {
                    chat4all_connector_sidecar::run(&sidecar, &kafka, store, None, ready, shutdown).await
                }),
            ));
        }

        Ok(Self {
            gateway_addr,
            store_addr,
            simulator_addr,
            simulator: simulator_handle,
            kafka,
            store,
            webhooks,
            connectors,
            readiness,
            started,
            shutdown,
            tasks,
            kafka_cluster: Some(cluster),
        })
    }

    /// Waits until every consumer has its partitions, so a message sent
    /// from now on is routed at once. Fails if a service stops first, or
    /// after `within`, naming the consumers still waiting.
    pub async fn ready(&self, within: Duration) -> anyhow::Result<Ready> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((name, _)) = self.tasks.iter().find(|(_, task)| task.is_finished()) {
                anyhow::bail!("{name} stopped before the system was ready");
            }
            // Woken by the last flag, or every 100 ms to look at the tasks.
            let step = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            if tokio::time::timeout_at(step, self.readiness.wait()).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "not ready within {within:?}: waiting for {} to join their groups",
                    self.readiness.pending().join(", ")
                );
            }
        }
        Ok(Ready {
            after: self.started.elapsed(),
            consumers: self.readiness.parts(),
            webhooks: self.webhooks.clone(),
        })
    }

    /// The gateway's URL for a tonic client.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    /// Creates more topics on the system's Kafka (the benchmark's own).
    pub fn create_topics(&self, names: &[String], partitions: i32) -> anyhow::Result<()> {
        let cluster = self.kafka_cluster.as_ref().context("the system is stopped")?;
        Ok(cluster.create_topics(names, partitions)?)
    }

    /// A token that stops the system when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every service, waits for each to drain, then closes the store
    /// and Kafka.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut failures = Vec::new();
        for (name, task) in self.tasks.drain(..) {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => failures.push(format!("{name}: {e:#}")),
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: did not stop within 30 s")),
            }
        }
        drop(self.store);
        // The drain's spans too.
        chat4all_telemetry::spans::flush().await;
        // librdkafka's destroy blocks until its threads end.
        if let Some(cluster) = self.kafka_cluster.take() {
            tokio::task::spawn_blocking(move || drop(cluster)).await?;
        }
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("stopping: {}", failures.join("; "))
        }
    }
}
