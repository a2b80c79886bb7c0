//! `chat4all store-bench`: put_message/s and transitions/s of the store's
//! backends, every backend driven by the same code ([`measure`], over
//! [`SharedStore`]), so that the figures differ by the backend alone.
//!
//! The load is what the services ask of the store for an outbound WhatsApp
//! message: the gateway's `put_message`, then the four status changes the
//! status-consumer applies to it (ROUTED from the router, SENT from the
//! sidecar with the platform's id, DELIVERED and READ from the webhook).
//! Each change is its own `apply_transitions` call: the consumer's batches
//! are whatever Kafka hands it, down to one record, and one change a call
//! is the cost batching does not hide.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chat4all_domain::{DeliveryStatus, MessageId, Platform, Recipient, Timestamp};
use chat4all_engines::{Cassandra, RunningCassandra};
use chat4all_store::{MessageRef, NewMessage, PutOutcome, SharedStore, StatusChange, TransitionOutcome};
use chat4all_store_embedded::{EmbeddedOptions, EmbeddedStore};
use chat4all_store_scylla::{ScyllaConfig, ScyllaStore, ScyllaStoreOptions};
use hdrhistogram::Histogram;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

#[derive(Debug, Clone, clap::Args)]
pub struct StoreBenchOptions {
    /// Messages put, then taken through their transitions.
    #[arg(long, env = "CHAT4ALL_STORE_BENCH_MESSAGES", default_value_t = 5000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub messages: usize,
    /// Tasks calling the store at once.
    #[arg(long, env = "CHAT4ALL_STORE_BENCH_CONCURRENCY", default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub concurrency: usize,
    /// Which store to measure.
    #[arg(long, env = "CHAT4ALL_STORE_BENCH_BACKEND", value_enum, default_value_t = Backend::Both)]
    pub backend: Backend,
    /// An existing cluster (`host:port,...`) instead of a Cassandra node
    /// started for the run. It gets a keyspace of its own, dropped at the
    /// end. Not `CHAT4ALL_SCYLLA_NODES`: the store's pods have that one set
    /// to the production cluster.
    #[arg(long, env = "CHAT4ALL_STORE_BENCH_SCYLLA_NODES", value_delimiter = ',')]
    pub scylla_nodes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Embedded,
    Cassandra,
    Both,
}

/// Messages put and transitioned before measuring, not counted: the
/// embedded store's page cache and Cassandra's JIT, connection pools and
/// prepared-statement caches are warm when the clock starts.
const WARM_UP: usize = 200;

/// Conversations the messages are spread over: many messages each, as a
/// conversation's rows share partitions in the Scylla backend.
const CONVERSATIONS: usize = 256;

/// The heap of a node started here, said in the report since the figures
/// depend on it; the same as the store's tests give theirs.
const CASSANDRA_HEAP: &str = "768m";

/// One phase: how many calls, how long it took, latency per call.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub count: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Phase {
    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// One backend's figures, and what it was, so a reader knows what they mean.
#[derive(Debug, Clone)]
pub struct BackendReport {
    pub name: &'static str,
    pub setup: String,
    pub put: Phase,
    pub transitions: Phase,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub messages: usize,
    pub concurrency: usize,
    /// An unoptimised build measures the client code too: its figures are
    /// not the store's.
    pub debug_build: bool,
    pub cores: usize,
    pub backends: Vec<BackendReport>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chat4all store-bench: {} messages, {} concurrent tasks, {} cores, {} build{}",
            self.messages,
            self.concurrency,
            self.cores,
            if self.debug_build { "debug" } else { "release" },
            if self.debug_build {
                " (unoptimised: use --release for figures worth quoting)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "each message: put_message (WhatsApp recipient, ~110-byte Vietnamese text, idempotency key), \
             then ROUTED, SENT, DELIVERED, READ, one apply_transitions call each"
        )?;
        for b in &self.backends {
            writeln!(f, "{}: {}", b.name, b.setup)?;
            for (what, p) in [("put_message", &b.put), ("transitions", &b.transitions)] {
                writeln!(
                    f,
                    "  {what:<12}{:>7} in {:>8.3} s {:>9.0} ops/s   p50 {:>8.3} ms   p99 {:>8.3} ms",
                    p.count,
                    p.wall.as_secs_f64(),
                    p.per_second(),
                    ms(p.p50),
                    ms(p.p99)
                )?;
            }
        }
        if self.backends.len() > 1 {
            writeln!(f, "side by side      put_message/s   transitions/s")?;
            for b in &self.backends {
                writeln!(
                    f,
                    "  {:<14}{:>15.0}{:>16.0}",
                    b.name,
                    b.put.per_second(),
                    b.transitions.per_second()
                )?;
            }
        }
        Ok(())
    }
}

