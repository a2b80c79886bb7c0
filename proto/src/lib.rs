//! The contracts of Chat4All, generated from the .proto files beside this
//! crate: the public `MessagingService`, the `Connector` every platform
//! adapter serves, the `MessageStore`, and the Kafka payloads.
//!
//! Generated code carries no docs of its own, hence the allowances.

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("chat4all.v1");
}

/// The benchmark's bare echo service.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod bench {
    tonic::include_proto!("chat4all.bench.v1");
}

/// The encoded descriptor set of every service, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat4all_descriptor.bin"));

pub use prost_types::{Duration, Timestamp};
