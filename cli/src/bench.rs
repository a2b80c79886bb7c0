//! `chat4all bench`: the one-machine system under N concurrent gRPC clients,
//! measured beside the two ceilings it is built from, in the same run on the
//! same machine: a bare tonic unary echo, and a bare rdkafka produce→consume
//! through the same mock cluster.
//!
//! Accept latency is measured at the client; accept→DELIVERED from the
//! client's send to the moment the DELIVERED event appears on
//! `message-events` (the status-consumer has applied it), so it spans every
//! hop: gateway, store, router, sidecar, adapter, platform, webhook back.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chat4all_kafka::tail::TailConsumer;
use chat4all_kafka::{decode, topics};
use chat4all_proto::bench::{EchoRequest, EchoResponse, echo_client::EchoClient, echo_server};
use chat4all_proto::v1::{
    self as pb, GetMessageRequest, SendMessageRequest, messaging_service_client::MessagingServiceClient,
};
use futures::StreamExt;
use hdrhistogram::Histogram;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::{System, SystemConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Concurrent gRPC clients, each on its own connection.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Messages sent in all.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Conversations the messages are spread over.
    #[arg(long, default_value_t = 64)]
    pub conversations: usize,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 120)]
    pub text_bytes: usize,
    /// Export every span over OTLP/gRPC to a receiver started in this
    /// process, to measure what tracing costs.
    #[arg(long)]
    pub trace: bool,
}

/// Throughput and latency of one load.
#[derive(Debug, Clone)]
pub struct Figures {
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub options: BenchOptions,
    pub accept: Figures,
    pub delivered: Figures,
    pub delivered_count: usize,
    pub echo: Figures,
    pub kafka: Figures,
    pub peak_rss_mib: f64,
    /// Mean time of each stage of the accept path, from the gateway's own
    /// `chat4all_accept_stage_duration_seconds` histogram.
    pub accept_stages: Vec<(String, Duration)>,
    /// Spans the in-process OTLP receiver got, with `--trace`.
    pub spans_exported: Option<usize>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let line = |f: &mut fmt::Formatter<'_>, name: &str, unit: &str, x: &Figures| {
            writeln!(
                f,
                "  {name:<19}{:>10.0} {unit}/s   p50 {:>8.3} ms   p99 {:>8.3} ms",
                x.per_second,
                ms(x.p50),
                ms(x.p99)
            )
        };
        writeln!(
            f,
            "chat4all bench: {} messages, {} clients, {} conversations, {}-byte texts, tracing {}",
            o.messages,
            o.clients,
            o.conversations,
            o.text_bytes,
            if o.trace { "on (OTLP/gRPC)" } else { "off" }
        )?;
        line(f, "accepted", "msg", &self.accept)?;
        for (stage, mean) in &self.accept_stages {
            writeln!(f, "    stage {stage:<7}  mean {:>8.3} ms", ms(*mean))?;
        }
        line(f, "accept→DELIVERED", "msg", &self.delivered)?;
        writeln!(f, "    ({} of {} delivered)", self.delivered_count, o.messages)?;
        if let Some(spans) = self.spans_exported {
            writeln!(f, "    {spans} spans exported to the in-process OTLP receiver")?;
        }
        line(f, "bare tonic echo", "req", &self.echo)?;
        writeln!(
            f,
            "  bare rdkafka       {:>10.0} rec/s   produce→consume one record at a time: p50 {:>8.3} ms   p99 {:>8.3} ms",
            self.kafka.per_second,
            ms(self.kafka.p50),
            ms(self.kafka.p99)
        )?;
        writeln!(
            f,
            "  peak RSS           {:>10.1} MiB (the whole process: system, clients and baselines)",
            self.peak_rss_mib
        )?;
        writeln!(f, "ratios")?;
        writeln!(
            f,
            "  accepted/s ÷ echo req/s               {:.3}",
            self.accept.per_second / self.echo.per_second
        )?;
        writeln!(
            f,
            "  accept p50 ÷ echo p50                 {:.1}x",
            ms(self.accept.p50) / ms(self.echo.p50).max(1e-9)
        )?;
        writeln!(
            f,
            "  accept p99 ÷ echo p99                 {:.1}x",
            ms(self.accept.p99) / ms(self.echo.p99).max(1e-9)
        )?;
        writeln!(
            f,
            "  delivered/s ÷ kafka rec/s             {:.3}",
            self.delivered.per_second / self.kafka.per_second
        )?;
        write!(
            f,
            "  accept→DELIVERED p50 ÷ kafka hop p50  {:.1}x (the path has 5 Kafka hops, 2 gRPC calls, 1 HTTP call and 3 webhooks)",
            ms(self.delivered.p50) / ms(self.kafka.p50).max(1e-9)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(options: BenchOptions, data_dir: Option<PathBuf>) -> anyhow::Result<Report> {
    // The gateway's stage histograms are read back from the recorder.
    let metrics = chat4all_telemetry::metrics_handle();
    let temporary = data_dir.is_none();
    let dir = data_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("chat4all-bench-{}", uuid::Uuid::new_v4())));
    let sink = match options.trace {
        true => Some(chat4all_telemetry::otlp_sink::OtlpSink::start_counting().await?),
        false => None,
    };
    let mut config = SystemConfig::ephemeral(&dir);
    config.otlp_endpoint = sink.as_ref().map(|s| s.endpoint());
    let system = System::start(config).await?;
    let outcome = measure(&system, &options).await.map(|mut report| {
        report.accept_stages = stage_means(&metrics.render(), "chat4all_accept_stage_duration_seconds");
        report
    });
    system.stop().await?;
    let outcome = outcome.map(|mut report| {
        report.spans_exported = sink.as_ref().map(|s| s.count());
        report
    });
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