pub async fn run(options: StoreBenchOptions) -> anyhow::Result<Report> {
    let mut backends = Vec::new();
    if options.backend != Backend::Cassandra {
        backends.push(embedded(&options).await.context("embedded store")?);
    }
    if options.backend != Backend::Embedded {
        backends.push(cassandra(&options).await.context("Cassandra store")?);
    }
    Ok(Report {
        messages: options.messages,
        concurrency: options.concurrency,
        debug_build: cfg!(debug_assertions),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        backends,
    })
}

async fn embedded(options: &StoreBenchOptions) -> anyhow::Result<BackendReport> {
    let dir = tempfile::Builder::new()
        .prefix("chat4all-store-bench-")
        .tempdir()?;
    let path = dir.path().join("store.sqlite3");
    // What `chat4all dev` and the store service run with by default.
    let store_options = EmbeddedOptions::default();
    let setup = format!(
        "SQLite in a temporary directory, WAL, synchronous={}, group commit of up to {} writes",
        format!("{:?}", store_options.synchronous).to_uppercase(),
        store_options.max_batch
    );
    let store = tokio::task::spawn_blocking({
        let path = path.clone();
        move || EmbeddedStore::open(&path, store_options)
    })
    .await??;
    let shared: SharedStore = Arc::new(store.clone());
    let measured = warm_then_measure(&shared, options).await;
    drop(shared);
    store.close().await;
    let (put, transitions) = measured?;
    Ok(BackendReport {
        name: "embedded",
        setup,
        put,
        transitions,
    })
}

async fn cassandra(options: &StoreBenchOptions) -> anyhow::Result<BackendReport> {
    let mut node = None;
    let nodes = match &options.scylla_nodes {
        Some(nodes) => nodes.clone(),
        None => {
            eprintln!("store-bench: starting a Cassandra node (its jars fetched by Maven on first use)…");
            let started =
                tokio::task::spawn_blocking(|| Cassandra::default().heap(CASSANDRA_HEAP).start_temporary())
                    .await??;
            eprintln!(
                "store-bench: Cassandra {} on {}, up in {:.1} s",
                started.version(),
                started.contact_point(),
                started.started_in().as_secs_f64()
            );
            let nodes = vec![started.contact_point().to_string()];
            node = Some(started);
            nodes
        }
    };
    let measured = on_cluster(nodes, node.as_ref(), options).await;
    if let Some(mut node) = node {
        // Blocking: SIGTERM, then a few seconds of draining.
        tokio::task::spawn_blocking(move || node.stop()).await?;
    }
    measured
}

/// Measures in a keyspace of this run's own on `nodes`, dropped afterwards
/// (a node started here goes with its files anyway; an existing cluster
/// keeps nothing of the run).
async fn on_cluster(
    nodes: Vec<String>,
    node: Option<&RunningCassandra>,
    options: &StoreBenchOptions,
) -> anyhow::Result<BackendReport> {
    let config = ScyllaConfig {
        nodes: nodes.clone(),
        keyspace: format!("chat4all_bench_{}", uuid::Uuid::new_v4().simple()),
        ..Default::default()
    };
    let admin = SessionBuilder::new()
        .known_nodes(&nodes)
        .build()
        .await
        .with_context(|| format!("connecting to {}", nodes.join(",")))?;
    let version = release_version(&admin).await?;
    let setup = match node {
        // The node's options are chat4all-engines' test node's (see its
        // `jvm_options`): they shape the figures as much as the heap does.
        Some(node) => format!(
            "Apache Cassandra {version}, one local node started for this run on {} \
             (heap {CASSANDRA_HEAP}, serial GC, C1 JIT only, commit log not fsynced), \
             replication factor {}, {:?}/{:?}",
            node.contact_point(),
            config.replication_factor,
            config.consistency,
            config.serial_consistency
        ),
        None => format!(
            "the cluster at {} (release_version {version}), replication factor {}, {:?}/{:?}",
            nodes.join(","),
            config.replication_factor,
            config.consistency,
            config.serial_consistency
        ),
    };
    let store = ScyllaStore::connect(config.clone(), ScyllaStoreOptions::default()).await?;
    let shared: SharedStore = Arc::new(store);
    let measured = warm_then_measure(&shared, options).await;
    drop(shared);
    if let Err(e) = admin
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", config.keyspace), ())
        .await
    {
        eprintln!("store-bench: keyspace {} left behind: {e}", config.keyspace);
    }
    let (put, transitions) = measured?;
    Ok(BackendReport {
        name: "cassandra",
        setup,
        put,
        transitions,
    })
}

