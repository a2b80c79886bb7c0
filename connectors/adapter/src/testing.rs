//! Test harness for adapters (feature `test-util`): run a bound adapter in
//! the background, talk to it through a real tonic `Connector` client and
//! post to its webhook over real HTTP, the way the sidecar and the platform
//! do. [`against_simulator`] starts the simulator and an adapter calling it
//! on free ports. Written once so every adapter's tests against the
//! simulator share it.
//!
//! These helpers panic on failure with a message saying what was expected:
//! they are test code, and a panic is how a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use chat4all_proto::v1 as pb;
use chat4all_simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use pb::connector_client::ConnectorClient;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::Channel;

use crate::{AdapterArgs, BoundAdapter};

/// A W3C context the tests send with every call.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An adapter running in the background until this value drops.
pub struct RunningAdapter {
    pub grpc: ConnectorClient<Channel>,
    pub webhook_url: String,
    pub http: reqwest::Client,
    _shutdown: DropGuard,
}

impl std::fmt::Debug for RunningAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningAdapter")
            .field("webhook_url", &self.webhook_url)
            .finish_non_exhaustive()
    }
}

/// Runs `adapter` until `shutdown` fires or the returned value drops, and
/// connects a client to it.
pub async fn start(adapter: BoundAdapter, shutdown: CancellationToken) -> RunningAdapter {
    let grpc_url = format!("http://{}", adapter.grpc_addr());
    let webhook_url = adapter.webhook_url();
    tokio::spawn(adapter.run(shutdown.clone()));
    let grpc = ConnectorClient::connect(grpc_url)
        .await
        .expect("the adapter's gRPC port answers");
    crate::install_crypto_provider();
    RunningAdapter {
        grpc,
        webhook_url,
        http: reqwest::Client::new(),
        _shutdown: shutdown.drop_guard(),
    }
}

/// An adapter and the simulator it calls, both running until this drops.
#[derive(Debug)]
pub struct AgainstSimulator {
    pub adapter: RunningAdapter,
    pub sim: SimulatorHandle,
}

// Tests mostly talk to the adapter; `s.sim` reaches the platform's side.
impl Deref for AgainstSimulator {
    type Target = RunningAdapter;
    fn deref(&self) -> &RunningAdapter {
        &self.adapter
    }
}

/// Starts the simulator (`sim`, on a free port), then the adapter `bind`
/// makes from [`AdapterArgs`] pointing at it on free ports, and points the
/// simulator's webhooks for that platform at the adapter. Both sides keep
/// their one-machine default credentials otherwise: they must match.
pub async fn against_simulator<F, Fut>(sim: SimulatorConfig, bind: F) -> AgainstSimulator
where
    F: FnOnce(AdapterArgs) -> Fut,
    Fut: Future<Output = anyhow::Result<BoundAdapter>>,
{
    let shutdown = CancellationToken::new();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let simulator = Simulator::bind(SimulatorConfig { listen: any, ..sim })
        .await
        .expect("the simulator binds");
    let bound = bind(AdapterArgs {
        api_base_url: simulator.base_url(),
        grpc_listen: any,
        webhook_listen: any,
        ..AdapterArgs::default()
    })
    .await
    .expect("the adapter binds");
    let handle = simulator.handle();
    handle.set_webhook_target(bound.platform(), bound.webhook_url());
    tokio::spawn(simulator.run(shutdown.clone()));
    AgainstSimulator {
        adapter: start(bound, shutdown).await,
        sim: handle,
    }
}

/// `T`'s flags parsed from `args` (the program name first), as a binary
/// that flattens `T` into its command line parses them.
pub fn parse_flags<T: clap::Args + clap::FromArgMatches>(args: &[&str]) -> Result<T, clap::Error> {
    let matches = T::augment_args(clap::Command::new("test")).try_get_matches_from(args)?;
    T::from_arg_matches(&matches)
}

/// A send request whose conversation is `conv-<message_id>`.
pub fn request(message_id: &str, to: &str, text: &str) -> pb::SendRequest {
    pb::SendRequest {
        message_id: message_id.into(),
        conversation_id: format!("conv-{message_id}"),
        recipient_id: to.into(),
        text: text.into(),
    }
}

impl RunningAdapter {
    /// `Send` with [`TRACEPARENT`] in the metadata.
    pub async fn send(&self, send: pb::SendRequest) -> pb::send_response::Result {
        let mut request = tonic::Request::new(send);
        request
            .metadata_mut()
            .insert("traceparent", TRACEPARENT.parse().expect("a valid header"));
        self.grpc
            .clone()
            .send(request)
            .await
            .expect("Send answers")
            .into_inner()
            .result
            .expect("a result")
    }

    /// `Send`, which must be accepted.
    pub async fn accepted(&self, send: pb::SendRequest) -> pb::SendAccepted {
        match self.send(send).await {
            pb::send_response::Result::Accepted(a) => a,
            other => panic!("expected accepted, got {other:?}"),
        }
    }

    /// `Send`, which must be refused by the platform.
    pub async fn refused(&self, send: pb::SendRequest) -> pb::PlatformError {
        match self.send(send).await {
            pb::send_response::Result::Error(e) => e,
            other => panic!("expected a platform error, got {other:?}"),
        }
    }

