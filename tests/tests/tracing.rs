//! One trace per message, end to end: a real OTLP/gRPC receiver gets the
//! spans of a delivery with its receipts, every hop in one trace with its
//! parent links in order; a client's traceparent is continued; `/metrics`
//! parses as Prometheus text and counts what was sent.
//!
//! Span export is set up once per process, so this file holds one test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_proto::v1::{self as pb, GetMessageRequest};
use chat4all_telemetry::otlp_sink::{OtlpSink, ReceivedSpan};
use chat4all_tests::{TestSystem, send_request, wait_for, watch_conversation};

const WITHIN: Duration = Duration::from_secs(30);
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// The one span of `name` (and `kind`) whose parent is `parent`.
fn child<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan, name: &str, kind: i32) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == name && s.kind == kind && s.parent_span_id == parent.span_id)
        .collect();
    assert!(
        !found.is_empty(),
        "no {name:?} (kind {kind}) under {:?} ({}); spans of the trace: {:#?}",
        parent.name,
        parent.service,
        spans
            .iter()
            .map(|s| (&s.name, &s.service, &s.span_id, &s.parent_span_id))
            .collect::<Vec<_>>()
    );
    found[0]
}

async fn metric_text(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_is_one_trace_across_every_hop_and_metrics_count_it() {
    let sink = OtlpSink::start().await.unwrap();
    let endpoint = sink.endpoint();
    let t = TestSystem::start_with(|config| config.otlp_endpoint = Some(endpoint))
        .await
        .unwrap();
    let metrics = chat4all_telemetry::MetricsEndpoint::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let metrics_addr = metrics.local_addr();
    let stop_metrics = tokio_util::sync::CancellationToken::new();
    tokio::spawn(metrics.run(stop_metrics.clone()));
    let mut client = t.client().await.unwrap();
    let mut watch = client
        .watch_messages(watch_conversation("traced"))
        .await
        .unwrap()
        .into_inner();

    // A client with a trace of its own.
    let mut request = tonic::Request::new(send_request("whatsapp:15551230001", "traced hello", "traced"));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01").parse().unwrap(),
    );
    request
        .metadata_mut()
        .insert("tracestate", "vendor=chat4all-test".parse().unwrap());
    let sent = client.send_message(request).await.unwrap().into_inner();
    assert_eq!(sent.trace_id, CLIENT_TRACE, "the client's trace is continued");
    // A client without one: a new trace, which the message keeps.
    let untraced = client
        .send_message(send_request("whatsapp:15551230002", "untraced hello", "untraced"))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(untraced.trace_id, CLIENT_TRACE);
    assert_eq!(untraced.trace_id.len(), 32);

    for id in [&sent.message_id, &untraced.message_id] {
        wait_for(&mut client, id, pb::DeliveryStatus::Read, WITHIN)
            .await
            .unwrap();
    }
    // The watcher's READ: the last hop has happened.
    loop {
        let event = tokio::time::timeout(WITHIN, watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.message_id == sent.message_id && event.status == pb::DeliveryStatus::Read as i32 {
            break;
        }
    }
    let stored = client
        .get_message(GetMessageRequest {
            message_id: untraced.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(
        stored.trace_id, untraced.trace_id,
        "GetMessage returns the trace id"
    );

    // Consumer lag comes from librdkafka's statistics, every few seconds:
    // wait for a report made after everything was consumed.
    let deadline = tokio::time::Instant::now() + WITHIN;
    let caught_up = "chat4all_consumer_lag_records{group=\"status-consumer\",topic=\"status-updates\"} 0\n";
    let scrape_text = loop {
        let text = metric_text(metrics_addr).await;
        if text.contains(caught_up) || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    stop_metrics.cancel();
    let platform_calls = t.system.simulator.received("whatsapp");
    t.system.stop().await.unwrap();

    // Every hop of the traced message, in order, each the child of the last.
    let spans: Vec<ReceivedSpan> = sink
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == CLIENT_TRACE)
        .collect();
    let root = spans
        .iter()
        .find(|s| s.name == "chat4all.v1.MessagingService/SendMessage")
        .expect("the gateway's server span");
    assert_eq!((root.kind, root.parent_span_id.as_str()), (SERVER, CLIENT_SPAN));
    assert_eq!(root.service, "chat4all-api-gateway");
    assert_eq!(
        root.trace_state, "vendor=chat4all-test",
        "tracestate travels with it"
    );
    assert_eq!(root.attribute("rpc.system"), Some("grpc"));
    assert_eq!(root.attribute("rpc.method"), Some("SendMessage"));
    assert_eq!(
        root.attribute("chat4all.message_id"),
        Some(sent.message_id.as_str())
    );
    assert_eq!(root.attribute("chat4all.platform"), Some("whatsapp"));

    let publish = child(&spans, root, "send messages", PRODUCER);
    assert_eq!(publish.attribute("messaging.system"), Some("kafka"));
    assert_eq!(publish.attribute("messaging.destination.name"), Some("messages"));
    assert_eq!(publish.attribute("messaging.operation.type"), Some("publish"));
    let routed = child(&spans, publish, "process messages", CONSUMER);
    assert_eq!(routed.service, "chat4all-router");
    assert_eq!(routed.attribute("messaging.operation.type"), Some("process"));
    assert_eq!(
        routed.attribute("chat4all.message_id"),
        Some(sent.message_id.as_str())
    );
    let outbound = child(&spans, routed, "send whatsapp-outbound", PRODUCER);
    let taken = child(&spans, outbound, "process whatsapp-outbound", CONSUMER);
    assert_eq!(taken.service, "chat4all-connector-sidecar");
    let call = child(&spans, taken, "chat4all.v1.Connector/Send", CLIENT);
    assert_eq!(call.attribute("rpc.service"), Some("chat4all.v1.Connector"));
    let served = child(&spans, call, "chat4all.v1.Connector/Send", SERVER);
    assert_eq!(served.service, "chat4all-whatsapp");
    let http = child(&spans, served, "POST whatsapp", CLIENT);
    assert_eq!(http.attribute("http.request.method"), Some("POST"));
    // The platform got the HTTP span's context in its traceparent header.
    let platform_saw = platform_calls
        .into_iter()
        .find(|c| c.text == "traced hello")
        .unwrap();
    assert_eq!(
        platform_saw.traceparent.unwrap(),
        format!("00-{CLIENT_TRACE}-{}-01", http.span_id)
    );
    assert_eq!(
        platform_saw.tracestate.as_deref(),
        Some("vendor=chat4all-test"),
        "tracestate reaches the platform too"
    );
    // Each receipt comes back in the same trace, under the platform call.
    let receipts: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == "webhook whatsapp receipt" && s.parent_span_id == http.span_id)
        .collect();
    let statuses: Vec<&str> = receipts
        .iter()
        .filter_map(|s| s.attribute("chat4all.status"))
        .collect();
    for status in ["DELIVERY_STATUS_DELIVERED", "DELIVERY_STATUS_READ"] {
        assert!(statuses.contains(&status), "{statuses:?}");
    }
    let read = receipts
        .iter()
        .find(|s| s.attribute("chat4all.status") == Some("DELIVERY_STATUS_READ"))
        .unwrap();
    assert_eq!(read.kind, SERVER);
    let update = child(&spans, read, "send status-updates", PRODUCER);
    assert_eq!(update.service, "chat4all-connector-sidecar");
    let applied = child(&spans, update, "process status-updates", CONSUMER);
    assert_eq!(applied.service, "chat4all-status-consumer");
    let announced = child(&spans, applied, "send message-events", PRODUCER);
    let watched = child(&spans, announced, "process message-events", CONSUMER);
    assert_eq!(watched.service, "chat4all-api-gateway");
    // The router's ROUTED and the sidecar's SENT are in the trace too.
    child(&spans, routed, "send status-updates", PRODUCER);
    child(&spans, taken, "send status-updates", PRODUCER);

    // The untraced message: its own trace, rooted at the gateway.
    let own: Vec<ReceivedSpan> = sink
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == untraced.trace_id)
        .collect();
    let own_root = own
        .iter()
        .find(|s| s.name == "chat4all.v1.MessagingService/SendMessage")
        .unwrap();
    assert_eq!(own_root.parent_span_id, "", "a root");
    child(&own, own_root, "send messages", PRODUCER);

    // /metrics is Prometheus text, and its counters are what happened.
    let scrape = prometheus_parse::Scrape::parse(scrape_text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert!(!scrape.samples.is_empty());
    let accepted = sample(
        &scrape,
        "chat4all_messages_accepted_total",
        &[("platform", "whatsapp"), ("duplicate", "false")],
    );
    assert_eq!(accepted, 2.0);
    assert_eq!(
        sample(
            &scrape,
            "chat4all_messages_total",
            &[("platform", "whatsapp"), ("status", "READ")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &scrape,
            "chat4all_accept_to_delivered_seconds_count",
            &[("platform", "whatsapp")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &scrape,
            "chat4all_accept_to_sent_seconds_count",
            &[("platform", "whatsapp")]
        ),
        2.0
    );
    assert_eq!(
        sample(&scrape, "chat4all_accept_duration_seconds_count", &[]),
        2.0
    );
    // Everything was consumed: no lag left on the status-consumer's topic.
    let lag = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "chat4all_consumer_lag_records" && s.labels.get("topic") == Some("status-updates")
        })
        .expect("consumer lag per topic");
    assert!(
        matches!(lag.value, prometheus_parse::Value::Gauge(v) if v == 0.0),
        "{lag:?}"
    );
}
