//! The store over gRPC: [`StoreService`] serves any
//! [`MessageStore`](crate::MessageStore) as
//! `chat4all.v1.MessageStore`, and [`StoreClient`] is the same trait on the
//! calling side, so a service holds a [`SharedStore`] and does not care
//! whether the store is in-process or across the network.
//!
//! The edges are kept in one place each: `convert` maps between the
//! model and the wire (and validates what comes in), `status` maps
//! [`StoreError`](crate::StoreError) to `tonic::Status` and back.

mod client;
mod convert;
mod service;
mod status;

pub use client::{StoreArgs, StoreClient};
pub use service::StoreService;

use chat4all_proto::v1 as pb;

use crate::SharedStore;

/// The gRPC server of a store, ready for `Server::builder().add_service(..)`.
pub fn server(store: SharedStore) -> pb::message_store_server::MessageStoreServer<StoreService> {
    pb::message_store_server::MessageStoreServer::new(StoreService::new(store))
}
