//! WatchMessages, through the real gRPC API on the one-process system,
//! costs nothing once its streams end: thousands of conversations watched
//! and left leave no scope and no memory behind, and the gateway caps how
//! many streams are open at once.
//!
//! Alone in its file, so the metrics and the resident memory it reads are
//! its process's own; its tests take turns for the same reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use chat4all_proto::v1::{self as pb, messaging_service_client::MessagingServiceClient};
use chat4all_tests::{TestSystem, send_request, watch_conversation};
use futures::StreamExt as _;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

const WITHIN: Duration = Duration::from_secs(30);
const SCOPES: &str = "chat4all_watch_scopes";
const WATCHERS: &str = "chat4all_watchers";

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The gauge as `/metrics` serves it (0 before it was ever set).
async fn gauge(metrics: SocketAddr, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .sum()
}

/// The server hears of a dropped stream when its RST_STREAM arrives, a
/// moment after the client let go.
async fn settle(metrics: SocketAddr, name: &str, value: f64) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let now = gauge(metrics, name).await;
        if now == value {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {now}, not {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A stream for each of `ids`, spread over `clients` (a connection each, so
/// no connection nears HTTP/2's limit on concurrent streams). The answer's
/// headers mean the gateway has registered the stream.
async fn open(
    clients: &[MessagingServiceClient<Channel>],
    prefix: &str,
    ids: Range<usize>,
) -> Vec<tonic::Streaming<pb::MessageEvent>> {
    futures::stream::iter(ids)
        .map(|n| {
            let mut client = clients[n % clients.len()].clone();
            let conversation = format!("{prefix}-{n}");
            async move {
                client
                    .watch_messages(watch_conversation(conversation))
                    .await
                    .unwrap()
                    .into_inner()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

/// Opens and at once drops a stream for each of `ids`, 64 at a time.
async fn churn(clients: &[MessagingServiceClient<Channel>], prefix: &str, ids: Range<usize>) {
    futures::stream::iter(ids)
        .for_each_concurrent(64, |n| {
            let mut client = clients[n % clients.len()].clone();
            async move {
                let opened = client
                    .watch_messages(watch_conversation(format!("{prefix}-{n}")))
                    .await
                    .unwrap();
                drop(opened);
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_conversations_watched_then_left_leave_no_scope_and_no_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // Before the gateway describes its gauges.
    chat4all_telemetry::metrics_handle();
    let endpoint = chat4all_telemetry::MetricsEndpoint::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let metrics = endpoint.local_addr();
    let stop_metrics = CancellationToken::new();
    tokio::spawn(endpoint.run(stop_metrics.clone()));
    let t = TestSystem::start().await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(t.client().await.unwrap());
    }

    // What any stream needs once (connection buffers, allocator arenas) is
    // counted in "before".
    let warm = open(&clients, "warm", 0..500).await;
    drop(warm);
    churn(&clients, "warm", 500..1000).await;
    settle(metrics, SCOPES, 0.0).await;
    let before = resident_kib();
    let started = Instant::now();

    // Held open together, each on its own conversation: one scope each.
    let held = open(&clients, "held", 0..500).await;
    assert_eq!(gauge(metrics, SCOPES).await, 500.0);
    assert_eq!(gauge(metrics, WATCHERS).await, 500.0);
    let peak = resident_kib();
    drop(held);
    churn(&clients, "conversation", 500..5000).await;
    settle(metrics, SCOPES, 0.0).await;
    settle(metrics, WATCHERS, 0.0).await;
    let elapsed = started.elapsed();
    let after = resident_kib();
    println!(
        "5,000 conversations watched and left in {elapsed:?}; resident {before} KiB before, \
         {peak} KiB with 500 open, {after} KiB after"
    );
    assert!(
        after <= before + 20 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );

    // The scopes are gone, and a watcher that comes after still gets events.
    let mut client = clients[0].clone();
    let mut watch = client
        .watch_messages(watch_conversation("conversation-42"))
        .await
        .unwrap()
        .into_inner();
    let sent = client
        .send_message(send_request(
            "whatsapp:15551230042",
            "still watched",
            "conversation-42",
        ))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let event = tokio::time::timeout(WITHIN, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.message_id, sent);
    assert_eq!(event.conversation_id, "conversation-42");
    drop(watch);

    t.system.stop().await.unwrap();
    stop_metrics.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_max_watch_streams_a_watch_is_refused_until_one_closes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let t = TestSystem::start().await.unwrap();
    // A second gateway on the system's Kafka and store, with a cap of 3.
    let config = chat4all_api_gateway::GatewayConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        max_watch_streams: 3,
        ..Default::default()
    };
    let gateway = chat4all_api_gateway::bind(&config, &t.system.kafka, t.system.store.clone())
        .await
        .unwrap();
    let url = format!("http://{}", gateway.local_addr());
    let stop_gateway = CancellationToken::new();
    let served = tokio::spawn(gateway.run(stop_gateway.clone()));
    let mut client = MessagingServiceClient::connect(url).await.unwrap();

    let mut open = Vec::new();
    for n in 0..3 {
        let stream = client
            .watch_messages(watch_conversation(format!("capped-{n}")))
            .await
            .unwrap();
        open.push(stream.into_inner());
    }
    // The cap is on streams: a scope already watched is no exception.
    for conversation in ["capped-3", "capped-0"] {
        let refused = client
            .watch_messages(watch_conversation(conversation))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(
            refused.message().contains("3 WatchMessages streams")
                && refused.message().contains("--max-watch-streams"),
            "{refused:?}"
        );
    }

    drop(open.pop());
    let deadline = Instant::now() + WITHIN;
    let mut admitted = loop {
        match client.watch_messages(watch_conversation("capped-3")).await {
            Ok(stream) => break stream.into_inner(),
            Err(refused) if refused.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("after a stream closed: {other:?}"),
        }
    };
    let sent = client
        .send_message(send_request("whatsapp:15551230003", "admitted", "capped-3"))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let event = tokio::time::timeout(WITHIN, admitted.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.message_id, sent);

    drop((open, admitted));
    stop_gateway.cancel();
    served.await.unwrap().unwrap();
    t.system.stop().await.unwrap();
}