async fn release_version(session: &Session) -> anyhow::Result<String> {
    let rows = session
        .query_unpaged("SELECT release_version FROM system.local", ())
        .await?
        .into_rows_result()?;
    let (version,) = rows.single_row::<(String,)>()?;
    Ok(version)
}

async fn warm_then_measure(
    store: &SharedStore,
    options: &StoreBenchOptions,
) -> anyhow::Result<(Phase, Phase)> {
    measure(store, WARM_UP, options.concurrency)
        .await
        .context("warming up")?;
    measure(store, options.messages, options.concurrency).await
}

/// Puts `messages` new messages from `concurrency` tasks, then takes each
/// through its transitions from as many tasks. Each task applies one
/// message's changes in order, as the status-consumer does (a
/// conversation's updates come in partition order).
async fn measure(store: &SharedStore, messages: usize, concurrency: usize) -> anyhow::Result<(Phase, Phase)> {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let (store, n) = (store.clone(), share(messages, concurrency, task));
        tasks.push(tokio::spawn(async move {
            let mut latency = histogram()?;
            let mut ids = Vec::with_capacity(n);
            for k in 0..n {
                let message = new_message(task + k * concurrency)?;
                let id = message.id;
                let t = Instant::now();
                let put = store.put_message(message).await?;
                let _ = latency.record(micros(t.elapsed()));
                anyhow::ensure!(
                    put.outcome == PutOutcome::Created,
                    "message {id} was {:?}, not Created",
                    put.outcome
                );
                ids.push(id);
            }
            anyhow::Ok((latency, ids))
        }));
    }
    let mut latency = histogram()?;
    let mut shares = Vec::with_capacity(concurrency);
    for task in tasks {
        let (h, ids) = task.await??;
        latency.add(h)?;
        shares.push(ids);
    }
    let put = phase(&latency, messages, started.elapsed());

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for ids in shares {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = histogram()?;
            for id in ids {
                for change in lifecycle(id) {
                    let status = change.status;
                    let t = Instant::now();
                    let results = store.apply_transitions(vec![change]).await?;
                    let _ = latency.record(micros(t.elapsed()));
                    let outcome = results.first().map(|r| r.outcome);
                    // A rejected or repeated change costs less than an
                    // applied one: a figure made of them would flatter.
                    anyhow::ensure!(
                        outcome == Some(TransitionOutcome::Applied),
                        "message {id}: {} was {outcome:?}, not Applied",
                        status.as_str()
                    );
                }
            }
            anyhow::Ok(latency)
        }));
    }
    let mut latency = histogram()?;
    for task in tasks {
        latency.add(task.await??)?;
    }
    let transitions = phase(&latency, messages * LIFECYCLE.len(), started.elapsed());
    Ok((put, transitions))
}

/// The message the gateway would store for the `n`th request.
fn new_message(n: usize) -> anyhow::Result<NewMessage> {
    let recipient = Recipient::new(Platform::WhatsApp, &format!("8490{:07}", n % CONVERSATIONS))?;
    Ok(NewMessage {
        id: MessageId::generate(),
        // The gateway's default: one conversation per recipient.
        conversation_id: recipient.to_string().parse()?,
        recipient,
        text: format!(
            "Xin chào! Đơn hàng #{n:07} của bạn đã được xác nhận, giao trong 2–3 ngày. Cảm ơn bạn!"
        ),
        source: "api".to_owned(),
        trace_id: uuid::Uuid::new_v4().simple().to_string(),
        created_at: Timestamp::now(),
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
    })
}

