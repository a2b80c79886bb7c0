//! The api-gateway: Chat4All's public gRPC API (`chat4all.v1.MessagingService`).
//!
//! SendMessage validates, writes the message to the store as ACCEPTED (the
//! store is written before Kafka, so an accepted message is never lost),
//! produces it to `messages` and answers with its id. WatchMessages streams
//! what the `message-events` topic says about a conversation.
//!
//! Layout: [`config`] the flags, `validation` the request checks, `status`
//! the one place errors become gRPC statuses, `service` the handlers,
//! `channels` the channel calls, `vendors` the platforms' own reads through
//! their connectors, `history` the backfill of a channel's platform history,
//! `watchers` the fan-out of `message-events` to streams.

mod channels;
pub mod cli;
pub mod config;
mod history;
mod publish;
mod reconcile;
mod republish_pace;
mod service;
mod status;
mod validation;
mod vendors;
mod watchers;

use std::net::SocketAddr;

use anyhow::Context as _;
use chat4all_kafka::{KafkaArgs, Producer, tail::TailConsumer, topics};
use chat4all_proto::v1::messaging_service_server::MessagingServiceServer;
use chat4all_store::SharedStore;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

pub use config::{ConnectorAddr, GatewayConfig, ReconcileArgs};
use service::Messaging;
use watchers::Watchers;

/// The gateway with its port bound and its Kafka clients made.
pub struct BoundGateway {
    listener: TcpListener,
    store: SharedStore,
    reconcile: ReconcileArgs,
    service: Messaging,
    tail: TailConsumer,
    watchers: Watchers,
    producer: Producer,
    tracer: chat4all_telemetry::HopTracer,
}

/// Binds the gRPC port and connects to Kafka; nothing is served yet.
pub async fn bind(
    config: &GatewayConfig,
    kafka: &KafkaArgs,
    store: SharedStore,
) -> anyhow::Result<BoundGateway> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the gateway's gRPC port {}", config.listen))?;
    let producer = Producer::new(kafka, "api-gateway").context("creating the Kafka producer")?;
    let client_id = format!("api-gateway-watch-{}", uuid::Uuid::new_v4());
    let tail = TailConsumer::new(kafka, topics::MESSAGE_EVENTS, &client_id)
        .await
        .context("assigning the message-events partitions")?;
    let tracer = chat4all_telemetry::spans::tracer("chat4all-api-gateway");
    let watchers = Watchers::new(tracer.clone(), config.max_watch_streams);
    let connectors = vendors::Connectors::new(&config.connectors, config.connector_timeout)?;
    let service = Messaging::new(
        config.clone(),
        store.clone(),
        producer.clone(),
        watchers.clone(),
        connectors,
        tracer.clone(),
    );
    let reconcile = config.reconcile;
    Ok(BoundGateway {
        listener,
        store,
        reconcile,
        service,
        tail,
        watchers,
        producer,
        tracer,
    })
}

impl BoundGateway {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown`, then drains in-flight calls and flushes Kafka.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            store,
            reconcile,
            service,
            tail,
            watchers,
            producer,
            tracer,
        } = self;
        let (routes, health) = chat4all_telemetry::GrpcPort::new()
            .descriptors(chat4all_proto::FILE_DESCRIPTOR_SET)
            .serve(MessagingServiceServer::new(service))
            .build()
            .await
            .context("building gRPC reflection")?;
        let closer = {
            let (watchers, shutdown) = (watchers.clone(), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                watchers.close();
            })
        };
        let reconciler = tokio::spawn(reconcile::run(
            store,
            producer.clone(),
            tracer,
            reconcile,
            shutdown.clone(),
        ));
        let tail_task = tokio::spawn(tail.run(move |record| watchers.dispatch(&record), shutdown.clone()));
        let served = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                health.draining(shutdown.clone()),
            )
            .await;
        let _ = tokio::join!(tail_task, closer, reconciler);
        producer
            .flush(std::time::Duration::from_secs(10))
            .await
            .context("flushing Kafka at shutdown")?;
        tracing::info!("api-gateway stopped");
        served.context("serving gRPC")
    }
}

/// Binds and serves until `shutdown`.
pub async fn run(
    config: &GatewayConfig,
    kafka: &KafkaArgs,
    store: SharedStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    bind(config, kafka, store).await?.run(shutdown).await
}