async fn measure(system: &System, options: &BenchOptions) -> anyhow::Result<Report> {
    warm_up(system).await?;
    let echo = echo_baseline(options).await?;
    let kafka = kafka_baseline(system, options).await?;
    let (accept, delivered, delivered_count) = system_load(system, options).await?;
    Ok(Report {
        options: options.clone(),
        accept,
        delivered,
        delivered_count,
        echo,
        kafka,
        peak_rss_mib: peak_rss_mib(),
        accept_stages: Vec::new(),
        spans_exported: None,
    })
}

/// One message through every hop, so consumer groups have joined.
async fn warm_up(system: &System) -> anyhow::Result<()> {
    let mut client = MessagingServiceClient::connect(system.gateway_url()).await?;
    let id = client
        .send_message(SendMessageRequest {
            recipient: "whatsapp:15550000000".into(),
            text: "warm-up".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .message_id;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let m = client
            .get_message(GetMessageRequest {
                message_id: id.clone(),
            })
            .await?
            .into_inner()
            .message;
        if m.is_some_and(|m| m.status >= pb::DeliveryStatus::Delivered as i32) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the warm-up message was not delivered within 60 s")
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds up to an hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).context("histogram bounds")
}

fn figures(h: &Histogram<u64>, count: usize, elapsed: Duration) -> Figures {
    Figures {
        per_second: count as f64 / elapsed.as_secs_f64().max(1e-9),
        p50: Duration::from_micros(h.value_at_quantile(0.5)),
        p99: Duration::from_micros(h.value_at_quantile(0.99)),
    }
}

/// Splits `total` into `parts` shares.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

struct Echo;

#[tonic::async_trait]
impl echo_server::Echo for Echo {
    async fn echo(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoResponse>, tonic::Status> {
        let _ = request.into_inner();
        Ok(tonic::Response::new(EchoResponse {
            id: uuid::Uuid::now_v7().to_string(),
        }))
    }
}

async fn echo_baseline(options: &BenchOptions) -> anyhow::Result<Figures> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    // Health and reflection as on every port; a call to Echo never meets them.
    let (routes, health) = chat4all_telemetry::GrpcPort::new()
        .descriptors(chat4all_proto::FILE_DESCRIPTOR_SET)
        .serve(echo_server::EchoServer::new(Echo))
        .build()
        .await?;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), health.draining(stop.clone())),
    );
    let text = "x".repeat(options.text_bytes);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..options.clients {
        let n = share(options.messages, options.clients, i);
        let channel = Channel::from_shared(format!("http://{addr}"))?.connect().await?;
        let text = text.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = EchoClient::new(channel);
            let mut h = histogram()?;
            for _ in 0..n {
                let t = Instant::now();
                client
                    .echo(EchoRequest {
                        recipient: "whatsapp:15550000000".into(),
                        text: text.clone(),
                    })
                    .await?;
                let _ = h.record(t.elapsed().as_micros() as u64);
            }
            anyhow::Ok(h)
        }));
    }
    let mut all = histogram()?;
    for t in tasks {
        all.add(t.await??)?;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = server.await;
    Ok(figures(&all, options.messages, elapsed))
}