    /// Subscribes to `StreamEvents` as a sidecar whose Kafka acks at
    /// once: each event is acked as soon as it arrives, so a webhook is
    /// answered 200 whether or not the test has read its events yet.
    pub async fn events(&self) -> Events {
        let (acks, ack_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut stream = self
            .grpc
            .clone()
            .stream_events(tokio_stream::wrappers::UnboundedReceiverStream::new(ack_rx))
            .await
            .expect("StreamEvents answers")
            .into_inner();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(event)) = stream.message().await {
                let ack = pb::EventAck {
                    event_ids: vec![event.event_id],
                };
                if acks.send(ack).is_err() || tx.send(event).is_err() {
                    return;
                }
            }
        });
        Events { rx }
    }

    /// `Describe`.
    pub async fn describe(&self) -> pb::DescribeResponse {
        self.grpc
            .clone()
            .describe(pb::DescribeRequest {})
            .await
            .expect("Describe answers")
            .into_inner()
    }

    /// POSTs `body` to the webhook with `header: value` when given; the
    /// HTTP status answered.
    pub async fn post_webhook(&self, body: Vec<u8>, signature: Option<(&str, String)>) -> u16 {
        let mut call = self.http.post(&self.webhook_url).body(body);
        if let Some((header, value)) = signature {
            call = call.header(header, value);
        }
        call.send().await.expect("the webhook answers").status().as_u16()
    }

    /// The answer to Meta's subscription handshake with `token`:
    /// (status, body).
    pub async fn verify_subscription(&self, token: &str, challenge: &str) -> (u16, String) {
        let url = format!(
            "{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge={challenge}",
            self.webhook_url
        );
        let answer = self.http.get(url).send().await.expect("the webhook answers");
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap_or_default())
    }
}

/// The events of an acking subscription ([`RunningAdapter::events`]), in
/// the order streamed.
#[derive(Debug)]
pub struct Events {
    rx: tokio::sync::mpsc::UnboundedReceiver<pb::PlatformEvent>,
}

/// The next event, within five seconds.
pub async fn next_event(events: &mut Events) -> pb::PlatformEvent {
    tokio::time::timeout(Duration::from_secs(5), events.rx.recv())
        .await
        .expect("an event in time")
        .expect("an open stream")
}

/// Whether `event` is one a Meta adapter adds beside the receipts naming
/// a message: the SENT its echo of our send confirms, or a watermark for
/// the store to resolve.
fn is_meta_extra(event: &pb::PlatformEvent) -> bool {
    matches!(&event.event, Some(pb::platform_event::Event::Receipt(r))
        if r.watermark.is_some() || r.status == pb::DeliveryStatus::Sent as i32)
}

/// The next receipt naming a delivery or read, skipping what
/// [`is_meta_extra`] says.
pub async fn next_receipt(events: &mut Events) -> (pb::Receipt, String) {
    loop {
        let event = next_event(events).await;
        if !is_meta_extra(&event) {
            return receipt(event);
        }
    }
}

/// The next inbound message, skipping what [`is_meta_extra`] says.
pub async fn next_inbound(events: &mut Events) -> pb::InboundMessage {
    loop {
        let event = next_event(events).await;
        if !is_meta_extra(&event) {
            return inbound(event);
        }
    }
}

/// Fails if an event other than what [`is_meta_extra`] says arrives
/// within `wait`.
pub async fn no_receipt_within(events: &mut Events, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.rx.recv()).await {
        assert!(is_meta_extra(&event), "expected no event, got {event:?}");
    }
}

/// Fails if an event arrives within `wait`.
pub async fn no_event_within(events: &mut Events, wait: Duration) {
    if let Ok(event) = tokio::time::timeout(wait, events.rx.recv()).await {
        panic!("expected no event, got {event:?}");
    }
}

/// The receipt in `event`.
pub fn receipt(event: pb::PlatformEvent) -> (pb::Receipt, String) {
    match event.event {
        Some(pb::platform_event::Event::Receipt(r)) => (r, event.traceparent),
        other => panic!("expected a receipt, got {other:?}"),
    }
}

/// The inbound message in `event`.
pub fn inbound(event: pb::PlatformEvent) -> pb::InboundMessage {
    match event.event {
        Some(pb::platform_event::Event::Inbound(m)) => m,
        other => panic!("expected an inbound message, got {other:?}"),
    }
}

/// Asserts `carried` continues the trace of `sent` from a span of its own:
/// each hop (the adapter's server span, its platform call, the webhook) is
/// a child, so the trace id stays and the span id changes.
pub fn assert_continues_trace(carried: Option<&str>, sent: &str) {
    let sent = chat4all_telemetry::TraceContext::parse(sent).expect("the test sent a valid traceparent");
    let carried = carried
        .and_then(chat4all_telemetry::TraceContext::parse)
        .unwrap_or_else(|| panic!("no valid traceparent carried: {carried:?}"));
    assert_eq!(carried.trace_id(), sent.trace_id(), "the same trace");
    assert_ne!(carried.span_id_bytes(), sent.span_id_bytes(), "a span of its own");
}

/// Asserts `carried` is a valid traceparent of a trace of its own.
pub fn assert_new_trace(carried: &str) {
    assert!(
        chat4all_telemetry::TraceContext::parse(carried).is_some(),
        "a new trace starts here, not {carried:?}"
    );
}
