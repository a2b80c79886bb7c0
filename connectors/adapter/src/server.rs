//! Putting an adapter on the network: [`bind`] opens both listeners (gRPC
//! for the sidecar, HTTP for the platform's webhooks) and hands back their
//! addresses, so a caller that asked for port 0 learns the real ones before
//! anything runs; [`BoundAdapter::run`] then serves until the
//! `CancellationToken` fires.
//!
//! Shutdown order: health turns NOT_SERVING and the webhook server stops
//! accepting; webhooks still arriving on open connections get 503, so
//! the platform redelivers them elsewhere. The webhooks already waiting for
//! their events' acks keep waiting, each at most `event_ack_timeout`, while
//! the sidecar's stream goes on; then the event streams end (a graceful
//! gRPC shutdown waits for open streams, and `StreamEvents` never ends on
//! its own), both servers drain, and after `drain_timeout` (at least the
//! ack timeout and a little) we stop waiting. Either server failing stops
//! the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat4all_proto::v1 as pb;
use chat4all_telemetry::PortHealth;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::events::EventQueue;
use crate::grpc::ConnectorService;
use crate::{AdapterError, PlatformAdapter, WEBHOOK_PATH, WebhookLimits, webhook, webhook_server};

type ConnectorServer<A> = pb::connector_server::ConnectorServer<ConnectorService<A>>;

/// Well within Meta's and Telegram's patience (~20 s) for a webhook's answer.
pub const DEFAULT_EVENT_ACK_TIMEOUT: Duration = Duration::from_secs(8);

/// What the servers get to drain once the webhooks' wait is over.
const DRAIN_AFTER_ACKS: Duration = Duration::from_secs(2);

/// Where and how an adapter serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The `Connector` gRPC service (for the sidecar); port 0 picks one.
    pub grpc_listen: SocketAddr,
    /// The webhook HTTP server (for the platform); port 0 picks one.
    pub webhook_listen: SocketAddr,
    /// How many webhook events wait for `StreamEvents` or its acks before
    /// webhooks get 503.
    pub event_queue_capacity: usize,
    /// How long a webhook waits for its events' acks before it gets 503.
    pub event_ack_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// What the webhook server grants each internet client.
    pub webhook_limits: WebhookLimits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            event_queue_capacity: 10_000,
            event_ack_timeout: DEFAULT_EVENT_ACK_TIMEOUT,
            drain_timeout: Duration::from_secs(10),
            webhook_limits: WebhookLimits::default(),
        }
    }
}

/// An adapter whose listeners are open, ready to [`run`](Self::run).
pub struct BoundAdapter {
    platform: &'static str,
    grpc_listener: TcpListener,
    webhook_listener: TcpListener,
    grpc_addr: SocketAddr,
    webhook_addr: SocketAddr,
    grpc: Routes,
    webhook: axum::Router,
    webhook_limits: WebhookLimits,
    health: PortHealth,
    events: Arc<EventQueue>,
    ack_timeout: Duration,
    drain_timeout: Duration,
}

impl std::fmt::Debug for BoundAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundAdapter")
            .field("platform", &self.platform)
            .field("grpc_addr", &self.grpc_addr)
            .field("webhook_addr", &self.webhook_addr)
            .finish_non_exhaustive()
    }
}

async fn listen(listener: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), AdapterError> {
    let bind_error = |source| AdapterError::Bind {
        listener,
        addr,
        source,
    };
    let socket = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = socket.local_addr().map_err(bind_error)?;
    Ok((socket, local))
}

