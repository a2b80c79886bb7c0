//! The kit end to end with a fake platform: real listeners on port 0, a real
//! HTTP client posting webhooks, a real tonic client of `Connector`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat4all_adapter::signature::sign_hmac_sha256_hex;
use chat4all_adapter::{
    BoundAdapter, HttpClientConfig, PlatformAdapter, Secret, ServeConfig, SignatureScheme, WebhookLimits,
    WebhookParseError, build_http_client,
};
use chat4all_proto::v1 as pb;
use pb::connector_client::ConnectorClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const SECRET: &str = "kit-secret";
const VERIFY_TOKEN: &str = "kit-verify";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

type Sent = Arc<Mutex<Vec<(pb::SendRequest, Option<String>)>>>;

struct Fake {
    signature: SignatureScheme,
    verify_token: Secret,
    sent: Sent,
}

#[async_trait]
impl PlatformAdapter for Fake {
    fn platform(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> pb::Capabilities {
        pb::Capabilities {
            max_text_length: 10,
            default_rate_per_second: 5.0,
            send_echoes: false,
            ..Default::default()
        }
    }

    async fn send(
        &self,
        request: &pb::SendRequest,
        traceparent: Option<&str>,
    ) -> Result<pb::SendAccepted, pb::PlatformError> {
        self.sent
            .lock()
            .unwrap()
            .push((request.clone(), traceparent.map(str::to_owned)));
        Ok(pb::SendAccepted {
            platform_message_id: format!("p-{}", request.message_id),
            at: None,
        })
    }

    fn webhook_signature(&self) -> &SignatureScheme {
        &self.signature
    }

    fn webhook_verify_token(&self) -> Option<&Secret> {
        Some(&self.verify_token)
    }

    /// The fake platform posts a JSON array of texts.
    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<pb::PlatformEvent>, WebhookParseError> {
        let texts: Vec<String> = serde_json::from_slice(body)?;
        Ok(texts
            .into_iter()
            .map(|text| pb::PlatformEvent {
                event: Some(pb::platform_event::Event::Inbound(pb::InboundMessage {
                    platform: "fake".into(),
                    text,
                    ..Default::default()
                })),
                traceparent: String::new(),
                ..Default::default()
            })
            .collect())
    }
}

struct Running {
    grpc: ConnectorClient<Channel>,
    http: reqwest::Client,
    grpc_url: String,
    webhook_url: String,
    webhook_addr: std::net::SocketAddr,
    health_url: String,
    sent: Sent,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

async fn start(capacity: usize) -> Running {
    start_with(ServeConfig {
        event_queue_capacity: capacity,
        ..ServeConfig::default()
    })
    .await
}

async fn start_with(config: ServeConfig) -> Running {
    let sent = Sent::default();
    let fake = Fake {
        signature: SignatureScheme::meta(Secret::from(SECRET)),
        verify_token: Secret::from(VERIFY_TOKEN),
        sent: Arc::clone(&sent),
    };
    let bound: BoundAdapter = chat4all_adapter::bind(fake, config).await.unwrap();
    assert_ne!(bound.grpc_addr().port(), 0);
    let webhook_url = bound.webhook_url();
    let webhook_addr = bound.webhook_addr();
    let health_url = format!("http://{}/health", bound.webhook_addr());
    let grpc_url = format!("http://{}", bound.grpc_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.run(shutdown.clone()));
    let grpc = ConnectorClient::connect(grpc_url.clone()).await.unwrap();
    let http = build_http_client(&HttpClientConfig::default()).unwrap();
    Running {
        grpc,
        http,
        grpc_url,
        webhook_url,
        webhook_addr,
        health_url,
        sent,
        shutdown,
        task,
    }
}

impl Running {
    async fn post(&self, body: &str, signature: Option<String>) -> u16 {
        let mut request = self.http.post(&self.webhook_url).body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn post_signed(&self, body: &str) -> u16 {
        let signature = format!(
            "sha256={}",
            sign_hmac_sha256_hex(&Secret::from(SECRET), body.as_bytes())
        );
        self.post(body, Some(signature)).await
    }

    fn signed(&self, body: &str) -> reqwest::RequestBuilder {
        let signature = format!(
            "sha256={}",
            sign_hmac_sha256_hex(&Secret::from(SECRET), body.as_bytes())
        );
        self.http
            .post(&self.webhook_url)
            .header("X-Hub-Signature-256", signature)
            .body(body.to_owned())
    }

    /// Posts a signed `body` in the background: the answer waits for acks.
    fn post_later(&self, body: &str) -> JoinHandle<u16> {
        let request = self.signed(body);
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    }

    /// Subscribes as a sidecar that acks by hand.
    async fn subscribe(&self) -> (Events, mpsc::UnboundedSender<pb::EventAck>) {
        let (acks, rx) = mpsc::unbounded_channel();
        let events = self
            .grpc
            .clone()
            .stream_events(UnboundedReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        (events, acks)
    }

    /// Subscribes as a sidecar that acks each event as soon as it has it;
    /// the events, in order.
    async fn subscribe_acking(&self) -> mpsc::UnboundedReceiver<pb::PlatformEvent> {
        let (mut events, acks) = self.subscribe().await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(event)) = events.message().await {
                let _ = acks.send(pb::EventAck {
                    event_ids: vec![event.event_id],
                });
                let _ = tx.send(event);
            }
        });
        rx
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "the adapter stops cleanly: {result:?}"
        );
    }
}