/// The statuses an outbound WhatsApp message goes through after ACCEPTED,
/// and the hop that reports each.
const LIFECYCLE: [(DeliveryStatus, &str); 4] = [
    (DeliveryStatus::Routed, "router"),
    (DeliveryStatus::Sent, "sidecar"),
    (DeliveryStatus::Delivered, "webhook"),
    (DeliveryStatus::Read, "webhook"),
];

/// The changes of [`LIFECYCLE`] as the status-consumer hands them to the
/// store: the router's names no platform id; the sidecar's SENT and the
/// webhook's receipts name the one WhatsApp gave.
fn lifecycle(id: MessageId) -> impl Iterator<Item = StatusChange> {
    let platform_id = format!("wamid.{}", uuid::Uuid::new_v4().simple());
    LIFECYCLE.into_iter().map(move |(status, hop)| StatusChange {
        message: MessageRef::Id(id),
        status,
        at: Timestamp::now(),
        hop: hop.to_owned(),
        platform_message_id: (status != DeliveryStatus::Routed).then(|| platform_id.clone()),
        failure: None,
    })
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds up to an hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).context("histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn phase(latency: &Histogram<u64>, count: usize, wall: Duration) -> Phase {
    Phase {
        count,
        wall,
        p50: Duration::from_micros(latency.value_at_quantile(0.5)),
        p99: Duration::from_micros(latency.value_at_quantile(0.99)),
    }
}

/// Splits `total` into `parts` shares.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn phase(count: usize, wall_ms: u64, p50_us: u64, p99_us: u64) -> Phase {
        Phase {
            count,
            wall: Duration::from_millis(wall_ms),
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p99_us),
        }
    }

    #[test]
    fn the_report_puts_both_backends_side_by_side() {
        let report = Report {
            messages: 5000,
            concurrency: 32,
            debug_build: false,
            cores: 2,
            backends: vec![
                BackendReport {
                    name: "embedded",
                    setup: "SQLite".to_owned(),
                    put: phase(5000, 2500, 1_500, 12_250),
                    transitions: phase(20_000, 8000, 900, 7_000),
                },
                BackendReport {
                    name: "cassandra",
                    setup: "Apache Cassandra 5.0.9".to_owned(),
                    put: phase(5000, 10_000, 60_000, 250_000),
                    transitions: phase(20_000, 40_000, 50_000, 200_000),
                },
            ],
        };
        let text = report.to_string();
        assert!(
            text.starts_with(
                "chat4all store-bench: 5000 messages, 32 concurrent tasks, 2 cores, release build\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  put_message    5000 in    2.500 s      2000 ops/s   p50    1.500 ms   p99   12.250 ms\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  transitions   20000 in   40.000 s       500 ops/s   p50   50.000 ms   p99  200.000 ms\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "side by side      put_message/s   transitions/s\n  \
             embedded                 2000            2500\n  \
             cassandra                 500             500\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn one_backend_has_no_side_by_side_and_a_debug_build_says_so() {
        let report = Report {
            messages: 10,
            concurrency: 1,
            debug_build: true,
            cores: 2,
            backends: vec![BackendReport {
                name: "embedded",
                setup: "SQLite".to_owned(),
                put: phase(10, 10, 100, 200),
                transitions: phase(40, 10, 100, 200),
            }],
        };
        let text = report.to_string();
        assert!(text.contains("debug build (unoptimised"), "{text}");
        assert!(!text.contains("side by side"), "{text}");
    }

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(10, 3), (5000, 32), (1, 4)] {
            assert_eq!((0..parts).map(|i| share(total, parts, i)).sum::<usize>(), total);
        }
    }

    #[test]
    fn messages_are_in_the_recipient_s_conversation_and_go_the_whole_way() {
        let message = new_message(7).unwrap();
        assert_eq!(message.conversation_id.as_str(), "whatsapp:84900000007");
        assert_eq!(message.trace_id.len(), 32);
        let changes: Vec<StatusChange> = lifecycle(message.id).collect();
        let statuses: Vec<DeliveryStatus> = changes.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                DeliveryStatus::Routed,
                DeliveryStatus::Sent,
                DeliveryStatus::Delivered,
                DeliveryStatus::Read
            ]
        );
        assert_eq!(changes[0].platform_message_id, None);
        assert!(
            changes[1..]
                .iter()
                .all(|c| c.platform_message_id == changes[1].platform_message_id)
        );
    }
}