/// Opens both listeners for `adapter` and builds its servers: the
/// `Connector` service with gRPC health (and reflection) beside it, and the
/// webhook routes.
pub async fn bind<A: PlatformAdapter>(adapter: A, config: ServeConfig) -> Result<BoundAdapter, AdapterError> {
    let platform = adapter.platform();
    let adapter = Arc::new(adapter);
    let events = Arc::new(EventQueue::new(platform, config.event_queue_capacity));
    let (grpc_listener, grpc_addr) = listen("gRPC", config.grpc_listen).await?;
    let (webhook_listener, webhook_addr) = listen("webhooks", config.webhook_listen).await?;

    let connector = ConnectorServer::new(ConnectorService::new(Arc::clone(&adapter), Arc::clone(&events)));
    let (grpc, health) = chat4all_telemetry::GrpcPort::new()
        .descriptors(chat4all_proto::FILE_DESCRIPTOR_SET)
        .serve(connector)
        .build()
        .await
        .map_err(AdapterError::Reflection)?;
    let webhook = webhook::router(adapter, Arc::clone(&events), config.event_ack_timeout);

    tracing::info!(platform, %grpc_addr, %webhook_addr, "adapter listening");
    Ok(BoundAdapter {
        platform,
        grpc_listener,
        webhook_listener,
        grpc_addr,
        webhook_addr,
        grpc,
        webhook,
        webhook_limits: config.webhook_limits,
        health,
        events,
        ack_timeout: config.event_ack_timeout,
        drain_timeout: config.drain_timeout,
    })
}

impl BoundAdapter {
    /// The platform served.
    pub fn platform(&self) -> &'static str {
        self.platform
    }

    /// Where the `Connector` gRPC service listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Where the webhook server listens.
    pub fn webhook_addr(&self) -> SocketAddr {
        self.webhook_addr
    }

    /// The URL to give the platform for its webhooks.
    pub fn webhook_url(&self) -> String {
        format!("http://{}{WEBHOOK_PATH}", self.webhook_addr)
    }

    /// Serves until `shutdown` fires (or a server fails), then drains. The
    /// error, when there is one, is an [`AdapterError`] (anyhow so the
    /// adapter's task sits beside the other services' in one composition).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            platform,
            grpc_listener,
            webhook_listener,
            grpc,
            webhook,
            webhook_limits,
            health,
            events,
            ack_timeout,
            drain_timeout,
            ..
        } = self;
        let drain_timeout = drain_timeout.max(ack_timeout + DRAIN_AFTER_ACKS);
        // A child, so a failing server can stop its sibling without
        // cancelling the caller's token.
        let stop = shutdown.child_token();

        let grpc_server = {
            let stop = stop.clone();
            async move {
                let result = tonic::transport::Server::builder()
                    // Finds a sidecar that vanished without closing its stream.
                    .http2_keepalive_interval(Some(Duration::from_secs(20)))
                    .http2_keepalive_timeout(Some(Duration::from_secs(10)))
                    .add_routes(grpc)
                    .serve_with_incoming_shutdown(
                        TcpListenerStream::new(grpc_listener),
                        health.draining(stop.clone()),
                    )
                    .await
                    .map_err(AdapterError::Grpc);
                stop.cancel();
                result
            }
        };
        let webhook_server = {
            let stop = stop.clone();
            async move {
                // It has no failure of its own: a failed accept is retried.
                webhook_server::serve(platform, webhook_listener, webhook, webhook_limits, stop.clone())
                    .await;
                stop.cancel();
            }
        };
        let on_stop = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                events.stop_accepting();
                tracing::info!(
                    platform,
                    waiting_events = events.len(),
                    unacked_events = events.unacked(),
                    "adapter shutting down"
                );
                // Each waiting webhook is answered within the ack timeout.
                if tokio::time::timeout(ack_timeout, events.settled()).await.is_err() {
                    tracing::warn!(platform, "webhooks still waiting for acks at shutdown");
                }
                events.close_streams();
            }
        };
        let drain_deadline = async {
            stop.cancelled().await;
            tokio::time::sleep(drain_timeout).await;
        };

        tokio::select! {
            (grpc, (), ()) = async { tokio::join!(grpc_server, webhook_server, on_stop) } => {
                tracing::info!(platform, "adapter stopped");
                Ok(grpc?)
            }
            () = drain_deadline => {
                tracing::warn!(platform, "adapter drain timed out");
                Ok(())
            }
        }
    }
}