/// Bare rdkafka through the system's own mock cluster: throughput from
/// `messages` records produced as fast as they go and consumed; latency from
/// sequential round trips (one record produced, seen by the consumer, then
/// the next), since a flood's latency is only its queueing.
async fn kafka_baseline(system: &System, options: &BenchOptions) -> anyhow::Result<Figures> {
    const ROUND_TRIPS: usize = 1000;
    let topic = format!("bench-baseline-{}", uuid::Uuid::new_v4());
    system.create_topics(std::slice::from_ref(&topic), 8)?;
    let bootstrap = system.kafka.bootstrap.clone();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "bench-baseline")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", system.kafka.fetch_wait_ms.to_string())
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..8 {
        assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "1")
        .set("enable.idempotence", "true")
        .create()?;
    // The consumer reports each record's arrival.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let reader = tokio::spawn(async move {
        let mut stream = consumer.stream();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            if seen_tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    let payload = vec![b'x'; options.text_bytes];
    let key = |i: usize| format!("bench-{}", i % options.conversations.max(1));

    let started = Instant::now();
    let mut acks = Vec::with_capacity(options.messages);
    for i in 0..options.messages {
        let key = key(i);
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&payload)) {
                Ok(ack) => {
                    acks.push(ack);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    futures::future::join_all(acks).await;
    for _ in 0..options.messages {
        seen.recv().await.context("the baseline consumer stopped")?;
    }
    let elapsed = started.elapsed();

    let mut latency = histogram()?;
    for i in 0..ROUND_TRIPS {
        let sent = Instant::now();
        let key = key(i);
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
        let arrived = seen.recv().await.context("the baseline consumer stopped")?;
        let _ = latency.record(arrived.duration_since(sent).as_micros().max(1) as u64);
    }
    reader.abort();
    Ok(Figures {
        per_second: options.messages as f64 / elapsed.as_secs_f64().max(1e-9),
        p50: Duration::from_micros(latency.value_at_quantile(0.5)),
        p99: Duration::from_micros(latency.value_at_quantile(0.99)),
    })
}

type Clock = Arc<Mutex<HashMap<String, Instant>>>;

async fn system_load(system: &System, options: &BenchOptions) -> anyhow::Result<(Figures, Figures, usize)> {
    let delivered_at: Clock = Arc::default();
    let stop = CancellationToken::new();
    let tail = TailConsumer::new(
        &system.kafka,
        topics::MESSAGE_EVENTS,
        &format!("bench-{}", uuid::Uuid::new_v4()),
    )
    .await?;
    let watcher = tokio::spawn(tail.run(
        {
            let delivered_at = delivered_at.clone();
            move |record| {
                if let Ok(event) = decode::<pb::MessageEvent>(&record.payload)
                    && event.status == pb::DeliveryStatus::Delivered as i32
                {
                    delivered_at
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(event.message_id)
                        .or_insert_with(Instant::now);
                }
            }
        },
        stop.clone(),
    ));

    let text = "x".repeat(options.text_bytes);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..options.clients {
        let n = share(options.messages, options.clients, i);
        let channel = Channel::from_shared(system.gateway_url())?.connect().await?;
        let (text, clients, conversations) = (text.clone(), options.clients, options.conversations.max(1));
        tasks.push(tokio::spawn(async move {
            let mut client = MessagingServiceClient::new(channel);
            let mut h = histogram()?;
            let mut sent = Vec::with_capacity(n);
            for k in 0..n {
                let conversation = (i + k * clients) % conversations;
                let t = Instant::now();
                let response = client
                    .send_message(SendMessageRequest {
                        recipient: format!("whatsapp:1555{conversation:07}"),
                        text: text.clone(),
                        ..Default::default()
                    })
                    .await?;
                let _ = h.record(t.elapsed().as_micros() as u64);
                sent.push((response.into_inner().message_id, t));
            }
            anyhow::Ok((h, sent))
        }));
    }
    let mut accept = histogram()?;
    let mut sent_at = HashMap::with_capacity(options.messages);
    for t in tasks {
        let (h, sent) = t.await??;
        accept.add(h)?;
        sent_at.extend(sent);
    }
    let accept_elapsed = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = delivered_at.lock().unwrap_or_else(PoisonError::into_inner).len();
        if done >= options.messages || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let _ = watcher.await;
    let delivered_at = delivered_at
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut delivered = histogram()?;
    let mut last = started;
    let mut count = 0;
    for (id, sent) in &sent_at {
        if let Some(at) = delivered_at.get(id) {
            let _ = delivered.record(at.duration_since(*sent).as_micros().max(1) as u64);
            last = last.max(*at);
            count += 1;
        }
    }
    Ok((
        figures(&accept, options.messages, accept_elapsed),
        figures(&delivered, count, last.duration_since(started)),
        count,
    ))
}

/// The mean of each `stage` of a histogram, from Prometheus text
/// (`_sum` / `_count`).
fn stage_means(text: &str, histogram: &str) -> Vec<(String, Duration)> {
    let mut sums: HashMap<String, (f64, f64)> = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(histogram) else {
            continue;
        };
        let (which, rest) = if let Some(r) = rest.strip_prefix("_sum{") {
            (0, r)
        } else if let Some(r) = rest.strip_prefix("_count{") {
            (1, r)
        } else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Some(stage) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("stage=\""))
            .map(|s| s.trim_end_matches('"'))
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let entry = sums.entry(stage.to_owned()).or_default();
        if which == 0 {
            entry.0 = value
        } else {
            entry.1 = value
        }
    }
    let mut means: Vec<(String, Duration)> = sums
        .into_iter()
        .filter(|(_, (_, count))| *count > 0.0)
        .map(|(stage, (sum, count))| (stage, Duration::from_secs_f64(sum / count)))
        .collect();
    means.sort();
    means
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_means_come_from_sum_and_count() {
        let text = "x_sum{stage=\"store\"} 2\nx_count{stage=\"store\"} 4\nx_sum{stage=\"kafka\"} 3\nx_count{stage=\"kafka\"} 3\n";
        assert_eq!(
            stage_means(text, "x"),
            [
                ("kafka".to_owned(), Duration::from_secs(1)),
                ("store".to_owned(), Duration::from_millis(500))
            ]
        );
    }

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(10, 3), (20_000, 32), (1, 4)] {
            assert_eq!((0..parts).map(|i| share(total, parts, i)).sum::<usize>(), total);
        }
    }
}
