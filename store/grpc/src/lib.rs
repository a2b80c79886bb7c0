//! The store over gRPC: [`StoreService`] serves any
//! [`MessageStore`](chat4all_store::MessageStore) as
//! `chat4all.v1.MessageStore`, and [`StoreClient`] is the same trait on the
//! calling side, so a service holds a [`SharedStore`] and does not care
//! whether the store is in-process or across the network.
//!
//! The edges are kept in one place each: `convert` maps between the
//! model and the wire (and validates what comes in), `status` maps
//! [`StoreError`](chat4all_store::StoreError) to `tonic::Status` and back.

mod client;
mod convert;
mod service;
mod status;

pub use client::{StoreArgs, StoreClient};
pub use service::StoreService;

use anyhow::Context as _;
use chat4all_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use chat4all_store::SharedStore;

/// The gRPC server of a store, ready for `Server::builder().add_service(..)`.
pub fn server(store: SharedStore) -> pb::message_store_server::MessageStoreServer<StoreService> {
    pb::message_store_server::MessageStoreServer::new(StoreService::new(store))
}

/// Serves `store` on `listener` until `shutdown`, with health and
/// reflection beside it: the standalone store and the one-machine system
/// serve the same port. Health turns NOT_SERVING before the port closes.
pub async fn serve(
    store: SharedStore,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (routes, health) = chat4all_telemetry::GrpcPort::new()
        .descriptors(chat4all_proto::FILE_DESCRIPTOR_SET)
        .serve(server(store))
        .build()
        .await
        .context("building gRPC reflection")?;
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), health.draining(shutdown))
        .await
        .context("serving the store")
}