fn text(event: &pb::PlatformEvent) -> &str {
    match &event.event {
        Some(pb::platform_event::Event::Inbound(m)) => &m.text,
        _ => panic!("not an inbound message: {event:?}"),
    }
}

type Events = tonic::Streaming<pb::PlatformEvent>;

async fn next(stream: &mut Events) -> pb::PlatformEvent {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event in time")
        .expect("a healthy stream")
        .expect("the stream is open")
}

async fn next_acked(events: &mut mpsc::UnboundedReceiver<pb::PlatformEvent>) -> pb::PlatformEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event in time")
        .expect("the stream is open")
}

fn ack(acks: &mpsc::UnboundedSender<pb::EventAck>, event: &pb::PlatformEvent) {
    acks.send(pb::EventAck {
        event_ids: vec![event.event_id],
    })
    .unwrap();
}

async fn answered(post: JoinHandle<u16>) -> u16 {
    tokio::time::timeout(Duration::from_secs(5), post)
        .await
        .expect("an answer in time")
        .unwrap()
}

#[tokio::test]
async fn webhooks_are_verified_before_parsing_and_stream_in_order() {
    let running = start(100).await;
    let body = r#"["hello","world"]"#;

    assert_eq!(running.post(body, None).await, 401, "unsigned");
    let wrong = format!(
        "sha256={}",
        sign_hmac_sha256_hex(&Secret::from("not-the-secret"), body.as_bytes())
    );
    assert_eq!(
        running.post(body, Some(wrong)).await,
        403,
        "signed with another secret"
    );
    let good = format!(
        "sha256={}",
        sign_hmac_sha256_hex(&Secret::from(SECRET), body.as_bytes())
    );
    assert_eq!(
        running.post(r#"["hello","w0rld"]"#, Some(good)).await,
        403,
        "tampered body"
    );
    assert_eq!(
        running.post(body, Some("sha256=nothex".into())).await,
        403,
        "malformed signature"
    );
    assert_eq!(
        running.post_signed("{not json").await,
        400,
        "signed but unparseable"
    );

    // Events arrive before anyone subscribes and wait for the subscriber;
    // the webhook is answered once they are acked.
    let post = running.post_later(body);
    let (mut stream, acks) = running.subscribe().await;
    let hello = next(&mut stream).await;
    assert_eq!(text(&hello), "hello", "nothing refused reached the stream");
    let world = next(&mut stream).await;
    assert_eq!(text(&world), "world");
    ack(&acks, &world);
    ack(&acks, &hello);
    assert_eq!(answered(post).await, 200);
    let post = running.post_later(r#"["later"]"#);
    let later = next(&mut stream).await;
    assert_eq!(text(&later), "later");
    ack(&acks, &later);
    assert_eq!(answered(post).await, 200);

    // Shutdown ends the open stream rather than waiting for it.
    running.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}

#[tokio::test]
async fn a_webhook_is_answered_200_only_once_its_events_are_acked() {
    let running = start(100).await;
    let (mut stream, acks) = running.subscribe().await;
    let post = running.post_later(r#"["one","two"]"#);
    let one = next(&mut stream).await;
    let two = next(&mut stream).await;
    assert_eq!((one.event_id, two.event_id), (1, 2), "numbered in order");
    ack(&acks, &one);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!post.is_finished(), "answered before every event was acked");
    ack(&acks, &two);
    assert_eq!(answered(post).await, 200);
    running.stop().await;
}

#[tokio::test]
async fn a_webhook_not_acked_in_time_gets_503_and_its_events_go_to_the_next_sidecar() {
    let running = start_with(ServeConfig {
        event_ack_timeout: Duration::from_millis(300),
        ..ServeConfig::default()
    })
    .await;
    // No sidecar at all.
    let asked = Instant::now();
    assert_eq!(running.post_signed(r#"["nobody"]"#).await, 503);
    assert!(asked.elapsed() >= Duration::from_millis(300));

    // A sidecar that takes the event and never acks it, then dies.
    let (mut stream, acks) = running.subscribe().await;
    let post = running.post_later(r#"["lost?"]"#);
    assert_eq!(text(&next(&mut stream).await), "lost?");
    assert_eq!(answered(post).await, 503, "the platform redelivers");
    drop((stream, acks));

    // The next sidecar is not handed what the platform redelivers anyway.
    let mut sidecar = running.subscribe_acking().await;
    assert_eq!(running.post_signed(r#"["again"]"#).await, 200);
    assert_eq!(text(&next_acked(&mut sidecar).await), "again");
    running.stop().await;
}

#[tokio::test]
async fn a_dead_sidecars_unacked_events_go_to_the_next_in_order_and_the_webhook_gets_200() {
    let running = start(100).await;
    let (mut dying, acks) = running.subscribe().await;
    let post = running.post_later(r#"["x","y","z"]"#);
    let x = next(&mut dying).await;
    assert_eq!(text(&x), "x");
    ack(&acks, &x);
    assert_eq!(text(&next(&mut dying).await), "y");
    // A dying sidecar's last acks may be lost with it (then x comes again,
    // which is fine); here it lives long enough to deliver it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop((dying, acks));

    let mut next_sidecar = running.subscribe_acking().await;
    assert_eq!(text(&next_acked(&mut next_sidecar).await), "y");
    assert_eq!(text(&next_acked(&mut next_sidecar).await), "z");
    assert_eq!(answered(post).await, 200);
    running.stop().await;
}

#[tokio::test]
async fn a_stopping_adapter_refuses_new_webhooks_and_answers_acked_ones() {
    let running = start(100).await;
    let (mut stream, acks) = running.subscribe().await;
    let post = running.post_later(r#"["in flight"]"#);
    let event = next(&mut stream).await;
    running.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = running
        .signed(r#"["too late"]"#)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(
        !matches!(refused, Ok(200)),
        "a stopping adapter takes no new webhook: {refused:?}"
    );
    assert!(!post.is_finished(), "the webhook in flight waits for its ack");
    ack(&acks, &event);
    assert_eq!(answered(post).await, 200);
    let result = tokio::time::timeout(Duration::from_secs(5), running.task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
}

#[tokio::test]
async fn a_full_queue_answers_503_until_acked() {
    let running = start(2).await;
    let first = running.post_later(r#"["a","b"]"#);
    let (mut stream, acks) = running.subscribe().await;
    let a = next(&mut stream).await;
    let b = next(&mut stream).await;
    assert_eq!((text(&a), text(&b)), ("a", "b"));
    assert_eq!(
        running.post_signed(r#"["c"]"#).await,
        503,
        "handed out but unacked still counts: the platform retries"
    );
    ack(&acks, &a);
    ack(&acks, &b);
    assert_eq!(answered(first).await, 200);
    let third = running.post_later(r#"["c"]"#);
    let c = next(&mut stream).await;
    assert_eq!(text(&c), "c");
    ack(&acks, &c);
    assert_eq!(answered(third).await, 200);
    running.stop().await;
}

#[tokio::test]
async fn hub_challenge_and_health() {
    let running = start(10).await;
    let get = |query: &str| {
        let url = format!("{}?{query}", running.webhook_url);
        let http = running.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(
        get(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        ))
        .await,
        (200, "1158201444".to_owned())
    );
    assert_eq!(
        get("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
            .await
            .0,
        403
    );
    assert_eq!(
        get(&format!(
            "hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"
        ))
        .await
        .0,
        403
    );
    assert_eq!(get("hub.challenge=1").await.0, 403);

    let health = running.http.get(&running.health_url).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "healthy"}));
    running.stop().await;
}

#[tokio::test]
async fn send_forwards_the_traceparent_and_answers_for_the_platform() {
    let running = start(10).await;
    let mut grpc = running.grpc.clone();

    let describe = grpc.describe(pb::DescribeRequest {}).await.unwrap().into_inner();
    assert_eq!(describe.platform, "fake");
    assert_eq!(describe.capabilities.map(|c| c.max_text_length), Some(10));

    let send = pb::SendRequest {
        message_id: "m-1".into(),
        conversation_id: "c-1".into(),
        recipient_id: "42".into(),
        text: "hi".into(),
    };
    let mut request = tonic::Request::new(send.clone());
    request
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    let response = grpc.send(request).await.unwrap().into_inner();
    match response.result {
        Some(pb::send_response::Result::Accepted(a)) => assert_eq!(a.platform_message_id, "p-m-1"),
        other => panic!("expected accepted, got {other:?}"),
    }
    // A garbage traceparent is not forwarded.
    let mut request = tonic::Request::new(send.clone());
    request
        .metadata_mut()
        .insert("traceparent", "garbage".parse().unwrap());
    grpc.send(request).await.unwrap();
    {
        let sent = running.sent.lock().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].0, send);
        // The platform call is a child span in the caller's trace.
        let parse =
            |t: &Option<String>| chat4all_telemetry::TraceContext::parse(t.as_deref().unwrap()).unwrap();
        let given = chat4all_telemetry::TraceContext::parse(TRACEPARENT).unwrap();
        let continued = parse(&sent[0].1);
        assert_eq!(continued.trace_id(), given.trace_id());
        assert_ne!(continued.span_id_bytes(), given.span_id_bytes());
        // Garbage is not passed on: the platform call starts a trace.
        assert_ne!(parse(&sent[1].1).trace_id(), given.trace_id());
    }

    // Too long for the platform: refused without a platform call.
    let long = pb::SendRequest {
        text: "x".repeat(11),
        ..send.clone()
    };
    let response = grpc.send(long).await.unwrap().into_inner();
    match response.result {
        Some(pb::send_response::Result::Error(e)) => {
            assert_eq!(e.kind(), pb::PlatformErrorKind::Permanent);
            assert_eq!(e.code, "text_too_long");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert_eq!(running.sent.lock().unwrap().len(), 2);

    // The caller's mistake is INVALID_ARGUMENT.
    let status = grpc
        .send(pb::SendRequest {
            recipient_id: String::new(),
            ..send
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Optional calls the platform lacks say so.
    let status = grpc
        .get_channel_info(pb::GetChannelInfoRequest {
            vendor_channel_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(
        status
            .message()
            .starts_with("platform fake does not support channel info"),
        "{}",
        status.message()
    );
    let status = grpc
        .list_user_products(pb::ListUserProductsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    running.stop().await;
}

#[tokio::test]
async fn grpc_health_reports_the_connector_serving() {
    let running = start(10).await;
    let channel = Channel::from_shared(running.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "chat4all.v1.Connector"] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            answer.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{service:?}"
        );
    }
    running.stop().await;
}

// --- The webhook server against hostile clients -------------------------

/// Timeouts short enough for a test, long enough that a CI machine's
/// hiccups do not reach them.
const SHORT: Duration = Duration::from_secs(1);
/// How late after its timeout a connection may still close.
const MARGIN: Duration = Duration::from_millis(1_500);
/// How often the hostile clients send their next byte: faster than any
/// timeout, so only the timeout meant for each can cut it off.
const DRIBBLE: Duration = Duration::from_millis(300);

async fn start_limited(limits: WebhookLimits) -> Running {
    start_with(ServeConfig {
        webhook_limits: limits,
        ..ServeConfig::default()
    })
    .await
}

fn limits(header: Duration, body: Duration, idle: Duration, max_connections: usize) -> WebhookLimits {
    WebhookLimits {
        header_timeout: header,
        body_timeout: body,
        idle_timeout: idle,
        max_connections,
    }
}

/// Reads until the server closes (EOF or reset): how long that took from
/// `since`, and what it said first.
async fn until_closed(mut read: impl tokio::io::AsyncRead + Unpin, since: Instant) -> (Duration, String) {
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => said.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server never closed the connection");
    (since.elapsed(), String::from_utf8_lossy(&said).into_owned())
}

/// Writes `head`, then one byte of `dribble` every [`DRIBBLE`] until the
/// server stops listening; hands back the read half.
async fn dribbler(
    addr: std::net::SocketAddr,
    head: String,
    dribble: u8,
) -> (tokio::net::tcp::OwnedReadHalf, JoinHandle<()>) {
    let (read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    write.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(DRIBBLE).await;
            if write.write_all(&[dribble]).await.is_err() {
                return;
            }
        }
    });
    (read, writer)
}

fn assert_cut_off_in_time(what: &str, after: Duration, timeout: Duration) {
    // Not before its timeout: the clock, not an early refusal, closed it.
    assert!(
        after >= timeout - Duration::from_millis(200),
        "{what} closed too early: {after:?}"
    );
    assert!(after <= timeout + MARGIN, "{what} closed too late: {after:?}");
}

/// Sends a request for `/health` on `stream` and reads the whole answer.
async fn health_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: kit\r\n\r\n")
        .await
        .unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !said.ends_with(b"}") {
            let n = stream.read(&mut buf).await.unwrap();
            assert_ne!(
                n,
                0,
                "closed before answering: {:?}",
                String::from_utf8_lossy(&said)
            );
            said.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer in time");
    String::from_utf8(said).unwrap()
}

#[tokio::test]
async fn slow_silent_and_dribbling_clients_are_cut_off_while_webhooks_are_answered() {
    let running = start_limited(limits(SHORT, SHORT, SHORT, 64)).await;
    let addr = running.webhook_addr;
    let started = Instant::now();

    // Half a header block, then a byte of a header value every 300 ms.
    let (slow_header, header_writer) = dribbler(
        addr,
        "POST /webhook HTTP/1.1\r\nHost: kit\r\nX-Slow: ".into(),
        b'a',
    )
    .await;
    // Every header, then the body a byte at a time.
    let (slow_body, body_writer) = dribbler(
        addr,
        "POST /webhook HTTP/1.1\r\nHost: kit\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            .into(),
        b' ',
    )
    .await;
    // Connects and says nothing.
    let silent = TcpStream::connect(addr).await.unwrap();

    let slow_header = tokio::spawn(until_closed(slow_header, started));
    let slow_body = tokio::spawn(until_closed(slow_body, started));
    let silent = tokio::spawn(until_closed(silent, started));

    // A platform's webhook meanwhile is answered as soon as it is acked.
    let _sidecar = running.subscribe_acking().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    assert_eq!(running.post_signed(r#"["meanwhile"]"#).await, 200);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "answered in {:?}",
        asked.elapsed()
    );

    let (after, _) = slow_header.await.unwrap();
    assert_cut_off_in_time("the slow header", after, SHORT);
    let (after, said) = slow_body.await.unwrap();
    assert_cut_off_in_time("the slow body", after, SHORT);
    assert!(
        said.starts_with("HTTP/1.1 408"),
        "the slow body is told why: {said:?}"
    );
    let (after, said) = silent.await.unwrap();
    assert_cut_off_in_time("the silent connection", after, SHORT);
    assert_eq!(said, "", "nothing to answer");
    header_writer.abort();
    body_writer.abort();

    // And the server still serves.
    assert_eq!(running.post_signed(r#"["after"]"#).await, 200);
    running.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_by_the_idle_timeout_alone() {
    let long = Duration::from_secs(30);
    let running = start_limited(limits(long, long, SHORT, 64)).await;

    let started = Instant::now();
    let silent = TcpStream::connect(running.webhook_addr).await.unwrap();
    let (after, _) = until_closed(silent, started).await;
    assert_cut_off_in_time("a silent connection", after, SHORT);

    // A kept-alive connection waiting for its next request.
    let mut kept = TcpStream::connect(running.webhook_addr).await.unwrap();
    assert!(health_on(&mut kept).await.starts_with("HTTP/1.1 200"));
    let (after, _) = until_closed(kept, Instant::now()).await;
    assert_cut_off_in_time("a kept-alive connection", after, SHORT);
    running.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_until_one_frees_up() {
    let long = Duration::from_secs(30);
    let running = start_limited(limits(long, long, long, 2)).await;
    let addr = running.webhook_addr;

    // Answered, so both hold their place under the cap.
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert!(health_on(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(health_on(&mut second).await.starts_with("HTTP/1.1 200"));

    let started = Instant::now();
    let third = TcpStream::connect(addr).await.unwrap();
    let (after, said) = until_closed(third, started).await;
    assert!(
        after < Duration::from_millis(500),
        "refused promptly, not after {after:?}"
    );
    assert_eq!(said, "");

    drop(first);
    // The server notices the close on its own time; a new client soon fits.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut next = TcpStream::connect(addr).await.unwrap();
        let answered = next
            .write_all(b"GET /health HTTP/1.1\r\nHost: kit\r\n\r\n")
            .await
            .is_ok()
            && {
                let mut buf = [0u8; 12];
                matches!(
                    tokio::time::timeout(Duration::from_secs(1), next.read_exact(&mut buf)).await,
                    Ok(Ok(_)) if &buf == b"HTTP/1.1 200"
                )
            };
        if answered {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed up under the cap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        health_on(&mut second).await.starts_with("HTTP/1.1 200"),
        "the others are kept"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_webhook_in_flight_is_answered_through_shutdown() {
    let running = start(10).await;
    let body = r#"["in flight"]"#;
    let signature = sign_hmac_sha256_hex(&Secret::from(SECRET), body.as_bytes());
    let mut stream = TcpStream::connect(running.webhook_addr).await.unwrap();
    let (first, rest) = body.split_at(4);
    stream
        .write_all(
            format!(
                "POST /webhook HTTP/1.1\r\nHost: kit\r\nX-Hub-Signature-256: sha256={signature}\r\n\
                 Content-Length: {}\r\n\r\n{first}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    running.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let (_, said) = until_closed(stream, Instant::now()).await;
    // Answered rather than cut off; a stopping adapter takes no new events,
    // so the platform is asked to redeliver them elsewhere.
    assert!(said.starts_with("HTTP/1.1 503"), "{said:?}");
    assert!(said.contains("the adapter is stopping"), "{said:?}");
    assert!(said.contains("connection: close"), "and told to go: {said:?}");

    let result = tokio::time::timeout(Duration::from_secs(5), running.task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "stopped cleanly: {result:?}");
}
